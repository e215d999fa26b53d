/* SPDX-License-Identifier: MIT */
/*
 * coev/tls.h — TLS for tasks with OpenSSL (the adapter libcoev_tls.a,
 * linked with -lssl -lcrypto): client and server connections over a
 * non-blocking socket, with deadlines and cancellation, usable directly or
 * as the transport under a buffered stream (coev/stream.h).
 *
 * Two objects:
 *  - coev_tls_config_t: what many connections share (an OpenSSL SSL_CTX
 *    underneath): the trusted certificates, the own certificate and key,
 *    the ALPN protocols, per-name server certificates (SNI). Configure it
 *    before the first connection uses it; after that it is read-only and
 *    may be used by any number of connections on any workers at once.
 *  - coev_tls_t: one connection over one fd, which it owns.
 *
 * Safe defaults, as Python's ssl.create_default_context: a client verifies
 * the server's certificate against the system's trusted store (or only
 * the CA file/folder given) and its name against the host name given;
 * TLS 1.2 is the oldest version spoken. Turning verification off is one
 * call with a loud name, coev_tls_config_insecure_no_verify.
 *
 * Rules:
 *  1. Non-blocking underneath: OpenSSL works on the non-blocking fd, and
 *     when it needs the fd readable or writable (SSL_ERROR_WANT_READ,
 *     SSL_ERROR_WANT_WRITE) the task waits with coev_wait_fd until the
 *     call's deadline. Every call that can wait ends with -ETIMEDOUT at
 *     the deadline and with -ECANCELED when the task is cancelled; nothing
 *     read is lost (OpenSSL keeps it for the next read).
 *  2. Errors: COEV_ECERT the peer's certificate is not trusted (unknown
 *     issuer, self-signed, expired, ...); COEV_EHOSTNAME it is trusted but
 *     names another host; COEV_ETLS any other TLS protocol failure,
 *     including truncation: a peer that closes TCP without sending
 *     close_notify first makes a read fail with COEV_ETLS, never return 0
 *     (an attacker could otherwise cut a message short unnoticed); the
 *     system's codes (-ECONNRESET, -EPIPE, ...) for the socket's failures.
 *     coev_tls_error_text gives OpenSSL's own words for the last failure,
 *     for logs.
 *  3. Like a stream: at most one task reads and one task writes a
 *     connection at a time, and they may be different tasks on different
 *     workers. OpenSSL allows one thread in an SSL object at a time, so
 *     every OpenSSL call on a connection is made under the connection's
 *     coev mutex, which is never held across a wait: a reader waiting for
 *     data does not stop the writer.
 *  4. A write that times out (or is cancelled) after OpenSSL took its
 *     bytes into a record must be repeated with the same bytes (OpenSSL's
 *     rule for SSL_write); a buffered stream does so by itself, since it
 *     keeps unwritten bytes at the front of its buffer.
 *  5. Calls that can wait must be made from a task (COEV_ENOTCORO
 *     otherwise). The config calls and coev_tls_free work on any thread.
 */
#ifndef COEV_TLS_H
#define COEV_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "stream.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_tls_config coev_tls_config_t;
typedef struct coev_tls coev_tls_t;

/* The roles of a config. */
#define COEV_TLS_CLIENT 0
#define COEV_TLS_SERVER 1

/* The size of the buffer coev_tls_error_text fills (NUL included). */
#define COEV_TLS_ERROR_MAX 256u

/*
 * coev_tls_config_new — a config for role (COEV_TLS_CLIENT or
 * COEV_TLS_SERVER), with TLS 1.2 as the oldest version. A client config
 * verifies servers against the system's trusted store (OpenSSL's default
 * paths) until coev_tls_config_ca names other CAs; a server config asks
 * clients for no certificate and needs coev_tls_config_cert before it can
 * accept (and trusts no client certificate unless
 * coev_tls_config_verify_clients asks for them). Returns 0 or -EINVAL (unknown role), -ENOMEM, COEV_ETLS
 * (OpenSSL could not make the context). Any thread; allocates. The config
 * is reference counted: each connection holds it, so
 * coev_tls_config_free may be called while connections still use it.
 */
