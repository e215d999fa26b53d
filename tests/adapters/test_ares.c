/* SPDX-License-Identifier: MIT */
/*
 * tests/adapters/test_ares.c — the c-ares adapter (include/coev/ares.h)
 * against dnsmasq on 127.0.0.1:$COEV_DNS_PORT (default 5353; started by
 * ci/servers.sh start), which serves the zone coev.test: www -> 127.0.0.1,
 * v6 -> ::1, dual -> both, h0..h999 -> 127.0.0.1, other names NXDOMAIN.
 *
 * Answers by family (A, AAAA, both; the port set; max honoured), numeric
 * names, NXDOMAIN as COEV_ENONAME and no-data as COEV_ENOADDR (and their
 * messages), /etc/hosts for "localhost";
 * 1000 names resolved concurrently by 100 tasks on 2 workers (half on the
 * worker that does not own the channel) and each answer checked, over UDP
 * and over TCP (COEV_ARES_TCP: c-ares connects, a write event); calls
 * from a task on the other worker, from a plain thread and from a loop
 * callback (COEV_ENOTCORO); against a UDP socket that never answers: the
 * caller's deadline, c-ares' own timeout, a cancel in mid-query, and
 * freeing the resolver (from its owner and from the other worker) while
 * queries are in flight; answers arriving after their caller gave up;
 * coev_set_resolver making coev_tcp_connect resolve through c-ares, and
 * coev_set_resolver(NULL, NULL) restoring getaddrinfo(). Argument and
 * configuration errors.
 *
 * Every test runs a 2-worker runtime and checks that it leaves no fd open
 * (TU_FD_TEST). Task bodies record failures with TU_CHECK; the test thread
 * checks tu_assert_no_failures(). Times are checked only as bounds that a
 * wrong implementation would break (an answer that waited for c-ares'
 * 10 s timeout instead of the caller's 200 ms deadline), never as speed.
 */
#define TU_LOOP_CALLS 1
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>

#include "coev/ares.h"

#define NAMES 1000
#define NAME_TASKS 100
/* c-ares' timeout against the silent server where the test must never
 * reach it: the bound that shows the caller did not wait for c-ares. */
#define SILENT_TIMEOUT_MS 10000
#define LONG_WAIT COEV_MSEC(SILENT_TIMEOUT_MS / 2)

/* ---- helpers ------------------------------------------------------------ */

static char dns_servers[64];

static const char *servers(void)
{
	const char *e = getenv("COEV_DNS_PORT");

	snprintf(dns_servers, sizeof dns_servers, "127.0.0.1:%s",
		 e && *e ? e : "5353");
	return dns_servers;
}

/* In a task: a resolver for dnsmasq (or servers), names absolute. */
static coev_ares_t *resolver_for(const char *srv, int timeout_ms, int tries,
				 unsigned flags)
{
	coev_ares_config_t cfg = {
		.servers = srv,
		.timeout_ms = timeout_ms,
		.tries = tries,
		.flags = flags | COEV_ARES_NO_SEARCH,
	};
	coev_ares_t *r = NULL;
	int rc = coev_ares_new(&cfg, &r);

	TU_CHECK_EQ(rc, 0);
	return rc == 0 ? r : NULL;
}

static coev_ares_t *dns_resolver(void)
{
	return resolver_for(servers(), 0, 0, 0);
}

/* A UDP socket that never answers, and a resolver pointed at it. */
typedef struct silent {
	int fd;
	char srv[64];
} silent_t;

static int silent_open(silent_t *s)
{
	s->fd = coev_udp_bind("127.0.0.1", 0);
	TU_CHECK(s->fd >= 0);
	if (s->fd < 0)
		return -1;
	snprintf(s->srv, sizeof s->srv, "127.0.0.1:%d", coev_sock_port(s->fd));
	return 0;
}

static int is_v4(const struct sockaddr_storage *a, const char *ip,
		 unsigned port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)a;
	struct in_addr want;

	return a->ss_family == AF_INET && inet_pton(AF_INET, ip, &want) == 1 &&
	       in->sin_addr.s_addr == want.s_addr &&
	       ntohs(in->sin_port) == port;
}

