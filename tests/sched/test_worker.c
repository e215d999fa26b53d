/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_worker.c — workers: work stealing, wakes across workers
 * (sched/internal.h: coev__park / coev__wake), per-worker statistics, the
 * owner's batch and the monitor's rescue of it (sched/worker.c).
 *
 * A lost wake shows up as a task parked forever; the joins below use a
 * generous deadline so that it fails with a message rather than only by the
 * binary's timeout.
 */
#include "tests/testutil.h"

#include <pthread.h>

#include "sched/sched.h"

/* How long a stress test may take before it is declared stuck. */
#define STUCK_AFTER COEV_SEC(TU_SCALE(120, 150, 170))
/* How long one trivial task may wait to run on an otherwise idle runtime
 * before its wake-up is declared lost: microseconds are expected; a parked
 * worker that missed its doorbell sleeps until libev's maximum block time
 * (59.7 s). */
#define LOST_AFTER_S TU_SCALE(10, 20, 20)

static void sum_stats(coev_rt_t *rt, coev_worker_stats_t *sum)
{
	memset(sum, 0, sizeof *sum);
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t st;
		assert_int_equal(coev_rt_worker_stats(rt, i, &st), 0);
		sum->polls += st.polls;
		sum->spawned += st.spawned;
		sum->finished += st.finished;
		sum->stolen += st.stolen;
		sum->steal_ops += st.steal_ops;
		sum->parks += st.parks;
		sum->inject_pops += st.inject_pops;
		sum->stacks_mapped += st.stacks_mapped;
		sum->stacks_pooled += st.stacks_pooled;
	}
}

/* Joins t from the test thread with a deadline; on a timeout detaches it,
 * so that coev_rt_free can still release everything, and fails. */
static int join_or_fail(coev_task_t *t, int *ret, const char *what)
{
	int rc = coev_join_dl(t, coev_deadline(STUCK_AFTER), ret);
	if (rc == -ETIMEDOUT) {
		coev_detach(t);
		fprintf(stderr, "%s: still not finished (a lost wake?)\n",
			what);
	}
	return rc;
}

/* ---- stealing ----------------------------------------------------------- */

#define STEAL_CHILDREN 200

typedef struct steal_child {
	int spawned_on;	 /* the parent's worker when it spawned the child */
	int finished_on; /* the child's worker as it ends */
} steal_child_t;

static int steal_child_body(void *arg)
{
	steal_child_t *c = arg;

	/* Busy work without suspending: the child cannot move while it
	 * runs, so where it ends is where it started. */
	tu_spin_ns(COEV_USEC(TU_SCALE(500, 500, 1000)));
	c->finished_on = coev_worker_id();
	return 0;
}

/* Rounds of STEAL_CHILDREN children, until some moved: one round is
 * normally enough; more only absorb a machine too loaded for the idle
 * worker to get a core during a round. */
#define STEAL_ROUNDS 20

typedef struct steal {
	steal_child_t c[STEAL_CHILDREN];
	int rounds; /* rounds run */
	int bad_worker;
} steal_t;

static int steal_parent(void *arg)
{
	steal_t *s = arg;
	coev_task_t *t[STEAL_CHILDREN];
	int moved = 0;

	for (s->rounds = 0; s->rounds < STEAL_ROUNDS && moved == 0;
	     s->rounds++) {
		/* Spawning never suspends, so the parent stays on one worker
		 * and every child is queued there. */
		for (int i = 0; i < STEAL_CHILDREN; i++) {
			s->c[i].spawned_on = coev_worker_id();
			s->c[i].finished_on = -1;
			TU_CHECK_EQ(
				coev_spawn(steal_child_body, &s->c[i], &t[i]),
				0);
		}
		for (int i = 0; i < STEAL_CHILDREN; i++) {
			TU_CHECK_EQ(coev_join(t[i], NULL), 0);
			if (s->c[i].finished_on != s->c[i].spawned_on)
				moved++;
			if (s->c[i].spawned_on < 0 || s->c[i].spawned_on > 1 ||
			    s->c[i].finished_on < 0 || s->c[i].finished_on > 1)
				s->bad_worker++;
		}
	}
	return moved;
}

