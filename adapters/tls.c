/* SPDX-License-Identifier: MIT */
/*
 * adapters/tls.c — the TLS adapter (coev/tls.h): OpenSSL's SSL objects
 * over non-blocking sockets, driven from tasks.
 *
 * The model. Each connection is an SSL over its fd through a BIO of ours
 * whose reads and writes are coev_try_read and coev_try_write (one system
 * call, never waiting). Every operation (handshake, read, write,
 * shutdown) is one loop: take the connection's mutex, clear the thread's
 * OpenSSL error queue, make the OpenSSL call, read SSL_get_error (and the
 * errno the BIO kept) at once, release the mutex; then either return, or
 * wait with coev_wait_fd for what OpenSSL asked for (WANT_READ,
 * WANT_WRITE) until the deadline and go round again. The error queue
 * belongs to the thread, and a task may resume on another worker after
 * any wait, so it is read before the task can wait or move (the mutex is
 * released without waiting).
 *
 * Why our BIO: coev then knows what OpenSSL's reads found. After a short
 * read (a whole request) or an EAGAIN, a read with nothing buffered in the
 * SSL (SSL_has_pending) waits for the next edge at once: no SSL_read to
 * say WANT_READ, no read(2) to say EAGAIN, no poll. A request costs one
 * read(2) and one write(2) (bench/ `https`). The BIO keeps the socket
 * BIO's end of stream (BIO_eof): a close without close_notify is still
 * truncation.
 *
 * Why a mutex. OpenSSL 3 lets an SSL be used from any thread, but by one
 * thread at a time, and a stream has a reader task and a writer task that
 * may run at once on two workers. The coev mutex serialises the OpenSSL
 * calls only; it is never held across a wait for the fd, so a reader
 * parked until data arrives leaves the writer free. (Rejected: a pthread
 * mutex, which would block a worker thread while the other decrypts; two
 * SSL objects cannot share one TLS session's state.)
 *
 * Both directions may need the same readiness: TLS 1.3 lets a write need
 * a read (a key update) and a read need a write. The fd allows one waiter
 * per direction (coev/io.h rule 3), so a second one gets -EBUSY; then
 * the other task is already waiting for that readiness and will make the
 * OpenSSL call that consumes it, and this one naps a millisecond and
 * tries again (rare, and bounded by the deadline).
 *
 * Errors. A failed handshake is COEV_ECERT or COEV_EHOSTNAME when the
 * verification result says the certificate was refused (by name for
 * X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH), else
 * COEV_ETLS. Truncation is left to OpenSSL 3's default
 * (SSL_OP_IGNORE_UNEXPECTED_EOF is not set): an EOF without close_notify
 * is an SSL_ERROR_SSL, so COEV_ETLS. The text of the last failure is kept
 * in the connection (or config), since the error queue is per thread.
 * After SSL_ERROR_SSL or SSL_ERROR_SYSCALL OpenSSL allows no further call
 * on the SSL, so the connection keeps that failure and answers every later
 * call with it.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "coev.h"
#include "coev/tls.h"

struct sni_entry {
	char *name;
	SSL_CTX *ctx;
};

struct coev_tls_config {
	SSL_CTX *ctx;	     /* immutable after configuring */
	BIO_METHOD *bio;     /* immutable: the connections' transport */
	int role;	     /* immutable */
	bool verify;	     /* the peer's certificate is verified */
	bool ca_set;	     /* coev_tls_config_ca was called */
	atomic_uint refs;    /* the creator's, and one per connection */
	unsigned char *alpn; /* wire format: length-prefixed names */
	unsigned alpn_len;
	struct sni_entry sni[COEV_TLS_SNI_MAX];
	unsigned n_sni;
	char err[COEV_TLS_ERROR_MAX];
};

struct coev_tls {
	SSL *ssl; /* used under mu only */
	coev_tls_config_t *cfg;
	coev_mutex_t mu;
	int fd;
	char *host;
	bool ready;	/* under mu: handshake over, alpn set */
	bool eof;	/* under mu: a read found the end of the stream */
	bool drained;	/* under mu: the BIO's last read found the fd empty
			 * (EAGAIN, or fewer bytes than asked) */
	int sys;	/* under mu: the errno of the BIO's last failure */
	int failed;	/* under mu: a fatal failure's code, or 0 */
	char alpn[256]; /* the agreed protocol, or "" */
	char err[COEV_TLS_ERROR_MAX]; /* written under mu */
};

