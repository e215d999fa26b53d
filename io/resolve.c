/* SPDX-License-Identifier: MIT */
/*
 * io/resolve.c — names to addresses: coev_resolve and coev_set_resolver
 * (coev/io.h), which coev_tcp_connect (io/socket.c) and the adapters
 * connect with.
 *
 * Names are looked up with getaddrinfo on the blocking pool, unless
 * coev_set_resolver chose another resolver. getaddrinfo cannot be
 * interrupted and may take seconds (a DNS server that does not answer),
 * yet the caller's deadline must bound the call: the lookup is an
 * abandonable job (coev__blocking_abandonable, sched/pool.c) whose record,
 * name and answer are on the heap, so a caller that gives up returns at
 * once and the lookup frees its answer when it ends. Rejected:
 * coev_blocking with the record in the caller's frame (the caller must
 * wait for a running lookup: a 100 ms connect took 2 s), and a thread per
 * lookup detached from the pool (unbounded threads, and nothing for
 * coev_rt_free to wait for).
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/internal.h"
#include "sched/internal.h"

/* A lookup on the blocking pool: on the heap with its own copy of the
 * name, since a caller that gives up (deadline, cancel) leaves it running
 * (coev__blocking_abandonable); resolve_free frees it and its answer. */
struct resolve {
	const char *host; /* name[] */
	char port[8];
	struct addrinfo *res;
	int r;
	char name[];
};

/* getaddrinfo's answer as a coev code: lookups have codes of their own
 * (COEV_ENONAME, COEV_ENOADDR), as the c-ares adapter's; a server that
 * failed or refused (EAI_AGAIN, EAI_FAIL) is -EAGAIN there too. */
static int eai_err(int r)
{
	switch (r) {
	case 0: return 0;
	case EAI_NONAME: return COEV_ENONAME;
	case EAI_NODATA:
	case EAI_ADDRFAMILY: return COEV_ENOADDR;
	case EAI_AGAIN:
	case EAI_FAIL: return -EAGAIN;
	case EAI_MEMORY: return -ENOMEM;
	case EAI_SYSTEM: return errno ? -errno : -EIO;
	case EAI_SERVICE:
	case EAI_FAMILY:
	case EAI_SOCKTYPE:
	case EAI_BADFLAGS: return -EINVAL;
	default: return -EIO;
	}
}

static int do_resolve(void *arg)
{
	struct resolve *q = arg;
	struct addrinfo hints;
	int r;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	r = getaddrinfo(q->host, q->port, &hints, &q->res);
	q->r = eai_err(r);
	return 0;
}

static void resolve_free(void *arg)
{
	struct resolve *q = arg;

	if (q->res)
		freeaddrinfo(q->res);
	free(q);
}

/* The resolver set by coev_set_resolver, or NULL for getaddrinfo(). */
static _Atomic(coev_resolver_fn) resolver_fn;
static void *_Atomic resolver_arg;

void coev_set_resolver(coev_resolver_fn fn, void *arg)
{
	atomic_store_explicit(&resolver_arg, arg, memory_order_relaxed);
	/* Release: pairs with the acquire load of resolver_fn in
	 * coev_resolve: a lookup that sees fn sees the arg stored with it
	 * (or a later one, when another call races with the lookup). */
	atomic_store_explicit(&resolver_fn, fn, memory_order_release);
}

int coev_resolve(const char *host, unsigned port,
		 struct sockaddr_storage *addrs, int max, coev_time_t deadline)
{
	coev_resolver_fn fn;
	struct resolve *q;
	size_t hlen;
	socklen_t len;
	int n = 0, r;

	if (!host || !addrs || max <= 0 || port > 65535)
		return -EINVAL;
	if ((r = coev__io_enter()) != 0)
		return r;
	if (coev__numeric_addr(host, port, &addrs[0], &len) == 0)
		return 1;
	/* Acquire: pairs with the release store in coev_set_resolver. */
	fn = atomic_load_explicit(&resolver_fn, memory_order_acquire);
	if (fn)
		return fn(atomic_load_explicit(&resolver_arg,
					       memory_order_relaxed),
			  host, port, addrs, max, deadline);
	hlen = strlen(host) + 1;
	if (!(q = malloc(sizeof *q + hlen)))
		return -ENOMEM;
	memcpy(q->name, host, hlen);
	q->host = q->name;
	q->res = NULL;
	snprintf(q->port, sizeof q->port, "%u", port);
	/* The deadline bounds the call, not the lookup: a caller that gives
	 * up leaves a running getaddrinfo to end on its own. */
	if ((r = coev__blocking_abandonable(do_resolve, q, resolve_free,
					    deadline, NULL)) < 0)
		return r;
	for (struct addrinfo *ai = q->res; ai && n < max && q->r == 0;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof addrs[n])
			continue;
		memset(&addrs[n], 0, sizeof addrs[n]);
		memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
		n++;
	}
	r = q->r;
	resolve_free(q);
	return r < 0 ? r : n ? n : COEV_ENOADDR;
}