static void test_worker_stealing_moves_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	steal_t *s = calloc(1, sizeof *s);
	coev_task_t *t;
	int moved = -1;
	coev_worker_stats_t sum;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "steal-parent", steal_parent, s, &t),
			 0);
	assert_int_equal(join_or_fail(t, &moved, "steal-parent"), 0);
	sum_stats(rt, &sum);
	coev_rt_free(rt);
	tu_assert_no_failures();
	print_message("moved %d of %d in round %d; stolen %llu in %llu "
		      "steals\n",
		      moved, STEAL_CHILDREN, s->rounds,
		      (unsigned long long)sum.stolen,
		      (unsigned long long)sum.steal_ops);
	assert_int_equal(s->bad_worker, 0);
	free(s);
	assert_true(moved > 0);
	assert_true(sum.stolen > 0);
	assert_true(sum.steal_ops > 0);
	assert_true(sum.stolen >= sum.steal_ops);
}

/* ---- no lost wakes ------------------------------------------------------ */

/*
 * Two tasks bounce a token: A waits for turn == 0, sets it to 1 and wakes
 * B; B waits for turn == 1, sets it to 0 and wakes A. Each wait is
 * "while (turn != mine) park()". A lost wake leaves both parked.
 * At the end each side waits (yielding) until the other has left its loop,
 * so that no wake is ever made on a task that has already ended.
 */
typedef struct pingpong {
	atomic_int turn;
	_Atomic(coev_task_t *) a, b;
	atomic_int a_out, b_out;
	atomic_int where[2]; /* worker of each side at its last turn */
	long rounds;
	int spin;      /* checks of turn before each park */
	long count[2]; /* turns taken by each side */
	long cross[2]; /* turns taken on another worker than the peer's */
} pingpong_t;

static int pp_side(pingpong_t *p, int me)
{
	coev_task_t *peer = tu_wait_task_ptr(me == 0 ? &p->b : &p->a);
	long parks = 0, count = 0, cross = 0;

	for (long i = 0; i < p->rounds; i++) {
		int spun = 0;
		while (atomic_load_explicit(&p->turn, memory_order_acquire) !=
		       me) {
			if (spun++ < p->spin)
				continue;
			coev__park();
			parks++;
		}
		count++;
		int here = coev_worker_id();
		atomic_store_explicit(&p->where[me], here,
				      memory_order_relaxed);
		if (i > 0 && atomic_load_explicit(&p->where[1 - me],
						  memory_order_relaxed) != here)
			cross++;
		atomic_store_explicit(&p->turn, 1 - me, memory_order_release);
		coev__wake(peer);
	}
	atomic_store(me == 0 ? &p->a_out : &p->b_out, 1);
	while (!atomic_load(me == 0 ? &p->b_out : &p->a_out))
		coev_yield();
	p->count[me] = count;
	p->cross[me] = cross;
	return (int)(parks > INT32_MAX ? INT32_MAX : parks);
}

static int pp_a(void *arg)
{
	return pp_side(arg, 0);
}

static int pp_b(void *arg)
{
	return pp_side(arg, 1);
}

/* Runs `pairs` ping-pong pairs of `rounds` round trips each; returns the
 * number of turns that were handed across workers. */