static int is_v6(const struct sockaddr_storage *a, const char *ip,
		 unsigned port)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
	struct in6_addr want;

	return a->ss_family == AF_INET6 &&
	       inet_pton(AF_INET6, ip, &want) == 1 &&
	       memcmp(&in6->sin6_addr, &want, sizeof want) == 0 &&
	       ntohs(in6->sin6_port) == port;
}

static int resolve(coev_ares_t *r, const char *name, int family, unsigned port,
		   struct sockaddr_storage *a, int max)
{
	memset(a, 0xa5, (size_t)max * sizeof *a);
	return coev_ares_resolve(r, name, family, port, a, max, tu_guard());
}

/* Runs fn as the main task of a 2-worker runtime; checks it returned 0. */
static void run2(coev_fn fn, void *arg)
{
	assert_int_equal(tu_run_main(fn, arg, 2), 0);
	tu_assert_no_failures();
}

/* ---- answers ------------------------------------------------------------ */

static int main_families(void *arg)
{
	coev_ares_t *r = dns_resolver();
	struct sockaddr_storage a[4];
	int n;

	(void)arg;
	if (!r)
		return -1;
	n = resolve(r, "www.coev.test", AF_INET, 80, a, 4);
	TU_CHECK_EQ(n, 1);
	TU_CHECK(is_v4(&a[0], "127.0.0.1", 80));
	/* AF_UNSPEC: the AAAA query finds no data, the A query the
	 * address. */
	n = resolve(r, "www.coev.test", AF_UNSPEC, 8080, a, 4);
	TU_CHECK_EQ(n, 1);
	TU_CHECK(is_v4(&a[0], "127.0.0.1", 8080));

	n = resolve(r, "v6.coev.test", AF_INET6, 443, a, 4);
	TU_CHECK_EQ(n, 1);
	TU_CHECK(is_v6(&a[0], "::1", 443));
	TU_CHECK_EQ(resolve(r, "v6.coev.test", AF_INET, 443, a, 4),
		    COEV_ENOADDR);
	TU_CHECK_EQ(resolve(r, "www.coev.test", AF_INET6, 1, a, 4),
		    COEV_ENOADDR);

	n = resolve(r, "dual.coev.test", AF_UNSPEC, 7, a, 4);
	TU_CHECK_EQ(n, 2);
	if (n == 2) {
		int v4 = is_v4(&a[0], "127.0.0.1", 7) ||
			 is_v4(&a[1], "127.0.0.1", 7);
		int v6 = is_v6(&a[0], "::1", 7) || is_v6(&a[1], "::1", 7);

		TU_CHECK(v4 && v6);
	}
	/* max is honoured, and nothing beyond it is written. */
	memset(a, 0xa5, sizeof a);
	n = coev_ares_resolve(r, "dual.coev.test", AF_UNSPEC, 7, a, 1,
			      tu_guard());
	TU_CHECK_EQ(n, 1);
	TU_CHECK(is_v4(&a[0], "127.0.0.1", 7) || is_v6(&a[0], "::1", 7));
	TU_CHECK_EQ(((unsigned char *)&a[1])[0], 0xa5);
	n = resolve(r, "dual.coev.test", AF_INET6, 7, a, 4);
	TU_CHECK_EQ(n, 1);
	TU_CHECK(is_v6(&a[0], "::1", 7));
	coev_ares_free(r);
	return 0;
}

static void test_ares_families(void **state)
{
	(void)state;
	run2(main_families, NULL);
}

static int main_numeric_hosts(void *arg)
{
	coev_ares_t *r = dns_resolver(), *h;
	struct sockaddr_storage a[4];

	(void)arg;
	if (!r)
		return -1;
	/* Numeric names answer without a query. */
	TU_CHECK_EQ(resolve(r, "127.0.0.1", AF_INET, 9, a, 4), 1);
	TU_CHECK(is_v4(&a[0], "127.0.0.1", 9));
	TU_CHECK_EQ(resolve(r, "::1", AF_UNSPEC, 9, a, 4), 1);
	TU_CHECK(is_v6(&a[0], "::1", 9));
	/* The hosts file is read by default ("localhost" is in it or
	 * built in); with COEV_ARES_NO_HOSTS the servers alone answer. */
	h = resolver_for(servers(), 0, 0, 0);
	if (h) {
		TU_CHECK_EQ(resolve(h, "localhost", AF_INET, 1, a, 4), 1);
		TU_CHECK(is_v4(&a[0], "127.0.0.1", 1));
		coev_ares_free(h);
	}
	h = resolver_for(servers(), 0, 0, COEV_ARES_NO_HOSTS);
	if (h) {
		TU_CHECK(resolve(h, "localhost", AF_INET, 1, a, 4) < 0);
		TU_CHECK_EQ(resolve(h, "www.coev.test", AF_INET, 1, a, 4), 1);
		coev_ares_free(h);
	}
	coev_ares_free(r);
	return 0;
}