COEV_API int coev_tls_config_new(int role, coev_tls_config_t **out);

/* coev_tls_config_free — drop the creator's reference; the config goes
 * when its last connection does. NULL is allowed. Any thread. */
COEV_API void coev_tls_config_free(coev_tls_config_t *cfg);

/*
 * coev_tls_config_ca — trust exactly the CA certificates in cafile (PEM,
 * may be NULL) and the hashed folder cadir (may be NULL), in place of the
 * system store. Returns 0, -EINVAL (both NULL), or COEV_ETLS (a file that
 * cannot be read or parsed: coev_tls_config_error_text says why). Before
 * the config's first connection.
 */
COEV_API int coev_tls_config_ca(coev_tls_config_t *cfg, const char *cafile,
				const char *cadir);

/*
 * coev_tls_config_cert — the own certificate chain (PEM file, leaf first)
 * and its private key (PEM file): a server's certificate, or a client's
 * for servers that ask. Returns 0, -EINVAL, or COEV_ETLS (unreadable, or
 * the key does not match the certificate). Before the first connection.
 */
COEV_API int coev_tls_config_cert(coev_tls_config_t *cfg, const char *certfile,
				  const char *keyfile);

/*
 * coev_tls_config_sni_cert — for a server: serve certfile/keyfile to
 * clients whose SNI names name (compared without regard to case); other
 * clients get the certificate of coev_tls_config_cert. Up to
 * COEV_TLS_SNI_MAX names. Returns 0, -EINVAL, -ENOSPC (too many names),
 * -ENOMEM, COEV_ETLS (as coev_tls_config_cert). Before the first
 * connection.
 */
#define COEV_TLS_SNI_MAX 16
COEV_API int coev_tls_config_sni_cert(coev_tls_config_t *cfg, const char *name,
				      const char *certfile,
				      const char *keyfile);

/*
 * coev_tls_config_alpn — the ALPN protocols, comma-separated in order of
 * preference ("h2,http/1.1"): a client offers them, a server picks the
 * first of its own list the client offers (and goes on without ALPN when
 * none matches). Returns 0, -EINVAL (empty, or a name longer than 255
 * bytes), -ENOMEM. Before the first connection.
 */
COEV_API int coev_tls_config_alpn(coev_tls_config_t *cfg, const char *protos);

/*
 * coev_tls_config_insecure_no_verify — turn certificate and host-name
 * verification OFF: a client then talks to anyone, including an attacker
 * in the middle. For tests against throwaway certificates only. Returns
 * 0. Before the first connection.
 */
COEV_API int coev_tls_config_insecure_no_verify(coev_tls_config_t *cfg);

/*
 * coev_tls_config_verify_clients — for a server: ask every client for a
 * certificate and refuse the handshake (COEV_ECERT on the server) when it
 * sends none or one that is not trusted: signed by the CAs of
 * coev_tls_config_ca, or else the system store's. Returns 0, -EINVAL (a
 * client config). Before the first connection.
 */
COEV_API int coev_tls_config_verify_clients(coev_tls_config_t *cfg);

/* coev_tls_config_error_text — OpenSSL's words for the config call that
 * last failed ("" if none). Valid until the next config call. */
COEV_API const char *coev_tls_config_error_text(const coev_tls_config_t *cfg);

/*
 * coev_tls_new — a connection over the connected non-blocking socket fd
 * (coev_tcp_connect's, coev_accept's), in cfg's role; no byte is sent
 * yet. For a client, host is the name the server must prove (its
 * certificate must name it; sent as SNI unless it is a numeric address,
 * which is verified against the certificate's IP addresses instead); NULL
 * only with verification off. For a server, host must be NULL. On
 * success the connection owns fd (coev_close at coev_tls_free) and holds
 * a reference on cfg; on failure the caller still owns fd. Returns 0,
 * -EINVAL, -EBADF (negative fd), -ENOMEM, COEV_ETLS. Any thread; never
 * waits; allocates.
 */
COEV_API int coev_tls_new(coev_tls_config_t *cfg, int fd, const char *host,
			  coev_tls_t **out);