static long run_pairs(unsigned workers, int pairs, long rounds, int spin)
{
	coev_rt_t *rt = tu_new_rt(workers);
	pingpong_t *p = calloc((size_t)pairs, sizeof *p);
	coev_task_t **ta = calloc((size_t)pairs, sizeof *ta);
	coev_task_t **tb = calloc((size_t)pairs, sizeof *tb);
	int stuck = 0;
	long cross = 0, parks = 0;

	for (int i = 0; i < pairs; i++) {
		p[i].rounds = rounds;
		p[i].spin = spin;
		assert_int_equal(coev_rt_spawn(rt, "ping", pp_a, &p[i], &ta[i]),
				 0);
		assert_int_equal(coev_rt_spawn(rt, "pong", pp_b, &p[i], &tb[i]),
				 0);
		atomic_store(&p[i].a, ta[i]);
		atomic_store(&p[i].b, tb[i]);
	}
	for (int i = 0; i < pairs && !stuck; i++) {
		int ra = -1, rb = -1;
		if (join_or_fail(ta[i], &ra, "ping") != 0 ||
		    join_or_fail(tb[i], &rb, "pong") != 0) {
			stuck = 1;
			break;
		}
		parks += ra + rb;
		cross += p[i].cross[0] + p[i].cross[1];
		assert_true(ra >= 0 && rb >= 0);
		assert_int_equal(p[i].count[0], rounds);
		assert_int_equal(p[i].count[1], rounds);
		/* Both made every transition: the final turn is A's again. */
		assert_int_equal(atomic_load(&p[i].turn), 0);
	}
	/* After a timeout the stuck tasks are left to coev_rt_free. */
	coev_rt_free(rt);
	assert_int_equal(stuck, 0);
	print_message("%d pair(s) x %ld round trips: %ld parks, %ld turns "
		      "handed across workers\n",
		      pairs, rounds, parks, cross);
	free(p);
	free(ta);
	free(tb);
	return cross;
}

static void test_worker_no_lost_wakes_one_pair(void **state)
{
	(void)state;
	run_pairs(2, 1, TU_SCALE(1000000, 1000000, 300000), 0);
}

static void test_worker_no_lost_wakes_spin_then_park(void **state)
{
	(void)state;
	/* Spinning a little before parking makes wakes land while the
	 * target still runs (the permit path) as well as after it parked,
	 * and keeps the waker's worker busy so that the other one takes the
	 * woken task: both sides of every race. */
	run_pairs(2, 1, TU_SCALE(300000, 300000, 100000), 200);
	run_pairs(2, 4, TU_SCALE(100000, 100000, 30000), 50);
}

static void test_worker_no_lost_wakes_many_pairs(void **state)
{
	(void)state;
	run_pairs(2, 16, TU_SCALE(100000, 100000, 30000), 0);
}

static void test_worker_no_lost_wakes_more_workers_than_cores(void **state)
{
	(void)state;
	run_pairs(4, 8, TU_SCALE(50000, 50000, 20000), 0);
}

/*
 * Fan-out/fan-in: a producer wakes N consumers each round and parks until
 * all N have answered; every consumer wakes the producer. The woken
 * consumers spill from the producer's LIFO slot into its ring, where the
 * other worker steals them, so the producer is woken from both workers at
 * once while it is still running or already parked: the park/wake race
 * across workers, many times a round. Exit handshake as for the pairs: no
 * one leaves before every wake aimed at it has been made.
 */
#define FAN 8

typedef struct fan {
	atomic_long gen;  /* rounds started by the producer */
	atomic_long acks; /* answers from consumers, over all rounds */
	_Atomic(coev_task_t *) producer;
	_Atomic(coev_task_t *) consumer[FAN];
	atomic_int producer_out;
	atomic_int consumers_out;
	atomic_int producer_worker;
	atomic_long cross; /* answers sent from another worker */
	long rounds;
} fan_t;

typedef struct fan_arg {
	fan_t *f;
	int i;
} fan_arg_t;

static int fan_consumer(void *arg)
{
	fan_arg_t *a = arg;
	fan_t *f = a->f;
	coev_task_t *prod = tu_wait_task_ptr(&f->producer);
	long cross = 0;

	for (long g = 1; g <= f->rounds; g++) {
		while (atomic_load(&f->gen) < g)
			coev__park();
		if (coev_worker_id() !=
		    atomic_load_explicit(&f->producer_worker,
					 memory_order_relaxed))
			cross++;
		atomic_fetch_add(&f->acks, 1);
		coev__wake(prod);
	}
	atomic_fetch_add(&f->cross, cross);
	atomic_fetch_add(&f->consumers_out, 1);
	while (!atomic_load(&f->producer_out))
		coev_yield();
	return 0;
}

