/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_cancel.c — cancellation (include/coev/task.h): cancel
 * in the middle of a connect, a read, a sleep, a join and a blocking-pool
 * job; from a plain thread and from another worker; before a task first
 * runs and after it finished; stickiness, shields, pushed deadlines,
 * coev_wait_for, cancel racing completion, and shutdown cancelling what
 * is left.
 *
 * Only loopback sockets are used. Task bodies record failures with
 * TU_CHECK; the test thread checks tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

/* ---- helpers ------------------------------------------------------------ */

/* A long wait that only cancellation is expected to end. */
#define LONG_WAIT COEV_SEC(60)

/* "Promptly": far below LONG_WAIT, far above any scheduling delay. */
#define PROMPT COEV_SEC(5)

/* As a plain thread: the same with naps. */
static int thread_wait_at_least(atomic_int *v, int n)
{
	coev_time_t dl = coev_deadline(COEV_SEC(TU_GUARD_S));

	while (atomic_load(v) < n) {
		if (coev_now() > dl)
			return -ETIMEDOUT;
		tu_nap_ms(1);
	}
	return 0;
}

/* A connected TCP pair over 127.0.0.1, from a task. */
static int tcp_pair(int *c, int *s)
{
	int lfd = coev_tcp_listen("127.0.0.1", 0, 8, 0);

	*c = *s = -1;
	if (lfd < 0)
		return lfd;
	*c = coev_tcp_connect("127.0.0.1", (unsigned)coev_sock_port(lfd),
			      tu_guard());
	if (*c >= 0)
		*s = coev_accept(lfd, NULL, NULL, tu_guard());
	coev_close(lfd);
	if (*c < 0 || *s < 0) {
		int rc = *c < 0 ? *c : *s;
		if (*c >= 0)
			coev_close(*c);
		*c = *s = -1;
		return rc;
	}
	return 0;
}

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

/* A task that waits on something: it records the wait's result and how
 * long the wait took. */
typedef struct waiter {
	atomic_int started;
	atomic_int finished;
	int fd;			 /* for the I/O kinds */
	struct sockaddr_in addr; /* for connect */
	coev_task_t *peer;	 /* for join */
	long long rc;		 /* the wait's result */
	coev_time_t took;
	int resumed_on; /* worker after the wait */
	int started_on; /* worker before it */
	int after_rc;	/* the result of one more wait afterwards */
} waiter_t;

static void waiter_begin(waiter_t *w)
{
	w->started_on = coev_worker_id();
	atomic_store(&w->started, 1);
}

static int waiter_end(waiter_t *w, coev_time_t t0, long long rc)
{
	w->took = coev_now() - t0;
	w->rc = rc;
	w->resumed_on = coev_worker_id();
	/* Cancellation is sticky: the next wait fails the same way. */
	w->after_rc = coev_sleep(COEV_MSEC(1));
	atomic_store(&w->finished, 1);
	return (int)rc;
}

static int sleeper(void *arg)
{
	waiter_t *w = arg;

	waiter_begin(w);
	coev_time_t t0 = coev_now();
	return waiter_end(w, t0, coev_sleep(LONG_WAIT));
}

static int reader(void *arg)
{
	waiter_t *w = arg;
	char c;

	waiter_begin(w);
	coev_time_t t0 = coev_now();
	return waiter_end(w, t0, coev_read(w->fd, &c, 1, COEV_FOREVER));
}

static int connector(void *arg)
{
	waiter_t *w = arg;

	waiter_begin(w);
	coev_time_t t0 = coev_now();
	int rc = coev_connect(w->fd, (struct sockaddr *)&w->addr,
			      sizeof w->addr, COEV_FOREVER);
	return waiter_end(w, t0, rc);
}

/* Cancels t once it is parked in its wait (kind COEV_WAIT_*), joins it and
 * checks that the wait ended with -ECANCELED promptly and the task's next
 * wait did too. */
static void cancel_waiter_and_check(coev_task_t *t, waiter_t *w, int kind,
				    const char *what)
{
	int r = 0;

	TU_CHECK_EQ(tu_wait_at_least(&w->started, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, t, kind, NULL), 0);
	TU_CHECK_MSG(!atomic_load(&w->finished), "%s ended before the cancel",
		     what);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	coev_time_t took = coev_now() - t0;
	TU_CHECK_MSG(w->rc == -ECANCELED, "%s: the wait returned %lld (%s)",
		     what, w->rc, coev_strerror((int)w->rc));
	TU_CHECK_EQ(r, -ECANCELED);
	TU_CHECK_MSG(w->after_rc == -ECANCELED,
		     "%s: the wait after the cancel returned %d", what,
		     w->after_rc);
	TU_CHECK_MSG(took < PROMPT, "%s: cancel took %lld ns", what,
		     (long long)took);
}

/* ---- mid-connect -------------------------------------------------------- */