static void test_ares_numeric_and_hosts(void **state)
{
	(void)state;
	run2(main_numeric_hosts, NULL);
}

static int main_nxdomain(void *arg)
{
	coev_ares_t *r = dns_resolver();
	struct sockaddr_storage a[2];

	(void)arg;
	if (!r)
		return -1;
	TU_CHECK_EQ(resolve(r, "nope.coev.test", AF_INET, 1, a, 2),
		    COEV_ENONAME);
	TU_CHECK_EQ(resolve(r, "nope.coev.test", AF_INET6, 1, a, 2),
		    COEV_ENONAME);
	int n = resolve(r, "nope.coev.test", AF_UNSPEC, 1, a, 2);
	TU_CHECK_MSG(n == COEV_ENONAME &&
			     strcmp(coev_strerror(n), "name not found") == 0,
		     "%d (%s)", n, coev_strerror(n));
	TU_CHECK_EQ(resolve(r, "h1000.coev.test", AF_UNSPEC, 1, a, 2),
		    COEV_ENONAME);
	/* The buffer is not written on an error. */
	TU_CHECK_EQ(((unsigned char *)&a[0])[0], 0xa5);
	/* And the channel still answers. */
	TU_CHECK_EQ(resolve(r, "h999.coev.test", AF_INET, 1, a, 2), 1);
	coev_ares_free(r);
	return 0;
}

static void test_ares_nxdomain(void **state)
{
	(void)state;
	run2(main_nxdomain, NULL);
}

/* ---- 1000 names from 100 tasks on 2 workers ----------------------------- */

typedef struct names {
	unsigned flags; /* of the resolver */
	int ntasks;
	coev_ares_t *r;
	int owner;
	atomic_int spawned;	/* tasks started */
	atomic_int next;	/* next name to resolve */
	atomic_int ok;		/* answers checked */
	atomic_int on_owner;	/* calls made on the owner's worker */
	atomic_int off_owner;	/* calls made on the other worker */
	atomic_int seen[NAMES]; /* times each name was answered */
} names_t;

static int names_task(void *arg)
{
	names_t *s = arg;
	struct sockaddr_storage a[2];
	char name[32];
	int i;

	/* Half the tasks live on each worker for good. */
	TU_CHECK_EQ(coev_pin_to((unsigned)atomic_fetch_add(&s->spawned, 1) % 2),
		    0);
	while ((i = atomic_fetch_add(&s->next, 1)) < NAMES) {
		unsigned port = 1000 + (unsigned)i;

		snprintf(name, sizeof name, "h%d.coev.test", i);
		if (coev_worker_id() == s->owner)
			atomic_fetch_add(&s->on_owner, 1);
		else
			atomic_fetch_add(&s->off_owner, 1);
		int n = coev_ares_resolve(s->r, name,
					  i % 3 ? AF_INET : AF_UNSPEC, port, a,
					  2, tu_guard());
		TU_CHECK_MSG(n == 1, "%s: %d", name, n);
		if (n == 1 && is_v4(&a[0], "127.0.0.1", port)) {
			atomic_fetch_add(&s->ok, 1);
			atomic_fetch_add(&s->seen[i], 1);
		}
	}
	coev_unpin();
	return 0;
}

static int main_many(void *arg)
{
	names_t *s = arg;
	coev_task_t *t[NAME_TASKS];
	int res[NAME_TASKS];

	if (!(s->r = resolver_for(servers(), 0, 0, s->flags)))
		return -1;
	s->owner = coev_worker_id();
	for (int i = 0; i < s->ntasks; i++)
		TU_CHECK_EQ(coev_spawn(names_task, s, &t[i]), 0);
	coev_gather(t, s->ntasks, res);
	for (int i = 0; i < s->ntasks; i++)
		TU_CHECK_EQ(res[i], 0);
	coev_ares_free(s->r);
	return 0;
}

