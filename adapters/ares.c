/* SPDX-License-Identifier: MIT */
/*
 * adapters/ares.c — c-ares driven by a worker's loop (coev/ares.h): a
 * shape (b) adapter of coev/bridge.h.
 *
 * Driving. A resolver is one c-ares channel plus one coev_sockset_t on the
 * owner's loop. c-ares' sock_state_cb says which of its sockets it wants
 * to read or write; each call goes to coev_sockset_watch. When a
 * socket is ready, or the set's timer fires, the set's callback calls
 * ares_process_fd (ARES_SOCKET_BAD for both fds on the timer, which makes
 * c-ares only expire queries). After every entry into c-ares (a lookup
 * started, a socket or timer processed) the timer is set from
 * ares_timeout: the only moments c-ares' next deadline can change.
 * ARES_FLAG_STAYOPEN keeps the UDP socket (and its watch) open between
 * bursts instead of closing and reopening it whenever no query is pending.
 *
 * Answers. Each lookup has a future (coev/future.h) with one reference for
 * the waiter and one for c-ares' callback. The callback copies the
 * addresses (the port set, at most the caller's max) into a fresh array
 * and completes the future with the count and the array as its value; the
 * waiter copies them out. The callback never writes the caller's buffer:
 * a waiter that gave up (deadline, cancel: coev_future_await cancels the
 * future) has its buffer back at once, and the late answer is refused by
 * the future and freed. c-ares has no per-query cancel, so a given-up
 * query runs to its end in c-ares; ares_destroy ends all of them
 * (ARES_EDESTRUCTION, reported as -ECANCELED).
 *
 * Affinity. c-ares is not thread-safe per channel, so it runs only on the
 * owner's thread. A task already there (and not in a loop callback) calls
 * c-ares itself. Others push the lookup onto the resolver's inbox, a
 * lock-free stack, and the push that finds it empty posts one kick with
 * coev_submit; the kick, on the owner's thread between tasks, takes the
 * whole inbox and starts every lookup in it, then sets the timer once. So
 * a burst of lookups from another worker costs one post, not one each.
 * Rejected: coev_pin_to(owner) in the caller — it moves the calling task
 * onto the owner for good (pinned tasks are never stolen back), so a
 * program that resolves from everywhere would pile its tasks onto one
 * worker; and a coev_submit per lookup — a post, a future and a callback
 * record for each name, where the inbox needs one per burst.
 *
 * Lifetime. refs counts the owner's reference plus one per kick posted
 * and not yet finished; the last drop frees the struct. A kick ends in
 * kick_done, the submit future's callback, which runs after the kick
 * (refs dropped there) or instead of it when the runtime drops the post
 * at shutdown (then the inbox's lookups fail with -ESHUTDOWN). Freeing
 * runs on the owner: it marks the resolver closed, fails the inbox with
 * -ECANCELED, destroys the channel (its callbacks fail every lookup in
 * flight) and the socket set, and drops the owner's reference; a kick
 * still queued finds the resolver closed and touches nothing but refs.
 *
 * Configuration. Explicit servers replace resolv.conf's
 * (ares_set_servers_ports_csv, which takes ports). Lookups default to
 * "fb" (hosts file, then DNS) with resolv.conf's search list, as
 * getaddrinfo() does, because this resolver can take over
 * coev_tcp_connect; both can be switched off. Single-family lookups ask
 * c-ares not to sort (ARES_AI_NOSORT): the RFC 6724 sort opens and
 * connects a UDP socket per address to learn source addresses, which only
 * pays off when choosing between IPv6 and IPv4.
 */
#include <ares.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "coev.h"
#include "coev/ares.h"

/* A kick's result when it ran (anything else: the post was dropped). */
#define KICK_RAN 1

struct query {
	struct query *next; /* in the inbox */
	coev_future_t *f;   /* c-ares' reference */
	int family;
	int max;
	unsigned port;
	char name[]; /* a copy: the caller's string goes when it gives up */
};

struct coev_ares {
	/* Set by coev_ares_new, read-only afterwards (any thread). */
	coev_rt_t *rt;
	unsigned owner;		/* worker index within rt */
	pthread_t owner_thread; /* that worker's thread */
	/* Owner's thread only. */
	ares_channel ch;
	coev_sockset_t *ss;
	bool closed; /* coev_ares_free ran: ch and ss are gone */
	/* Any thread. */
	_Atomic(struct query *) inbox; /* lookups for the owner to start */
	atomic_int refs; /* the owner's + one per kick in flight */
};

static _Noreturn void die(const char *msg)
{
	fprintf(stderr, "coev: %s\n", msg);
	abort();
}

static bool on_owner(const coev_ares_t *r)
{
	return pthread_equal(pthread_self(), r->owner_thread);
}