static int connect_main(void *arg)
{
	int held[32], nheld = 0, hung = 0;

	(void)arg;
	/* A listener with a backlog of 1 that never accepts: once its queue
	 * is full the kernel drops further SYNs and connects hang. */
	int lfd = coev_tcp_listen("127.0.0.1", 0, 1, 0);
	TU_CHECK(lfd >= 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port =
					   htons((uint16_t)coev_sock_port(lfd)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (int i = 0; i < 32 && !hung; i++) {
		int fd = coev_socket(AF_INET, SOCK_STREAM, 0);
		TU_CHECK(fd >= 0);
		int rc = coev_connect(fd, (struct sockaddr *)&addr, sizeof addr,
				      coev_now() + COEV_MSEC(200));
		if (rc == 0) {
			held[nheld++] = fd;
		} else {
			TU_CHECK_MSG(rc == -ETIMEDOUT, "connect %d: %s", i,
				     coev_strerror(rc));
			hung = rc == -ETIMEDOUT;
			coev_close(fd);
		}
	}
	TU_CHECK_MSG(hung, "no connect hung after %d connections", nheld);

	waiter_t w = {.addr = addr};
	coev_task_t *t;
	w.fd = coev_socket(AF_INET, SOCK_STREAM, 0);
	TU_CHECK(w.fd >= 0);
	TU_CHECK_EQ(coev_spawn_named("connector", connector, &w, &t), 0);
	cancel_waiter_and_check(t, &w, COEV_WAIT_FD, "connect");
	TU_CHECK_EQ(coev_close(w.fd), 0);
	for (int i = 0; i < nheld; i++)
		TU_CHECK_EQ(coev_close(held[i]), 0);
	TU_CHECK_EQ(coev_close(lfd), 0);
	return 0;
}

static void test_cancel_mid_connect(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(connect_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- mid-read, mid-sleep ------------------------------------------------ */

static int read_main(void *arg)
{
	waiter_t w = {0};
	coev_task_t *t;
	int peer;

	(void)arg;
	TU_CHECK_EQ(tcp_pair(&w.fd, &peer), 0);
	TU_CHECK_EQ(coev_spawn_named("reader", reader, &w, &t), 0);
	cancel_waiter_and_check(t, &w, COEV_WAIT_FD, "read");
	/* The cancelled read consumed nothing: the fd still works. */
	char buf[4];
	TU_CHECK_EQ(coev_write(peer, "abc", 3, tu_guard()), 3);
	TU_CHECK_EQ(coev_read_full(w.fd, buf, 3, NULL, tu_guard()), 3);
	TU_CHECK(memcmp(buf, "abc", 3) == 0);
	TU_CHECK_EQ(coev_close(w.fd), 0);
	TU_CHECK_EQ(coev_close(peer), 0);

	/* The same on a pipe. */
	int p[2];
	waiter_t w2 = {0};
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	w2.fd = p[0];
	TU_CHECK_EQ(coev_spawn_named("pipe-reader", reader, &w2, &t), 0);
	cancel_waiter_and_check(t, &w2, COEV_WAIT_FD, "pipe read");
	close(p[0]);
	close(p[1]);
	return 0;
}

static void test_cancel_mid_read(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(read_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int sleep_main(void *arg)
{
	waiter_t w = {0};
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_spawn_named("sleeper", sleeper, &w, &t), 0);
	cancel_waiter_and_check(t, &w, COEV_WAIT_TIMER, "sleep");
	TU_CHECK(w.took < PROMPT);
	return 0;
}

static void test_cancel_mid_sleep(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(sleep_main, NULL, 1), 0);
	assert_int_equal(tu_run_main(sleep_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- mid-join ----------------------------------------------------------- */

typedef struct joiner {
	waiter_t w;
	waiter_t child;
	int child_ret;
	int child_join_rc;
} joiner_t;

static int joiner(void *arg)
{
	joiner_t *j = arg;
	coev_task_t *c;

	TU_CHECK_EQ(coev_spawn_named("joined", sleeper, &j->child, &c), 0);
	waiter_begin(&j->w);
	coev_time_t t0 = coev_now();
	int rc = coev_join(c, &j->child_ret);
	/* The child is still ours: stop it and collect it. Being cancelled
	 * ourselves, only a shield lets the join wait. */
	TU_CHECK_EQ(coev_shield_begin(), 0);
	TU_CHECK_EQ(coev_cancel(c), 0);
	j->child_join_rc = coev_join(c, &j->child_ret);
	TU_CHECK_EQ(coev_shield_end(), 0);
	return waiter_end(&j->w, t0, rc);
}

static int join_main(void *arg)
{
	joiner_t j = {0};
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_spawn_named("joiner", joiner, &j, &t), 0);
	cancel_waiter_and_check(t, &j.w, COEV_WAIT_JOIN, "join");
	TU_CHECK_EQ(j.child_join_rc, 0);
	TU_CHECK_EQ(j.child_ret, -ECANCELED);
	TU_CHECK_EQ(j.child.rc, -ECANCELED);
	return 0;
}

static void test_cancel_mid_join(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(join_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- mid-blocking-job --------------------------------------------------- */

typedef struct job {
	atomic_int started;
	atomic_int finished;
	int usec;
	int value;
} job_t;

static int job_fn(void *arg)
{
	job_t *j = arg;

	atomic_store(&j->started, 1);
	if (j->usec > 0)
		usleep((useconds_t)j->usec);
	atomic_store(&j->finished, 1);
	return j->value;
}

typedef struct blk_caller {
	job_t *job;
	atomic_int calling;
	int rc;
	int ret;
	int job_finished_at_return;
	int next_wait_rc;
} blk_caller_t;

static int blk_caller(void *arg)
{
	blk_caller_t *b = arg;

	b->ret = -1;
	atomic_store(&b->calling, 1);
	b->rc = coev_blocking(job_fn, b->job, COEV_FOREVER, &b->ret);
	b->job_finished_at_return = atomic_load(&b->job->finished);
	b->next_wait_rc = coev_sleep(COEV_MSEC(1));
	return b->rc;
}

static int blocking_main(void *arg)
{
	coev_task_t *occ, *q, *r;
	job_t occupy = {.usec = 300000, .value = 1};
	job_t queued = {.value = 2};
	job_t running = {.usec = 200000, .value = 42};
	blk_caller_t bo = {.job = &occupy}, bq = {.job = &queued},
		     br = {.job = &running};

	(void)arg;
	/* The pool has one thread (blocking_max = 1): the occupant's job
	 * holds it, so the next job waits in the queue. */
	TU_CHECK_EQ(coev_spawn_named("occupant", blk_caller, &bo, &occ), 0);
	TU_CHECK_EQ(tu_wait_at_least(&occupy.started, 1), 0);
	TU_CHECK_EQ(coev_spawn_named("queued", blk_caller, &bq, &q), 0);
	TU_CHECK_EQ(tu_wait_at_least(&bq.calling, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, q, COEV_WAIT_BLOCKING, NULL), 0);
	TU_CHECK_EQ(coev_cancel(q), 0);
	TU_CHECK_EQ(coev_join(q, NULL), 0);
	TU_CHECK_EQ(bq.rc, -ECANCELED);
	TU_CHECK_EQ(bq.ret, -1);
	TU_CHECK_EQ(coev_join(occ, NULL), 0);
	TU_CHECK_EQ(bo.rc, 0);
	TU_CHECK_EQ(bo.ret, 1);

	/* A running job cannot be interrupted: the cancelled caller waits
	 * for it and gets its result; the cancel stays pending. */
	TU_CHECK_EQ(coev_spawn_named("running", blk_caller, &br, &r), 0);
	TU_CHECK_EQ(tu_wait_at_least(&running.started, 1), 0);
	TU_CHECK_EQ(coev_cancel(r), 0);
	TU_CHECK_EQ(coev_join(r, NULL), 0);
	TU_CHECK_EQ(br.rc, 0);
	TU_CHECK_EQ(br.ret, 42);
	TU_CHECK_EQ(br.job_finished_at_return, 1);
	TU_CHECK_EQ(br.next_wait_rc, -ECANCELED);

	/* The queue is FIFO: once a later job has run, the cancelled one
	 * would have run before it. It never does. */
	job_t later = {.value = 3};
	int ret = 0;
	TU_CHECK_EQ(coev_blocking(job_fn, &later, tu_guard(), &ret), 0);
	TU_CHECK_EQ(ret, 3);
	coev_sleep(COEV_MSEC(50)); /* a negative check: time to run wrongly */
	TU_CHECK_EQ(atomic_load(&queued.started), 0);
	return 0;
}

static void test_cancel_mid_blocking_job(void **state)
{
	coev_config_t cfg = tu_config(1);

	(void)state;
	cfg.blocking_max = 1;
	assert_int_equal(coev_run(blocking_main, NULL, &cfg), 0);
	tu_assert_no_failures();
}

/* ---- from a plain thread ------------------------------------------------ */

typedef struct foreign {
	coev_task_t *t[2];
	int rc[2];
} foreign_t;

static void *foreign_canceller(void *arg)
{
	foreign_t *f = arg;

	for (int i = 0; i < 2; i++)
		f->rc[i] = coev_cancel(f->t[i]);
	return NULL;
}

static void test_cancel_from_foreign_thread(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	waiter_t ws = {0}, wr = {0};
	foreign_t f;
	pthread_t th;
	int p[2], r0 = 0, r1 = 0;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	wr.fd = p[0];
	assert_int_equal(coev_rt_spawn(rt, "sleeper", sleeper, &ws, &f.t[0]),
			 0);
	assert_int_equal(coev_rt_spawn(rt, "reader", reader, &wr, &f.t[1]), 0);
	assert_int_equal(thread_wait_at_least(&ws.started, 1), 0);
	assert_int_equal(thread_wait_at_least(&wr.started, 1), 0);
	assert_int_equal(tu_wait_parked(rt, f.t[0], COEV_WAIT_TIMER, NULL), 0);
	assert_int_equal(tu_wait_parked(rt, f.t[1], COEV_WAIT_FD, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, foreign_canceller, &f), 0);
	pthread_join(th, NULL);
	assert_int_equal(f.rc[0], 0);
	assert_int_equal(f.rc[1], 0);
	assert_int_equal(coev_join(f.t[0], &r0), 0);
	assert_int_equal(coev_join(f.t[1], &r1), 0);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	close(p[0]);
	close(p[1]);
	tu_assert_no_failures();
	assert_int_equal(r0, -ECANCELED);
	assert_int_equal(r1, -ECANCELED);
	assert_int_equal(ws.after_rc, -ECANCELED);
	assert_int_equal(wr.after_rc, -ECANCELED);
	assert_true(ws.took < PROMPT);
}

/* ---- a wait on another worker's loop ------------------------------------ */

typedef struct xworker {
	waiter_t *w;
	coev_task_t *victim;
	atomic_int on;
} xworker_t;

/* Cancels the victim if it runs on another worker than the one the
 * victim waits on; returns 1 if it did. */
static int xw_canceller(void *arg)
{
	xworker_t *x = arg;

	atomic_store(&x->on, coev_worker_id());
	if (atomic_load(&x->on) == x->w->started_on)
		return 0;
	TU_CHECK_EQ(coev_cancel(x->victim), 0);
	return 1;
}

/* Spawns cancellers until one runs on the other worker. When this task
 * is on the victim's worker it keeps that worker busy until the canceller
 * ran: the runtime's monitor sees the worker stuck with work in its LIFO
 * slot and wakes the other worker, which steals it (within a few ms; the
 * bound is for a machine loaded by other processes). */
static int cancel_from_other_worker(waiter_t *w, coev_task_t *victim)
{
	for (int attempt = 0; attempt < 500; attempt++) {
		xworker_t x = {.w = w, .victim = victim, .on = -1};
		coev_task_t *c;
		int did = 0;
		TU_CHECK_EQ(
			coev_spawn_named("x-canceller", xw_canceller, &x, &c),
			0);
		if (coev_worker_id() == w->started_on) {
			coev_time_t until = coev_now() + COEV_SEC(2);
			while (atomic_load(&x.on) == -1 && coev_now() < until)
				tu_spin_ns(COEV_USEC(100));
		}
		TU_CHECK_EQ(coev_join(c, &did), 0);
		if (did)
			return 1;
		coev_sleep(COEV_MSEC(1));
	}
	return 0;
}

static int xworker_main(void *arg)
{
	waiter_t ws = {0}, wr = {0};
	coev_task_t *ts, *tr;
	int p[2], r = 0;

	(void)arg;
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	wr.fd = p[0];
	/* A timed wait (a timer on the victim's loop) and an I/O wait (the
	 * fd on the victim's loop). */
	TU_CHECK_EQ(coev_spawn_named("sleeper", sleeper, &ws, &ts), 0);
	TU_CHECK_EQ(coev_spawn_named("reader", reader, &wr, &tr), 0);
	TU_CHECK_EQ(tu_wait_at_least(&ws.started, 1), 0);
	TU_CHECK_EQ(tu_wait_at_least(&wr.started, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, ts, COEV_WAIT_TIMER, NULL), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, tr, COEV_WAIT_FD, NULL), 0);

	TU_CHECK_MSG(cancel_from_other_worker(&ws, ts),
		     "no canceller ran on the other worker");
	TU_CHECK_EQ(coev_join(ts, &r), 0);
	TU_CHECK_EQ(r, -ECANCELED);
	TU_CHECK_EQ(ws.after_rc, -ECANCELED);
	/* The wait was ended by its own worker: the task resumed there. */
	TU_CHECK_EQ(ws.resumed_on, ws.started_on);

	TU_CHECK_MSG(cancel_from_other_worker(&wr, tr),
		     "no canceller ran on the other worker");
	TU_CHECK_EQ(coev_join(tr, &r), 0);
	TU_CHECK_EQ(r, -ECANCELED);
	TU_CHECK_EQ(wr.after_rc, -ECANCELED);
	TU_CHECK_EQ(wr.resumed_on, wr.started_on);
	close(p[0]);
	close(p[1]);
	return 0;
}

static void test_cancel_wait_on_another_workers_loop(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(xworker_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- before the first run, after the end -------------------------------- */

static int count_run(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return 5;
}

static int before_main(void *arg)
{
	atomic_int ran = 0;
	coev_task_t *t;
	int r = 0;

	(void)arg;
	/* One worker, and this task does not yield: the child is queued
	 * and cannot run before the cancel. */
	TU_CHECK_EQ(coev_spawn(count_run, &ran, &t), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, -ECANCELED);
	TU_CHECK_EQ(atomic_load(&ran), 0);
	/* A detached child cancelled before it ran never runs either. */
	TU_CHECK_EQ(coev_spawn(count_run, &ran, &t), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_detach(t), 0);
	coev_sleep(COEV_MSEC(20)); /* a negative check: time to run wrongly */
	TU_CHECK_EQ(atomic_load(&ran), 0);
	return 0;
}

typedef struct busy {
	atomic_int started;
	atomic_int release;
} busy_t;

/* Keeps its worker without waiting until released. */
static int busy_worker(void *arg)
{
	busy_t *b = arg;

	atomic_store(&b->started, 1);
	while (!atomic_load(&b->release))
		tu_spin_ns(COEV_USEC(100));
	return 0;
}

static void test_cancel_before_first_run(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(before_main, NULL, 1), 0);

	/* From outside: the only worker is busy, so the task spawned and
	 * cancelled from this thread cannot have started. */
	coev_rt_t *rt = tu_new_rt(1);
	busy_t b = {0};
	atomic_int ran = 0;
	coev_task_t *busy, *t;
	int r = 0;
	assert_int_equal(coev_rt_spawn(rt, "busy", busy_worker, &b, &busy), 0);
	assert_int_equal(thread_wait_at_least(&b.started, 1), 0);
	assert_int_equal(coev_rt_spawn(rt, "never", count_run, &ran, &t), 0);
	assert_int_equal(coev_cancel(t), 0);
	atomic_store(&b.release, 1);
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(coev_join(busy, NULL), 0);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal(r, -ECANCELED);
	assert_int_equal(atomic_load(&ran), 0);
}

static int finished_main(void *arg)
{
	atomic_int ran = 0;
	coev_task_t *t;
	int r = 0;

	(void)arg;
	TU_CHECK_EQ(coev_spawn(count_run, &ran, &t), 0);
	/* wait_any consumes nothing: t is finished and still ours. */
	TU_CHECK_EQ(coev_wait_any(&t, 1, tu_guard()), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 5);
	TU_CHECK_EQ(atomic_load(&ran), 1);
	/* Not being cancelled, this task's waits work normally. */
	TU_CHECK_EQ(coev_cancelled(), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), 0);
	TU_CHECK_EQ(coev_cancel(NULL), -EINVAL);
	return 0;
}

static void test_cancel_finished_task_is_harmless(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(finished_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- sticky until the task returns -------------------------------------- */

static int slow_return(void *arg);

static int sticky_main(void *arg)
{
	coev_task_t *c;
	int p[2], r = 0;
	char ch;

	(void)arg;
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	waiter_t cw = {0};
	TU_CHECK_EQ(coev_spawn_named("child", sleeper, &cw, &c), 0);
	TU_CHECK_EQ(coev_cancelled(), 0);
	/* A task may cancel itself; no wait has happened yet. */
	TU_CHECK_EQ(coev_cancel(coev_self()), 0);
	TU_CHECK_EQ(coev_cancelled(), 1);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), -ECANCELED);
		TU_CHECK_EQ(coev_sleep_until(coev_now() + COEV_SEC(10)),
			    -ECANCELED);
		TU_CHECK_EQ(coev_join_dl(c, tu_guard(), &r), -ECANCELED);
		TU_CHECK_EQ(coev_read(p[0], &ch, 1, tu_guard()), -ECANCELED);
		TU_CHECK_EQ(coev_wait_fd(p[0], COEV_READ, tu_guard()),
			    -ECANCELED);
		job_t j = {.value = 1};
		TU_CHECK_EQ(coev_blocking(job_fn, &j, tu_guard(), &r),
			    -ECANCELED);
		TU_CHECK_EQ(atomic_load(&j.started), 0);
		/* A fn that has to be waited for (one that finished before
		 * the wait would give its result, as a join of a finished
		 * task does). */
		TU_CHECK_EQ(coev_wait_for(slow_return, NULL, tu_guard(), &r),
			    -ECANCELED);
		/* yield is not a wait. */
		TU_CHECK_EQ(coev_yield(), 0);
		TU_CHECK_EQ(coev_cancelled(), 1);
	}
	/* Clean-up under a shield. */
	TU_CHECK_EQ(coev_shield_begin(), 0);
	TU_CHECK_EQ(coev_cancel(c), 0);
	TU_CHECK_EQ(coev_join(c, &r), 0);
	TU_CHECK_EQ(r, -ECANCELED);
	TU_CHECK_EQ(cw.rc, -ECANCELED);
	TU_CHECK_EQ(coev_shield_end(), 0);
	close(p[0]);
	close(p[1]);
	return -ECANCELED;
}

static void test_cancel_is_sticky_until_return(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(sticky_main, NULL, 2), -ECANCELED);
	tu_assert_no_failures();
}

/* ---- shields ------------------------------------------------------------ */

typedef struct shielded {
	int fd;
	atomic_int in_shield;
	int sleep_rc, cancelled_inside, after_rc, dl_rc;
	coev_time_t slept;
} shielded_t;

static int shielded_sleeper(void *arg)
{
	shielded_t *s = arg;

	TU_CHECK_EQ(coev_shield_begin(), 0);
	atomic_store(&s->in_shield, 1);
	coev_time_t t0 = coev_now();
	s->sleep_rc = coev_sleep(COEV_MSEC(150));
	s->slept = coev_now() - t0;
	s->cancelled_inside = coev_cancelled();
	/* Deadlines still apply inside a shield. */
	char c;
	s->dl_rc = (int)coev_read(s->fd, &c, 1, coev_now() + COEV_MSEC(10));
	TU_CHECK_EQ(coev_shield_end(), 0);
	s->after_rc = coev_sleep(LONG_WAIT);
	return 0;
}

static int shield_main(void *arg)
{
	shielded_t s = {0};
	coev_task_t *t;
	int p[2];
	char c;

	(void)arg;
	/* Self-cancelled, then shielded (nested): waits work normally. */
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	TU_CHECK_EQ(coev_cancel(coev_self()), 0);
	TU_CHECK_EQ(coev_shield_begin(), 0);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(20)), 0);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(20));
	TU_CHECK_EQ(coev_cancelled(), 1);
	TU_CHECK_EQ(coev_shield_begin(), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), 0);
	TU_CHECK_EQ(coev_shield_end(), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), 0); /* still one shield */
	/* A deadline inside the shield still ends a wait. */
	t0 = coev_now();
	TU_CHECK_EQ(coev_read(p[0], &c, 1, t0 + COEV_MSEC(30)), -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(30));
	/* A task spawned and joined inside the shield. */
	coev_task_t *k;
	int r = 0;
	TU_CHECK_EQ(coev_spawn(return_arg, (void *)(intptr_t)11, &k), 0);
	TU_CHECK_EQ(coev_join(k, &r), 0);
	TU_CHECK_EQ(r, 11);
	TU_CHECK_EQ(coev_shield_end(), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), -ECANCELED);
	TU_CHECK_EQ(coev_read(p[0], &c, 1, tu_guard()), -ECANCELED);

	/* Cancelled from outside while in a shielded sleep: the sleep lasts
	 * its full time; after shield_end the next wait is cancelled. */
	s.fd = p[0];
	TU_CHECK_EQ(coev_shield_begin(), 0); /* to wait for t ourselves */
	TU_CHECK_EQ(coev_spawn_named("shielded", shielded_sleeper, &s, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&s.in_shield, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_TIMER, NULL), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	t0 = coev_now();
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(coev_shield_end(), 0);
	TU_CHECK_EQ(s.sleep_rc, 0);
	TU_CHECK_MSG(s.slept >= COEV_MSEC(150), "slept %lld ns",
		     (long long)s.slept);
	TU_CHECK_EQ(s.cancelled_inside, 1);
	TU_CHECK_EQ(s.dl_rc, -ETIMEDOUT);
	TU_CHECK_EQ(s.after_rc, -ECANCELED);
	TU_CHECK(coev_now() - t0 < PROMPT);
	close(p[0]);
	close(p[1]);
	return 0;
}