static void many_names(unsigned flags, int ntasks)
{
	names_t *s = calloc(1, sizeof *s);

	assert_non_null(s);
	s->flags = flags;
	s->ntasks = ntasks;
	run2(main_many, s);
	assert_int_equal(atomic_load(&s->ok), NAMES);
	for (int i = 0; i < NAMES; i++)
		assert_int_equal(atomic_load(&s->seen[i]), 1);
	/* Both paths ran: c-ares called in place, and handed to the owner. */
	assert_true(atomic_load(&s->on_owner) > 0);
	assert_true(atomic_load(&s->off_owner) > 0);
	free(s);
}

static void test_ares_many_names_concurrently(void **state)
{
	(void)state;
	many_names(0, NAME_TASKS);
}

/* Over TCP: c-ares connects (a write event), then sends and reads on one
 * connection; dnsmasq serves TCP too. */
static int main_tcp(void *arg)
{
	coev_ares_t *r = resolver_for(servers(), 0, 0, COEV_ARES_TCP);
	struct sockaddr_storage a[4];

	(void)arg;
	if (!r)
		return -1;
	TU_CHECK_EQ(resolve(r, "www.coev.test", AF_INET, 53, a, 4), 1);
	TU_CHECK(is_v4(&a[0], "127.0.0.1", 53));
	TU_CHECK_EQ(resolve(r, "dual.coev.test", AF_UNSPEC, 53, a, 4), 2);
	TU_CHECK_EQ(resolve(r, "nope.coev.test", AF_UNSPEC, 53, a, 4),
		    COEV_ENONAME);
	coev_ares_free(r);
	return 0;
}

static void test_ares_tcp(void **state)
{
	(void)state;
	run2(main_tcp, NULL);
	/* 10 lookups in flight, not 100: dnsmasq closes a TCP connection
	 * after 100 queries, and c-ares 1.18 counts each close against the
	 * tries of every query still pending on it, so with 100 pipelined
	 * some run out of tries (ECONNREFUSED) — in plain c-ares too. */
	many_names(COEV_ARES_TCP, 10);
}

/* ---- other callers --------------------------------------------------------- */

typedef struct other {
	coev_ares_t *r;
	int owner;
	int worker_after; /* where the task was after its calls */
} other_t;

static int other_task(void *arg)
{
	other_t *o = arg;
	struct sockaddr_storage a[2];
	unsigned other = o->owner == 0 ? 1 : 0;

	TU_CHECK_EQ(coev_pin_to(other), 0);
	for (int i = 0; i < 20; i++) {
		TU_CHECK_EQ(resolve(o->r, "www.coev.test", AF_INET, 5, a, 2),
			    1);
		TU_CHECK(is_v4(&a[0], "127.0.0.1", 5));
	}
	TU_CHECK_EQ(resolve(o->r, "nope.coev.test", AF_INET, 5, a, 2),
		    COEV_ENONAME);
	o->worker_after = coev_worker_id();
	coev_unpin();
	return 0;
}

static void *other_thread(void *arg)
{
	other_t *o = arg;
	struct sockaddr_storage a[2];

	TU_CHECK_EQ(coev_worker_id(), -1);
	TU_CHECK_EQ(coev_ares_resolve(o->r, "v6.coev.test", AF_INET6, 6, a, 2,
				      tu_guard()),
		    1);
	TU_CHECK(is_v6(&a[0], "::1", 6));
	return NULL;
}

static int join_thread(void *arg)
{
	return pthread_join(*(pthread_t *)arg, NULL);
}

static void loop_resolve(void *arg)
{
	other_t *o = arg;
	struct sockaddr_storage a[2];

	TU_CHECK_EQ(coev_ares_resolve(o->r, "www.coev.test", AF_INET, 5, a, 2,
				      tu_guard()),
		    COEV_ENOTCORO);
}

