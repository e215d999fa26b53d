/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_affinity.c — loop affinity (include/coev/bridge.h):
 * coev_pin keeps a task on its worker through yields, sleeps, fd waits,
 * timed waits and wakes from other threads while busy tasks would steal
 * it; coev_pin_to moves it and keeps it; nesting and the error codes;
 * coev_ev_loop; coev_submit and coev_submit_to (fn on the right worker's
 * thread, outside any task, in posting order; results; errors; a cancelled
 * submit skips fn; submits pending when the runtime is freed complete with
 * -ESHUTDOWN; submits to an idle worker round after round; many posters
 * at once, each submit run exactly once).
 *
 * Choices: every runtime has 2 workers, so "stays on its worker" is
 * measured against a worker that would otherwise take the task; an
 * unpinned control task runs the same steps and its moves are printed
 * (never asserted: how often it moves is the scheduler's business). A
 * worker is kept busy ("stuck") by a task pinned there that spins without
 * yielding, which is the only way to hold a submit before it runs. Task
 * and thread bodies record failures with TU_CHECK.
 */
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <ev.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

/* Tell the CPU this is a spin-wait loop. */
static void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* ---- helpers -------------------------------------------------------------- */

/* A worker kept busy by a pinned task that never yields until released. */
typedef struct stuck {
	unsigned worker;
	atomic_int ready, release;
} stuck_t;

static int stuck_task(void *arg)
{
	stuck_t *s = arg;

	TU_CHECK_EQ(coev_pin_to(s->worker), 0);
	TU_CHECK_EQ(coev_worker_id(), (int)s->worker);
	atomic_store(&s->ready, 1);
	while (!atomic_load(&s->release))
		cpu_pause();
	coev_unpin();
	return 0;
}

static int ret_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int count_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

static int complete_fn(void *arg)
{
	return coev_future_set(arg, 1);
}

/* coev_submit_to with the guard as deadline: a submit that never runs
 * fails a check instead of hanging the binary. */
static int submit_wait(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		       int *result)
{
	coev_future_t *f;
	int r = coev_submit(rt, i, fn, arg, &f);

	if (r < 0)
		return r;
	r = coev_future_await_dl(f, tu_guard(), result);
	coev_future_release(f);
	return r;
}

/* What a pinned task and its control go through each round. */
typedef struct steps {
	coev_rt_t *rt;
	atomic_int stop;
	int rounds;
} steps_t;

static int write_byte(void *arg)
{
	char c = 'x';

	coev_sleep(COEV_USEC(20));
	TU_CHECK_EQ(coev_write((int)(intptr_t)arg, &c, 1, tu_guard()), 1);
	return 0;
}

/* Sets an event from a task pinned to another worker. */
typedef struct setter {
	coev_event_t *ev;
	unsigned worker;
} setter_t;

static int set_from(void *arg)
{
	setter_t *st = arg;

	TU_CHECK_EQ(coev_pin_to(st->worker), 0);
	coev_sleep(COEV_USEC(10));
	coev_event_set(st->ev);
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

/* Runs every kind of wait once and counts the steps after which the task
 * is not on worker `on` (on < 0: counts moves from wherever it was). */
static int run_steps(steps_t *s, int on, int fds[2])
{
	coev_event_t never = COEV_EVENT_INIT;
	int bad = 0, where = on >= 0 ? on : coev_worker_id();
	char c;

#define STEP_DONE()                                       \
	do {                                              \
		if (coev_worker_id() != where) {          \
			bad++;                            \
			if (on < 0)                       \
				where = coev_worker_id(); \
		}                                         \
	} while (0)

	coev_yield();
	STEP_DONE();
	TU_CHECK_EQ(coev_sleep(COEV_USEC(30)), 0);
	STEP_DONE();
	TU_CHECK_EQ(coev_sleep(0), 0);
	STEP_DONE();
	/* An fd wait, woken by another task's write. */
	TU_CHECK_EQ(coev_spawn(write_byte, (void *)(intptr_t)fds[1], NULL), 0);
	TU_CHECK_EQ(coev_read(fds[0], &c, 1, tu_guard()), 1);
	STEP_DONE();
	/* A timed wait that times out. */
	TU_CHECK_EQ(coev_event_wait_dl(&never, coev_now() + COEV_USEC(30)),
		    -ETIMEDOUT);
	STEP_DONE();
	/* Waits woken from the other worker's thread (a submit's fn), with
	 * and without a deadline. */
	for (int dl = 0; dl < 2; dl++) {
		coev_future_t *f;
		unsigned other = (unsigned)(coev_worker_id() ^ 1);
		TU_CHECK_EQ(coev_future_new(&f), 0);
		TU_CHECK_EQ(coev_submit(s->rt, other, complete_fn, f, NULL), 0);
		TU_CHECK_EQ(dl ? coev_future_wait_dl(f, tu_guard(), NULL)
			       : coev_future_wait(f, NULL),
			    0);
		STEP_DONE();
		coev_future_release(f);
	}
	/* Woken by a task on the other worker, then joining it there. */
	{
		coev_event_t ev = COEV_EVENT_INIT;
		setter_t st = {&ev, (unsigned)(coev_worker_id() ^ 1)};
		coev_task_t *t;

		TU_CHECK_EQ(coev_spawn(set_from, &st, &t), 0);
		TU_CHECK_EQ(coev_event_wait(&ev), 0);
		STEP_DONE();
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		STEP_DONE();
		coev_event_destroy(&ev);
	}
	/* A call on the blocking pool, woken from a pool thread. */
	{
		int res = -1;

		TU_CHECK_EQ(coev_blocking(ret_arg, (void *)9, tu_guard(), &res),
			    0);
		TU_CHECK_EQ(res, 9);
		STEP_DONE();
	}
	/* An fd wait that times out. */
	TU_CHECK_EQ(coev_wait_fd(fds[0], COEV_READ, coev_now() + COEV_USEC(20)),
		    -ETIMEDOUT);
	STEP_DONE();
#undef STEP_DONE
	coev_event_destroy(&never);
	return bad;
}

static int busy_task(void *arg)
{
	steps_t *s = arg;
	unsigned n = 0;

	while (!atomic_load(&s->stop)) {
		tu_spin_ns(COEV_USEC(30));
		if (++n % 4 == 0)
			coev_sleep(COEV_USEC(50));
		else
			coev_yield();
	}
	return 0;
}

typedef struct pinned {
	steps_t *s;
	int target; /* -1: coev_pin where it is; else coev_pin_to(target) */
	int control;
	long moves;
	int home;
} pinned_t;

static int pinned_task(void *arg)
{
	pinned_t *p = arg;
	int fds[2];

	TU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds),
		    0);
	if (!p->control) {
		if (p->target < 0)
			TU_CHECK_EQ(coev_pin(), 0);
		else
			TU_CHECK_EQ(coev_pin_to((unsigned)p->target), 0);
	}
	p->home = coev_worker_id();
	if (p->target >= 0 && !p->control)
		TU_CHECK_EQ(p->home, p->target);
	for (int i = 0; i < p->s->rounds; i++)
		p->moves += run_steps(p->s, p->control ? -1 : p->home, fds);
	if (!p->control)
		TU_CHECK_EQ(coev_unpin(), 0);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

#define PIN_ROUNDS TU_SCALE(2000, 1000, 500)
#define PIN_BUSY 4

static int pin_main(void *arg)
{
	steps_t s = {.rt = coev_rt_current(), .rounds = PIN_ROUNDS};
	coev_task_t *busy[PIN_BUSY], *t[4];
	pinned_t p[4] = {{.s = &s, .target = -1},
			 {.s = &s, .target = 0},
			 {.s = &s, .target = 1},
			 {.s = &s, .target = -1, .control = 1}};

	(void)arg;
	for (int i = 0; i < PIN_BUSY; i++)
		TU_CHECK_EQ(coev_spawn(busy_task, &s, &busy[i]), 0);
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_spawn(pinned_task, &p[i], &t[i]), 0);
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	atomic_store(&s.stop, 1);
	for (int i = 0; i < PIN_BUSY; i++)
		TU_CHECK_EQ(coev_join(busy[i], NULL), 0);
	for (int i = 0; i < 3; i++)
		TU_CHECK_MSG(p[i].moves == 0,
			     "pinned task %d (home %d) left its worker %ld "
			     "times",
			     i, p[i].home, p[i].moves);
	print_message("unpinned control: moved %ld times in %d steps\n",
		      p[3].moves, PIN_ROUNDS * 11);
	return 0;
}