/* The operations of run(). */
enum op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* classify()'s results besides counts and codes: wait for the fd to be
 * readable or writable, and go again. */
#define STEP_WANT_READ 1
#define STEP_WANT_WRITE 2

/* --- error text ----------------------------------------------------------- */

/* OpenSSL's words for the thread's last queued error, or fallback. */
static void queue_text(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, size);
	else
		snprintf(buf, size, "%s", fallback);
}

/* --- the transport --------------------------------------------------------- */

/* The BIO of each connection, over t->fd (BIO_get_data). OpenSSL calls
 * these inside SSL_read and SSL_write, under t->mu. */
static int bio_read(BIO *b, char *buf, size_t n, size_t *got)
{
	coev_tls_t *t = BIO_get_data(b);
	ssize_t r = coev_try_read(t->fd, buf, n);

	BIO_clear_retry_flags(b);
	t->drained = r == -EAGAIN || (r > 0 && (size_t)r < n);
	if (r > 0) {
		*got = (size_t)r;
		return 1;
	}
	if (r == -EAGAIN)
		BIO_set_retry_read(b);
	else if (r == 0)
		t->eof = true;
	else
		t->sys = (int)-r;
	return 0;
}

static int bio_write(BIO *b, const char *buf, size_t n, size_t *put)
{
	coev_tls_t *t = BIO_get_data(b);
	ssize_t r = coev_try_write(t->fd, buf, n);

	BIO_clear_retry_flags(b);
	if (r >= 0) {
		*put = (size_t)r;
		return 1;
	}
	if (r == -EAGAIN)
		BIO_set_retry_write(b);
	else
		t->sys = (int)-r;
	return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	coev_tls_t *t = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH: return 1; /* nothing is buffered here */
	case BIO_CTRL_EOF: return t->eof;
	default: return 0; /* no kernel TLS, no datagrams, no chains */
	}
}

static BIO_METHOD *bio_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "coev fd");

	if (m && (!BIO_meth_set_read_ex(m, bio_read) ||
		  !BIO_meth_set_write_ex(m, bio_write) ||
		  !BIO_meth_set_ctrl(m, bio_ctrl))) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

/* --- the config ----------------------------------------------------------- */

/* The ALPN choice of a server: the first of its own list the client
 * offers; without a match (or a list) the handshake goes on without
 * ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	coev_tls_config_t *cfg = arg;
	unsigned char *sel = NULL;

	(void)ssl;
	if (!cfg->alpn)
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_select_next_proto(&sel, outlen, cfg->alpn, cfg->alpn_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* The server's SNI hook: switch to the context of the name asked for. */
static int servername(SSL *ssl, int *alert, void *arg)
{
	coev_tls_config_t *cfg = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (!name)
		return SSL_TLSEXT_ERR_OK;
	for (unsigned i = 0; i < cfg->n_sni; i++) {
		if (strcasecmp(cfg->sni[i].name, name) == 0) {
			SSL_set_SSL_CTX(ssl, cfg->sni[i].ctx);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* A context for cfg's role with the shared settings. */
static SSL_CTX *make_ctx(coev_tls_config_t *cfg)
{
	SSL_CTX *ctx =
		SSL_CTX_new(cfg->role == COEV_TLS_SERVER ? TLS_server_method()
							 : TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* No TLS 1.2 renegotiation: it is the main way a read comes to need
	 * the write direction (and the reverse) that a writer task may be
	 * waiting on, and it has a history of attacks; TLS 1.3 has none. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* Read ahead: one read(2) brings a record's header and body (and
	 * whatever follows) instead of two reads per record. Safe with the
	 * waits here: OpenSSL asks for readability only when no whole
	 * record is buffered (bench/ `https`: TLS's own user time per
	 * request 11.6 to 9.5 us). AES-128-GCM first among the TLS 1.3
	 * suites, as Go orders them: as strong in practice, cheaper per
	 * record. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
				      "TLS_AES_256_GCM_SHA384:"
				      "TLS_CHACHA20_POLY1305_SHA256");
	/* Partial writes: a write returns what fit, as send(2) does;
	 * moving buffer: a repeated write may come from another address
	 * (a stream's buffer compacts). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cfg->role == COEV_TLS_SERVER) {
		/* The suite order above is the server's choice, not the
		 * client's (most clients list AES-256 first). */
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
		/* Resumed sessions of verified clients need a context id
		 * (OpenSSL refuses them otherwise). */
		SSL_CTX_set_session_id_context(
			ctx, (const unsigned char *)"coev", 4);
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, cfg);
		SSL_CTX_set_tlsext_servername_callback(ctx, servername);
		SSL_CTX_set_tlsext_servername_arg(ctx, cfg);
	}
	return ctx;
}