static int fan_producer(void *arg)
{
	fan_t *f = arg;
	coev_task_t *c[FAN];

	for (int i = 0; i < FAN; i++)
		c[i] = tu_wait_task_ptr(&f->consumer[i]);
	for (long g = 1; g <= f->rounds; g++) {
		atomic_store_explicit(&f->producer_worker, coev_worker_id(),
				      memory_order_relaxed);
		atomic_store(&f->gen, g);
		for (int i = 0; i < FAN; i++)
			coev__wake(c[i]);
		while (atomic_load(&f->acks) < g * FAN)
			coev__park();
	}
	atomic_store(&f->producer_out, 1);
	while (atomic_load(&f->consumers_out) < FAN)
		coev_yield();
	return 0;
}

static void test_worker_no_lost_wakes_fan_out_fan_in(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	fan_t *f = calloc(1, sizeof *f);
	fan_arg_t a[FAN];
	coev_task_t *tp, *tc[FAN];
	int stuck = 0;

	(void)state;
	f->rounds = TU_SCALE(200000, 200000, 50000);
	assert_int_equal(coev_rt_spawn(rt, "producer", fan_producer, f, &tp),
			 0);
	atomic_store(&f->producer, tp);
	for (int i = 0; i < FAN; i++) {
		a[i] = (fan_arg_t){f, i};
		assert_int_equal(coev_rt_spawn(rt, "consumer", fan_consumer,
					       &a[i], &tc[i]),
				 0);
		atomic_store(&f->consumer[i], tc[i]);
	}
	if (join_or_fail(tp, NULL, "producer") != 0)
		stuck = 1;
	for (int i = 0; i < FAN && !stuck; i++)
		if (join_or_fail(tc[i], NULL, "consumer") != 0)
			stuck = 1;
	coev_rt_free(rt);
	assert_int_equal(stuck, 0);
	assert_int_equal(atomic_load(&f->gen), f->rounds);
	assert_int_equal(atomic_load(&f->acks), f->rounds * FAN);
	print_message("%ld rounds x %d consumers: %ld answers from the other "
		      "worker\n",
		      f->rounds, FAN, atomic_load(&f->cross));
	free(f);
}

/* A foreign thread and a task bounce a token: the thread wakes the task
 * with coev__wake, the task answers through an atomic the thread polls. */
typedef struct foreign_pp {
	atomic_long to_task;   /* rounds handed to the task */
	atomic_long to_thread; /* rounds the task answered */
	_Atomic(coev_task_t *) task;
	long rounds;
} foreign_pp_t;

static int foreign_pp_task(void *arg)
{
	foreign_pp_t *f = arg;

	for (long i = 1; i <= f->rounds; i++) {
		while (atomic_load(&f->to_task) < i)
			coev__park();
		atomic_store(&f->to_thread, i);
	}
	return 0;
}

static void test_worker_wake_from_foreign_thread(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	foreign_pp_t f;
	coev_task_t *t;
	long rounds = TU_SCALE(200000, 200000, 50000);
	int lost = 0;

	(void)state;
	memset(&f, 0, sizeof f);
	f.rounds = rounds;
	assert_int_equal(
		coev_rt_spawn(rt, "foreign-pp", foreign_pp_task, &f, &t), 0);
	coev_time_t give_up = coev_deadline(STUCK_AFTER);
	for (long i = 1; i <= rounds && !lost; i++) {
		atomic_store(&f.to_task, i);
		coev__wake(t);
		unsigned spins = 0;
		while (atomic_load(&f.to_thread) < i) {
			if (++spins % 1024 == 0) {
				sched_yield();
				if (coev_now() > give_up)
					lost = 1;
			}
		}
	}
	if (!lost)
		assert_int_equal(join_or_fail(t, NULL, "foreign-pp"), 0);
	else
		coev_detach(t);
	coev_rt_free(rt);
	assert_int_equal(lost, 0);
	assert_int_equal(atomic_load(&f.to_thread), rounds);
}

/*
 * A single worker going idle while a thread outside spawns: the spawn must
 * wake the parked worker. A missed doorbell leaves the worker asleep in its
 * loop until the loop's own maximum block time (libev: about 60 s), so a
 * join that takes LOST_AFTER_S where microseconds are expected is a lost
 * wake.
 */
static int trivial(void *arg)
{
	return (int)(intptr_t)arg;
}