/* Proves: a pinned task (coev_pin where it is, coev_pin_to each worker)
 * stays on its worker after every yield, sleep, fd wait, timed wait,
 * wake from the other worker's thread, join of a task there and call on
 * the blocking pool, while
 * busy tasks keep both workers stealing. */
static void test_affinity_pin_keeps_task_on_worker(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(pin_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- nesting and codes ---------------------------------------------------- */

static int nest_main(void *arg)
{
	steps_t s = {.rt = coev_rt_current(), .rounds = 1};
	int fds[2], me, other;

	(void)arg;
	TU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds),
		    0);
	TU_CHECK_EQ(coev_unpin(), -EINVAL);
	TU_CHECK_EQ(coev_pin_to(2), -EINVAL);
	TU_CHECK_EQ(coev_pin_to(UINT_MAX), -EINVAL);
	TU_CHECK_EQ(coev_pin(), 0);
	me = coev_worker_id();
	other = me ^ 1;
	TU_CHECK(me == 0 || me == 1);
	TU_CHECK_EQ(coev_pin_to((unsigned)other), -EBUSY);
	TU_CHECK_EQ(coev_pin_to(2), -EINVAL);
	TU_CHECK_EQ(coev_pin_to((unsigned)me), 0); /* nests */
	TU_CHECK_EQ(coev_pin(), 0);
	TU_CHECK_EQ(run_steps(&s, me, fds), 0);
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK_EQ(run_steps(&s, me, fds), 0);
	TU_CHECK_EQ(coev_pin_to((unsigned)other), -EBUSY);
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK_EQ(run_steps(&s, me, fds), 0);
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK_EQ(coev_unpin(), -EINVAL);
	/* Unpinned: moved to the other worker and kept there. */
	TU_CHECK_EQ(coev_pin_to((unsigned)other), 0);
	TU_CHECK_EQ(coev_worker_id(), other);
	TU_CHECK_EQ(run_steps(&s, other, fds), 0);
	TU_CHECK_EQ(coev_pin_to((unsigned)me), -EBUSY);
	TU_CHECK_EQ(coev_worker_id(), other);
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK_EQ(coev_unpin(), -EINVAL);
	/* And back, through a cancellation pending on the task: pin_to
	 * still moves (a yield ignores it). */
	coev_cancel(coev_self());
	TU_CHECK_EQ(coev_pin_to((unsigned)me), 0);
	TU_CHECK_EQ(coev_worker_id(), me);
	TU_CHECK_EQ(coev_unpin(), 0);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

/* Proves: pins nest (each needs its own unpin); unpin without a pin is
 * -EINVAL; pin_to another worker while pinned is -EBUSY, to the same one
 * nests; out of range is -EINVAL; pin_to moves the task and keeps it. */
static void test_affinity_pin_nesting_and_codes(void **state)
{
	for (int i = 0; i < TU_SCALE(20, 10, 5); i++)
		assert_int_equal(tu_run_main(nest_main, NULL, 2), 0);
	(void)state;
	tu_assert_no_failures();
}

/* ---- outside tasks; coev_ev_loop ------------------------------------------ */

typedef struct outside {
	int pin, pin_to, unpin, submit_to, worker, self_null;
	struct ev_loop *loop;
} outside_t;

static void outside_calls(outside_t *o)
{
	o->pin = coev_pin();
	o->pin_to = coev_pin_to(0);
	o->unpin = coev_unpin();
	o->worker = coev_worker_id();
	o->self_null = coev_self() == NULL;
	o->loop = coev_ev_loop();
}

static int outside_fn(void *arg)
{
	outside_t *o = arg;
	int r = 0;

	outside_calls(o);
	/* A loop callback may not wait for its own submit. */
	o->submit_to = coev_submit_to(NULL, 0, ret_arg, NULL, &r);
	return 0;
}

static int loop_of_task(void *arg)
{
	struct ev_loop **loops = arg;

	TU_CHECK_EQ(coev_pin(), 0);
	for (int i = 0; i < 10; i++) {
		TU_CHECK(coev_ev_loop() == loops[coev_worker_id()]);
		coev_sleep(COEV_USEC(10));
	}
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

/* Proves: pin, pin_to and unpin give COEV_ENOTCORO on a plain thread and in
 * a loop callback; coev_ev_loop is NULL on a plain thread, and each
 * worker's own loop (distinct, the same for its tasks and callbacks) on
 * a worker; submit_to from a loop callback is COEV_ENOTCORO. */
static void test_affinity_outside_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	outside_t o[2], plain;
	struct ev_loop *loops[2];
	coev_task_t *t;

	(void)state;
	outside_calls(&plain);
	assert_int_equal(plain.pin, COEV_ENOTCORO);
	assert_int_equal(plain.pin_to, COEV_ENOTCORO);
	assert_int_equal(plain.unpin, COEV_ENOTCORO);
	assert_int_equal(plain.worker, -1);
	assert_null(plain.loop);
	for (unsigned i = 0; i < 2; i++) {
		int r = -1;
		memset(&o[i], 0, sizeof o[i]);
		assert_int_equal(coev_submit_to(rt, i, outside_fn, &o[i], &r),
				 0);
		assert_int_equal(r, 0);
		assert_int_equal(o[i].pin, COEV_ENOTCORO);
		assert_int_equal(o[i].pin_to, COEV_ENOTCORO);
		assert_int_equal(o[i].unpin, COEV_ENOTCORO);
		assert_int_equal(o[i].submit_to, COEV_ENOTCORO);
		assert_int_equal(o[i].worker, (int)i);
		assert_int_equal(o[i].self_null, 1);
		assert_non_null(o[i].loop);
		loops[i] = o[i].loop;
	}
	assert_ptr_not_equal(loops[0], loops[1]);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(
			coev_rt_spawn(rt, "loop", loop_of_task, loops, &t), 0);
		assert_int_equal(coev_join(t, NULL), 0);
	}
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* A watcher a library starts on coev_ev_loop fires while the worker never
 * parks: the worker's fairness poll runs the loop although coev itself has
 * no timer or fd armed there (it skips polls that could find nothing). */
typedef struct lent {
	ev_io io;
	atomic_int fired;
} lent_t;

static void lent_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	lent_t *l = (lent_t *)io;

	(void)loop;
	(void)revents;
	atomic_store(&l->fired, 1);
	ev_io_stop(loop, io);
}