static int main_other_callers(void *arg)
{
	other_t o = {.r = dns_resolver()};
	coev_task_t *t;
	pthread_t th;
	int res = -1;

	(void)arg;
	if (!o.r)
		return -1;
	o.owner = coev_worker_id();
	TU_CHECK_EQ(coev_spawn(other_task, &o, &t), 0);
	TU_CHECK_EQ(coev_join(t, &res), 0);
	TU_CHECK_EQ(res, 0);
	/* The caller stayed where it was: nothing moved it to the owner. */
	TU_CHECK_EQ(o.worker_after, o.owner == 0 ? 1 : 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, other_thread, &o), 0);
	/* pthread_join blocks: on the blocking pool, not on a worker. */
	TU_CHECK_EQ(coev_blocking(join_thread, &th, COEV_FOREVER, NULL), 0);
	TU_CHECK_EQ(tu_on_loop(loop_resolve, &o), 0);
	coev_ares_free(o.r);
	return 0;
}

static void test_ares_other_callers(void **state)
{
	(void)state;
	run2(main_other_callers, NULL);
}

/* ---- a server that never answers ----------------------------------------- */

typedef struct waiter {
	coev_ares_t *r;
	const char *name;
	coev_time_t deadline;
	unsigned pin; /* worker + 1, or 0 */
	atomic_int arrived;
	int rc;
	coev_time_t ended;
} waiter_t;

static int waiter_task(void *arg)
{
	waiter_t *w = arg;
	struct sockaddr_storage a[2];

	if (w->pin)
		TU_CHECK_EQ(coev_pin_to(w->pin - 1), 0);
	atomic_store(&w->arrived, 1);
	w->rc = coev_ares_resolve(w->r, w->name, AF_INET, 1, a, 2, w->deadline);
	w->ended = coev_now();
	if (w->pin)
		coev_unpin();
	return 0;
}

static int main_deadline(void *arg)
{
	silent_t s;
	coev_ares_t *r, *quick;
	struct sockaddr_storage a[2];
	coev_time_t t0;
	int rc;

	(void)arg;
	if (silent_open(&s) < 0)
		return -1;
	r = resolver_for(s.srv, SILENT_TIMEOUT_MS, 1, COEV_ARES_NO_HOSTS);
	/* The caller's deadline ends the wait; c-ares' query goes on. */
	t0 = coev_now();
	rc = coev_ares_resolve(r, "www.coev.test", AF_INET, 1, a, 2,
			       t0 + COEV_MSEC(200));
	TU_CHECK_EQ(rc, -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(200));
	TU_CHECK(coev_now() - t0 < LONG_WAIT);
	/* A deadline already past only tries. */
	TU_CHECK_EQ(coev_ares_resolve(r, "h1.coev.test", AF_INET, 1, a, 2, 0),
		    -ETIMEDOUT);

	/* c-ares' own timeout, with no deadline of the caller's. */
	quick = resolver_for(s.srv, 100, 1, COEV_ARES_NO_HOSTS);
	t0 = coev_now();
	rc = coev_ares_resolve(quick, "www.coev.test", AF_INET, 1, a, 2,
			       COEV_FOREVER);
	TU_CHECK_EQ(rc, -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(90));
	TU_CHECK(coev_now() - t0 < LONG_WAIT);
	/* Both families time out together. */
	rc = coev_ares_resolve(quick, "dual.coev.test", AF_UNSPEC, 1, a, 2,
			       COEV_FOREVER);
	TU_CHECK_EQ(rc, -ETIMEDOUT);
	/* And a lookup handed over from the other worker: the owner sets
	 * c-ares' timer for it too. */
	t0 = coev_now();
	/* (The deadline only bounds a broken timer: the check below.) */
	waiter_t w = {.r = quick,
		      .name = "www.coev.test",
		      .deadline = t0 + LONG_WAIT,
		      .pin = coev_worker_id() == 0 ? 2 : 1};
	coev_task_t *t;

	TU_CHECK_EQ(coev_spawn(waiter_task, &w, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, -ETIMEDOUT);
	TU_CHECK(w.ended - t0 < LONG_WAIT);
	coev_ares_free(quick);
	coev_ares_free(r); /* with the given-up queries in flight */
	coev_close(s.fd);
	return 0;
}

static void test_ares_timeouts(void **state)
{
	(void)state;
	run2(main_deadline, NULL);
}

static int main_cancel(void *arg)
{
	silent_t s;
	waiter_t w = {.name = "www.coev.test", .deadline = COEV_FOREVER};
	coev_task_t *t;
	coev_time_t t0;
	int res = -1;

	(void)arg;
	if (silent_open(&s) < 0)
		return -1;
	w.r = resolver_for(s.srv, SILENT_TIMEOUT_MS, 1, COEV_ARES_NO_HOSTS);
	TU_CHECK_EQ(coev_spawn(waiter_task, &w, &t), 0);
	/* Waiting for its answer (the lookup's future). */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_FUTURE, NULL), 0);
	TU_CHECK_EQ(atomic_load(&w.arrived), 1);
	t0 = coev_now();
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &res), 0);
	TU_CHECK_EQ(res, 0);
	TU_CHECK_EQ(w.rc, -ECANCELED);
	TU_CHECK(w.ended - t0 < LONG_WAIT);
	/* The query is still in c-ares; freeing ends it (its answer, an
	 * ARES_EDESTRUCTION, is refused by the cancelled future). */
	coev_ares_free(w.r);
	coev_close(s.fd);
	return 0;
}