static void foreign_spawns_wake(unsigned workers)
{
	coev_rt_t *rt = tu_new_rt(workers);
	long rounds = TU_SCALE(20000, 20000, 10000);
	long lost_at = -1;

	for (long i = 0; i < rounds; i++) {
		coev_task_t *t;
		int r = -1;
		assert_int_equal(coev_rt_spawn(rt, "trivial", trivial,
					       (void *)(intptr_t)(i & 0xffff),
					       &t),
				 0);
		int rc = coev_join_dl(t, coev_deadline(COEV_SEC(LOST_AFTER_S)),
				      &r);
		if (rc != 0) {
			coev_detach(t);
			lost_at = i;
			break;
		}
		assert_int_equal(r, (int)(i & 0xffff));
		/* Spawn the next one 0 to 40 us later: sweep the window in
		 * which the worker goes from "nothing to do" to parked. */
		tu_spin_ns(COEV_NSEC(1000 * (i % 41)));
	}
	coev_rt_free(rt);
	if (lost_at >= 0)
		fprintf(stderr,
			"round %ld: the spawned task did not run within "
			"%d s (the worker was not woken)\n",
			lost_at, LOST_AFTER_S);
	assert_int_equal(lost_at, -1);
}

/* The same race at start-up: spawn the moment coev_rt_new returns, while
 * the new workers look for work and park for the first time. */
static void spawn_at_start(unsigned workers)
{
	int rounds = TU_SCALE(300, 300, 150);
	int lost_at = -1;

	for (int i = 0; i < rounds && lost_at < 0; i++) {
		coev_config_t cfg = tu_config(workers);
		coev_rt_t *rt = NULL;
		coev_task_t *t;
		int r = -1;

		assert_int_equal(coev_rt_new(&cfg, &rt), 0);
		tu_spin_ns(COEV_NSEC(1000 * (i % 31)));
		assert_int_equal(coev_rt_spawn(rt, "first", trivial,
					       (void *)(intptr_t)i, &t),
				 0);
		int rc = coev_join_dl(t, coev_deadline(COEV_SEC(LOST_AFTER_S)),
				      &r);
		if (rc != 0) {
			coev_detach(t);
			lost_at = i;
		} else {
			assert_int_equal(r, i);
		}
		coev_rt_free(rt);
	}
	if (lost_at >= 0)
		fprintf(stderr,
			"runtime %d: its first task did not run within "
			"%d s (the worker was not woken)\n",
			lost_at, LOST_AFTER_S);
	assert_int_equal(lost_at, -1);
}

static void test_worker_spawn_at_start_wakes_single_worker(void **state)
{
	(void)state;
	spawn_at_start(1);
}

static void test_worker_spawn_at_start_wakes_two_workers(void **state)
{
	(void)state;
	spawn_at_start(2);
}

/* The same race, hit hard: the thread sees the task's last store by
 * spinning (not by a join, whose wake-up takes longer than the worker needs
 * to park) and spawns the next task while the worker is on its way from
 * "that task ended" to "parked". */
static int bump(void *arg)
{
	atomic_fetch_add((atomic_long *)arg, 1);
	return 0;
}

static void spawn_as_worker_idles(unsigned workers)
{
	coev_rt_t *rt = tu_new_rt(workers);
	atomic_long done = 0;
	long rounds = TU_SCALE(100000, 100000, 50000);
	long lost_at = -1;

	for (long i = 0; i < rounds && lost_at < 0; i++) {
		assert_int_equal(coev_rt_spawn(rt, NULL, bump, &done, NULL), 0);
		coev_time_t give_up = coev_deadline(COEV_SEC(LOST_AFTER_S));
		unsigned spins = 0;
		while (atomic_load(&done) < i + 1) {
			if (++spins % 4096 == 0 && coev_now() > give_up) {
				lost_at = i;
				break;
			}
		}
		tu_spin_ns(COEV_NSEC(100 * (i % 64)));
	}
	if (lost_at >= 0) {
		fprintf(stderr,
			"task %ld did not run within %d s (the worker "
			"was not woken)\n",
			lost_at, LOST_AFTER_S);
		/* One more spawn rings the doorbell: the stuck task runs and
		 * coev_rt_free finds nothing half-done. */
		coev_rt_spawn(rt, NULL, bump, &done, NULL);
		coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5)));
	}
	coev_rt_free(rt);
	assert_int_equal(lost_at, -1);
}

