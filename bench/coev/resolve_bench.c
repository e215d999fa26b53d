/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/resolve_bench.c — the resolve workload: names resolved
 * through c-ares against dnsmasq on 127.0.0.1:$COEV_DNS_PORT (5353, from
 * ci/servers.sh), which answers h0..h999.coev.test from its hosts file.
 * coev's adapter and a plain c-ares peer in one program, so that they
 * share the server, the names, the clock and the latency histogram.
 *
 *   coev-resolve-bench [workers [seconds [inflight [only]]]]  (2, 3, 100)
 *
 * only: "coev", "coev-per-worker" or "ares-blocking" runs just that one.
 *
 * coev: `inflight` tasks on `workers` workers and one resolver
 * (coev/ares.h) created by the main task, as the adapter is meant to be
 * used: the worker that created it owns the channel, and the tasks on the
 * other worker hand their lookups over (the adapter's inbox and kick).
 * Each task loops: take the next name (h0..h999 round robin),
 * coev_ares_resolve it (AF_INET) and check the answer (one address,
 * 127.0.0.1, the port set).
 *
 * coev-per-worker: the same with one resolver per worker, each task using
 * the one of the worker it is on, so no lookup crosses threads: what the
 * hand-off costs, measured (a program may do this itself).
 *
 * ares-blocking: what a C program without a runtime does with c-ares: one
 * thread, one channel, `inflight` lookups kept in flight (each answer's
 * callback starts the next name), driven by poll() over ares_getsock()'s
 * sockets and ares_timeout(), then ares_process_fd. Same names, same
 * checks, same number in flight. One thread, because a channel is
 * single-threaded: the peer's best case, with no hand-off at all.
 *
 * Every channel is configured alike: the dnsmasq server only, no hosts
 * file, no search domains (COEV_ARES_NO_HOSTS | COEV_ARES_NO_SEARCH; for
 * the peer lookups "b" and ndomains 0), ARES_FLAG_STAYOPEN, single-family
 * lookups unsorted, a first timeout of TIMEOUT_MS. dnsmasq is
 * single-threaded and shares the machine's CPUs with the workers, so it
 * bounds every figure.
 *
 * Measured after a 0.3 s warm-up, for `seconds`:
 *   names_per_s     answers checked per second;
 *   p99_us, p50_us  latency of one lookup, from just before the call (or
 *                   ares_getaddrinfo) to the caller having the answer;
 *   max_us          the slowest (about TIMEOUT_MS when a datagram was
 *                   lost and c-ares sent the query again).
 * Lines, in this order:
 *   BENCH resolve coev workers=<n> names_per_s=... p99_us=... ...
 *   BENCH resolve coev-per-worker workers=<n> names_per_s=... ...
 *   BENCH resolve ares-blocking workers=1 names_per_s=... ...
 * Exits non-zero when a call fails or an answer is wrong.
 *
 * Build: cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -I. \
 *   bench/coev/resolve_bench.c build/libcoev_ares.a build/libcoev.a \
 *   -lcares -lev -lck -lpthread -lm
 */
#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coev.h"
#include "coev/ares.h"
#include "common.h"

#define NAMES 1000
#define WARMUP_NS 300000000LL
#define MAX_INFLIGHT 4096
/* c-ares' first timeout for both sides: a datagram lost under load costs
 * this, not c-ares' default 5 s. */
#define TIMEOUT_MS 1000

static char srv[64];
static int64_t measure_ns;
static int inflight;

/* ---- the latency histogram ---------------------------------------------- */

/* Log-linear: 32 sub-buckets per power of two of nanoseconds. */
#define H_SUB 32
#define H_BUCKETS (64 * H_SUB)

struct hist {
	uint64_t n[H_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < H_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return (msb - 4) * H_SUB + (unsigned)((v >> (msb - 5)) & (H_SUB - 1));
}

/* The lower bound of bucket i, in ns. */
static double hist_value(unsigned i)
{
	unsigned msb;

	if (i < H_SUB)
		return i;
	msb = i / H_SUB + 4;
	return (double)((uint64_t)(H_SUB + i % H_SUB) << (msb - 5));
}

static void hist_add(struct hist *h, int64_t ns)
{
	h->n[hist_index(ns < 0 ? 0 : (uint64_t)ns)]++;
}

/* Quantile q of the histograms together, in µs. */
static double hist_quantile(struct hist *const *hs, int nh, double q)
{
	uint64_t total = 0, seen = 0;

	for (int k = 0; k < nh; k++)
		for (unsigned i = 0; i < H_BUCKETS; i++)
			total += hs[k]->n[i];
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		for (int k = 0; k < nh; k++)
			seen += hs[k]->n[i];
		if (total && (double)seen >= q * (double)total)
			return hist_value(i) / 1e3;
	}
	return 0;
}

static void report(const char *rt, unsigned workers, uint64_t names,
		   struct hist *const *hs, int nh)
{
	printf("BENCH resolve %s workers=%u names_per_s=%.0f p99_us=%.1f "
	       "p50_us=%.1f max_us=%.1f inflight=%d\n",
	       rt, workers, (double)names * 1e9 / (double)measure_ns,
	       hist_quantile(hs, nh, 0.99), hist_quantile(hs, nh, 0.50),
	       hist_quantile(hs, nh, 1.0), inflight);
	fflush(stdout);
}

static int answer_ok(const struct sockaddr *sa, unsigned port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

	return sa->sa_family == AF_INET &&
	       in->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
	       ntohs(in->sin_port) == port;
}

/* ---- coev ----------------------------------------------------------------- */

struct coev_side {
	/* One resolver (nr 1), or one per worker (r[i] owned by worker i). */
	coev_ares_t *r[COEV_WORKERS_MAX];
	unsigned nr;
	int64_t t_start, t_end; /* the measured window */
	atomic_int next;	/* names handed out */
	atomic_int errors;
};

struct coev_task {
	struct coev_side *s;
	uint64_t names; /* answered inside the window */
	struct hist h;
};

static const coev_ares_config_t ares_cfg = {
	.servers = srv,
	.timeout_ms = TIMEOUT_MS,
	.flags = COEV_ARES_NO_HOSTS | COEV_ARES_NO_SEARCH,
};

static int resolver_task(void *arg)
{
	struct coev_task *t = arg;
	struct coev_side *s = t->s;
	struct sockaddr_storage a[2];
	char name[32];

	for (;;) {
		int64_t t0 = now_ns(), t1;
		int i = atomic_fetch_add_explicit(&s->next, 1,
						  memory_order_relaxed) %
			NAMES;
		unsigned port = 1 + (unsigned)i;
		/* Per worker: the resolver of the worker the task is on
		 * now (nothing suspends before the call uses it). */
		coev_ares_t *r =
			s->r[s->nr > 1 ? (unsigned)coev_worker_id() : 0];
		int n;

		if (t0 >= s->t_end)
			break;
		snprintf(name, sizeof name, "h%d.coev.test", i);
		n = coev_ares_resolve(r, name, AF_INET, port, a, 2,
				      COEV_FOREVER);
		t1 = now_ns();
		if (n != 1 || !answer_ok((struct sockaddr *)&a[0], port)) {
			fail(name, n < 0 ? n : -EPROTO);
			atomic_fetch_add(&s->errors, 1);
			return -1;
		}
		if (t0 >= s->t_start && t1 <= s->t_end) {
			t->names++;
			hist_add(&t->h, t1 - t0);
		}
	}
	return 0;
}

/* In a task of its own: a resolver owned by worker i, in s->r[i]. */
struct on_worker {
	struct coev_side *s;
	unsigned i;
};

static int new_on_worker(void *arg)
{
	struct on_worker *o = arg;
	int rc;

	if ((rc = coev_pin_to(o->i)) < 0)
		return fail("coev_pin_to", rc);
	rc = coev_ares_new(&ares_cfg, &o->s->r[o->i]);
	coev_unpin();
	return rc < 0 ? fail("coev_ares_new", rc) : 0;
}

/* Run the tasks, then report the figures under the runtime name rt. */
static int coev_workload(struct coev_side *s, const char *rt)
{
	struct coev_task *t = calloc((size_t)inflight, sizeof *t);
	struct hist **hs = calloc((size_t)inflight, sizeof *hs);
	coev_task_t **h = calloc((size_t)inflight, sizeof *h);
	int *res = calloc((size_t)inflight, sizeof *res);
	uint64_t names = 0;
	int rc = 0, spawned = 0;

	if (!t || !hs || !h || !res) {
		rc = fail("calloc", -ENOMEM);
		goto out;
	}
	s->t_start = now_ns() + WARMUP_NS;
	s->t_end = s->t_start + measure_ns;
	for (; spawned < inflight; spawned++) {
		t[spawned].s = s;
		hs[spawned] = &t[spawned].h;
		if ((rc = coev_spawn(resolver_task, &t[spawned], &h[spawned])) <
		    0) {
			fail("coev_spawn", rc);
			s->t_end = 0; /* the others stop */
			break;
		}
	}
	coev_gather(h, spawned, res);
	for (int i = 0; i < spawned; i++) {
		names += t[i].names;
		if (res[i] < 0)
			rc = res[i];
	}
	if (rc >= 0 && !atomic_load(&s->errors))
		report(rt, coev_rt_workers(coev_rt_current()), names, hs,
		       spawned);
	else if (rc >= 0)
		rc = -1;
out:
	free(t);
	free(hs);
	free(h);
	free(res);
	return rc;
}

/* *arg: 0 for one resolver, 1 for one per worker. */
static int coev_main(void *arg)
{
	int per_worker = *(int *)arg;
	unsigned nw = coev_rt_workers(coev_rt_current());
	struct coev_side *s = calloc(1, sizeof *s);
	int rc = 0;

	if (!s)
		return fail("calloc", -ENOMEM);
	if (!per_worker) {
		s->nr = 1;
		if ((rc = coev_ares_new(&ares_cfg, &s->r[0])) < 0) {
			free(s);
			return fail("coev_ares_new", rc);
		}
	} else {
		for (s->nr = 0; s->nr < nw; s->nr++) {
			struct on_worker o = {s, s->nr};
			coev_task_t *t;
			int res = -1;

			if ((rc = coev_spawn(new_on_worker, &o, &t)) < 0 ||
			    (rc = coev_join(t, &res)) < 0 || (rc = res) < 0)
				break;
		}
	}
	if (rc >= 0)
		rc = coev_workload(s, per_worker ? "coev-per-worker" : "coev");
	for (unsigned i = 0; i < s->nr; i++)
		coev_ares_free(s->r[i]);
	free(s);
	return rc < 0 ? rc : 0;
}

/* ---- ares-blocking ------------------------------------------------------- */

struct blk_side {
	ares_channel ch;
	int64_t t_start, t_end;
	int next;
	int pending;
	int errors;
	uint64_t names;
	struct hist h;
};

struct blk_query {
	struct blk_side *s;
	int64_t t0;
	unsigned port;
	char name[32];
};

static void blk_start(struct blk_side *s, struct blk_query *q);

static void blk_answer(void *arg, int status, int timeouts,
		       struct ares_addrinfo *ai)
{
	struct blk_query *q = arg;
	struct blk_side *s = q->s;
	int64_t t1 = now_ns();
	struct ares_addrinfo_node *nd = ai ? ai->nodes : NULL;

	(void)timeouts;
	s->pending--;
	if (status != ARES_SUCCESS || !nd || nd->ai_next ||
	    !answer_ok(nd->ai_addr, q->port)) {
		fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name,
			q->name, ares_strerror(status));
		s->errors++;
	} else if (q->t0 >= s->t_start && t1 <= s->t_end) {
		s->names++;
		hist_add(&s->h, t1 - q->t0);
	}
	if (ai)
		ares_freeaddrinfo(ai);
	if (s->errors || t1 >= s->t_end) {
		free(q);
		return;
	}
	blk_start(s, q);
}