static void test_ares_cancel_mid_query(void **state)
{
	(void)state;
	run2(main_cancel, NULL);
}

#define INFLIGHT 10

typedef struct freeing {
	coev_ares_t *r;
	unsigned pin; /* worker + 1 for the freeing task, 0: main frees */
} freeing_t;

static int free_task(void *arg)
{
	freeing_t *fr = arg;

	TU_CHECK_EQ(coev_pin_to(fr->pin - 1), 0);
	/* Cancelling the freer changes nothing: the free completes. */
	coev_cancel(coev_self());
	coev_ares_free(fr->r);
	coev_unpin();
	return 0;
}

static int main_free_in_flight(void *arg)
{
	unsigned from_other = *(unsigned *)arg;
	silent_t s;
	waiter_t w[INFLIGHT];
	coev_task_t *t[INFLIGHT], *ft;
	int res[INFLIGHT], owner;
	coev_ares_t *r;

	if (silent_open(&s) < 0)
		return -1;
	r = resolver_for(s.srv, SILENT_TIMEOUT_MS, 2, COEV_ARES_NO_HOSTS);
	owner = coev_worker_id();
	for (int i = 0; i < INFLIGHT; i++) {
		w[i] = (waiter_t){.r = r,
				  .name = i % 2 ? "www.coev.test"
						: "v6.coev.test",
				  .deadline = i % 3 ? COEV_FOREVER : tu_guard(),
				  .pin = (unsigned)(i % 2) + 1};
		TU_CHECK_EQ(coev_spawn(waiter_task, &w[i], &t[i]), 0);
	}
	for (int i = 0; i < INFLIGHT; i++)
		while (!atomic_load(&w[i].arrived))
			coev_sleep(COEV_MSEC(1));
	/* Every lookup has reached c-ares (or at least the inbox): its
	 * waiter waits on the lookup's future. */
	TU_CHECK_EQ(tu_wait_parked_n(NULL, COEV_WAIT_FUTURE, NULL, INFLIGHT),
		    0);
	coev_time_t t0 = coev_now();
	if (from_other) {
		freeing_t fr = {.r = r, .pin = owner == 0 ? 2 : 1};

		TU_CHECK_EQ(coev_spawn(free_task, &fr, &ft), 0);
		TU_CHECK_EQ(coev_join(ft, NULL), 0);
	} else {
		coev_ares_free(r);
	}
	coev_gather(t, INFLIGHT, res);
	for (int i = 0; i < INFLIGHT; i++) {
		TU_CHECK_EQ(res[i], 0);
		TU_CHECK_MSG(w[i].rc == -ECANCELED, "waiter %d: %d", i,
			     w[i].rc);
		TU_CHECK(w[i].ended - t0 < LONG_WAIT);
	}
	coev_close(s.fd);
	return 0;
}

static void test_ares_free_in_flight_owner(void **state)
{
	unsigned from_other = 0;

	(void)state;
	run2(main_free_in_flight, &from_other);
}