static void test_worker_spawn_as_single_worker_idles(void **state)
{
	(void)state;
	spawn_as_worker_idles(1);
}

static void test_worker_spawn_as_two_workers_idle(void **state)
{
	(void)state;
	spawn_as_worker_idles(2);
}

static void test_worker_foreign_spawn_wakes_single_worker(void **state)
{
	(void)state;
	foreign_spawns_wake(1);
}

static void test_worker_foreign_spawn_wakes_two_workers(void **state)
{
	(void)state;
	foreign_spawns_wake(2);
}

/* ---- the permit --------------------------------------------------------- */

static int wake_self_then_park(void *arg)
{
	int n = (int)(intptr_t)arg;

	for (int i = 0; i < n; i++) {
		coev__wake(coev_self());
		coev__park(); /* must return: the wake left a permit */
	}
	/* Waking twice still leaves (at least) one permit. */
	coev__wake(coev_self());
	coev__wake(coev_self());
	coev__park();
	return n;
}

static void test_worker_wake_before_park_is_kept(void **state)
{
	/* One worker and no other task: nothing else could wake it. */
	coev_rt_t *rt = tu_new_rt(1);
	coev_task_t *t;
	int r = -1;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "self-waker", wake_self_then_park,
				       (void *)(intptr_t)1000, &t),
			 0);
	int rc = coev_join_dl(t, coev_deadline(COEV_SEC(30)), &r);
	if (rc != 0)
		coev_detach(t);
	coev_rt_free(rt);
	assert_int_equal(rc, 0);
	assert_int_equal(r, 1000);
}

/* A wake from another task that arrives while the target still runs (it
 * has published "about to wait" but not parked yet) is kept too. */
typedef struct late_park {
	_Atomic(coev_task_t *) sleeper;
	atomic_int armed; /* the sleeper will park next */
	atomic_int fired; /* the waker has called coev__wake */
	atomic_int rounds_done;
	int rounds;
} late_park_t;

static int late_park_sleeper(void *arg)
{
	late_park_t *l = arg;

	for (int i = 0; i < l->rounds; i++) {
		atomic_store(&l->armed, 1);
		/* Keep running until the wake has certainly been made. */
		while (!atomic_load(&l->fired))
			;
		atomic_store(&l->fired, 0);
		coev__park(); /* the permit makes this return */
		atomic_store(&l->rounds_done, i + 1);
	}
	return 0;
}

static int late_park_waker(void *arg)
{
	late_park_t *l = arg;
	coev_task_t *s = tu_wait_task_ptr(&l->sleeper);

	for (int i = 0; i < l->rounds; i++) {
		while (!atomic_load(&l->armed))
			;
		atomic_store(&l->armed, 0);
		coev__wake(s);
		atomic_store(&l->fired, 1);
		while (atomic_load(&l->rounds_done) != i + 1)
			;
	}
	return 0;
}

static void test_worker_wake_while_running_is_kept(void **state)
{
	/* Two workers, each running one of the tasks, both spinning: the
	 * only way for the sleeper to get past park is the kept permit.
	 * COEV_DEBUG_MIGRATE stays off: it would resume the sleeper on the
	 * waker's worker, behind the waker's spin. */
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;
	late_park_t l;
	coev_task_t *ts, *tw;

	(void)state;
	cfg.debug = 0;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	memset(&l, 0, sizeof l);
	l.rounds = TU_SCALE(2000, 2000, 1000);
	assert_int_equal(
		coev_rt_spawn(rt, "sleeper", late_park_sleeper, &l, &ts), 0);
	atomic_store(&l.sleeper, ts);
	assert_int_equal(coev_rt_spawn(rt, "waker", late_park_waker, &l, &tw),
			 0);
	int rs = join_or_fail(ts, NULL, "sleeper");
	int rw = rs == 0 ? join_or_fail(tw, NULL, "waker") : -1;
	if (rs != 0)
		coev_detach(tw);
	coev_rt_free(rt);
	assert_int_equal(rs, 0);
	assert_int_equal(rw, 0);
	assert_int_equal(atomic_load(&l.rounds_done), l.rounds);
}