static void blk_start(struct blk_side *s, struct blk_query *q)
{
	struct ares_addrinfo_hints hints = {
		.ai_family = AF_INET,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = ARES_AI_NOSORT,
	};
	int i = s->next++ % NAMES;

	/* No service: c-ares would look a port up in /etc/services (a
	 * file read per lookup); the adapter sets the port itself. */
	q->port = 0;
	snprintf(q->name, sizeof q->name, "h%d.coev.test", i);
	q->t0 = now_ns();
	s->pending++;
	ares_getaddrinfo(s->ch, q->name, NULL, &hints, blk_answer, q);
}

static int blk_run(void)
{
	struct ares_options o = {
		.flags = ARES_FLAG_STAYOPEN | ARES_FLAG_NOSEARCH,
		.timeout = TIMEOUT_MS,
		.lookups = "b",
		.ndomains = 0,
	};
	struct blk_side *s = calloc(1, sizeof *s);
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pf[ARES_GETSOCK_MAXNUM];
	struct hist *hs[1];
	int st, rc = 0;

	if (!s)
		return fail("calloc", -ENOMEM);
	if ((st = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS ||
	    (st = ares_init_options(
		     &s->ch, &o,
		     ARES_OPT_FLAGS | ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS |
			     ARES_OPT_TIMEOUTMS)) != ARES_SUCCESS) {
		fprintf(stderr, "ares init: %s\n", ares_strerror(st));
		free(s);
		return -1;
	}
	if ((st = ares_set_servers_ports_csv(s->ch, srv)) != ARES_SUCCESS) {
		fprintf(stderr, "ares servers: %s\n", ares_strerror(st));
		rc = -1;
		goto out;
	}
	s->t_start = now_ns() + WARMUP_NS;
	s->t_end = s->t_start + measure_ns;
	for (int i = 0; i < inflight; i++) {
		struct blk_query *q = calloc(1, sizeof *q);

		if (!q) {
			rc = fail("calloc", -ENOMEM);
			goto out;
		}
		q->s = s;
		blk_start(s, q);
	}
	while (s->pending > 0) {
		struct timeval tv, *t = ares_timeout(s->ch, NULL, &tv);
		int bits = ares_getsock(s->ch, socks, ARES_GETSOCK_MAXNUM);
		int n = 0,
		    ms = t ? (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000) : -1;

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			if (ARES_GETSOCK_READABLE(bits, i))
				ev |= POLLIN;
			if (ARES_GETSOCK_WRITABLE(bits, i))
				ev |= POLLOUT;
			if (ev)
				pf[n++] = (struct pollfd){socks[i], ev, 0};
		}
		if (poll(pf, (nfds_t)n, ms) == 0) {
			ares_process_fd(s->ch, ARES_SOCKET_BAD,
					ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (!pf[i].revents)
				continue;
			ares_process_fd(
				s->ch,
				pf[i].revents & (POLLIN | POLLERR | POLLHUP)
					? pf[i].fd
					: ARES_SOCKET_BAD,
				pf[i].revents & POLLOUT ? pf[i].fd
							: ARES_SOCKET_BAD);
		}
	}
	if (s->errors)
		rc = -1;
	else {
		hs[0] = &s->h;
		report("ares-blocking", 1, s->names, hs, 1);
	}
out:
	ares_destroy(s->ch);
	free(s);
	return rc;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const char *port = getenv("COEV_DNS_PORT");
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	const char *only = argc > 4 ? argv[4] : NULL;
	coev_config_t cfg;
	int rc;

	inflight = argc > 3 ? atoi(argv[3]) : 100;
	if (seconds <= 0 || inflight < 1 || inflight > MAX_INFLIGHT) {
		fprintf(stderr,
			"usage: %s [workers [seconds [inflight (1..%d) "
			"[only]]]]\n",
			argv[0], MAX_INFLIGHT);
		return 2;
	}
	if ((rc = bench_config(&cfg, argc > 1 ? argv[1] : "2")) != 0)
		return rc;
	measure_ns = (int64_t)(seconds * 1e9);
	snprintf(srv, sizeof srv, "127.0.0.1:%s",
		 port && *port ? port : "5353");
	for (int per_worker = 0; per_worker < 2; per_worker++) {
		const char *rt = per_worker ? "coev-per-worker" : "coev";

		if (only && strcmp(only, rt) != 0)
			continue;
		if ((rc = coev_run(coev_main, &per_worker, &cfg)) != 0)
			return 1;
	}
	if (!only || strcmp(only, "ares-blocking") == 0)
		if (blk_run() < 0)
			return 1;
	return 0;
}