static void ares_unref(coev_ares_t *r)
{
	/* Acq_rel: the last dropper sees every other holder's writes. */
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		free(r);
}

/* c-ares' status as a coev error code. */
static int status_err(int st)
{
	switch (st) {
	case ARES_ENOTFOUND:
	case ARES_ENONAME: return COEV_ENONAME;
	case ARES_ENODATA: return COEV_ENOADDR;
	case ARES_ETIMEOUT: return -ETIMEDOUT;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION: return -ECANCELED;
	case ARES_ENOMEM: return -ENOMEM;
	case ARES_ESERVFAIL:
	case ARES_EREFUSED: return -EAGAIN;
	case ARES_ECONNREFUSED: return -ECONNREFUSED;
	case ARES_EFORMERR:
	case ARES_ENOTIMP:
	case ARES_EBADRESP: return -EPROTO;
	case ARES_EBADNAME:
	case ARES_EBADFAMILY:
	case ARES_EBADFLAGS:
	case ARES_EBADHINTS:
	case ARES_EBADQUERY:
	case ARES_EBADSTR:
	case ARES_ESERVICE: return -EINVAL;
	default: return -EIO;
	}
}

/* End q with res (and value, a malloc'ed array, or NULL) and free it. */
static void query_end(struct query *q, int res, void *value)
{
	/* Refused (the waiter gave up): the value stays ours. */
	if (coev_future_complete(q->f, res, value, free) < 0)
		free(value);
	coev_future_release(q->f);
	free(q);
}

/* --- the owner's side: c-ares and the loop ------------------------------ */

/* Set the socket set's timer to c-ares' next deadline. */
static void arm_timer(coev_ares_t *r)
{
	struct timeval tv, *t = ares_timeout(r->ch, NULL, &tv);
	coev_time_t dl = COEV_FOREVER;

	if (t)
		dl = coev_now() + COEV_SEC(t->tv_sec) + COEV_USEC(t->tv_usec);
	coev_sockset_timer(r->ss, dl);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	coev_ares_t *r = data;
	unsigned ev = (readable ? COEV_READ : 0) | (writable ? COEV_WRITE : 0);

	/* A failure (no memory) leaves the socket unwatched: its queries
	 * then end at c-ares' timeout, which the timer still drives. */
	(void)coev_sockset_watch(r->ss, fd, ev);
}

static void on_ready(coev_sockset_t *ss, int fd, unsigned events, void *arg)
{
	coev_ares_t *r = arg;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	(void)ss;
	if (fd != COEV_SOCKSET_TIMER) {
		if (events & COEV_READ)
			rfd = fd;
		if (events & COEV_WRITE)
			wfd = fd;
	}
	ares_process_fd(r->ch, rfd, wfd);
	arm_timer(r);
}

/* c-ares' answer: copy it out, complete the future. */
static void on_addrinfo(void *arg, int status, int timeouts,
			struct ares_addrinfo *ai)
{
	struct query *q = arg;
	struct sockaddr_storage *a = NULL;
	struct ares_addrinfo_node *nd;
	int n = 0, res;

	(void)timeouts;
	if (status != ARES_SUCCESS) {
		res = status_err(status);
		goto out;
	}
	for (nd = ai ? ai->nodes : NULL; nd && n < q->max; nd = nd->ai_next)
		if (nd->ai_family == AF_INET || nd->ai_family == AF_INET6)
			n++;
	if (n == 0) {
		res = COEV_ENOADDR;
		goto out;
	}
	if (!(a = calloc((size_t)n, sizeof *a))) {
		res = -ENOMEM;
		goto out;
	}
	n = 0;
	for (nd = ai->nodes; nd && n < q->max; nd = nd->ai_next) {
		if (nd->ai_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&a[n++];

			memcpy(in, nd->ai_addr, sizeof *in);
			in->sin_port = htons((uint16_t)q->port);
		} else if (nd->ai_family == AF_INET6) {
			struct sockaddr_in6 *in6 =
				(struct sockaddr_in6 *)&a[n++];

			memcpy(in6, nd->ai_addr, sizeof *in6);
			in6->sin6_port = htons((uint16_t)q->port);
		}
	}
	res = n;
out:
	if (ai)
		ares_freeaddrinfo(ai);
	query_end(q, res, a);
}