static void test_cancel_shield_hides_until_end(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(shield_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int unmatched_end(void *arg)
{
	(void)arg;
	return coev_shield_end();
}

static void shield_end_unmatched(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 1;
	coev_run(unmatched_end, NULL, &cfg);
}

static void test_cancel_shield_end_without_begin_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_int_equal(tu_run_in_child(shield_end_unmatched, NULL, res), 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "shield");
	if (!ok)
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "shield"));
	free(res);
}

/* ---- coev_deadline_push / pop ------------------------------------------- */

/* Reads one byte from fd with no deadline of its own; returns the result
 * and stores how long it took. */
static ssize_t timed_read(int fd, coev_time_t dl, coev_time_t *took)
{
	char c;
	coev_time_t t0 = coev_now();
	ssize_t n = coev_read(fd, &c, 1, dl);

	*took = coev_now() - t0;
	return n;
}

static int slow_return(void *arg)
{
	coev_sleep(COEV_MSEC(200));
	return (int)(intptr_t)arg;
}

/* Returns 4 once the event is set: a join of it ends only by the event
 * or the join's deadline, however loaded the machine. */
static int gated_return(void *arg)
{
	TU_CHECK_EQ(coev_event_wait(arg), 0);
	return 4;
}

static int push_main(void *arg)
{
	int p[2];
	coev_time_t took;
	coev_event_t gate;

	(void)arg;
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);

	/* One pushed deadline ends a wait that has none. */
	coev_time_t tok = coev_deadline_push(coev_now() + COEV_MSEC(50));
	TU_CHECK(tok >= 0);
	TU_CHECK_EQ(timed_read(p[0], COEV_FOREVER, &took), -ETIMEDOUT);
	TU_CHECK_MSG(took >= COEV_MSEC(50) && took < PROMPT, "took %lld",
		     (long long)took);
	coev_deadline_pop(tok);
	/* Popped: waits are bounded by their own deadlines again. */
	TU_CHECK_EQ(timed_read(p[0], coev_now() + COEV_MSEC(20), &took),
		    -ETIMEDOUT);
	TU_CHECK(took >= COEV_MSEC(20));
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(60)), 0);

	/* Nested, inner earlier: the inner applies. */
	coev_time_t t1 = coev_deadline_push(coev_now() + COEV_SEC(100));
	coev_time_t t2 = coev_deadline_push(coev_now() + COEV_MSEC(50));
	TU_CHECK(t1 >= 0 && t2 >= 0);
	TU_CHECK_EQ(timed_read(p[0], COEV_FOREVER, &took), -ETIMEDOUT);
	TU_CHECK(took >= COEV_MSEC(50) && took < PROMPT);
	coev_deadline_pop(t2);
	coev_deadline_pop(t1);

	/* Nested, inner later: the earlier outer one still applies, and
	 * after popping the inner, the outer (now past) ends waits at once. */
	t1 = coev_deadline_push(coev_now() + COEV_MSEC(80));
	t2 = coev_deadline_push(coev_now() + COEV_SEC(100));
	TU_CHECK_EQ(timed_read(p[0], COEV_FOREVER, &took), -ETIMEDOUT);
	TU_CHECK(took >= COEV_MSEC(80) && took < PROMPT);
	coev_deadline_pop(t2);
	TU_CHECK_EQ(timed_read(p[0], COEV_FOREVER, &took), -ETIMEDOUT);
	TU_CHECK(took < PROMPT);
	coev_deadline_pop(t1);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), 0);

	/* A call's own earlier deadline still wins. */
	t1 = coev_deadline_push(coev_now() + COEV_SEC(100));
	TU_CHECK_EQ(timed_read(p[0], coev_now() + COEV_MSEC(30), &took),
		    -ETIMEDOUT);
	TU_CHECK(took >= COEV_MSEC(30) && took < PROMPT);
	coev_deadline_pop(t1);

	/* Sleeps and joins are waits too. */
	t1 = coev_deadline_push(coev_now() + COEV_MSEC(30));
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_sleep(LONG_WAIT), -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 < PROMPT);
	coev_deadline_pop(t1);
	coev_task_t *k;
	int r = 0;
	TU_CHECK_EQ(coev_event_init(&gate), 0);
	TU_CHECK_EQ(coev_spawn(gated_return, &gate, &k), 0);
	t1 = coev_deadline_push(coev_now() + COEV_MSEC(30));
	TU_CHECK_EQ(coev_join(k, &r), -ETIMEDOUT);
	coev_deadline_pop(t1);
	coev_event_set(&gate);
	TU_CHECK_EQ(coev_join(k, &r), 0); /* still valid, and no deadline */
	TU_CHECK_EQ(r, 4);
	coev_event_destroy(&gate);
	close(p[0]);
	close(p[1]);
	return 0;
}