#define LENT_YIELDS 10000000L

static int lent_main(void *arg)
{
	lent_t *l = arg;
	struct ev_loop *loop = coev_ev_loop();
	int fds[2];
	long n = 0;

	TU_CHECK(loop != NULL);
	TU_CHECK_EQ(pipe(fds), 0);
	ev_io_init(&l->io, lent_cb, fds[0], EV_READ);
	ev_io_start(loop, &l->io);
	TU_CHECK_EQ(write(fds[1], "x", 1), 1);
	/* One worker, one task that only yields: the worker never parks,
	 * so only its fairness poll can run the watcher. The bound turns a
	 * poll that never comes into a failure, not a hang. */
	while (!atomic_load(&l->fired) && n < LENT_YIELDS) {
		TU_CHECK_EQ(coev_yield(), 0);
		n++;
	}
	TU_CHECK_MSG(atomic_load(&l->fired),
		     "the loop's watcher did not fire in %ld yields", n);
	if (!atomic_load(&l->fired))
		ev_io_stop(loop, &l->io);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

static void test_affinity_lent_loop_polled_while_busy(void **state)
{
	lent_t l;

	(void)state;
	memset(&l, 0, sizeof l);
	assert_int_equal(tu_run_main(lent_main, &l, 1), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&l.fired), 1);
}