/* Start q in c-ares (the caller sets the timer afterwards). */
static void query_start(coev_ares_t *r, struct query *q)
{
	struct ares_addrinfo_hints hints;

	if (r->closed) {
		query_end(q, -ECANCELED, NULL);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = q->family;
	hints.ai_socktype = SOCK_STREAM;
	if (q->family != AF_UNSPEC)
		hints.ai_flags = ARES_AI_NOSORT;
	/* The callback may run before this returns (numeric names). */
	ares_getaddrinfo(r->ch, q->name, NULL, &hints, on_addrinfo, q);
}

/* The inbox's lookups, oldest first. */
static struct query *inbox_take(coev_ares_t *r)
{
	/* Acquire: pairs with the push's release; the queries' contents. */
	struct query *q =
		atomic_exchange_explicit(&r->inbox, NULL, memory_order_acquire);
	struct query *fifo = NULL, *next;

	for (; q; q = next) {
		next = q->next;
		q->next = fifo;
		fifo = q;
	}
	return fifo;
}

/* End every lookup of the inbox with res, without c-ares (any thread). */
static void inbox_fail(coev_ares_t *r, int res)
{
	struct query *q, *next;

	for (q = inbox_take(r); q; q = next) {
		next = q->next;
		query_end(q, res, NULL);
	}
}

/* The kick, on the owner's thread: start the inbox's lookups. */
static int kick_run(void *arg)
{
	coev_ares_t *r = arg;
	struct query *q, *next;

	if (r->closed) {
		/* Nothing should be here (see coev_ares_free's contract). */
		inbox_fail(r, -ECANCELED);
		return KICK_RAN;
	}
	for (q = inbox_take(r); q; q = next) {
		next = q->next;
		query_start(r, q);
	}
	arm_timer(r);
	return KICK_RAN;
}

/* After the kick ran, or instead of it (the post was dropped). */
static void kick_done(coev_future_t *sf, void *arg)
{
	coev_ares_t *r = arg;
	int res = -ESHUTDOWN;

	coev_future_poll(sf, &res);
	if (res != KICK_RAN)
		inbox_fail(r, res < 0 ? res : -ESHUTDOWN);
	ares_unref(r);
}

/* Hand q to the owner. Returns 0, or an error after ending q with it. */
static int query_post(coev_ares_t *r, struct query *q)
{
	struct query *head =
		atomic_load_explicit(&r->inbox, memory_order_relaxed);
	coev_future_t *sf;
	int rc;

	/* Release: q's contents before the owner takes it (inbox_take). */
	do
		q->next = head;
	while (!atomic_compare_exchange_weak_explicit(&r->inbox, &head, q,
						      memory_order_release,
						      memory_order_relaxed));
	if (head)
		return 0; /* the kick that took head's push will take q */
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	if ((rc = coev_submit(r->rt, r->owner, kick_run, r, &sf)) < 0) {
		/* No kick: fail what it would have started (q, and whatever
		 * others pushed behind it meanwhile). */
		inbox_fail(r, rc);
		ares_unref(r);
		return rc;
	}
	/* Without memory for kick_done the kick still runs; only a drop at
	 * shutdown would then go unnoticed (a leak, never a crash). */
	coev_future_on_done(sf, kick_done, r);
	coev_future_release(sf);
	return 0;
}

/* --- the public calls ----------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;

/* ares_library_init is not thread-safe: once per process, never undone. */
static void lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static int channel_init(coev_ares_t *r, const coev_ares_config_t *cfg)
{
	struct ares_options o;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_LOOKUPS;
	int st;

	memset(&o, 0, sizeof o);
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = r;
	o.flags = ARES_FLAG_STAYOPEN;
	if (cfg->flags & COEV_ARES_TCP)
		o.flags |= ARES_FLAG_USEVC;
	o.lookups = (cfg->flags & COEV_ARES_NO_HOSTS) ? "b" : "fb";
	if (cfg->flags & COEV_ARES_NO_SEARCH) {
		/* ndomains 0: resolv.conf's search list is not read. */
		o.flags |= ARES_FLAG_NOSEARCH;
		o.domains = NULL;
		o.ndomains = 0;
		mask |= ARES_OPT_DOMAINS;
	}
	if (cfg->timeout_ms > 0) {
		o.timeout = cfg->timeout_ms;
		mask |= ARES_OPT_TIMEOUTMS;
	}
	if (cfg->tries > 0) {
		o.tries = cfg->tries;
		mask |= ARES_OPT_TRIES;
	}
	if ((st = ares_init_options(&r->ch, &o, mask)) != ARES_SUCCESS)
		return st == ARES_ENOMEM ? -ENOMEM : -EIO;
	if (cfg->servers && (st = ares_set_servers_ports_csv(
				     r->ch, cfg->servers)) != ARES_SUCCESS) {
		ares_destroy(r->ch);
		return st == ARES_ENOMEM ? -ENOMEM : -EINVAL;
	}
	return 0;
}

int coev_ares_new(const coev_ares_config_t *cfg, coev_ares_t **out)
{
	static const coev_ares_config_t defaults;
	coev_ares_t *r;
	int rc;

	if (!cfg)
		cfg = &defaults;
	if (!out || cfg->timeout_ms < 0 || cfg->tries < 0 ||
	    (cfg->flags &
	     ~(COEV_ARES_NO_HOSTS | COEV_ARES_NO_SEARCH | COEV_ARES_TCP)))
		return -EINVAL;
	if (!coev_self())
		return COEV_ENOTCORO;
	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS)
		return lib_status == ARES_ENOMEM ? -ENOMEM : -EIO;
	if (!(r = calloc(1, sizeof *r)))
		return -ENOMEM;
	/* No suspension from here on: the owner is this worker. */
	r->rt = coev_rt_current();
	r->owner = (unsigned)coev_worker_id();
	r->owner_thread = pthread_self();
	atomic_init(&r->inbox, NULL);
	atomic_init(&r->refs, 1);
	if ((rc = coev_sockset_new(on_ready, r, &r->ss)) < 0) {
		free(r);
		return rc;
	}
	if ((rc = channel_init(r, cfg)) < 0) {
		coev_sockset_free(r->ss);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int coev_ares_resolve(coev_ares_t *r, const char *name, int family,
		      unsigned port, struct sockaddr_storage *addrs, int max,
		      coev_time_t deadline)
{
	coev_future_t *f;
	struct query *q;
	size_t len;
	int rc, res;

	if (!r || !name || !addrs || max <= 0 || port > 65535 ||
	    (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
		return -EINVAL;
	/* A loop callback could not wait for the answer. */
	if (coev_worker_id() >= 0 && !coev_self())
		return COEV_ENOTCORO;
	len = strlen(name);
	if (!(q = malloc(sizeof *q + len + 1)))
		return -ENOMEM;
	if ((rc = coev_future_new(&f)) < 0) {
		free(q);
		return rc;
	}
	memcpy(q->name, name, len + 1);
	q->f = coev_future_ref(f);
	q->family = family;
	q->max = max;
	q->port = port;
	if (on_owner(r)) {
		query_start(r, q);
		arm_timer(r);
	} else {
		/* On failure q ended with the error, which f now holds. */
		query_post(r, q);
	}
	rc = coev_future_await_dl(f, deadline, &res);
	if (rc == 0 && res > 0)
		memcpy(addrs, coev_future_value(f),
		       (size_t)res * sizeof *addrs);
	coev_future_release(f);
	return rc < 0 ? rc : res;
}

int coev_ares_resolver(void *arg, const char *host, unsigned port,
		       struct sockaddr_storage *addrs, int max,
		       coev_time_t deadline)
{
	return coev_ares_resolve(arg, host, AF_UNSPEC, port, addrs, max,
				 deadline);
}

/* On the owner: fail everything pending, free the channel and the set. */
static int destroy(void *arg)
{
	coev_ares_t *r = arg;

	r->closed = true;
	inbox_fail(r, -ECANCELED);
	/* Every lookup in flight ends in on_addrinfo (ARES_EDESTRUCTION);
	 * c-ares forgets its sockets through on_sock_state first. */
	ares_destroy(r->ch);
	coev_sockset_free(r->ss);
	ares_unref(r);
	return 0;
}

/* Wait until the deadline for the owner's destroy, whatever else happens
 * to the caller (r must go even from a cancelled task): 0 once it ran,
 * with its result in *res, or -ETIMEDOUT. */
static int destroy_wait(coev_future_t *f, coev_time_t deadline, int *res)
{
	int rc;

	if (!coev_self())
		return coev_future_wait_dl(f, deadline, res); /* blocks */
	coev_shield_begin();
	/* A pushed deadline ends a wait at once: yield between tries. */
	while ((rc = coev_future_wait_dl(f, deadline, res)) < 0 &&
	       coev_now() < deadline)
		coev_yield();
	coev_shield_end();
	return rc;
}

int coev_ares_free_dl(coev_ares_t *r, coev_time_t deadline)
{
	coev_future_t *f;
	int res = -ESHUTDOWN, rc;

	if (!r)
		return -EINVAL;
	if (on_owner(r)) {
		destroy(r);
		return 0;
	}
	if (coev_worker_id() >= 0 && !coev_self())
		die("coev_ares_free from a loop callback of a worker that does "
		    "not own the resolver (call it from a task)");
	if (coev_submit(r->rt, r->owner, destroy, r, &f) < 0)
		die("coev_ares_free: the resolver's runtime is stopping (free "
		    "it before the runtime ends)");
	rc = destroy_wait(f, deadline, &res);
	coev_future_release(f);
	if (rc == 0 && res != 0)
		die("coev_ares_free: the resolver's runtime stopped before its "
		    "owner could free it");
	return rc < 0 ? -ETIMEDOUT : 0;
}

void coev_ares_free(coev_ares_t *r)
{
	if (r)
		coev_ares_free_dl(r, COEV_FOREVER);
}