static void test_ares_free_in_flight_other_worker(void **state)
{
	unsigned from_other = 1;

	(void)state;
	run2(main_free_in_flight, &from_other);
}

/* Answers that arrive after their callers gave up are dropped. */
static int main_late_answers(void *arg)
{
	coev_ares_t *r = dns_resolver();
	struct sockaddr_storage a[2];
	waiter_t w[INFLIGHT];
	coev_task_t *t[INFLIGHT];
	int res[INFLIGHT], late = 0;

	(void)arg;
	if (!r)
		return -1;
	for (int i = 0; i < INFLIGHT; i++) {
		w[i] = (waiter_t){.r = r,
				  .name = "dual.coev.test",
				  .deadline = 0,
				  .pin = (unsigned)(i % 2) + 1};
		TU_CHECK_EQ(coev_spawn(waiter_task, &w[i], &t[i]), 0);
	}
	coev_gather(t, INFLIGHT, res);
	for (int i = 0; i < INFLIGHT; i++)
		late += w[i].rc == -ETIMEDOUT;
	TU_CHECK_EQ(late, INFLIGHT);
	/* Let the answers come back to nobody, then use the channel. */
	coev_sleep(COEV_MSEC(100));
	TU_CHECK_EQ(resolve(r, "dual.coev.test", AF_INET, 3, a, 2), 1);
	TU_CHECK(is_v4(&a[0], "127.0.0.1", 3));
	coev_ares_free(r);
	return 0;
}

static void test_ares_late_answers(void **state)
{
	(void)state;
	run2(main_late_answers, NULL);
}

/* ---- coev_tcp_connect through c-ares ------------------------------------- */

static int main_connect(void *arg)
{
	coev_ares_t *r = resolver_for(servers(), 0, 0, COEV_ARES_NO_HOSTS);
	int lfd, port, fd, cfd;

	(void)arg;
	if (!r)
		return -1;
	lfd = coev_tcp_listen("127.0.0.1", 0, 16, 0);
	TU_CHECK(lfd >= 0);
	port = coev_sock_port(lfd);
	coev_set_resolver(coev_ares_resolver, r);
	fd = coev_tcp_connect("www.coev.test", (unsigned)port, tu_guard());
	TU_CHECK_MSG(fd >= 0, "%d", fd);
	cfd = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK(cfd >= 0);
	if (fd >= 0 && cfd >= 0) {
		char c = 0;

		TU_CHECK_EQ(coev_write(fd, "x", 1, tu_guard()), 1);
		TU_CHECK_EQ(coev_read(cfd, &c, 1, tu_guard()), 1);
		TU_CHECK_EQ(c, 'x');
	}
	coev_close(fd);
	coev_close(cfd);
	/* dual: ::1 (nobody listens there) is refused, 127.0.0.1 taken. */
	fd = coev_tcp_connect("dual.coev.test", (unsigned)port, tu_guard());
	TU_CHECK_MSG(fd >= 0, "%d", fd);
	coev_close(fd);
	cfd = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK(cfd >= 0);
	coev_close(cfd);
	TU_CHECK_EQ(
		coev_tcp_connect("nope.coev.test", (unsigned)port, tu_guard()),
		COEV_ENONAME);
	/* This resolver does not read /etc/hosts: "localhost" fails
	 * through it, and works again with getaddrinfo() restored. */
	TU_CHECK(coev_tcp_connect("localhost", (unsigned)port, tu_guard()) < 0);
	coev_set_resolver(NULL, NULL);
	fd = coev_tcp_connect("localhost", (unsigned)port, tu_guard());
	TU_CHECK_MSG(fd >= 0, "%d", fd);
	coev_close(fd);
	cfd = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK(cfd >= 0);
	coev_close(cfd);
	coev_close(lfd);
	coev_ares_free(r);
	return 0;
}

static void test_ares_tcp_connect_resolver(void **state)
{
	(void)state;
	run2(main_connect, NULL);
}

/* ---- argument and configuration errors ------------------------------------ */

/* ---- free with the owner busy ---------------------------------------------- */

/*
 * The owner's worker busy in a long task (a task pinned there that spins
 * without suspending until released), and a free from the other
 * worker with a 100 ms deadline: it returns -ETIMEDOUT within a generous
 * ratio of the deadline, and the free still happens on the owner once
 * it is free (a post made after it runs after it; the fd check and ASan
 * see the rest).
 */
