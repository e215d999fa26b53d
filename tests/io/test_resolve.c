/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_resolve.c — a name lookup on the blocking pool is bounded
 * by its caller's deadline and cancellation (coev_resolve and
 * coev_tcp_connect with the default resolver, io/socket.c): the caller
 * returns on time, and the lookup it left finishes on its own and frees
 * its result, once.
 *
 * Design choices:
 *  - getaddrinfo and freeaddrinfo are wrapped (GNU ld's --wrap, in
 *    tests/io/rules.mk): only coev's calls come here. A name ending in
 *    ".slow.test" blocks in the wrapper until the test opens the gate, so
 *    the lookup is slow for exactly as long as the test wants, and is
 *    released only after the caller has returned; the wrapper then
 *    answers 127.0.0.1 through the real getaddrinfo. Every other name
 *    goes to the real one.
 *  - The gate also opens by itself after GATE_MAX_S, so that a library
 *    that waits for the lookup fails the timing check instead of hanging.
 *  - Timing is checked as a ratio of the deadline with a generous bound
 *    (RATIO), never as an exact time; everything else waits on counters
 *    with the usual guard.
 *  - The wrapper counts its answers and the frees of those answers: the
 *    abandoned lookup's result must be freed exactly once (ASan and
 *    LeakSanitizer check the memory itself).
 */
#include "tests/testutil.h"

#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#define DEADLINE_MS 100
#define RATIO 15 /* the caller returns within 15 deadlines */
#define GATE_MAX_S 3

int __real_getaddrinfo(const char *node, const char *service,
		       const struct addrinfo *hints, struct addrinfo **res);
void __real_freeaddrinfo(struct addrinfo *ai);

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;			    /* [gate_mu] */
static struct addrinfo *answers[8];	    /* [gate_mu] slow answers given */
static int nanswers;			    /* [gate_mu] */
static atomic_int entered, answered, freed; /* slow lookups */

static void gate_reset(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = false;
	nanswers = 0;
	pthread_mutex_unlock(&gate_mu);
	atomic_store(&entered, 0);
	atomic_store(&answered, 0);
	atomic_store(&freed, 0);
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

/* Waits for the gate (at most GATE_MAX_S), then answers 127.0.0.1. */
static int slow_lookup(const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	struct addrinfo h = *hints;
	struct timespec until;
	int r, w = 0;

	atomic_fetch_add(&entered, 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GATE_MAX_S;
	pthread_mutex_lock(&gate_mu);
	while (!gate_open && w != ETIMEDOUT)
		w = pthread_cond_timedwait(&gate_cv, &gate_mu, &until);
	h.ai_flags = AI_NUMERICHOST;
	r = __real_getaddrinfo("127.0.0.1", service, &h, res);
	if (r == 0 && nanswers < 8)
		answers[nanswers++] = *res;
	pthread_mutex_unlock(&gate_mu);
	atomic_fetch_add(&answered, 1);
	return r;
}

int __wrap_getaddrinfo(const char *node, const char *service,
		       const struct addrinfo *hints, struct addrinfo **res)
{
	size_t n = node ? strlen(node) : 0, k = strlen(".slow.test");

	if (n > k && strcmp(node + n - k, ".slow.test") == 0 && hints)
		return slow_lookup(service, hints, res);
	return __real_getaddrinfo(node, service, hints, res);
}

void __wrap_freeaddrinfo(struct addrinfo *ai)
{
	pthread_mutex_lock(&gate_mu);
	for (int i = 0; i < nanswers; i++)
		if (answers[i] == ai) {
			answers[i] = NULL;
			atomic_fetch_add(&freed, 1);
		}
	pthread_mutex_unlock(&gate_mu);
	__real_freeaddrinfo(ai);
}

/* As a plain thread: until *v reaches n (asserted within the guard). */
static void await_count(atomic_int *v, int n, const char *what)
{
	if (tu_thread_wait_at_least(v, n) != 0)
		fail_msg("%s: %d, waited for %d", what, atomic_load(v), n);
}

static coev_rt_t *new_rt(unsigned blocking_max)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;

	cfg.blocking_max = blocking_max;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	return rt;
}

/* A call's outcome, measured by the task that made it. */
typedef struct call {
	const char *host;
	coev_time_t deadline_ns; /* relative; COEV_FOREVER for none */
	int rc;
	coev_time_t took;
} call_t;

static int connect_task(void *arg)
{
	call_t *c = arg;
	coev_time_t t0 = coev_now();

	c->rc = coev_tcp_connect(c->host, 9, coev_deadline(c->deadline_ns));
	c->took = coev_now() - t0;
	if (c->rc >= 0)
		close(c->rc);
	return 0;
}

static int resolve_task(void *arg)
{
	call_t *c = arg;
	struct sockaddr_storage a[4];
	coev_time_t t0 = coev_now();

	c->rc = coev_resolve(c->host, 9, a, 4,
			     c->deadline_ns == COEV_FOREVER
				     ? COEV_FOREVER
				     : coev_deadline(c->deadline_ns));
	c->took = coev_now() - t0;
	return 0;
}

static void expect_on_time(const call_t *c, int rc, coev_time_t bound,
			   const char *what)
{
	if (c->rc != rc || c->took > bound)
		fail_msg("%s of '%s' returned %d after %.3f s; expected %d "
			 "within %.3f s",
			 what, c->host, c->rc, (double)c->took / 1e9, rc,
			 (double)bound / 1e9);
}

/* coev_tcp_connect with a 100 ms deadline and a lookup that takes until
 * the test says so: -ETIMEDOUT on time; the lookup's answer, given after
 * the caller left, is freed once. A fast name still resolves. */
static void test_resolve_deadline_bounds_a_slow_lookup(void **state)
{
	call_t c = {.host = "a.slow.test",
		    .deadline_ns = COEV_MSEC(DEADLINE_MS)};
	call_t fast = {.host = "localhost",
		       .deadline_ns = COEV_SEC(TU_GUARD_S)};
	coev_rt_t *rt = new_rt(4);
	coev_task_t *t;

	(void)state;
	gate_reset();
	assert_int_equal(coev_rt_spawn(rt, "connect", connect_task, &c, &t), 0);
	assert_int_equal(coev_join(t, NULL), 0);
	gate_release();
	expect_on_time(&c, -ETIMEDOUT, RATIO * COEV_MSEC(DEADLINE_MS),
		       "coev_tcp_connect");
	assert_int_equal(atomic_load(&entered), 1);
	await_count(&answered, 1, "slow lookups answered");
	await_count(&freed, 1, "slow answers freed");
	assert_int_equal(coev_rt_spawn(rt, "fast", resolve_task, &fast, &t), 0);
	assert_int_equal(coev_join(t, NULL), 0);
	assert_true(fast.rc >= 1);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&freed), 1);
}