static void test_cancel_deadline_push_pop(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(push_main, NULL, 2), 0);
	tu_assert_no_failures();
	/* Outside a task. */
	assert_int_equal(coev_deadline_push(coev_deadline(COEV_SEC(1))),
			 COEV_ENOTCORO);
	assert_int_equal(coev_cancelled(), COEV_ENOTCORO);
	assert_int_equal(coev_shield_begin(), COEV_ENOTCORO);
}

/* ---- coev_wait_for ------------------------------------------------------ */

typedef struct slowfn {
	atomic_int started;
	atomic_int finished;
	int sleep_rc;
	int cleanup_ms; /* a shielded clean-up after being cancelled */
	int value;	/* returned when the sleep was not cancelled */
} slowfn_t;

static int slow_fn(void *arg)
{
	slowfn_t *s = arg;

	atomic_store(&s->started, 1);
	s->sleep_rc = coev_sleep(LONG_WAIT);
	if (s->cleanup_ms > 0) {
		coev_shield_begin();
		coev_sleep(COEV_MSEC(s->cleanup_ms));
		coev_shield_end();
	}
	atomic_store(&s->finished, 1);
	return s->sleep_rc == 0 ? 0 : s->value;
}

typedef struct wf_caller {
	slowfn_t fn;
	int rc, ret;
	int finished_at_return;
} wf_caller_t;