#include "tests/adapters/owner_busy.h"

static int free_dl(void *r, coev_time_t deadline)
{
	return coev_ares_free_dl(r, deadline);
}

static int main_busy_free(void *arg)
{
	struct sockaddr_storage a[2];
	coev_ares_t *r;
	coev_time_t took;
	int rc;

	(void)arg;
	TU_CHECK_EQ(coev_pin_to(0), 0);
	r = dns_resolver();
	TU_CHECK_EQ(coev_unpin(), 0);
	if (!r)
		return 0;
	TU_CHECK_EQ(resolve(r, "www.coev.test", AF_INET, 80, a, 2), 1);
	rc = with_owner_busy(free_dl, r, &took);
	check_timed_out("coev_ares_free_dl", rc, took);
	return 0;
}

/* Proves: coev_ares_free_dl is bounded by its deadline when the owner's
 * worker is busy; the resolver is still freed (ASan: no leak). */
static void test_ares_free_dl_with_owner_busy(void **state)
{
	(void)state;
	run2(main_busy_free, NULL);
}

static int main_errors(void *arg)
{
	coev_ares_t *r = dns_resolver(), *x = NULL;
	struct sockaddr_storage a[2];
	coev_ares_config_t cfg = {.servers = "not an address:zz"};

	(void)arg;
	if (!r)
		return -1;
	TU_CHECK_EQ(coev_ares_resolve(NULL, "x", AF_INET, 1, a, 2, 0), -EINVAL);
	TU_CHECK_EQ(coev_ares_resolve(r, NULL, AF_INET, 1, a, 2, 0), -EINVAL);
	TU_CHECK_EQ(coev_ares_resolve(r, "x", AF_INET, 1, NULL, 2, 0), -EINVAL);
	TU_CHECK_EQ(coev_ares_resolve(r, "x", AF_INET, 1, a, 0, 0), -EINVAL);
	TU_CHECK_EQ(coev_ares_resolve(r, "x", AF_UNIX, 1, a, 2, 0), -EINVAL);
	TU_CHECK_EQ(coev_ares_resolve(r, "x", AF_INET, 65536, a, 2, 0),
		    -EINVAL);
	TU_CHECK_EQ(coev_ares_new(&cfg, &x), -EINVAL);
	cfg = (coev_ares_config_t){.timeout_ms = -1};
	TU_CHECK_EQ(coev_ares_new(&cfg, &x), -EINVAL);
	cfg = (coev_ares_config_t){.flags = 0x100};
	TU_CHECK_EQ(coev_ares_new(&cfg, &x), -EINVAL);
	TU_CHECK_EQ(coev_ares_new(NULL, NULL), -EINVAL);
	TU_CHECK(x == NULL);
	/* The defaults (resolv.conf's servers) make a channel; no query. */
	TU_CHECK_EQ(coev_ares_new(NULL, &x), 0);
	coev_ares_free(x);
	coev_ares_free(NULL);
	coev_ares_free(r);
	return 0;
}

static void test_ares_errors(void **state)
{
	coev_ares_t *r = NULL;

	(void)state;
	/* Outside a task. */
	assert_int_equal(coev_ares_new(NULL, &r), COEV_ENOTCORO);
	run2(main_errors, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_ares_families),
		TU_FD_TEST(test_ares_numeric_and_hosts),
		TU_FD_TEST(test_ares_nxdomain),
		TU_FD_TEST(test_ares_many_names_concurrently),
		TU_FD_TEST(test_ares_tcp),
		TU_FD_TEST(test_ares_other_callers),
		TU_FD_TEST(test_ares_timeouts),
		TU_FD_TEST(test_ares_cancel_mid_query),
		TU_FD_TEST(test_ares_free_in_flight_owner),
		TU_FD_TEST(test_ares_free_dl_with_owner_busy),
		TU_FD_TEST(test_ares_free_in_flight_other_worker),
		TU_FD_TEST(test_ares_late_answers),
		TU_FD_TEST(test_ares_tcp_connect_resolver),
		TU_FD_TEST(test_ares_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