/* A task cancelled in a slow lookup returns -ECANCELED at once; the
 * lookup ends on its own later and frees its answer. */
static void test_resolve_cancel_abandons_a_slow_lookup(void **state)
{
	call_t c = {.host = "b.slow.test", .deadline_ns = COEV_FOREVER};
	coev_rt_t *rt = new_rt(4);
	coev_time_t t0;
	coev_task_t *t;

	(void)state;
	gate_reset();
	assert_int_equal(coev_rt_spawn(rt, "resolve", resolve_task, &c, &t), 0);
	await_count(&entered, 1, "slow lookups started");
	t0 = coev_now();
	assert_int_equal(coev_cancel(t), 0);
	assert_int_equal(coev_join(t, NULL), 0);
	c.took = coev_now() - t0; /* from the cancel */
	gate_release();
	expect_on_time(&c, -ECANCELED, RATIO * COEV_MSEC(DEADLINE_MS),
		       "a cancelled coev_resolve");
	await_count(&freed, 1, "slow answers freed");
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
}

/* With one pool thread, held by an abandoned lookup, a second lookup
 * waits in the queue, times out there and never runs. */
static void test_resolve_queued_lookup_never_runs(void **state)
{
	call_t a = {.host = "c.slow.test",
		    .deadline_ns = COEV_MSEC(DEADLINE_MS)};
	call_t b = {.host = "d.slow.test",
		    .deadline_ns = COEV_MSEC(DEADLINE_MS)};
	coev_rt_t *rt = new_rt(1);
	coev_task_t *ta, *tb;

	(void)state;
	gate_reset();
	assert_int_equal(coev_rt_spawn(rt, "a", resolve_task, &a, &ta), 0);
	await_count(&entered, 1, "slow lookups started");
	assert_int_equal(coev_rt_spawn(rt, "b", resolve_task, &b, &tb), 0);
	assert_int_equal(coev_join(ta, NULL), 0);
	assert_int_equal(coev_join(tb, NULL), 0);
	gate_release();
	expect_on_time(&a, -ETIMEDOUT, RATIO * COEV_MSEC(DEADLINE_MS),
		       "coev_resolve");
	expect_on_time(&b, -ETIMEDOUT, RATIO * COEV_MSEC(DEADLINE_MS),
		       "a queued coev_resolve");
	await_count(&freed, 1, "slow answers freed");
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&entered), 1);
	assert_int_equal(atomic_load(&freed), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_resolve_deadline_bounds_a_slow_lookup),
		TU_FD_TEST(test_resolve_cancel_abandons_a_slow_lookup),
		TU_FD_TEST(test_resolve_queued_lookup_never_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