/* ---- submit: where, when, in which order ---------------------------------- */

#define ORD_POSTERS 4 /* two plain threads, two tasks */
#define ORD_ITEMS TU_SCALE(5000, 5000, 2000)

typedef struct ord ord_t;

typedef struct ord_item {
	ord_t *o;
	int poster, worker, seq;
} ord_item_t;

struct ord {
	coev_rt_t *rt;
	ord_item_t items[ORD_POSTERS][ORD_ITEMS];
	atomic_int next[ORD_POSTERS][2]; /* [worker w's thread] */
	atomic_int ran, bad_worker, bad_order, in_task;
};

static int ord_fn(void *arg)
{
	ord_item_t *it = arg;
	ord_t *o = it->o;

	if (coev_worker_id() != it->worker)
		atomic_fetch_add(&o->bad_worker, 1);
	if (coev_self() != NULL)
		atomic_fetch_add(&o->in_task, 1);
	int exp = atomic_load_explicit(&o->next[it->poster][it->worker],
				       memory_order_relaxed);
	if (it->seq != exp)
		atomic_fetch_add(&o->bad_order, 1);
	atomic_store_explicit(&o->next[it->poster][it->worker], it->seq + 1,
			      memory_order_relaxed);
	atomic_fetch_add(&o->ran, 1);
	return it->seq;
}

static void ord_post(ord_t *o, int poster, coev_rt_t *rt)
{
	int seq[2] = {0, 0};
	coev_future_t *kept[ORD_ITEMS / 64 + 1];
	int nkept = 0, kept_seq[ORD_ITEMS / 64 + 1];

	for (int i = 0; i < ORD_ITEMS; i++) {
		ord_item_t *it = &o->items[poster][i];
		coev_future_t **out = NULL;

		it->o = o;
		it->poster = poster;
		it->worker = (i * 7 + poster) % 3 == 0 ? 1 : i & 1;
		it->seq = seq[it->worker]++;
		if (i % 64 == 0) {
			out = &kept[nkept];
			kept_seq[nkept++] = it->seq;
		}
		TU_CHECK_EQ(
			coev_submit(rt, (unsigned)it->worker, ord_fn, it, out),
			0);
	}
	for (int k = 0; k < nkept; k++) {
		int res = -1;
		TU_CHECK_EQ(coev_future_wait(kept[k], &res), 0);
		TU_CHECK_EQ(res, kept_seq[k]);
		coev_future_release(kept[k]);
	}
	/* Everything this poster sent to w ran before this. */
	for (unsigned w = 0; w < 2; w++) {
		int r = -1;
		TU_CHECK_EQ(coev_submit_to(rt, w, ret_arg, (void *)7, &r), 0);
		TU_CHECK_EQ(r, 7);
		TU_CHECK_EQ(atomic_load(&o->next[poster][w]), seq[w]);
	}
}

typedef struct ord_arg {
	ord_t *o;
	int poster;
} ord_arg_t;

static void *ord_thread(void *arg)
{
	ord_arg_t *a = arg;

	ord_post(a->o, a->poster, a->o->rt);
	return NULL;
}

static int ord_task(void *arg)
{
	ord_arg_t *a = arg;

	ord_post(a->o, a->poster, NULL); /* NULL: the task's runtime */
	return 0;
}

/* Proves: coev_submit runs fn on worker i's thread, outside any task,
 * exactly once, in the order one poster posted (plain threads, and tasks
 * with rt NULL), and completes the future with fn's result. */
