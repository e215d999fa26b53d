/* SPDX-License-Identifier: MIT */
/*
 * adapters/tls_stream.c — a TLS connection (adapters/tls.c) as the
 * transport under a buffered stream (coev/stream.h), and the two
 * conveniences that return one: coev_tls_connect and coev_tls_accept.
 *
 * The transport's operations are the connection's own: a stream's reader
 * and writer tasks may call read and write at once, which the
 * connection's mutex makes safe (coev/tls.h, rule 3). Kept apart from
 * adapters/tls.c so that a program using TLS connections without streams
 * does not pull the stream code out of libcoev.a.
 */
#include "coev.h"
#include "coev/stream.h"
#include "coev/tls.h"

static ssize_t op_read(void *ctx, void *buf, size_t n, coev_time_t deadline)
{
	return coev_tls_read(ctx, buf, n, deadline);
}

static ssize_t op_write(void *ctx, const void *buf, size_t n,
			coev_time_t deadline)
{
	return coev_tls_write(ctx, buf, n, deadline);
}

static int op_shutdown(void *ctx, coev_time_t deadline)
{
	return coev_tls_shutdown(ctx, deadline);
}

static void op_close(void *ctx)
{
	coev_tls_free(ctx);
}

static int op_fd(void *ctx)
{
	return coev_tls_fileno(ctx);
}

static const coev_stream_ops_t tls_ops = {
	.read = op_read,
	.write = op_write,
	.shutdown = op_shutdown,
	.close = op_close,
	.fd = op_fd,
};

int coev_tls_stream(coev_tls_t *t, size_t bufsize, coev_stream_t **out)
{
	if (!t || !out)
		return -EINVAL;
	return coev_stream_new(&tls_ops, t, bufsize, out);
}

/* Handshake t and make it a stream; t is freed on failure. */
static int handshake_stream(coev_tls_t *t, coev_time_t deadline,
			    coev_stream_t **out)
{
	int rc = coev_tls_handshake(t, deadline);

	if (rc == 0)
		rc = coev_tls_stream(t, 0, out);
	if (rc < 0)
		coev_tls_free(t);
	return rc;
}

int coev_tls_connect(const char *host, unsigned port, coev_tls_config_t *cfg,
		     coev_time_t deadline, coev_stream_t **out)
{
	coev_tls_t *t;
	int fd, rc;

	if (!host || !cfg || !out)
		return -EINVAL;
	fd = coev_tcp_connect(host, port, deadline);
	if (fd < 0)
		return fd;
	rc = coev_tls_new(cfg, fd, host, &t);
	if (rc < 0) {
		coev_close(fd);
		return rc;
	}
	return handshake_stream(t, deadline, out);
}

int coev_tls_accept(int fd, coev_tls_config_t *cfg, coev_time_t deadline,
		    coev_stream_t **out)
{
	coev_tls_t *t;
	int rc;

	if (!cfg || !out || fd < 0) {
		if (fd >= 0)
			coev_close(fd);
		return fd < 0 ? -EBADF : -EINVAL;
	}
	rc = coev_tls_new(cfg, fd, NULL, &t);
	if (rc < 0) {
		coev_close(fd);
		return rc;
	}
	return handshake_stream(t, deadline, out);
}