static int wf_caller(void *arg)
{
	wf_caller_t *w = arg;

	w->rc = coev_wait_for(slow_fn, &w->fn, COEV_FOREVER, &w->ret);
	w->finished_at_return = atomic_load(&w->fn.finished);
	return 0;
}

static int wait_for_main(void *arg)
{
	int r = 0;

	(void)arg;
	/* Fast: 0 and the result. */
	TU_CHECK_EQ(coev_wait_for(return_arg, (void *)(intptr_t)7,
				  coev_now() + PROMPT, &r),
		    0);
	TU_CHECK_EQ(r, 7);
	TU_CHECK_EQ(coev_wait_for(slow_return, (void *)(intptr_t)8,
				  coev_now() + COEV_SEC(20), &r),
		    0);
	TU_CHECK_EQ(r, 8);
	TU_CHECK_EQ(coev_wait_for(return_arg, NULL, coev_now() + PROMPT, NULL),
		    0);

	/* Slow: -ETIMEDOUT; fn was cancelled, waited for, and its result
	 * stored. */
	slowfn_t s = {.value = -ECANCELED};
	coev_time_t t0 = coev_now();
	r = 0;
	TU_CHECK_EQ(coev_wait_for(slow_fn, &s, t0 + COEV_MSEC(50), &r),
		    -ETIMEDOUT);
	coev_time_t took = coev_now() - t0;
	TU_CHECK(took >= COEV_MSEC(50) && took < PROMPT);
	TU_CHECK_EQ(atomic_load(&s.finished), 1);
	TU_CHECK_EQ(s.sleep_rc, -ECANCELED);
	TU_CHECK_EQ(r, -ECANCELED);

	/* A fn that takes time to clean up is waited for, and what it
	 * returns is what we get. */
	slowfn_t s2 = {.value = 9, .cleanup_ms = 40};
	t0 = coev_now();
	TU_CHECK_EQ(coev_wait_for(slow_fn, &s2, t0 + COEV_MSEC(30), &r),
		    -ETIMEDOUT);
	took = coev_now() - t0;
	TU_CHECK_EQ(atomic_load(&s2.finished), 1);
	TU_CHECK_EQ(r, 9);
	TU_CHECK(took >= COEV_MSEC(70) && took < PROMPT);

	/* The caller cancelled while waiting: -ECANCELED, fn cancelled and
	 * waited for. */
	wf_caller_t w = {.fn = {.value = -ECANCELED}};
	coev_task_t *t;
	TU_CHECK_EQ(coev_spawn_named("wf-caller", wf_caller, &w, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&w.fn.started, 1), 0);
	/* The caller waits for fn's task, which sleeps. */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_JOIN, NULL), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, -ECANCELED);
	TU_CHECK_EQ(w.finished_at_return, 1);
	TU_CHECK_EQ(w.fn.sleep_rc, -ECANCELED);
	TU_CHECK_EQ(w.ret, -ECANCELED);
	return 0;
}