static void test_affinity_submit_where_and_order(void **state)
{
	ord_t *o = calloc(1, sizeof *o);
	ord_arg_t a[ORD_POSTERS];
	pthread_t th[2];
	coev_task_t *t[2];

	(void)state;
	assert_non_null(o);
	o->rt = tu_new_rt(2);
	for (int p = 0; p < ORD_POSTERS; p++)
		a[p] = (ord_arg_t){o, p};
	for (int p = 0; p < 2; p++)
		assert_int_equal(
			pthread_create(&th[p], NULL, ord_thread, &a[p]), 0);
	for (int p = 0; p < 2; p++)
		assert_int_equal(coev_rt_spawn(o->rt, "poster", ord_task,
					       &a[2 + p], &t[p]),
				 0);
	for (int p = 0; p < 2; p++) {
		pthread_join(th[p], NULL);
		assert_int_equal(coev_join(t[p], NULL), 0);
	}
	assert_int_equal(coev_rt_shutdown(o->rt, tu_guard()), 0);
	coev_rt_free(o->rt);
	assert_int_equal(atomic_load(&o->ran), ORD_POSTERS * ORD_ITEMS);
	assert_int_equal(atomic_load(&o->bad_worker), 0);
	assert_int_equal(atomic_load(&o->bad_order), 0);
	assert_int_equal(atomic_load(&o->in_task), 0);
	tu_assert_no_failures();
	free(o);
}

static int submit_to_main(void *arg)
{
	int r = 0;

	(void)arg;
	for (unsigned w = 0; w < 2; w++) {
		TU_CHECK_EQ(coev_submit_to(NULL, w, ret_arg, (void *)42, &r),
			    0);
		TU_CHECK_EQ(r, 42);
		TU_CHECK_EQ(coev_submit_to(NULL, w, ret_arg,
					   (void *)(intptr_t)-EIO, &r),
			    0);
		TU_CHECK_EQ(r, -EIO);
		TU_CHECK_EQ(coev_submit_to(NULL, w, ret_arg, NULL, NULL), 0);
	}
	/* To its own worker, pinned: fn runs once the task waits. */
	TU_CHECK_EQ(coev_pin(), 0);
	TU_CHECK_EQ(coev_submit_to(NULL, (unsigned)coev_worker_id(), ret_arg,
				   (void *)5, &r),
		    0);
	TU_CHECK_EQ(r, 5);
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK_EQ(coev_submit(NULL, 2, ret_arg, NULL, NULL), -EINVAL);
	TU_CHECK_EQ(coev_submit(NULL, 0, NULL, NULL, NULL), -EINVAL);
	TU_CHECK_EQ(coev_submit_to(NULL, 2, ret_arg, NULL, &r), -EINVAL);
	return 0;
}

/* Proves: submit_to returns 0 with fn's result (also a negative one), from
 * a task (rt NULL) and a plain thread; the argument errors: COEV_ENOTRT
 * for rt NULL outside a task, -EINVAL for a bad index or a NULL fn. */
