/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_monitor.c — a worker stuck in one task does not stall
 * the rest (the monitor in sched/monitor.c; docs/ARCHITECTURE.md, "A stuck
 * worker").
 *
 * A task A busy-loops without ever suspending (for at most a cap of a
 * few seconds, ending early when a flag is set) while work waits on its
 * worker:
 *   (a) one child spawned by A just before it spins: the child sits in
 *       the LIFO slot of A's worker, which wakes nobody, and the other
 *       worker is asleep; the monitor notices A's worker stuck with work
 *       queued behind it and wakes the other worker, which takes the
 *       child (stuck_kicks counts the wake). The child sets the flag, so
 *       A stops long before its cap;
 *   (b) several children: all but the last go to the ring, all of them
 *       run on the other worker;
 *   (p) the same with hand-off partners: tasks waiting on a channel
 *       that A sends to, which go to A's worker's LIFO slot and ring as
 *       the partners that thieves leave alone while A runs (worker.c,
 *       partners_only); the monitor's kick lifts that, and the other
 *       worker takes them;
 *   (c) a task sleeping on A's worker's loop (coev_sleep, timer armed on
 *       that loop) is not rescued: a libev loop belongs to its thread, so
 *       the timer fires only when A's worker gets back to its loop. The
 *       sleeper resumes after A stops spinning: late, but not lost. This
 *       is the documented behaviour (sched/monitor.c, "Rejected: moving the
 *       stuck worker's timers and fd waits to others").
 *
 * Design choices. Every timing assertion is one-sided and generous: "the
 * child ran before A's cap", "the sleeper resumed after A stopped",
 * never "within N ms". Before A spins in (a) it waits until the other
 * worker is asleep with no wake pending (see wait_other_asleep), so that
 * only the monitor can wake it and the stuck_kicks check is meaningful:
 * a worker that a spawn from this thread had notified, but that the
 * loaded machine had not yet let run, looked asleep to a check of its
 * counters alone and then took the child without the monitor.
 * (c) places both tasks on worker 0 with coev_pin_to, so the sleeper's
 * timer is known to be on the stuck worker's loop, and A starts spinning
 * only once that timer is armed and has not fired (worker 0's timers
 * gauge is 1): a machine loaded enough to keep worker 0 from its loop
 * past the sleep's due time spoils the scene, and a new sleeper is tried.
 * COEV_DEBUG_MIGRATE is cleared from the configuration: these tests are
 * about where tasks run.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include <stdbool.h>

#include "tests/testutil.h"

#define WORKERS 2
/* How long A spins at most: far longer than a rescue takes. */
#define CAP_NS COEV_SEC(TU_SCALE(2, 3, 4))
#define CHILDREN 8
/* (c): how long A spins, and the sleeper's sleep (shorter). */
#define SPIN_NS COEV_MSEC(300)
#define NAP_NS COEV_MSEC(50)

typedef struct stuck {
	coev_rt_t *rt;
	int n;			    /* children to spawn (a: 1, b: CHILDREN) */
	int wa;			    /* A's worker while it spins */
	atomic_int ran;		    /* children that ran */
	atomic_int where[CHILDREN]; /* each child's worker */
	coev_time_t spin_start, spin_end;
	coev_time_t child_at[CHILDREN];
	int by_flag;	    /* A stopped because every child ran */
	coev_chan_t *ch;    /* (p): the partners wait on it, A sends */
	atomic_int waiting; /* (p): partners about to receive */
} stuck_t;

typedef struct child {
	stuck_t *s;
	int i;
} child_t;

static coev_rt_t *new_rt(void)
{
	coev_config_t cfg = tu_config(WORKERS);
	coev_rt_t *rt = NULL;

	cfg.debug &= ~COEV_DEBUG_MIGRATE;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	return rt;
}

/*
 * As a task: wait until the worker other than the caller's is asleep in
 * its loop with no wake pending. First the caller visits it and comes
 * back (coev_pin_to there and home again): a worker that runs a task has
 * taken every wake meant for it before, and after we leave, nothing in
 * this test wakes it (a spawn into the LIFO slot rings nobody). Then,
 * across a 2 ms sleep of the caller, its parks count must not change
 * while its idle time grows by at least the time between the two reads
 * (it slept all along). Returns the caller's worker, or -1 after the
 * guard.
 */
static int wait_other_asleep(coev_rt_t *rt)
{
	coev_time_t dl = tu_guard();

	while (coev_now() < dl) {
		int me = coev_worker_id();
		coev_worker_stats_t s1, s2;
		coev_time_t after1, before2;

		TU_CHECK_EQ(coev_pin_to((unsigned)(1 - me)), 0);
		TU_CHECK_EQ(coev_unpin(), 0);
		TU_CHECK_EQ(coev_pin_to((unsigned)me), 0);
		TU_CHECK_EQ(coev_unpin(), 0);
		TU_CHECK_EQ(coev_rt_worker_stats(rt, (unsigned)(1 - me), &s1),
			    0);
		after1 = coev_now();
		TU_CHECK_EQ(coev_sleep(COEV_MSEC(2)), 0);
		if (coev_worker_id() != me)
			continue; /* taken by the other: look again */
		before2 = coev_now();
		TU_CHECK_EQ(coev_rt_worker_stats(rt, (unsigned)(1 - me), &s2),
			    0);
		if (s2.parks == s1.parks && s2.parks > 0 &&
		    s2.idle_ns - s1.idle_ns >= (uint64_t)(before2 - after1))
			return me;
	}
	return -1;
}

static int rescuer(void *arg)
{
	child_t *c = arg;
	stuck_t *s = c->s;

	s->child_at[c->i] = coev_now();
	atomic_store(&s->where[c->i], coev_worker_id());
	/* Release: child_at is written before A sees the count. */
	atomic_fetch_add_explicit(&s->ran, 1, memory_order_release);
	return 0;
}

/* (p): wait for A's message, then be rescued. */
static int partner(void *arg)
{
	child_t *c = arg;
	int msg;

	atomic_fetch_add(&c->s->waiting, 1);
	TU_CHECK_EQ(coev_chan_recv(c->s->ch, &msg), 0);
	return rescuer(arg);
}

/* A: spawn the children (or, with a channel, wake the partners waiting
 * on it), then spin without suspending until all of them ran or the
 * cap. */
static int spinner(void *arg)
{
	stuck_t *s = arg;
	child_t c[CHILDREN];
	coev_time_t cap;

	for (int i = 0; s->ch && i < s->n; i++) {
		c[i] = (child_t){s, i};
		atomic_store(&s->where[i], -1);
		TU_CHECK_EQ(coev_spawn_named("partner", partner, &c[i], NULL),
			    0);
	}
	/* The partners run and wait before the other worker is seen
	 * asleep (its 2 ms sleep lets them); one that is late finds its
	 * message in the ring and is no partner, so the kick is checked
	 * by the caller only when all were waiting. */
	TU_CHECK_EQ(tu_wait_at_least(&s->waiting, s->ch ? s->n : 0), 0);
	TU_CHECK(wait_other_asleep(s->rt) >= 0);
	/* From here on A never suspends: it stays on this worker. */
	s->wa = coev_worker_id();
	/* The spin starts with the first spawn: a child pushed to the ring
	 * may be taken at once. */
	s->spin_start = coev_now();
	for (int i = 0; i < s->n; i++) {
		if (s->ch) {
			/* A waiting partner is woken into our LIFO slot. */
			TU_CHECK_EQ(coev_chan_try_send(s->ch, &i), 0);
			continue;
		}
		c[i] = (child_t){s, i};
		atomic_store(&s->where[i], -1);
		TU_CHECK_EQ(coev_spawn_named("rescuer", rescuer, &c[i], NULL),
			    0);
	}
	cap = s->spin_start + CAP_NS;
	while (atomic_load_explicit(&s->ran, memory_order_acquire) < s->n &&
	       coev_now() < cap) {
	}
	s->spin_end = coev_now();
	s->by_flag =
		atomic_load_explicit(&s->ran, memory_order_acquire) == s->n;
	/* The children hold pointers into c: wait for every one before
	 * returning (by_flag false: a failure, reported by the test). */
	while (atomic_load(&s->ran) < s->n)
		coev_sleep(COEV_MSEC(1));
	return 0;
}

/* Runs A with n children (partners: n tasks waiting on a channel) on a
 * fresh runtime and checks that every child ran on the other worker
 * before A's cap. Returns the stuck_kicks count. */
static uint64_t run_spinner(int n, bool partners)
{
	coev_rt_t *rt = new_rt();
	stuck_t *s = calloc(1, sizeof *s);
	coev_rt_stats_t st;
	coev_task_t *t;
	int ret = -1;

	assert_non_null(s);
	s->rt = rt;
	s->n = n;
	if (partners)
		assert_int_equal(coev_chan_new(&s->ch, sizeof(int), CHILDREN),
				 0);
	assert_int_equal(coev_rt_spawn(rt, "spinner", spinner, s, &t), 0);
	assert_int_equal(coev_join_dl(t, tu_guard(), &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();

	assert_true(s->wa == 0 || s->wa == 1);
	if (!s->by_flag)
		fail_msg("only %d of %d children ran during A's %.1f s spin",
			 atomic_load(&s->ran), n, (double)CAP_NS / 1e9);
	for (int i = 0; i < n; i++) {
		int w = atomic_load(&s->where[i]);

		if (w != 1 - s->wa)
			fail_msg("child %d ran on worker %d, A spun on %d", i,
				 w, s->wa);
		assert_true(s->child_at[i] >= s->spin_start);
		assert_true(s->child_at[i] < s->spin_start + CAP_NS);
	}
	print_message("%d child%s rescued; A stopped spinning after %.3f ms; "
		      "%llu stuck-worker wake%s\n",
		      n, n == 1 ? "" : "ren",
		      (double)(s->spin_end - s->spin_start) / 1e6,
		      (unsigned long long)st.stuck_kicks,
		      st.stuck_kicks == 1 ? "" : "s");
	coev_chan_free(s->ch);
	free(s);
	return st.stuck_kicks;
}

static void test_monitor_lifo_child_is_rescued(void **state)
{
	(void)state;
	/* The child in the LIFO slot wakes nobody and the other worker
	 * sleeps: only the monitor's wake can have brought it over. */
	assert_true(run_spinner(1, false) >= 1);
}

static void test_monitor_ring_children_run_elsewhere(void **state)
{
	(void)state;
	run_spinner(CHILDREN, false);
}

/* A partner in the LIFO slot, and one displaced to the ring (thieves
 * leave both alone while A runs): the monitor's wake brings them over. */
static void test_monitor_lifo_partner_is_rescued(void **state)
{
	(void)state;
	assert_true(run_spinner(1, true) >= 1);
}

static void test_monitor_ring_partner_is_rescued(void **state)
{
	(void)state;
	assert_true(run_spinner(2, true) >= 1);
}

/* ---- (c) a timer on the stuck worker's loop fires late ----------------- */

typedef struct late {
	atomic_int armed; /* the sleeper is about to sleep on worker 0 */
	coev_time_t slept_at, woke_at;
	int slept_on, woke_on, rc;
	coev_time_t spin_start, spin_end;
	uint64_t timers_mid; /* worker 0's armed timers halfway through */
	int tries;	     /* sleepers it took (see late_spinner) */
	coev_rt_t *rt;
} late_t;

static int late_sleeper(void *arg)
{
	late_t *l = arg;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	l->slept_on = coev_worker_id();
	l->slept_at = coev_now();
	/* Nothing runs on worker 0 between this store and the timer being
	 * armed: we are running there and do not suspend in between. */
	atomic_store(&l->armed, 1);
	l->rc = coev_sleep(NAP_NS);
	l->woke_at = coev_now();
	l->woke_on = coev_worker_id();
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

/* Sleepers tried until one's timer is still armed when A starts. */
#define LATE_TRIES 20

static int late_spinner(void *arg)
{
	late_t *l = arg;
	coev_task_t *t = NULL;
	coev_worker_stats_t ws;
	int mid = 0;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	for (l->tries = 1; l->tries <= LATE_TRIES; l->tries++) {
		atomic_store(&l->armed, 0);
		TU_CHECK_EQ(coev_spawn_named("sleeper", late_sleeper, l, &t),
			    0);
		/* Our sleeps let worker 0 run the sleeper; pinned, we come
		 * back to worker 0 only, so once we see armed the sleeper's
		 * timer is on worker 0's loop. */
		TU_CHECK_EQ(tu_wait_at_least(&l->armed, 1), 0);
		TU_CHECK_EQ(coev_worker_id(), 0);
		TU_CHECK_EQ(coev_rt_worker_stats(l->rt, 0, &ws), 0);
		if (ws.timers == 1)
			break; /* armed and not fired: the scene is set */
		/* The machine kept worker 0 from its loop until the
		 * sleeper's timer had fired too: start over. */
		TU_CHECK_EQ(coev_join(t, NULL), 0);
	}
	if (l->tries > LATE_TRIES) {
		TU_CHECK_MSG(0, "no sleeper's timer was still armed");
		coev_unpin();
		return -1;
	}
	l->spin_start = coev_now();
	while (coev_now() < l->spin_start + SPIN_NS) {
		if (!mid && coev_now() >= l->spin_start + SPIN_NS / 2) {
			/* Past the sleeper's due time: its timer is still
			 * armed, neither fired nor dropped. */
			TU_CHECK_EQ(coev_rt_worker_stats(l->rt, 0, &ws), 0);
			l->timers_mid = ws.timers;
			mid = 1;
		}
	}
	l->spin_end = coev_now();
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	return 0;
}

static void test_monitor_timer_on_stuck_loop_fires_late(void **state)
{
	coev_rt_t *rt = new_rt();
	late_t *l = calloc(1, sizeof *l);
	coev_task_t *t;
	int ret = -1;

	(void)state;
	assert_non_null(l);
	l->rt = rt;
	assert_int_equal(coev_rt_spawn(rt, "spinner", late_spinner, l, &t), 0);
	assert_int_equal(coev_join_dl(t, tu_guard(), &ret), 0);
	assert_int_equal(ret, 0);
	coev_rt_free(rt);
	tu_assert_no_failures();

	assert_int_equal(l->slept_on, 0);
	assert_int_equal(l->woke_on, 0);
	/* Not lost: the sleep ended normally... */
	assert_int_equal(l->rc, 0);
	assert_true(l->woke_at - l->slept_at >= NAP_NS);
	/* ...but only once A let go of the worker, although it was due
	 * well before: the timer waited on the stuck loop. */
	assert_true(l->slept_at + NAP_NS < l->spin_end);
	assert_true(l->woke_at >= l->spin_end);
	assert_int_equal(l->timers_mid, 1);
	print_message(
		"the %.0f ms sleep ended after %.1f ms, %.1f ms after "
		"its due time (sleeper %d)\n",
		(double)NAP_NS / 1e6, (double)(l->woke_at - l->slept_at) / 1e6,
		(double)(l->woke_at - l->slept_at - NAP_NS) / 1e6, l->tries);
	free(l);
}

/* ---- a pinned task that yields in a loop ------------------------------- */

static atomic_int pin_child_ran;

static int pin_child(void *arg)
{
	(void)arg;
	atomic_store(&pin_child_ran, 1);
	return 0;
}

/* Pinned, so each yield goes back to the worker's inbox; the inbox is
 * served first but at most a few times in a row, so the child spawned
 * into the LIFO slot runs while the yielder still loops. The worker is
 * never stuck (every yield is a new run), so this is the scheduler's own
 * fairness, not the monitor's. */
static int pin_yielder(void *arg)
{
	long *yields = arg;
	coev_time_t cap = coev_now() + COEV_SEC(2);

	TU_CHECK_EQ(coev_pin(), 0);
	TU_CHECK_EQ(coev_spawn(pin_child, NULL, NULL), 0);
	while (!atomic_load(&pin_child_ran) && coev_now() < cap) {
		coev_yield();
		(*yields)++;
	}
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

static void test_monitor_pinned_yielder_does_not_starve(void **state)
{
	coev_config_t cfg;
	long yields = 0;

	(void)state;
	assert_int_equal(coev_config_init(&cfg), 0);
	cfg.workers = 1;
	cfg.debug = 0;
	assert_int_equal(coev_run(pin_yielder, &yields, &cfg), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&pin_child_ran), 1);
	/* The child ran within the inbox's few turns, not after the cap. */
	assert_true(yields < 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_monitor_lifo_child_is_rescued),
		TU_FD_TEST(test_monitor_ring_children_run_elsewhere),
		TU_FD_TEST(test_monitor_lifo_partner_is_rescued),
		TU_FD_TEST(test_monitor_ring_partner_is_rescued),
		TU_FD_TEST(test_monitor_timer_on_stuck_loop_fires_late),
		TU_FD_TEST(test_monitor_pinned_yielder_does_not_starve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