int coev_tls_config_new(int role, coev_tls_config_t **out)
{
	coev_tls_config_t *cfg;

	if (!out || (role != COEV_TLS_CLIENT && role != COEV_TLS_SERVER))
		return -EINVAL;
	cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return -ENOMEM;
	cfg->role = role;
	cfg->verify = role == COEV_TLS_CLIENT;
	atomic_init(&cfg->refs, 1);
	cfg->ctx = make_ctx(cfg);
	cfg->bio = bio_method();
	if (!cfg->ctx || !cfg->bio) {
		SSL_CTX_free(cfg->ctx);
		BIO_meth_free(cfg->bio);
		free(cfg);
		ERR_clear_error();
		return COEV_ETLS;
	}
	if (role == COEV_TLS_CLIENT) {
		SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER, NULL);
		/* A missing system store is not an error here: every
		 * handshake then fails with COEV_ECERT, which says why. */
		SSL_CTX_set_default_verify_paths(cfg->ctx);
		ERR_clear_error();
	}
	*out = cfg;
	return 0;
}

static void config_release(coev_tls_config_t *cfg)
{
	/* acq_rel: the last release sees every other holder's writes. */
	if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < cfg->n_sni; i++) {
		free(cfg->sni[i].name);
		SSL_CTX_free(cfg->sni[i].ctx);
	}
	SSL_CTX_free(cfg->ctx);
	BIO_meth_free(cfg->bio);
	free(cfg->alpn);
	free(cfg);
}

void coev_tls_config_free(coev_tls_config_t *cfg)
{
	if (cfg)
		config_release(cfg);
}

/* A config call's OpenSSL failure: its text kept, COEV_ETLS returned. */
static int config_fail(coev_tls_config_t *cfg, const char *what)
{
	char q[COEV_TLS_ERROR_MAX - 64];

	queue_text(q, sizeof q, "unknown OpenSSL error");
	snprintf(cfg->err, sizeof cfg->err, "%s: %s", what, q);
	ERR_clear_error();
	return COEV_ETLS;
}

int coev_tls_config_ca(coev_tls_config_t *cfg, const char *cafile,
		       const char *cadir)
{
	X509_STORE *st;

	if (!cfg || (!cafile && !cadir))
		return -EINVAL;
	ERR_clear_error();
	st = X509_STORE_new();
	if (!st)
		return -ENOMEM;
	SSL_CTX_set_cert_store(cfg->ctx, st); /* frees the old store */
	if (SSL_CTX_load_verify_locations(cfg->ctx, cafile, cadir) != 1)
		return config_fail(cfg, "loading the CA certificates");
	cfg->ca_set = true;
	/* A connection switched to a per-name context verifies its client
	 * against the same store. */
	for (unsigned i = 0; i < cfg->n_sni; i++)
		SSL_CTX_set1_cert_store(cfg->sni[i].ctx, st);
	return 0;
}

/* Loads certfile and keyfile into ctx and checks they match. */
static int load_cert(coev_tls_config_t *cfg, SSL_CTX *ctx, const char *certfile,
		     const char *keyfile)
{
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1)
		return config_fail(cfg, "loading the certificate");
	if (SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1)
		return config_fail(cfg, "loading the private key");
	if (SSL_CTX_check_private_key(ctx) != 1)
		return config_fail(cfg, "checking the key");
	return 0;
}

int coev_tls_config_cert(coev_tls_config_t *cfg, const char *certfile,
			 const char *keyfile)
{
	if (!cfg || !certfile || !keyfile)
		return -EINVAL;
	return load_cert(cfg, cfg->ctx, certfile, keyfile);
}