static void test_affinity_submit_to_results_and_errors(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_future_t *f = NULL;
	int r = 0;

	(void)state;
	assert_int_equal(coev_submit(NULL, 0, ret_arg, NULL, &f), COEV_ENOTRT);
	assert_null(f);
	assert_int_equal(coev_submit_to(NULL, 0, ret_arg, NULL, &r),
			 COEV_ENOTRT);
	assert_int_equal(coev_submit(rt, 2, ret_arg, NULL, &f), -EINVAL);
	assert_int_equal(coev_submit(rt, UINT_MAX, ret_arg, NULL, &f), -EINVAL);
	assert_int_equal(coev_submit(rt, 0, NULL, NULL, &f), -EINVAL);
	assert_int_equal(coev_submit_to(rt, 2, ret_arg, NULL, &r), -EINVAL);
	assert_null(f);
	assert_int_equal(coev_submit_to(rt, 1, ret_arg, (void *)3, &r), 0);
	assert_int_equal(r, 3);
	assert_int_equal(coev_submit(rt, 0, ret_arg, (void *)4, &f), 0);
	assert_int_equal(coev_future_wait(f, &r), 0);
	assert_int_equal(r, 4);
	coev_future_release(f);
	coev_task_t *t;
	assert_int_equal(coev_rt_spawn(rt, "main", submit_to_main, NULL, &t),
			 0);
	assert_int_equal(coev_join(t, NULL), 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	/* Shut down: refused, nothing posted. */
	f = NULL;
	assert_int_equal(coev_submit(rt, 0, ret_arg, NULL, &f), -ESHUTDOWN);
	assert_null(f);
	assert_int_equal(coev_submit_to(rt, 0, ret_arg, NULL, &r), -ESHUTDOWN);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- submit: cancelled before it ran; pending at free ---------------------- */

typedef struct sub_waiter {
	coev_rt_t *rt;
	atomic_int *count;
	atomic_int arrived;
	int rc;
} sub_waiter_t;

static int submit_to_waiter(void *arg)
{
	sub_waiter_t *w = arg;
	int r = 99;

	atomic_store(&w->arrived, 1);
	w->rc = coev_submit_to(NULL, 1, count_fn, w->count, &r);
	TU_CHECK_EQ(r, 99);
	return 0;
}

/* Proves: a submit whose future is cancelled before fn starts skips fn
 * (the future keeps -ECANCELED), both by coev_future_cancel and by
 * cancelling a task waiting in coev_submit_to. */
static void test_affinity_submit_cancelled_skips_fn(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	stuck_t s = {.worker = 1};
	atomic_int count = 0;
	sub_waiter_t w = {.rt = rt, .count = &count};
	coev_future_t *f;
	coev_task_t *ts, *tw;
	int res = 0;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "stuck", stuck_task, &s, &ts), 0);
	assert_int_equal(tu_thread_wait_at_least(&s.ready, 1), 0);
	/* Worker 1 is busy: these wait in its post stack. */
	assert_int_equal(coev_submit(rt, 1, count_fn, &count, &f), 0);
	assert_int_equal(coev_future_poll(f, NULL), -EAGAIN);
	assert_int_equal(coev_future_cancel(f), 0);
	assert_int_equal(coev_rt_spawn(rt, "waiter", submit_to_waiter, &w, &tw),
			 0);
	assert_int_equal(tu_thread_wait_at_least(&w.arrived, 1), 0);
	/* The waiter waits on its submit's future. */
	assert_int_equal(tu_wait_parked(rt, tw, COEV_WAIT_FUTURE, NULL), 0);
	assert_int_equal(coev_cancel(tw), 0);
	assert_int_equal(coev_join(tw, NULL), 0);
	assert_int_equal(w.rc, -ECANCELED);
	atomic_store(&s.release, 1);
	assert_int_equal(coev_join(ts, NULL), 0);
	/* A later submit to worker 1 runs after those two. */
	assert_int_equal(coev_submit_to(rt, 1, ret_arg, (void *)1, &res), 0);
	assert_int_equal(res, 1);
	assert_int_equal(atomic_load(&count), 0);
	assert_int_equal(coev_future_poll(f, &res), 0);
	assert_int_equal(res, -ECANCELED);
	assert_int_equal(coev_future_cancelled(f), 1);
	coev_future_release(f);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* A submit_to_dl to a stuck worker, measured by the caller. */
typedef struct dl_call {
	coev_rt_t *rt;
	atomic_int *count;
	int rc, res;
	coev_time_t took;
} dl_call_t;

#define DL_MS 100
#define DL_RATIO 15 /* the caller returns within 15 deadlines */

static void submit_to_dl_once(dl_call_t *c)
{
	coev_time_t t0 = coev_now();

	c->res = 99;
	c->rc = coev_submit_to_dl(c->rt, 1, count_fn, c->count, &c->res,
				  coev_deadline(COEV_MSEC(DL_MS)));
	c->took = coev_now() - t0;
}

static int submit_to_dl_task(void *arg)
{
	submit_to_dl_once(arg);
	return 0;
}

static void expect_timed_out(const dl_call_t *c, const char *who)
{
	if (c->rc != -ETIMEDOUT || c->res != 99 ||
	    c->took > DL_RATIO * COEV_MSEC(DL_MS))
		fail_msg("coev_submit_to_dl from %s to a stuck worker "
			 "returned %d (result %d) after %.3f s; expected "
			 "-ETIMEDOUT within %.3f s",
			 who, c->rc, c->res, (double)c->took / 1e9,
			 (double)(DL_RATIO * COEV_MSEC(DL_MS)) / 1e9);
}

/* Proves: coev_submit_to_dl to a worker stuck in a long task returns
 * -ETIMEDOUT at its deadline, from a task and from a plain thread, and
 * its fn never runs, even once the worker is free again. */
static void test_affinity_submit_to_dl_bounds_the_wait(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	stuck_t s = {.worker = 1};
	atomic_int count = 0;
	dl_call_t plain = {.rt = rt, .count = &count};
	dl_call_t task = {.rt = rt, .count = &count};
	coev_task_t *ts, *tt;
	int res = 0;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "stuck", stuck_task, &s, &ts), 0);
	assert_int_equal(tu_thread_wait_at_least(&s.ready, 1), 0);
	submit_to_dl_once(&plain);
	assert_int_equal(
		coev_rt_spawn(rt, "waiter", submit_to_dl_task, &task, &tt), 0);
	assert_int_equal(coev_join(tt, NULL), 0);
	atomic_store(&s.release, 1);
	assert_int_equal(coev_join(ts, NULL), 0);
	expect_timed_out(&plain, "a plain thread");
	expect_timed_out(&task, "a task");
	/* A later submit to worker 1 runs after those two. */
	assert_int_equal(coev_submit_to(rt, 1, ret_arg, (void *)1, &res), 0);
	assert_int_equal(res, 1);
	assert_int_equal(atomic_load(&count), 0);
	/* An idle worker answers well within the deadline. */
	res = 0;
	assert_int_equal(
		coev_submit_to_dl(rt, 1, ret_arg, (void *)2, &res, tu_guard()),
		0);
	assert_int_equal(res, 2);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

typedef struct blocked {
	coev_future_t *f;
	atomic_int arrived;
	int rc, res;
	tu_thread_at_t at;
} blocked_t;

