/* SPDX-License-Identifier: MIT */
/*
 * coev/ares.h — asynchronous DNS for tasks through c-ares: resolve names
 * without a thread per lookup, and make c-ares coev's resolver for
 * coev_tcp_connect.
 *
 *     coev_ares_t *r;
 *     coev_ares_config_t cfg = {.servers = "127.0.0.1:5353"};
 *     struct sockaddr_storage a[4];
 *
 *     coev_ares_new(&cfg, &r);                        // in a task
 *     n = coev_ares_resolve(r, "www.example.org", AF_UNSPEC, 443, a, 4,
 *                           coev_deadline(COEV_SEC(2)));
 *     coev_set_resolver(coev_ares_resolver, r);       // connect by name
 *     fd = coev_tcp_connect("www.example.org", 443, dl);
 *     coev_set_resolver(NULL, NULL);
 *     coev_ares_free(r);
 *
 * Rules:
 *  1. A resolver is one c-ares channel. It belongs to the worker whose task
 *     created it (the owner): c-ares runs only on that worker's thread, its
 *     sockets and its one timer on that worker's loop. Tasks on any worker
 *     of the runtime (and plain threads) may resolve through it; lookups
 *     from elsewhere are handed to the owner. Many lookups run at once on
 *     one channel; use one resolver per worker when one worker's share of
 *     the DNS traffic is too much.
 *  2. Addresses come back as struct sockaddr_storage (a sockaddr_in or
 *     sockaddr_in6 inside) with the port set, ready for connect().
 *  3. Nothing waits for DNS on a worker's thread except the calling task.
 *     A lookup that gives up (deadline, cancellation) leaves its query to
 *     c-ares, which ends it at its own timeout; the late answer is dropped.
 *  4. Free the resolver before its runtime stops, and after every call
 *     that uses it has at least reached its wait (lookups still in flight
 *     then end with -ECANCELED).
 */
#ifndef COEV_ARES_H
#define COEV_ARES_H

#include <sys/socket.h>

#include "error.h"
#include "io.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_ares coev_ares_t;

/* Flags of coev_ares_config_t. */
#define COEV_ARES_NO_HOSTS 1u  /* skip /etc/hosts: ask the servers only */
#define COEV_ARES_NO_SEARCH 2u /* no search domains: names are absolute */
#define COEV_ARES_TCP 4u       /* ask over TCP rather than UDP */

typedef struct coev_ares_config {
	/* Servers as "host[:port],..." ("127.0.0.1:5353,[::1]:53"); NULL
	 * for those of /etc/resolv.conf. */
	const char *servers;
	/* First try's timeout per server in ms (c-ares doubles it on each
	 * round over the servers); 0: c-ares' default (5000). */
	int timeout_ms;
	/* Rounds over the servers before a query fails with -ETIMEDOUT;
	 * 0: c-ares' default (4). */
	int tries;
	/* COEV_ARES_*. By default names are looked up as getaddrinfo()
	 * does: /etc/hosts first (so "localhost" resolves; a small file
	 * read on the owner's thread per lookup), then the servers over
	 * UDP, trying resolv.conf's search domains for a failing name. */
	unsigned flags;
} coev_ares_config_t;

/*
 * coev_ares_new — a resolver owned by the calling task's worker. cfg: NULL
 * for the defaults; copied, not kept. Reads /etc/resolv.conf (and with
 * servers NULL takes its servers from there). Returns 0 and the resolver
 * in *out, or COEV_ENOTCORO (outside a task), -EINVAL (NULL out, a
 * negative timeout or tries, unknown flags, a malformed servers string),
 * -ENOMEM, -EIO (c-ares could not read its configuration). From a task;
 * never suspends; allocates.
 */
COEV_API int coev_ares_new(const coev_ares_config_t *cfg, coev_ares_t **out);

/*
 * coev_ares_resolve — look name up: AF_INET (A records), AF_INET6 (AAAA)
 * or AF_UNSPEC (both, sorted by RFC 6724 as getaddrinfo does). Stores up
 * to max addresses, each with port set, in addrs[] and returns how many
 * (> 0). Numeric names ("127.0.0.1", "::1") answer at once. Errors:
 * COEV_ENONAME (no such name: NXDOMAIN), COEV_ENOADDR (no address of
 * that family: no data), -ETIMEDOUT (the
 * deadline, or no server answered within c-ares' timeouts), -ECANCELED
 * (the caller was cancelled, or the resolver freed meanwhile), -EAGAIN
 * (the server failed or refused: SERVFAIL, REFUSED), -ECONNREFUSED (no
 * server could be reached), -EPROTO (a malformed answer), -ENOMEM,
 * -EINVAL (NULL r, name or addrs, max <= 0, port > 65535, another family,
 * a malformed name), -ESHUTDOWN (the runtime is stopping), COEV_ENOTCORO
 * (a worker's thread outside a task: a loop callback). deadline is
 * absolute; COEV_FOREVER leaves it to c-ares' timeouts. From a task on
 * any worker of r's runtime, or a plain thread (which blocks); suspends;
 * allocates. addrs is written only when the call returns a count.
 */
COEV_API int coev_ares_resolve(coev_ares_t *r, const char *name, int family,
			       unsigned port, struct sockaddr_storage *addrs,
			       int max, coev_time_t deadline);

/*
 * coev_ares_resolver — coev_ares_resolve(arg, host, AF_UNSPEC, ...): a
 * coev_resolver_fn (coev/io.h), so that
 *     coev_set_resolver(coev_ares_resolver, r);
 * makes coev_tcp_connect resolve names through r. Restore the default
 * (coev_set_resolver(NULL, NULL)) before freeing r.
 */
COEV_API int coev_ares_resolver(void *arg, const char *host, unsigned port,
				struct sockaddr_storage *addrs, int max,
				coev_time_t deadline);

/*
 * coev_ares_free_dl — end every lookup in flight with -ECANCELED, close
 * the channel's sockets and free r. From a task (any worker of r's
 * runtime; it waits, unaffected by cancellation, while the owner does the
 * work) or the owner's thread; a plain thread blocks.
 * Returns 0 once r is freed, or -ETIMEDOUT when the owner has not done it
 * by the deadline (a long task holds its worker): it still does, when it
 * next runs between tasks, and r is no longer the caller's either way
 * (should the runtime stop first, r is leaked); -EINVAL for NULL. Aborts
 * when r's runtime no longer runs its owner (freed too late). Suspends.
 * coev_ares_free — coev_ares_free_dl with COEV_FOREVER; NULL is ignored.
 */
COEV_API int coev_ares_free_dl(coev_ares_t *r, coev_time_t deadline);
COEV_API void coev_ares_free(coev_ares_t *r);

#ifdef __cplusplus
}
#endif

#endif