int coev_tls_config_sni_cert(coev_tls_config_t *cfg, const char *name,
			     const char *certfile, const char *keyfile)
{
	struct sni_entry e;
	int rc;

	if (!cfg || cfg->role != COEV_TLS_SERVER || !name || !*name ||
	    !certfile || !keyfile)
		return -EINVAL;
	if (cfg->n_sni == COEV_TLS_SNI_MAX)
		return -ENOSPC;
	e.ctx = make_ctx(cfg);
	e.name = strdup(name);
	if (!e.ctx || !e.name) {
		SSL_CTX_free(e.ctx);
		free(e.name);
		return -ENOMEM;
	}
	SSL_CTX_set1_cert_store(e.ctx, SSL_CTX_get_cert_store(cfg->ctx));
	rc = load_cert(cfg, e.ctx, certfile, keyfile);
	if (rc < 0) {
		SSL_CTX_free(e.ctx);
		free(e.name);
		return rc;
	}
	cfg->sni[cfg->n_sni++] = e;
	return 0;
}

int coev_tls_config_alpn(coev_tls_config_t *cfg, const char *protos)
{
	size_t len = protos ? strlen(protos) : 0, at = 0;
	unsigned char *wire;

	if (!cfg || len == 0)
		return -EINVAL;
	/* The wire format is one length byte per name in place of each
	 * comma, and one before the first name: len + 1 bytes. */
	wire = malloc(len + 1);
	if (!wire)
		return -ENOMEM;
	while (at <= len) {
		const char *name = protos + at;
		size_t n = strcspn(name, ",");
		if (n == 0 || n > 255) {
			free(wire);
			return -EINVAL;
		}
		wire[at] = (unsigned char)n;
		memcpy(wire + at + 1, name, n);
		at += n + 1;
	}
	if (cfg->role == COEV_TLS_CLIENT &&
	    SSL_CTX_set_alpn_protos(cfg->ctx, wire, (unsigned)len + 1) != 0) {
		free(wire);
		return -ENOMEM;
	}
	free(cfg->alpn);
	cfg->alpn = wire;
	cfg->alpn_len = (unsigned)len + 1;
	return 0;
}

int coev_tls_config_verify_clients(coev_tls_config_t *cfg)
{
	if (!cfg || cfg->role != COEV_TLS_SERVER)
		return -EINVAL;
	if (!cfg->ca_set) {
		SSL_CTX_set_default_verify_paths(cfg->ctx);
		ERR_clear_error();
	}
	cfg->verify = true;
	SSL_CTX_set_verify(cfg->ctx,
			   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	return 0;
}

int coev_tls_config_insecure_no_verify(coev_tls_config_t *cfg)
{
	if (!cfg)
		return -EINVAL;
	cfg->verify = false;
	SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_NONE, NULL);
	return 0;
}

const char *coev_tls_config_error_text(const coev_tls_config_t *cfg)
{
	return cfg ? cfg->err : "";
}

/* --- connections ---------------------------------------------------------- */

/* Sets up a client's SNI and the name its server must prove. */
static int client_names(coev_tls_t *t, const char *host)
{
	unsigned char addr[16];
	bool numeric = inet_pton(AF_INET, host, addr) == 1 ||
		       inet_pton(AF_INET6, host, addr) == 1;

	/* RFC 6066: SNI carries host names, never addresses. */
	if (!numeric && SSL_set_tlsext_host_name(t->ssl, host) != 1)
		return COEV_ETLS;
	if (!t->cfg->verify)
		return 0;
	SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (numeric)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
						     host) == 1
			       ? 0
			       : COEV_ETLS;
	return SSL_set1_host(t->ssl, host) == 1 ? 0 : COEV_ETLS;
}

int coev_tls_new(coev_tls_config_t *cfg, int fd, const char *host,
		 coev_tls_t **out)
{
	coev_tls_t *t;
	BIO *bio;
	int rc = COEV_ETLS;

	if (!cfg || !out)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (cfg->role == COEV_TLS_SERVER ? host != NULL
					 : (!host && cfg->verify))
		return -EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	ERR_clear_error();
	t->fd = fd;
	t->cfg = cfg;
	coev_mutex_init(&t->mu, 0);
	t->ssl = SSL_new(cfg->ctx);
	if (!t->ssl || !(bio = BIO_new(cfg->bio)))
		goto fail;
	BIO_set_data(bio, t);
	BIO_set_init(bio, 1);
	SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways: its one ref */
	if (cfg->role == COEV_TLS_SERVER) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (host) {
			rc = -ENOMEM;
			t->host = strdup(host);
			if (!t->host)
				goto fail;
			rc = client_names(t, host);
			if (rc < 0)
				goto fail;
		}
	}
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	*out = t;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(t->ssl);
	free(t->host);
	coev_mutex_destroy(&t->mu);
	free(t);
	return rc;
}