static void *block_on(void *arg)
{
	blocked_t *b = arg;

	TU_THREAD_AT(&b->at);
	atomic_store(&b->arrived, 1);
	b->rc = coev_future_wait(b->f, &b->res);
	return NULL;
}

typedef struct release_after {
	coev_rt_t *rt;
	stuck_t *s;
	atomic_int *count;
} release_after_t;

/* Lets the stuck task go once the shutdown has given up on it: its
 * workers are stopping, and a submit is refused with -ESHUTDOWN (the
 * shutdown joins the workers, so it cannot return before this). A submit
 * taken before that stays pending and completes with -ESHUTDOWN at free,
 * unrun, like the test's own. */
static void *release_after_shutdown(void *arg)
{
	release_after_t *r = arg;
	coev_time_t dl = tu_guard();
	int rc;

	while ((rc = coev_submit(r->rt, 1, count_fn, r->count, NULL)) == 0 &&
	       coev_now() < dl)
		tu_nap_ms(1);
	TU_CHECK_EQ(rc, -ESHUTDOWN);
	atomic_store(&r->s->release, 1);
	return NULL;
}

/* Proves: a submit still pending when the runtime is freed completes with
 * -ESHUTDOWN (fn not run), waking a thread blocked on it; reached by
 * holding its worker in a task that outlives the shutdown deadline, so
 * the worker stops before it runs its posts. */
static void test_affinity_submit_pending_at_free(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	stuck_t s = {.worker = 1};
	atomic_int count = 0;
	blocked_t b = {.res = 99};
	pthread_t tb, tr;
	coev_future_t *f2;
	release_after_t ra = {.rt = rt, .s = &s, .count = &count};

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "stuck", stuck_task, &s, NULL), 0);
	assert_int_equal(tu_thread_wait_at_least(&s.ready, 1), 0);
	assert_int_equal(coev_submit(rt, 1, count_fn, &count, &b.f), 0);
	assert_int_equal(coev_submit(rt, 1, count_fn, &count, &f2), 0);
	assert_int_equal(coev_submit(rt, 1, count_fn, &count, NULL), 0);
	assert_int_equal(pthread_create(&tb, NULL, block_on, &b), 0);
	assert_int_equal(tu_thread_wait_at_least(&b.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&b.at), 0);
	assert_int_equal(pthread_create(&tr, NULL, release_after_shutdown, &ra),
			 0);
	/* The stuck task ignores its cancel past the deadline and ends only
	 * when the workers are told to stop (the releaser sees the submits
	 * refused then), before its worker leaves: none is abandoned. */
	assert_int_equal(coev_rt_shutdown(rt, coev_now() + COEV_MSEC(30)), 0);
	pthread_join(tr, NULL);
	assert_int_equal(coev_future_poll(b.f, NULL), -EAGAIN);
	assert_int_equal(coev_submit(rt, 1, count_fn, &count, NULL),
			 -ESHUTDOWN);
	coev_rt_free(rt);
	pthread_join(tb, NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.res, -ESHUTDOWN);
	int res = 0;
	assert_int_equal(coev_future_poll(f2, &res), 0);
	assert_int_equal(res, -ESHUTDOWN);
	assert_int_equal(atomic_load(&count), 0);
	coev_future_release(b.f);
	coev_future_release(f2);
	tu_assert_no_failures();
}

/* ---- submit: to an idle worker, round after round ----------------------- */

#define PP_ROUNDS TU_SCALE(20000, 20000, 10000)
#define PP_WAIT_S TU_SCALE(2, 3, 5)

/* Submits to worker `to` (or, when to < 0, the worker other than the
 * caller's) and waits for each with a short deadline. Returns the number
 * of rounds done; a submit not run in time is reported. */
static int ping_pong(coev_rt_t *rt, int to, const char *who)
{
	for (int i = 0; i < PP_ROUNDS; i++) {
		unsigned w = (unsigned)(to >= 0 ? to : coev_worker_id() ^ 1);
		coev_future_t *f;
		int res = -1;

		TU_CHECK_EQ(
			coev_submit(rt, w, ret_arg, (void *)(intptr_t)i, &f),
			0);
		int rc = coev_future_wait_dl(
			f, coev_deadline(COEV_SEC(PP_WAIT_S)), &res);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0,
				     "%s, round %d: a submit to idle worker %u "
				     "did not run within %d s (%d)",
				     who, i, w, PP_WAIT_S, rc);
			coev_future_cancel(f);
			coev_future_release(f);
			return i;
		}
		TU_CHECK_EQ(res, i);
		coev_future_release(f);
	}
	return PP_ROUNDS;
}

static int pp_task(void *arg)
{
	int pinned = (int)(intptr_t)arg;

	if (pinned)
		TU_CHECK_EQ(coev_pin(), 0);
	int n = ping_pong(coev_rt_current(), -1,
			  pinned ? "a pinned task" : "a task");
	if (pinned)
		TU_CHECK_EQ(coev_unpin(), 0);
	return n;
}

/* Proves: a submit to an idle (parked) worker always runs promptly: round
 * after round, from a plain thread and from tasks, each posted while the
 * target has just run the previous one and goes back to its loop (where
 * a doorbell eaten by its loop poll must not strand the post). */