/* Parking outside a task aborts. */
static void park_outside_task(void *arg)
{
	(void)arg;
	coev__park();
	fprintf(stderr, "coev__park returned outside a task\n");
}

static void test_worker_park_outside_task_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_int_equal(tu_run_in_child(park_outside_task, NULL, res), 0);
	if (!tu_child_signaled(res, SIGABRT))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	free(res);
}

/* ---- statistics --------------------------------------------------------- */

#define STATS_TASKS 2000

static int stats_leaf(void *arg)
{
	(void)arg;
	coev_yield();
	return 0;
}

static int stats_main(void *arg)
{
	coev_task_t **t = calloc(STATS_TASKS, sizeof *t);

	(void)arg;
	for (int i = 0; i < STATS_TASKS; i++)
		TU_CHECK_EQ(coev_spawn(stats_leaf, NULL, &t[i]), 0);
	TU_CHECK_EQ(coev_gather(t, STATS_TASKS, (int[STATS_TASKS]){0}), 0);
	free(t);
	return 0;
}

static void test_worker_stats_count_work(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	coev_worker_stats_t st, sum;

	(void)state;
	/* Bad arguments. */
	assert_int_equal(coev_rt_workers(NULL), 0);
	assert_int_equal(coev_rt_worker_stats(NULL, 0, &st), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 2, &st), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 100000, &st), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 0, NULL), -EINVAL);

	assert_int_equal(coev_rt_spawn(rt, "stats-main", stats_main, NULL, &t),
			 0);
	assert_int_equal(join_or_fail(t, NULL, "stats-main"), 0);
	sum_stats(rt, &sum);
	coev_rt_free(rt);
	tu_assert_no_failures();

	/* Every task ran to its end on some worker: main and its children.
	 * Each ran at least twice (the leaves yield once). */
	assert_true(sum.finished >= STATS_TASKS + 1);
	assert_true(sum.spawned >= STATS_TASKS);
	assert_true(sum.polls >= (uint64_t)STATS_TASKS + 1);
	assert_true(sum.polls >= sum.finished);
	/* The main task came from outside: through the inject queue. */
	assert_true(sum.inject_pops >= 1);
	assert_true(sum.stacks_mapped >= 1);
	assert_true(sum.stacks_pooled <= sum.stacks_mapped);
	assert_true(sum.stolen >= sum.steal_ops);
}

/* ---- the owner's batch (worker.c, "The owner's batch") ---------------- */

/*
 * One worker, so nothing is stolen: the main task M spawns S, R, Y and Z
 * and ends. Each spawn displaces the last into the ring: the ring holds
 * S, R, Y and the LIFO slot Z. The worker runs Z, then claims half of the
 * ring rounded up (S and R) into its batch and runs S, leaving R in the
 * batch and Y in the ring. S, as the monitor would while S runs,
 * calls coev__worker_batch_rescue: first with a run_seq that is not the
 * current run's (the owner "left the run": the batch must stay), then
 * with the current one (R must move to the inject queue). Then Y runs
 * from the ring before R from the inject queue, and the worker clears
 * batch_gone.
 */
typedef struct batch_scene {
	atomic_int order[4]; /* which of S, R, Y, Z ran n-th */
	atomic_int ran;
	int left_before, left_kept, left_after, gone, inject_len;
	bool r_in_batch;
	coev_task_t *r;
} batch_scene_t;

static batch_scene_t bs;

enum { B_S, B_R, B_Y, B_Z };

static void batch_mark(int who)
{
	atomic_store(&bs.order[atomic_fetch_add(&bs.ran, 1)], who);
}

static int batch_leaf(void *arg)
{
	batch_mark((int)(intptr_t)arg);
	return 0;
}

static unsigned batch_left(struct coev_worker *w)
{
	return atomic_load(&w->batch_n) - atomic_load(&w->batch_i);
}