/*
 * coev_tls_handshake — run the TLS handshake until it completes or the
 * deadline. Returns 0, or COEV_ECERT, COEV_EHOSTNAME, COEV_ETLS (rule 2),
 * -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO, a socket error. After a failure
 * the connection is only good for coev_tls_error_text and coev_tls_free.
 * From a task; suspends.
 */
COEV_API int coev_tls_handshake(coev_tls_t *t, coev_time_t deadline);

/*
 * coev_tls_read — up to n (> 0) decrypted bytes: a count > 0, 0 when the
 * peer ended cleanly (close_notify), or a negative code (rule 2;
 * COEV_ETLS for truncation). A read before the handshake runs it first.
 * coev_tls_write — up to n (> 0) bytes: a count > 0 or a negative code
 * (-EPIPE, COEV_ETLS, ...); see rule 4 after a timeout. From a task;
 * suspend.
 */
COEV_API ssize_t coev_tls_read(coev_tls_t *t, void *buf, size_t n,
			       coev_time_t deadline);
COEV_API ssize_t coev_tls_write(coev_tls_t *t, const void *buf, size_t n,
				coev_time_t deadline);

/*
 * coev_tls_shutdown — send close_notify: the peer reads end of stream.
 * Reading stays possible until the peer's own close_notify. Returns 0 or
 * a negative code. From a task; suspends while the socket is full.
 */
COEV_API int coev_tls_shutdown(coev_tls_t *t, coev_time_t deadline);

/* coev_tls_free — release the connection and close its fd (coev_close),
 * without sending close_notify. NULL is allowed. No task may be using it.
 * Any thread. */
COEV_API void coev_tls_free(coev_tls_t *t);

/* coev_tls_fileno — the connection's fd. */
COEV_API int coev_tls_fileno(const coev_tls_t *t);

/*
 * coev_tls_server_name — on a server, the name the client asked for with
 * SNI, or NULL when it sent none; on a client, the host given to
 * coev_tls_new. Valid while t lives, after the handshake.
 * coev_tls_alpn — the protocol ALPN agreed on, or NULL.
 * coev_tls_version — "TLSv1.3", "TLSv1.2" after the handshake.
 */
COEV_API const char *coev_tls_server_name(const coev_tls_t *t);
COEV_API const char *coev_tls_alpn(const coev_tls_t *t);
COEV_API const char *coev_tls_version(const coev_tls_t *t);

/* coev_tls_error_text — OpenSSL's words for the connection's last failure
 * (the verification error for COEV_ECERT and COEV_EHOSTNAME), "" if none.
 * Valid until the next call on t. */
COEV_API const char *coev_tls_error_text(const coev_tls_t *t);

/*
 * coev_tls_stream — a buffered stream (coev/stream.h) over t, with
 * buffers of bufsize bytes (0: the default). The handshake runs at the
 * stream's first read or write if it has not yet. On success the stream
 * owns t (coev_stream_close frees it and closes its fd) and
 * coev_stream_shutdown sends close_notify; on failure the caller still
 * owns t. Returns 0 or the errors of coev_stream_new. Any thread.
 */
COEV_API int coev_tls_stream(coev_tls_t *t, size_t bufsize,
			     coev_stream_t **out);

/*
 * coev_tls_connect — connect to host:port (coev_tcp_connect), handshake as
 * a client of cfg verifying host, and return the connection as a stream.
 * Returns 0 or the errors of coev_tcp_connect and coev_tls_handshake;
 * nothing is left open on failure (a program that logs OpenSSL's text
 * uses coev_tls_new and coev_tls_handshake, whose connection keeps it).
 * The deadline bounds the whole call. From a task; suspends.
 * coev_tls_accept — handshake as a server of cfg over the accepted
 * socket fd and return the connection as a stream, which owns fd; on
 * failure fd is closed. Returns 0 or the errors of coev_tls_handshake.
 */
COEV_API int coev_tls_connect(const char *host, unsigned port,
			      coev_tls_config_t *cfg, coev_time_t deadline,
			      coev_stream_t **out);
COEV_API int coev_tls_accept(int fd, coev_tls_config_t *cfg,
			     coev_time_t deadline, coev_stream_t **out);

#ifdef __cplusplus
}
#endif

#endif