void coev_tls_free(coev_tls_t *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	coev_close(t->fd);
	free(t->host);
	coev_mutex_destroy(&t->mu);
	config_release(t->cfg);
	free(t);
}

/* --- the operations ------------------------------------------------------- */

/* The code of a handshake failure: the certificate's refusal, if that was
 * it, else COEV_ETLS; t->err says why. Under t->mu. */
static int handshake_failure(coev_tls_t *t)
{
	long v = SSL_get_verify_result(t->ssl);
	unsigned long e = ERR_peek_last_error();

	if (t->cfg->verify &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		queue_text(t->err, sizeof t->err, "no client certificate");
		return COEV_ECERT;
	}
	if (t->cfg->verify && v != X509_V_OK) {
		snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
		return v == X509_V_ERR_HOSTNAME_MISMATCH ||
				       v == X509_V_ERR_IP_ADDRESS_MISMATCH
			       ? COEV_EHOSTNAME
			       : COEV_ECERT;
	}
	queue_text(t->err, sizeof t->err, "TLS protocol error");
	return COEV_ETLS;
}

/* The result of one OpenSSL call that failed with SSL_get_error's err
 * (sys: the errno of the BIO's failed system call, or 0). Under t->mu. */
static int classify(coev_tls_t *t, enum op op, int err, int sys)
{
	switch (err) {
	case SSL_ERROR_WANT_READ: return STEP_WANT_READ;
	case SSL_ERROR_WANT_WRITE: return STEP_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		/* The peer's close_notify: the end of its stream. */
		if (op == OP_READ)
			return 0;
		snprintf(t->err, sizeof t->err, "peer closed the connection");
		return COEV_ETLS;
	case SSL_ERROR_SYSCALL:
		if (sys != 0) {
			snprintf(t->err, sizeof t->err, "%s",
				 coev_strerror(-sys));
			return -sys;
		}
		snprintf(t->err, sizeof t->err,
			 "peer closed TCP without close_notify");
		return COEV_ETLS;
	case SSL_ERROR_SSL:
		if (!SSL_is_init_finished(t->ssl))
			return handshake_failure(t);
		queue_text(t->err, sizeof t->err, "TLS protocol error");
		return COEV_ETLS;
	default:
		queue_text(t->err, sizeof t->err, "TLS error");
		return COEV_ETLS;
	}
}

/* Once the handshake is over: what it agreed on. Under t->mu. */
static void note_ready(coev_tls_t *t)
{
	const unsigned char *p = NULL;
	unsigned len = 0;

	if (t->ready || !SSL_is_init_finished(t->ssl))
		return;
	SSL_get0_alpn_selected(t->ssl, &p, &len);
	if (p && len < sizeof t->alpn) {
		memcpy(t->alpn, p, len);
		t->alpn[len] = '\0';
	}
	t->ready = true;
}

/* One OpenSSL call of op, under t->mu: a count (>= 0) or a negative
 * code, or 0 with *want set to STEP_WANT_READ or STEP_WANT_WRITE. */