static void test_cancel_wait_for(void **state)
{
	int r = 0;

	(void)state;
	assert_int_equal(tu_run_main(wait_for_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(coev_wait_for(return_arg, NULL, COEV_FOREVER, &r),
			 COEV_ENOTCORO);
}

/* ---- cancel racing completion ------------------------------------------- */

#define RACE_BATCH 64
#define RACES (RACE_BATCH * TU_SCALE(96, 64, 24))

typedef struct race_slot {
	int mode;
	int ret;	     /* what the function returned */
	atomic_int returned; /* times the function returned */
} race_slot_t;

static int race_child(void *arg)
{
	race_slot_t *s = arg;
	int v = 1000 + s->mode;

	switch (s->mode) {
	case 0: break;
	case 1:
		coev_yield();
		coev_yield();
		break;
	case 2: {
		int rc = coev_sleep(COEV_USEC(50));
		if (rc != 0)
			v = rc;
		break;
	}
	default:
		tu_spin_ns(COEV_USEC(20));
		if (coev_sleep(COEV_USEC(10)) != 0)
			v = -ECANCELED;
		break;
	}
	s->ret = v;
	atomic_fetch_add(&s->returned, 1);
	return v;
}

typedef struct race_cancel {
	coev_task_t *const *t;
	int n;
} race_cancel_t;

static int race_canceller(void *arg)
{
	race_cancel_t *c = arg;

	for (int i = c->n - 1; i >= 0; i--)
		TU_CHECK_EQ(coev_cancel(c->t[i]), 0);
	return 0;
}

typedef struct race_tally {
	int normal, cancelled, bad;
} race_tally_t;

static void race_check(race_slot_t *s, int join_rc, int r, race_tally_t *tl)
{
	int returned = atomic_load(&s->returned);

	TU_CHECK_EQ(join_rc, 0);
	TU_CHECK_MSG(returned <= 1, "the function returned %d times", returned);
	if (returned == 1 && r == s->ret) {
		if (r == -ECANCELED)
			tl->cancelled++;
		else
			tl->normal++;
	} else if (returned == 0 && r == -ECANCELED) {
		tl->cancelled++; /* cancelled before it ran */
	} else if (tl->bad++ < 5) {
		TU_CHECK_MSG(0,
			     "mode %d: result %d, the function returned %d "
			     "times (last %d)",
			     s->mode, r, returned, s->ret);
	}
}

static int race_main(void *arg)
{
	race_tally_t *tl = arg;
	race_slot_t slots[RACE_BATCH];
	coev_task_t *t[RACE_BATCH];

	for (int base = 0; base < RACES; base += RACE_BATCH) {
		int how = (base / RACE_BATCH) % 3;
		for (int i = 0; i < RACE_BATCH; i++) {
			slots[i] = (race_slot_t){.mode = (base + i) % 4};
			atomic_init(&slots[i].returned, 0);
			TU_CHECK_EQ(coev_spawn(race_child, &slots[i], &t[i]),
				    0);
		}
		if (how == 0) {
			/* Right after the spawns (the other worker steals
			 * and runs some meanwhile). */
			for (int i = 0; i < RACE_BATCH; i++)
				TU_CHECK_EQ(coev_cancel(t[i]), 0);
		} else if (how == 1) {
			coev_yield();
			for (int i = 0; i < RACE_BATCH; i += 2)
				TU_CHECK_EQ(coev_cancel(t[i]), 0);
			tu_spin_ns(COEV_USEC(30));
			for (int i = 1; i < RACE_BATCH; i += 2)
				TU_CHECK_EQ(coev_cancel(t[i]), 0);
		} else {
			/* From another task, perhaps on the other worker,
			 * while this one already joins. */
			race_cancel_t rc = {.t = t, .n = RACE_BATCH};
			coev_task_t *c;
			TU_CHECK_EQ(coev_spawn(race_canceller, &rc, &c), 0);
			TU_CHECK_EQ(coev_join(c, NULL), 0);
		}
		for (int i = 0; i < RACE_BATCH; i++) {
			int r = 12345;
			int jrc = coev_join(t[i], &r);
			race_check(&slots[i], jrc, r, tl);
		}
	}
	return 0;
}

static void test_cancel_racing_completion(void **state)
{
	race_tally_t tl = {0};

	(void)state;
	assert_int_equal(tu_run_main(race_main, &tl, 2), 0);
	print_message("in tasks: %d normal, %d cancelled\n", tl.normal,
		      tl.cancelled);
	tu_assert_no_failures();
	assert_int_equal(tl.bad, 0);
	assert_int_equal(tl.normal + tl.cancelled, RACES);
	assert_true(tl.cancelled > 0);

	/* The same from a plain thread: spawn, cancel, join. */
	coev_rt_t *rt = tu_new_rt(2);
	race_tally_t ft = {0};
	int n = RACES / 4;
	race_slot_t *slots = calloc((size_t)n, sizeof *slots);
	for (int i = 0; i < n; i++) {
		coev_task_t *t;
		int r = 12345;
		slots[i].mode = i % 4;
		assert_int_equal(
			coev_rt_spawn(rt, NULL, race_child, &slots[i], &t), 0);
		if (i % 3 == 1)
			tu_spin_ns(COEV_USEC(i % 50));
		assert_int_equal(coev_cancel(t), 0);
		int jrc = coev_join(t, &r);
		race_check(&slots[i], jrc, r, &ft);
	}
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	free(slots);
	print_message("from a thread: %d normal, %d cancelled\n", ft.normal,
		      ft.cancelled);
	tu_assert_no_failures();
	assert_int_equal(ft.bad, 0);
	assert_int_equal(ft.normal + ft.cancelled, n);
}

/* ---- shutdown cancels ----------------------------------------------------- */

#define SD_SLEEPERS 10
#define SD_READERS 4

typedef struct sd_task {
	atomic_int *started;
	atomic_int *finished;
	int fd;
	int rc;
	atomic_int after; /* set when the task went on past its wait */
} sd_task_t;

static int sd_sleeper(void *arg)
{
	sd_task_t *s = arg;

	atomic_fetch_add(s->started, 1);
	s->rc = coev_sleep(LONG_WAIT);
	atomic_store(&s->after, 1);
	atomic_fetch_add(s->finished, 1);
	return s->rc;
}

static int sd_reader(void *arg)
{
	sd_task_t *s = arg;
	char c;

	atomic_fetch_add(s->started, 1);
	s->rc = (int)coev_read(s->fd, &c, 1, COEV_FOREVER);
	atomic_store(&s->after, 1);
	atomic_fetch_add(s->finished, 1);
	return s->rc;
}

static int sd_stubborn(void *arg)
{
	sd_task_t *s = arg;

	coev_shield_begin();
	atomic_fetch_add(s->started, 1);
	s->rc = coev_sleep(COEV_SEC(10));
	atomic_store(&s->after, 1); /* never reached before rt_free */
	coev_shield_end();
	atomic_fetch_add(s->finished, 1);
	return 0;
}

static void test_cancel_shutdown_cancels_sleeping_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	atomic_int started = 0, finished = 0;
	sd_task_t t[SD_SLEEPERS + SD_READERS];
	int p[SD_READERS][2];

	(void)state;
	for (int i = 0; i < SD_SLEEPERS + SD_READERS; i++) {
		t[i] = (sd_task_t){.started = &started, .finished = &finished};
		if (i >= SD_SLEEPERS) {
			int *pp = p[i - SD_SLEEPERS];
			assert_int_equal(pipe2(pp, O_NONBLOCK | O_CLOEXEC), 0);
			t[i].fd = pp[0];
		}
		assert_int_equal(
			coev_rt_spawn(rt, "sd",
				      i < SD_SLEEPERS ? sd_sleeper : sd_reader,
				      &t[i], NULL),
			0);
	}
	assert_int_equal(
		thread_wait_at_least(&started, SD_SLEEPERS + SD_READERS), 0);
	assert_int_equal(
		tu_wait_parked_n(rt, COEV_WAIT_TIMER, NULL, SD_SLEEPERS), 0);
	assert_int_equal(tu_wait_parked_n(rt, COEV_WAIT_FD, NULL, SD_READERS),
			 0);
	coev_time_t t0 = coev_now();
	int left = coev_rt_shutdown(rt, coev_deadline(COEV_SEC(20)));
	coev_time_t took = coev_now() - t0;
	coev_rt_free(rt);
	for (int i = 0; i < SD_READERS; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	assert_int_equal(left, 0);
	assert_int_equal(atomic_load(&finished), SD_SLEEPERS + SD_READERS);
	for (int i = 0; i < SD_SLEEPERS + SD_READERS; i++)
		assert_int_equal(t[i].rc, -ECANCELED);
	assert_true(took < PROMPT);
}

static void test_cancel_shutdown_reports_tasks_ignoring_cancel(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	atomic_int started = 0, finished = 0;
	sd_task_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		t[i] = (sd_task_t){.started = &started, .finished = &finished};
		assert_int_equal(
			coev_rt_spawn(rt, i == 0 ? "stubborn" : "sd",
				      i == 0 ? sd_stubborn : sd_sleeper, &t[i],
				      NULL),
			0);
	}
	assert_int_equal(thread_wait_at_least(&started, 4), 0);
	assert_int_equal(tu_wait_parked_n(rt, COEV_WAIT_TIMER, NULL, 4), 0);
	coev_time_t dl = coev_deadline(COEV_MSEC(200));
	int left = coev_rt_shutdown(rt, dl);
	coev_time_t back = coev_now();
	/* The three plain sleepers were cancelled and finished; the
	 * shielded one is reported. */
	assert_int_equal(left, 1);
	assert_true(back >= dl);
	assert_int_equal(atomic_load(&finished), 3);
	for (int i = 1; i < 4; i++)
		assert_int_equal(t[i].rc, -ECANCELED);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(10))), 1);
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&t[0].after), 0);
}