static void test_affinity_submit_to_idle_worker(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	int n = -1;

	int done[3];

	(void)state;
	/* Stranded posts are dropped by coev_rt_free: assert after it. */
	done[0] = ping_pong(rt, 1, "a plain thread");
	for (int pinned = 0; pinned < 2; pinned++) {
		assert_int_equal(coev_rt_spawn(rt, "pp", pp_task,
					       (void *)(intptr_t)pinned, &t),
				 0);
		assert_int_equal(coev_join(t, &n), 0);
		done[1 + pinned] = n;
	}
	coev_rt_shutdown(rt, tu_guard());
	coev_rt_free(rt);
	tu_assert_no_failures();
	for (int i = 0; i < 3; i++)
		assert_int_equal(done[i], PP_ROUNDS);
}

/* ---- submit: many posters ---------------------------------------------------- */

#define ST_THREADS 2
#define ST_PER TU_SCALE(100000, 100000, 50000)

typedef struct stress {
	coev_rt_t *rt;
	atomic_uchar *seen; /* [ST_THREADS * ST_PER] */
	atomic_int bad;
} stress_t;

typedef struct st_item {
	stress_t *s;
	int idx;
	int worker;
} st_item_t;

static int st_fn(void *arg)
{
	st_item_t *it = arg;

	if (coev_worker_id() != it->worker)
		atomic_fetch_add(&it->s->bad, 1);
	atomic_fetch_add(&it->s->seen[it->idx], 1);
	return it->idx & 0xffff;
}

typedef struct st_arg {
	stress_t *s;
	int k;
	st_item_t *items;
} st_arg_t;

static void *st_thread(void *arg)
{
	st_arg_t *a = arg;

	for (int i = 0; i < ST_PER; i++) {
		st_item_t *it = &a->items[i];
		it->s = a->s;
		it->idx = a->k * ST_PER + i;
		it->worker = (i >> 3) & 1;
		if (i % 1000 == 999) {
			int res = -1;
			int rc = submit_wait(a->s->rt, (unsigned)it->worker,
					     st_fn, it, &res);
			TU_CHECK_MSG(rc == 0, "submit %d: %d", it->idx, rc);
			if (rc != 0)
				return NULL; /* the rest would wait as long */
			TU_CHECK_EQ(res, it->idx & 0xffff);
		} else {
			TU_CHECK_EQ(coev_submit(a->s->rt, (unsigned)it->worker,
						st_fn, it, NULL),
				    0);
		}
	}
	for (unsigned w = 0; w < 2; w++)
		TU_CHECK_EQ(submit_wait(a->s->rt, w, ret_arg, NULL, NULL), 0);
	return NULL;
}

/* Proves: two threads posting 100k submits each (most without a future)
 * get every fn run exactly once on its worker, all done by the time each
 * poster's final submit_to to each worker returns. */
static void test_affinity_submit_stress(void **state)
{
	stress_t s = {0};
	st_arg_t a[ST_THREADS];
	pthread_t th[ST_THREADS];

	(void)state;
	s.rt = tu_new_rt(2);
	s.seen = calloc(ST_THREADS * ST_PER, sizeof *s.seen);
	assert_non_null(s.seen);
	for (int k = 0; k < ST_THREADS; k++) {
		a[k] = (st_arg_t){&s, k, calloc(ST_PER, sizeof(st_item_t))};
		assert_non_null(a[k].items);
		assert_int_equal(pthread_create(&th[k], NULL, st_thread, &a[k]),
				 0);
	}
	for (int k = 0; k < ST_THREADS; k++)
		pthread_join(th[k], NULL);
	tu_assert_no_failures();
	for (int i = 0; i < ST_THREADS * ST_PER; i++)
		if (atomic_load(&s.seen[i]) != 1)
			fail_msg("submit %d ran %d times", i,
				 atomic_load(&s.seen[i]));
	assert_int_equal(atomic_load(&s.bad), 0);
	assert_int_equal(coev_rt_shutdown(s.rt, tu_guard()), 0);
	coev_rt_free(s.rt);
	for (int k = 0; k < ST_THREADS; k++)
		free(a[k].items);
	free(s.seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_affinity_pin_keeps_task_on_worker),
		cmocka_unit_test(test_affinity_pin_nesting_and_codes),
		cmocka_unit_test(test_affinity_outside_tasks),
		cmocka_unit_test(test_affinity_submit_where_and_order),
		cmocka_unit_test(test_affinity_submit_to_results_and_errors),
		cmocka_unit_test(test_affinity_submit_cancelled_skips_fn),
		cmocka_unit_test(test_affinity_submit_to_dl_bounds_the_wait),
		cmocka_unit_test(test_affinity_submit_pending_at_free),
		cmocka_unit_test(test_affinity_submit_to_idle_worker),
		cmocka_unit_test(test_affinity_submit_stress),
		cmocka_unit_test(test_affinity_lent_loop_polled_while_busy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