static int batch_s(void *arg)
{
	struct coev_worker *w = coev__worker_self();
	uint_fast64_t seq = atomic_load(&w->run_seq);

	(void)arg;
	batch_mark(B_S);
	bs.left_before = (int)batch_left(w);
	bs.r_in_batch =
		bs.left_before == 1 &&
		coev__entry_task(w->batch[atomic_load(&w->batch_i)]) == bs.r;
	/* A run the worker has left: the rescue backs off. */
	coev__worker_batch_rescue(w, seq - 2);
	bs.left_kept = (int)batch_left(w);
	TU_CHECK_EQ(atomic_load(&w->batch_gone), 0);
	/* This run, still going: the batch goes to the inject queue. */
	coev__worker_batch_rescue(w, seq);
	bs.left_after = (int)batch_left(w);
	bs.gone = (int)atomic_load(&w->batch_gone);
	bs.inject_len = (int)atomic_load(&w->rt->inject.len);
	return 0;
}

static int batch_main(void *arg)
{
	(void)arg;
	TU_CHECK_EQ(coev_spawn(batch_s, NULL, NULL), 0);
	TU_CHECK_EQ(coev_spawn(batch_leaf, (void *)(intptr_t)B_R, &bs.r), 0);
	TU_CHECK_EQ(coev_spawn(batch_leaf, (void *)(intptr_t)B_Y, NULL), 0);
	TU_CHECK_EQ(coev_spawn(batch_leaf, (void *)(intptr_t)B_Z, NULL), 0);
	return 0;
}

static void test_worker_batch_rescued_from_stuck_run(void **state)
{
	coev_config_t cfg = tu_config(1);
	coev_rt_t *rt;
	coev_task_t *t;

	(void)state;
	memset(&bs, 0, sizeof bs);
	cfg.debug &= ~COEV_DEBUG_MIGRATE;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_spawn(rt, "batch-main", batch_main, NULL, &t),
			 0);
	assert_int_equal(join_or_fail(t, NULL, "batch-main"), 0);
	assert_int_equal(tu_thread_wait_at_least(&bs.ran, 4), 0);
	assert_int_equal(join_or_fail(bs.r, NULL, "batch-r"), 0);
	assert_int_equal(atomic_load(&rt->workers[0]->batch_gone), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();

	assert_int_equal(atomic_load(&bs.order[0]), B_Z);
	assert_int_equal(atomic_load(&bs.order[1]), B_S);
	assert_true(bs.r_in_batch);
	assert_int_equal(bs.left_before, 1);
	assert_int_equal(bs.left_kept, 1);
	assert_int_equal(bs.left_after, 0);
	assert_int_equal(bs.gone, 2);
	assert_int_equal(bs.inject_len, 1);
	/* Y from the ring, then R from the inject queue. */
	assert_int_equal(atomic_load(&bs.order[2]), B_Y);
	assert_int_equal(atomic_load(&bs.order[3]), B_R);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_batch_rescued_from_stuck_run),
		cmocka_unit_test(test_worker_park_outside_task_aborts),
		cmocka_unit_test(test_worker_stealing_moves_tasks),
		cmocka_unit_test(test_worker_no_lost_wakes_one_pair),
		cmocka_unit_test(test_worker_no_lost_wakes_spin_then_park),
		cmocka_unit_test(test_worker_no_lost_wakes_many_pairs),
		cmocka_unit_test(test_worker_no_lost_wakes_fan_out_fan_in),
		cmocka_unit_test(
			test_worker_no_lost_wakes_more_workers_than_cores),
		cmocka_unit_test(test_worker_wake_from_foreign_thread),
		cmocka_unit_test(test_worker_foreign_spawn_wakes_single_worker),
		cmocka_unit_test(test_worker_foreign_spawn_wakes_two_workers),
		cmocka_unit_test(
			test_worker_spawn_at_start_wakes_single_worker),
		cmocka_unit_test(test_worker_spawn_at_start_wakes_two_workers),
		cmocka_unit_test(test_worker_spawn_as_single_worker_idles),
		cmocka_unit_test(test_worker_spawn_as_two_workers_idle),
		cmocka_unit_test(test_worker_wake_before_park_is_kept),
		cmocka_unit_test(test_worker_wake_while_running_is_kept),
		cmocka_unit_test(test_worker_stats_count_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