/* coev_run cancels what main leaves behind. */
static int leave_sleeper(void *arg)
{
	return coev_spawn_named("left", sd_sleeper, arg, NULL);
}

static void test_cancel_run_cancels_leftovers(void **state)
{
	coev_config_t cfg = tu_config(2);
	atomic_int started = 0, finished = 0;
	sd_task_t t = {.started = &started, .finished = &finished};

	(void)state;
	cfg.shutdown_timeout = COEV_SEC(30);
	coev_time_t t0 = coev_now();
	assert_int_equal(coev_run(leave_sleeper, &t, &cfg), 0);
	coev_time_t took = coev_now() - t0;
	/* It either never started (cancelled before its first run) or its
	 * sleep was cancelled. */
	if (atomic_load(&started))
		assert_int_equal(t.rc, -ECANCELED);
	assert_int_equal(atomic_load(&finished), atomic_load(&started));
	assert_true(took < COEV_SEC(20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_cancel_mid_connect),
		TU_FD_TEST(test_cancel_mid_read),
		TU_FD_TEST(test_cancel_mid_sleep),
		TU_FD_TEST(test_cancel_mid_join),
		TU_FD_TEST(test_cancel_mid_blocking_job),
		TU_FD_TEST(test_cancel_from_foreign_thread),
		TU_FD_TEST(test_cancel_wait_on_another_workers_loop),
		TU_FD_TEST(test_cancel_before_first_run),
		TU_FD_TEST(test_cancel_finished_task_is_harmless),
		TU_FD_TEST(test_cancel_is_sticky_until_return),
		TU_FD_TEST(test_cancel_shield_hides_until_end),
		TU_FD_TEST(test_cancel_shield_end_without_begin_aborts),
		TU_FD_TEST(test_cancel_deadline_push_pop),
		TU_FD_TEST(test_cancel_wait_for),
		TU_FD_TEST(test_cancel_racing_completion),
		TU_FD_TEST(test_cancel_shutdown_cancels_sleeping_tasks),
		TU_FD_TEST(test_cancel_shutdown_reports_tasks_ignoring_cancel),
		TU_FD_TEST(test_cancel_run_cancels_leftovers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