static ssize_t step(coev_tls_t *t, enum op op, void *buf, size_t n, int *want)
{
	size_t got = 0;
	int r;

	*want = 0;
	if (t->failed)
		return t->failed;
	/* SSL_get_error needs an empty queue. It is empty but for another
	 * library's leftovers (every failure here clears it), and a peek
	 * costs less than a clear, which wipes all its slots. */
	if (ERR_peek_error())
		ERR_clear_error();
	t->sys = 0;
	switch (op) {
	case OP_HANDSHAKE: r = SSL_do_handshake(t->ssl); break;
	case OP_READ: r = SSL_read_ex(t->ssl, buf, n, &got); break;
	case OP_WRITE: r = SSL_write_ex(t->ssl, buf, n, &got); break;
	default:
		/* OpenSSL refuses to shut down a connection in its
		 * handshake, so one not yet run (a stream runs it at its
		 * first read or write) runs first: the peer is owed a
		 * close_notify. SSL_shutdown's 0 (close_notify sent, the
		 * peer's not yet seen) is enough to end the write
		 * direction. */
		r = SSL_is_init_finished(t->ssl) ? 1 : SSL_do_handshake(t->ssl);
		if (r == 1 && SSL_shutdown(t->ssl) < 0)
			r = -1;
		break;
	}
	if (r == 1) {
		note_ready(t);
		return (ssize_t)got;
	}
	int err = SSL_get_error(t->ssl, r);
	int rc = classify(t, op, err, t->sys);
	/* OpenSSL's rule: after these no call may follow on the SSL, not
	 * even SSL_shutdown (it answers from its broken state, with a
	 * false reason: SSL_ERROR_SYSCALL). Every later call gives this
	 * failure, and t->err keeps its reason. */
	if (err == SSL_ERROR_SSL || err == SSL_ERROR_SYSCALL)
		t->failed = rc;
	/* Nothing of this call may stay queued for the next task here. */
	ERR_clear_error();
	if (rc > 0) {
		*want = rc;
		return 0;
	}
	return rc;
}

/* Waits until t's fd is ready for events, or the deadline. A direction
 * another task already waits for: that task will make the OpenSSL call
 * the readiness serves, so nap and let the caller try again. */
static int wait_ready(coev_tls_t *t, unsigned events, coev_time_t deadline)
{
	int rc = coev_wait_fd(t->fd, events, deadline);

	if (rc != -EBUSY)
		return rc < 0 ? rc : 0;
	if (coev_now() >= deadline)
		return -ETIMEDOUT;
	rc = coev_sleep(COEV_MSEC(1));
	return rc < 0 ? rc : 0;
}

/* The loop of every operation: a count (>= 0) or a negative code. */
static ssize_t run(coev_tls_t *t, enum op op, void *buf, size_t n,
		   coev_time_t deadline)
{
	if (!coev_self())
		return COEV_ENOTCORO;
	for (bool first = true;; first = false) {
		int rc = coev_mutex_lock_dl(&t->mu, deadline);
		if (rc < 0)
			return rc;
		int want = STEP_WANT_READ;
		ssize_t r = 0;
		/* A first read with nothing buffered in the SSL and the fd
		 * drained would only say WANT_READ: wait at once. */
		if (!first || op != OP_READ || !t->drained || t->failed ||
		    SSL_has_pending(t->ssl))
			r = step(t, op, buf, n, &want);
		coev_mutex_unlock(&t->mu);
		if (want) {
			rc = wait_ready(t,
					want == STEP_WANT_READ ? COEV_READ
							       : COEV_WRITE,
					deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		return r;
	}
}

int coev_tls_handshake(coev_tls_t *t, coev_time_t deadline)
{
	if (!t)
		return -EINVAL;
	return (int)run(t, OP_HANDSHAKE, NULL, 0, deadline);
}

ssize_t coev_tls_read(coev_tls_t *t, void *buf, size_t n, coev_time_t deadline)
{
	if (!t || !buf || n == 0)
		return -EINVAL;
	return run(t, OP_READ, buf, n, deadline);
}

ssize_t coev_tls_write(coev_tls_t *t, const void *buf, size_t n,
		       coev_time_t deadline)
{
	if (!t || !buf || n == 0)
		return -EINVAL;
	return run(t, OP_WRITE, (void *)buf, n, deadline);
}

int coev_tls_shutdown(coev_tls_t *t, coev_time_t deadline)
{
	if (!t)
		return -EINVAL;
	return (int)run(t, OP_SHUTDOWN, NULL, 0, deadline);
}

/* --- what the connection knows -------------------------------------------- */

int coev_tls_fileno(const coev_tls_t *t)
{
	return t ? t->fd : -EINVAL;
}

const char *coev_tls_server_name(const coev_tls_t *t)
{
	if (!t)
		return NULL;
	if (t->cfg->role == COEV_TLS_CLIENT)
		return t->host;
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *coev_tls_alpn(const coev_tls_t *t)
{
	return t && t->alpn[0] ? t->alpn : NULL;
}

const char *coev_tls_version(const coev_tls_t *t)
{
	return t ? SSL_get_version(t->ssl) : NULL;
}

const char *coev_tls_error_text(const coev_tls_t *t)
{
	return t ? t->err : "";
}
