/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_watch.c — the generic adapters of include/coev/bridge.h
 * for callback libraries: fd watches (level-triggered READ and WRITE, set
 * to 0, set and free inside the callback, two watches on one fd), timers
 * (once at the deadline, re-set, COEV_FOREVER, free and re-arm inside the
 * callback), socket sets (several fds, forgetting one, the timer, free
 * inside a callback), the error codes, and the abort when another thread
 * uses a worker's object.
 *
 * Every object here belongs to the worker that created it, so each test
 * body runs in a task pinned with coev_pin; the callbacks run on that
 * worker's thread outside any task (checked) and wake the task with a
 * coev_event_t. Everything runs on one thread, so the records need no
 * atomics. "Nothing more happens" is checked after SETTLE, and waits that
 * only a broken adapter would miss use a short deadline (WAIT_S) rather
 * than the 30 s guard, so a regression fails quickly.
 *
 * Choices: each test body runs in a forked child (tu_run_in_child), as
 * libuv runs every test, so that a crash or a sanitizer report in one
 * adapter case fails that case only, with the child's output shown;
 * rejected: running them in the test process, where one use-after-free
 * took the rest of the suite down with it. Socketpairs stand in for a
 * library's sockets (both directions controllable: fill() makes an end
 * unwritable, writes from the peer make it readable).
 */
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>

#define WAIT_S TU_SCALE(3, 5, 8)

static coev_time_t short_dl(void)
{
	return coev_deadline(COEV_SEC(WAIT_S));
}

/* ---- helpers ---------------------------------------------------------------- */

static void pair(int sv[2])
{
	TU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void unpair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* Write until the kernel refuses: fd is then not writable. */
static void fill(int fd)
{
	static char buf[65536];

	while (write(fd, buf, sizeof buf) > 0) {
	}
	while (write(fd, buf, 1) > 0) {
	}
}

static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof buf) > 0) {
	}
}

/* An open regular file (already unlinked). */
static int regular_file(void)
{
	char path[] = "/tmp/coev-watch-XXXXXX";
	int fd = mkstemp(path);

	TU_CHECK(fd >= 0);
	unlink(path);
	return fd;
}

static void put(int fd, int n)
{
	for (int i = 0; i < n; i++)
		TU_CHECK_EQ(write(fd, "d", 1), 1);
}

/* ---- watches ---------------------------------------------------------------- */

#define WREC_EV 16

typedef struct wrec {
	coev_watch_t *wa;
	int fd, worker;
	int calls;
	unsigned ev[WREC_EV]; /* events of each call */
	int read_each;	      /* bytes read per call */
	int zero_at;	      /* coev_watch_set(wa, 0) at this call */
	int set_at;	      /* coev_watch_set(wa, set_to) at this call */
	unsigned set_to;
	int set_rc;
	int free_at; /* coev_watch_free(wa) at this call */
	struct wrec *other;
	int free_other_at; /* coev_watch_free(other->wa) at this call */
	int other_calls;   /* other->calls when it was freed */
	int target;	   /* set `reached` at this call */
	coev_event_t reached;
	int wrong; /* calls with a wrong watch, fd or context */
} wrec_t;

static void wrec_init(wrec_t *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->worker = coev_worker_id();
	TU_CHECK_EQ(coev_event_init(&r->reached), 0);
}

static void wrec_cb(coev_watch_t *wa, int fd, unsigned events, void *arg)
{
	wrec_t *r = arg;
	int n = ++r->calls;
	char c;

	if (wa != r->wa || fd != r->fd || coev_self() != NULL ||
	    coev_worker_id() != r->worker)
		r->wrong++;
	if (n <= WREC_EV)
		r->ev[n - 1] = events;
	for (int i = 0; i < r->read_each && (events & COEV_READ); i++)
		TU_CHECK_EQ(read(fd, &c, 1), 1);
	if (n == r->zero_at)
		r->set_rc = coev_watch_set(wa, 0);
	if (n == r->set_at)
		r->set_rc = coev_watch_set(wa, r->set_to);
	if (n == r->free_other_at) {
		r->other_calls = r->other->calls;
		coev_watch_free(r->other->wa);
		r->other->wa = NULL;
	}
	if (n == r->target)
		coev_event_set(&r->reached);
	if (n == r->free_at) {
		coev_watch_free(wa);
		r->wa = NULL;
	}
}

static int wrec_watch(wrec_t *r, unsigned events)
{
	TU_CHECK_EQ(coev_watch_new(r->fd, wrec_cb, r, &r->wa), 0);
	return coev_watch_set(r->wa, events);
}

/* Wait for r's target call; 0 or -ETIMEDOUT. */
static int wrec_reached(wrec_t *r)
{
	return coev_event_wait_dl(&r->reached, short_dl());
}

static void wrec_fini(wrec_t *r)
{
	coev_watch_free(r->wa);
	r->wa = NULL;
	TU_CHECK_EQ(r->wrong, 0);
	coev_event_destroy(&r->reached);
}

/* Runs body() in a task pinned to its worker, on 2 workers, in a forked
 * child: a crash or a sanitizer report there (a use-after-free in an
 * adapter) fails this test and not the whole binary. The child also
 * checks that body closed every fd it opened. */
typedef struct pinned_body {
	void (*body)(void);
} pinned_body_t;

static int pinned_main(void *arg)
{
	pinned_body_t *p = arg;

	TU_CHECK_EQ(coev_pin(), 0);
	p->body();
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

static void pinned_child(void *arg)
{
	int fds = tu_fd_count();

	TU_CHECK_EQ(tu_run_main(pinned_main, arg, 2), 0);
	TU_CHECK_EQ(tu_fd_count(), fds);
	fflush(stderr);
	if (atomic_load(&tu_failures))
		_exit(3);
}

static void run_pinned(void (*body)(void))
{
	pinned_body_t p = {body};
	tu_child_t *res = malloc(sizeof *res);

	assert_non_null(res);
	assert_int_equal(tu_run_in_child(pinned_child, &p, res), 0);
	int ok = WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0;
	if (!ok || res->len) {
		if (WIFSIGNALED(res->status))
			fprintf(stderr, "child killed by signal %d\n",
				WTERMSIG(res->status));
		else if (WIFEXITED(res->status))
			fprintf(stderr, "child exited with %d\n",
				WEXITSTATUS(res->status));
		tu_child_dump(res);
	}
	free(res);
	assert_true(ok);
}

static void read_level_body(void)
{
	wrec_t r;
	int sv[2];

	/* Reading one byte per call: one call per byte, then quiet. */
	pair(sv);
	wrec_init(&r, sv[0]);
	r.read_each = 1;
	r.target = 3;
	put(sv[1], 3);
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 3);
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(r.ev[i], COEV_READ);
	/* More data: more calls. */
	coev_event_clear(&r.reached);
	r.target = 5;
	put(sv[1], 2);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 5);
	wrec_fini(&r);

	/* Not reading: called again and again until set to 0 inside. */
	wrec_init(&r, sv[0]);
	r.zero_at = 4;
	r.target = 4;
	put(sv[1], 1);
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 4);
	TU_CHECK_EQ(r.set_rc, 0);
	/* Wanted again from the task: the unread byte fires it. */
	coev_event_clear(&r.reached);
	r.target = 5;
	r.read_each = 1;
	TU_CHECK_EQ(coev_watch_set(r.wa, COEV_READ), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 5);
	wrec_fini(&r);
	unpair(sv);
}

/* Proves: a READ watch is level-triggered: called while data remains
 * unread, not once it is read; set to 0 inside the callback stops it. */
static void test_watch_read_is_level_triggered(void **state)
{
	(void)state;
	run_pinned(read_level_body);
}

static void write_body(void)
{
	wrec_t r;
	int sv[2];

	/* Writable at once; stopped by a set to 0 inside. */
	pair(sv);
	wrec_init(&r, sv[0]);
	r.zero_at = 1;
	r.target = 1;
	TU_CHECK_EQ(wrec_watch(&r, COEV_WRITE), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 1);
	TU_CHECK_EQ(r.ev[0], COEV_WRITE);
	wrec_fini(&r);

	/* Not writable: quiet until the peer drains. */
	fill(sv[0]);
	wrec_init(&r, sv[0]);
	r.zero_at = 1;
	r.target = 1;
	TU_CHECK_EQ(wrec_watch(&r, COEV_WRITE), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 0);
	drain(sv[1]);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	TU_CHECK_EQ(r.ev[0], COEV_WRITE);
	wrec_fini(&r);

	/* Set to 0 from the task before the loop ran: never called. */
	put(sv[1], 1);
	wrec_init(&r, sv[0]);
	r.read_each = 1;
	r.target = 1;
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ), 0);
	TU_CHECK_EQ(coev_watch_set(r.wa, 0), 0);
	TU_CHECK_EQ(coev_watch_set(r.wa, 0), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 0);
	TU_CHECK_EQ(coev_watch_set(r.wa, COEV_READ), 0);
	TU_CHECK_EQ(coev_watch_set(r.wa, COEV_READ), 0); /* no change */
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 1);
	wrec_fini(&r);
	unpair(sv);
}

/* Proves: a WRITE watch fires while the fd is writable and not while it
 * is full; a set to 0 from the task before the loop turns stops it. */
static void test_watch_write_and_stop(void **state)
{
	(void)state;
	run_pinned(write_body);
}

static void read_write_body(void)
{
	wrec_t r;
	int sv[2];

	/* Writable, not readable: WRITE again and again. */
	pair(sv);
	wrec_init(&r, sv[0]);
	r.zero_at = 5;
	r.target = 5;
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ | COEV_WRITE), 0);
	TU_CHECK_MSG(wrec_reached(&r) == 0,
		     "READ|WRITE watch on a writable fd: %d call(s), want 5",
		     r.calls);
	for (int i = 0; i < r.calls && i < WREC_EV; i++)
		TU_CHECK_EQ(r.ev[i], COEV_WRITE);
	wrec_fini(&r);

	/* Readable, not writable: READ again and again. */
	fill(sv[0]);
	put(sv[1], 1);
	wrec_init(&r, sv[0]);
	r.zero_at = 5;
	r.target = 5;
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ | COEV_WRITE), 0);
	TU_CHECK_MSG(wrec_reached(&r) == 0,
		     "READ|WRITE watch on a readable fd: %d call(s), want 5",
		     r.calls);
	for (int i = 0; i < r.calls && i < WREC_EV; i++)
		TU_CHECK_EQ(r.ev[i], COEV_READ);
	wrec_fini(&r);
	unpair(sv);
}

/* Proves: a watch wanting READ|WRITE stays level-triggered for the half
 * that is ready while the other half is not (libcurl's CURL_POLL_INOUT,
 * hiredis writing while it reads). */
static void test_watch_read_write_one_side_ready(void **state)
{
	(void)state;
	run_pinned(read_write_body);
}

static void free_after_one_side_body(void)
{
	wrec_t r;
	int sv[2], calls;

	pair(sv);
	wrec_init(&r, sv[0]);
	r.target = 1;
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ | COEV_WRITE), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0); /* WRITE fired */
	coev_watch_free(r.wa);
	r.wa = NULL;
	calls = r.calls;
	/* READ becomes ready: nothing may call the freed watch. */
	put(sv[1], 1);
	coev_sleep(SETTLE);
	TU_CHECK_MSG(r.calls == calls, "freed watch called %d more time(s)",
		     r.calls - calls);
	wrec_fini(&r);
	unpair(sv);
}

/* Proves: a READ|WRITE watch freed after only one side fired is really
 * gone: the other side becoming ready calls nothing (ASan: no
 * use-after-free). */
static void test_watch_free_after_one_side_fired(void **state)
{
	(void)state;
	run_pinned(free_after_one_side_body);
}

static void free_inside_body(void)
{
	wrec_t r;
	int sv[2];

	pair(sv);
	for (int both = 0; both < 2; both++) {
		put(sv[1], 1);
		wrec_init(&r, sv[0]);
		r.free_at = 1;
		r.target = 1;
		TU_CHECK_EQ(wrec_watch(&r, both ? COEV_READ | COEV_WRITE
						: COEV_READ),
			    0);
		TU_CHECK_EQ(wrec_reached(&r), 0);
		TU_CHECK(r.wa == NULL);
		coev_sleep(SETTLE);
		TU_CHECK_EQ(r.calls, 1);
		wrec_fini(&r);
		drain(sv[0]);
	}
	/* Freed inside, then the fd closed and its number reused. */
	put(sv[1], 1);
	wrec_init(&r, sv[0]);
	r.free_at = 1;
	r.target = 1;
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	unpair(sv);
	pair(sv);
	put(sv[1], 1);
	put(sv[0], 1);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 1);
	wrec_fini(&r);
	unpair(sv);
}

/* Proves: coev_watch_free inside the watch's own callback stops it and
 * frees it once the callback returns (ASan stays clean). */
static void test_watch_free_inside_callback(void **state)
{
	(void)state;
	run_pinned(free_inside_body);
}

static void set_inside_body(void)
{
	wrec_t r;
	int sv[2];

	pair(sv);
	put(sv[1], 1);
	wrec_init(&r, sv[0]);
	r.read_each = 1;
	r.set_at = 1;
	r.set_to = COEV_WRITE;
	r.zero_at = 2;
	r.target = 2;
	TU_CHECK_EQ(wrec_watch(&r, COEV_READ), 0);
	TU_CHECK_EQ(wrec_reached(&r), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 2);
	TU_CHECK_EQ(r.ev[0], COEV_READ);
	TU_CHECK_EQ(r.ev[1], COEV_WRITE);
	TU_CHECK_EQ(r.set_rc, 0);
	wrec_fini(&r);
	unpair(sv);
}

/* Proves: coev_watch_set inside the callback changes what the next call
 * reports (READ, then WRITE), and 0 there stops it. */
static void test_watch_set_inside_callback(void **state)
{
	(void)state;
	run_pinned(set_inside_body);
}

static void two_watches_body(void)
{
	wrec_t rd, wr, third;
	int sv[2];

	pair(sv);
	put(sv[1], 1); /* sv[0]: readable and writable */
	wrec_init(&rd, sv[0]);
	wrec_init(&wr, sv[0]);
	wrec_init(&third, sv[0]);
	rd.other = &wr;
	rd.free_other_at = 1;
	rd.free_at = 1;
	rd.target = 1;
	TU_CHECK_EQ(wrec_watch(&rd, COEV_READ), 0);
	TU_CHECK_EQ(wrec_watch(&wr, COEV_WRITE), 0);
	/* One watch per event on an fd. */
	TU_CHECK_EQ(wrec_watch(&third, COEV_READ), -EBUSY);
	TU_CHECK_EQ(coev_watch_set(third.wa, COEV_WRITE), -EBUSY);
	coev_watch_free(third.wa);
	third.wa = NULL;
	TU_CHECK_EQ(wrec_reached(&rd), 0);
	coev_sleep(SETTLE);
	TU_CHECK_MSG(wr.calls == rd.other_calls,
		     "write watch called %d time(s) after its free",
		     wr.calls - rd.other_calls);
	TU_CHECK_EQ(rd.calls, 1);
	wrec_fini(&rd);
	wrec_fini(&wr);
	wrec_fini(&third);
	unpair(sv);
}

/* Proves: two watches on one fd (READ and WRITE) are allowed, a second
 * watch of the same event is -EBUSY, and a callback that frees the other
 * watch of its fd (tearing a connection down) keeps it from being called,
 * even when both were ready at once (ASan: no use-after-free). */
static void test_watch_two_watches_one_fd(void **state)
{
	(void)state;
	run_pinned(two_watches_body);
}

static void errors_body(void)
{
	coev_watch_t *wa = NULL;
	coev_timer_t *tm = NULL;
	coev_sockset_t *ss = NULL;
	int fd, sv[2];

	pair(sv);
	TU_CHECK_EQ(coev_watch_new(-1, wrec_cb, NULL, &wa), -EINVAL);
	TU_CHECK_EQ(coev_watch_new(sv[0], NULL, NULL, &wa), -EINVAL);
	TU_CHECK_EQ(coev_watch_new(sv[0], wrec_cb, NULL, NULL), -EINVAL);
	TU_CHECK(wa == NULL);
	TU_CHECK_EQ(coev_timer_new(NULL, NULL, &tm), -EINVAL);
	TU_CHECK_EQ(coev_sockset_new(NULL, NULL, &ss), -EINVAL);
	TU_CHECK(tm == NULL && ss == NULL);
	TU_CHECK_EQ(coev_timer_set(NULL, 0), -EINVAL);
	TU_CHECK_EQ(coev_sockset_watch(NULL, sv[0], COEV_READ), -EINVAL);
	TU_CHECK_EQ(coev_sockset_timer(NULL, 0), -EINVAL);
	coev_watch_free(NULL);
	coev_timer_free(NULL);
	coev_sockset_free(NULL);

	/* A regular file cannot be polled. */
	fd = regular_file();
	TU_CHECK_EQ(coev_watch_new(fd, wrec_cb, NULL, &wa), 0);
	TU_CHECK_EQ(coev_watch_set(wa, COEV_READ), -EPERM);
	TU_CHECK_EQ(coev_watch_set(wa, COEV_WRITE), -EPERM);
	coev_watch_free(wa);
	close(fd);
	unpair(sv);
}

/* ---- timers ----------------------------------------------------------------- */

typedef struct trec {
	coev_timer_t *tm;
	int worker, calls, wrong;
	coev_time_t at[8];
	int rearm;	      /* re-arm inside this many times */
	coev_time_t period;   /* ... this far ahead */
	coev_time_t rearm_dl; /* the last deadline set inside */
	int free_at;
	int target;
	coev_event_t reached;
} trec_t;

static void trec_init(trec_t *r)
{
	memset(r, 0, sizeof *r);
	r->worker = coev_worker_id();
	r->target = 1;
	TU_CHECK_EQ(coev_event_init(&r->reached), 0);
}

static void trec_cb(coev_timer_t *tm, void *arg)
{
	trec_t *r = arg;
	int n = ++r->calls;

	if (tm != r->tm || coev_self() != NULL || coev_worker_id() != r->worker)
		r->wrong++;
	if (n <= 8)
		r->at[n - 1] = coev_now();
	if (r->rearm > 0) {
		r->rearm--;
		r->rearm_dl = coev_now() + r->period;
		TU_CHECK_EQ(coev_timer_set(tm, r->rearm_dl), 0);
	}
	if (n == r->target)
		coev_event_set(&r->reached);
	if (n == r->free_at) {
		coev_timer_free(tm);
		r->tm = NULL;
	}
}

static void trec_fini(trec_t *r)
{
	coev_timer_free(r->tm);
	r->tm = NULL;
	TU_CHECK_EQ(r->wrong, 0);
	coev_event_destroy(&r->reached);
}

static void timer_body(void)
{
	trec_t r;
	coev_time_t dl;

	/* Once, at (not before) its deadline. */
	trec_init(&r);
	TU_CHECK_EQ(coev_timer_new(trec_cb, &r, &r.tm), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 0); /* not armed yet */
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_timer_set(r.tm, dl), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r.reached, short_dl()), 0);
	TU_CHECK(r.at[0] >= dl);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 1);
	/* Re-set: the later deadline replaces the earlier one. */
	coev_event_clear(&r.reached);
	r.target = 2;
	TU_CHECK_EQ(coev_timer_set(r.tm, coev_now() + COEV_MSEC(5)), 0);
	dl = coev_now() + COEV_MSEC(40);
	TU_CHECK_EQ(coev_timer_set(r.tm, dl), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r.reached, short_dl()), 0);
	TU_CHECK(r.at[1] >= dl);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 2);
	/* COEV_FOREVER disarms; a second FOREVER is harmless. */
	TU_CHECK_EQ(coev_timer_set(r.tm, coev_now() + COEV_MSEC(5)), 0);
	TU_CHECK_EQ(coev_timer_set(r.tm, COEV_FOREVER), 0);
	TU_CHECK_EQ(coev_timer_set(r.tm, COEV_FOREVER), 0);
	coev_sleep(COEV_MSEC(20)); /* negative: past the 5 ms */
	TU_CHECK_EQ(r.calls, 2);
	/* A past deadline fires at the loop's next turn. */
	coev_event_clear(&r.reached);
	r.target = 3;
	TU_CHECK_EQ(coev_timer_set(r.tm, 0), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r.reached, short_dl()), 0);
	TU_CHECK_EQ(coev_timer_set(r.tm, -1), -EINVAL);
	/* Freed while armed: never called. */
	TU_CHECK_EQ(coev_timer_set(r.tm, coev_now() + COEV_MSEC(5)), 0);
	trec_fini(&r);
	coev_sleep(COEV_MSEC(20)); /* negative: past the 5 ms */
	TU_CHECK_EQ(r.calls, 3);

	/* Re-armed inside its callback, then freed inside it. */
	trec_init(&r);
	r.rearm = 3;
	r.period = COEV_MSEC(2);
	r.free_at = 4;
	r.target = 4;
	TU_CHECK_EQ(coev_timer_new(trec_cb, &r, &r.tm), 0);
	TU_CHECK_EQ(coev_timer_set(r.tm, coev_now()), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r.reached, short_dl()), 0);
	TU_CHECK(r.at[3] >= r.rearm_dl);
	TU_CHECK(r.tm == NULL);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r.calls, 4);
	trec_fini(&r);
}

/* Proves: a timer fires once at (never before) its deadline, a re-set
 * replaces the deadline, COEV_FOREVER disarms, a past deadline fires at
 * once, a free while armed cancels it, and it can be re-armed and freed
 * inside its callback. */
static void test_timer_deadline_reset_and_free(void **state)
{
	(void)state;
	run_pinned(timer_body);
}

/* ---- socket sets -------------------------------------------------------------- */

#define SS_FDS 256

typedef struct srec {
	coev_sockset_t *ss;
	int worker, calls, timer_calls, wrong;
	int fd_calls[SS_FDS];
	unsigned fd_ev[SS_FDS];
	int read_each;
	int forget_at;	   /* forget the calling fd at this call */
	int free_at;	   /* coev_sockset_free at this call */
	int free_at_timer; /* ... at the timer's call */
	int zero_after;	   /* forget an fd after this many calls of it */
	int target;
	coev_event_t reached;
} srec_t;

static void srec_cb(coev_sockset_t *ss, int fd, unsigned events, void *arg)
{
	srec_t *r = arg;
	int n = ++r->calls;
	char c;

	if (ss != r->ss || coev_self() != NULL || coev_worker_id() != r->worker)
		r->wrong++;
	if (fd == COEV_SOCKSET_TIMER) {
		if (events != 0)
			r->wrong++;
		r->timer_calls++;
	} else if (fd < 0 || fd >= SS_FDS) {
		r->wrong++;
	} else {
		r->fd_calls[fd]++;
		r->fd_ev[fd] = events;
		for (int i = 0; i < r->read_each && (events & COEV_READ); i++)
			TU_CHECK_EQ(read(fd, &c, 1), 1);
		if (r->zero_after && r->fd_calls[fd] == r->zero_after)
			TU_CHECK_EQ(coev_sockset_watch(ss, fd, 0), 0);
	}
	if (n == r->target)
		coev_event_set(&r->reached);
	if (n == r->free_at || (fd == COEV_SOCKSET_TIMER && r->free_at_timer)) {
		coev_sockset_free(ss);
		r->ss = NULL;
	}
}

static void srec_init(srec_t *r)
{
	memset(r, 0, sizeof *r);
	r->worker = coev_worker_id();
	TU_CHECK_EQ(coev_event_init(&r->reached), 0);
	TU_CHECK_EQ(coev_sockset_new(srec_cb, r, &r->ss), 0);
}

static void srec_fini(srec_t *r)
{
	coev_sockset_free(r->ss);
	r->ss = NULL;
	TU_CHECK_EQ(r->wrong, 0);
	coev_event_destroy(&r->reached);
}

static void sockset_body(void)
{
	srec_t *r = calloc(1, sizeof *r);
	int sv[3][2], hi[2];

	TU_CHECK(r != NULL);
	for (int i = 0; i < 3; i++)
		pair(sv[i]);
	/* A high fd number makes the set grow its table. */
	pair(hi);
	TU_CHECK_EQ(dup2(hi[0], 200), 200);
	close(hi[0]);
	hi[0] = 200;

	srec_init(r);
	r->read_each = 1;
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[i][0], COEV_READ), 0);
	TU_CHECK_EQ(coev_sockset_watch(r->ss, hi[0], COEV_READ), 0);
	/* Forgetting fds it never watched, within and beyond its table. */
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[0][1], 0), 0);
	TU_CHECK_EQ(coev_sockset_watch(r->ss, 1000, 0), 0);
	TU_CHECK_EQ(coev_sockset_watch(r->ss, -1, COEV_READ), -EINVAL);
	/* Data on two of them: one call per byte for exactly those. */
	put(sv[1][1], 2);
	put(hi[1], 1);
	r->target = 3;
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r->calls, 3);
	TU_CHECK_EQ(r->fd_calls[sv[1][0]], 2);
	TU_CHECK_EQ(r->fd_calls[hi[0]], 1);
	TU_CHECK_EQ(r->fd_ev[hi[0]], COEV_READ);
	TU_CHECK_EQ(r->fd_calls[sv[0][0]] + r->fd_calls[sv[2][0]], 0);
	/* Forgotten with data pending: never called for it. */
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[2][0], 0), 0);
	put(sv[2][1], 1);
	/* Changed to WRITE: reported as WRITE. */
	r->zero_after = 1;
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[0][0], COEV_WRITE), 0);
	coev_event_clear(&r->reached);
	r->target = 4;
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r->calls, 4);
	TU_CHECK_EQ(r->fd_ev[sv[0][0]], COEV_WRITE);
	TU_CHECK_EQ(r->fd_calls[sv[2][0]], 0);
	/* The timer: fd COEV_SOCKSET_TIMER, events 0, once. */
	coev_event_clear(&r->reached);
	r->target = 5;
	TU_CHECK_EQ(coev_sockset_timer(r->ss, coev_now() + COEV_MSEC(5)), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r->timer_calls, 1);
	/* COEV_FOREVER stops it. */
	TU_CHECK_EQ(coev_sockset_timer(r->ss, coev_now() + COEV_MSEC(5)), 0);
	TU_CHECK_EQ(coev_sockset_timer(r->ss, COEV_FOREVER), 0);
	coev_sleep(COEV_MSEC(20)); /* negative: past the 5 ms */
	TU_CHECK_EQ(r->timer_calls, 1);
	TU_CHECK_EQ(r->calls, 5);
	srec_fini(r);
	for (int i = 0; i < 3; i++)
		unpair(sv[i]);
	unpair(hi);
	free(r);
}

/* Proves: a socket set calls back for each ready fd it watches (a high fd
 * number too) with its events, never for a forgotten fd, reports a
 * changed interest, and runs its timer once with COEV_SOCKSET_TIMER until
 * COEV_FOREVER stops it. */
static void test_sockset_fds_and_timer(void **state)
{
	(void)state;
	run_pinned(sockset_body);
}

static void sockset_free_body(void)
{
	srec_t *r = calloc(1, sizeof *r);
	int sv[2][2];

	TU_CHECK(r != NULL);
	pair(sv[0]);
	pair(sv[1]);
	/* Freed inside an fd callback while another fd is ready too. */
	srec_init(r);
	r->free_at = 1;
	r->target = 1;
	put(sv[0][1], 1);
	put(sv[1][1], 1);
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[0][0], COEV_READ), 0);
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[1][0], COEV_READ), 0);
	TU_CHECK_EQ(coev_sockset_timer(r->ss, coev_now() + COEV_MSEC(5)), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	coev_sleep(COEV_MSEC(20)); /* negative: past the 5 ms */
	TU_CHECK_EQ(r->calls, 1);
	TU_CHECK(r->ss == NULL);
	srec_fini(r);

	/* Freed inside the timer callback with fds watched. */
	srec_init(r);
	r->free_at_timer = 1;
	r->target = 1;
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[0][0], COEV_WRITE), 0);
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[0][0], 0), 0);
	TU_CHECK_EQ(coev_sockset_timer(r->ss, coev_now()), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r->calls, 1);
	TU_CHECK_EQ(r->timer_calls, 1);
	srec_fini(r);

	/* Forgetting the calling fd inside its callback, then a regular
	 * file: -EPERM, and the set still works. */
	srec_init(r);
	r->zero_after = 1;
	r->target = 1;
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[1][0], COEV_READ), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(r->calls, 1); /* the unread byte is not reported again */
	int fd = regular_file();
	TU_CHECK_EQ(coev_sockset_watch(r->ss, fd, COEV_READ), -EPERM);
	coev_event_clear(&r->reached);
	r->target = 2;
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[1][0], COEV_READ), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&r->reached, short_dl()), 0);
	srec_fini(r);
	close(fd);
	unpair(sv[0]);
	unpair(sv[1]);
	free(r);
}

/* Proves: coev_sockset_free inside an fd callback (another fd and the
 * timer pending) and inside the timer callback stops everything and is
 * ASan-clean; forgetting the calling fd inside its callback works;
 * -EPERM for a regular file leaves the set usable. */
static void test_sockset_free_inside_callbacks(void **state)
{
	(void)state;
	run_pinned(sockset_free_body);
}

static void sockset_inout_body(void)
{
	srec_t *r = calloc(1, sizeof *r);
	int sv[2];

	TU_CHECK(r != NULL);
	pair(sv);
	srec_init(r);
	r->zero_after = 5;
	r->target = 5;
	TU_CHECK_EQ(coev_sockset_watch(r->ss, sv[0], COEV_READ | COEV_WRITE),
		    0);
	TU_CHECK_MSG(coev_event_wait_dl(&r->reached, short_dl()) == 0,
		     "READ|WRITE on a writable fd: %d call(s), want 5",
		     r->calls);
	srec_fini(r);
	unpair(sv);
	free(r);
}

/* Proves: a socket set watching an fd for READ|WRITE (libcurl's
 * CURL_POLL_INOUT) keeps reporting the ready half while the other is not
 * ready. */
static void test_sockset_inout_one_side_ready(void **state)
{
	(void)state;
	run_pinned(sockset_inout_body);
}

typedef struct plain_new {
	int watch, timer, sockset;
} plain_new_t;

static void *plain_new_thread(void *arg)
{
	plain_new_t *p = arg;
	coev_watch_t *wa;
	coev_timer_t *tm;
	coev_sockset_t *ss;

	p->watch = coev_watch_new(0, wrec_cb, NULL, &wa);
	p->timer = coev_timer_new(trec_cb, NULL, &tm);
	p->sockset = coev_sockset_new(srec_cb, NULL, &ss);
	return NULL;
}

/* Proves: the argument errors (-EINVAL), -EPERM for a regular file, and
 * COEV_ENOTRT for new on a plain thread; NULL frees are ignored. */
static void test_watch_errors(void **state)
{
	plain_new_t p;
	pthread_t th;

	(void)state;
	run_pinned(errors_body);
	plain_new_thread(&p); /* the test thread */
	assert_int_equal(p.watch, COEV_ENOTRT);
	assert_int_equal(p.timer, COEV_ENOTRT);
	assert_int_equal(p.sockset, COEV_ENOTRT);
	memset(&p, 0, sizeof p);
	assert_int_equal(pthread_create(&th, NULL, plain_new_thread, &p), 0);
	pthread_join(th, NULL);
	assert_int_equal(p.watch, COEV_ENOTRT);
	assert_int_equal(p.timer, COEV_ENOTRT);
	assert_int_equal(p.sockset, COEV_ENOTRT);
}

/* ---- misuse: another thread ---------------------------------------------------- */

typedef struct misuse {
	int what; /* 0 watch_set, 1 watch_free, 2 timer_set, 3 sockset_watch */
	int from_plain;
	int owner; /* the worker that created the objects */
	coev_watch_t *wa;
	coev_timer_t *tm;
	coev_sockset_t *ss;
	int fd;
} misuse_t;

static void misuse_call(misuse_t *m)
{
	switch (m->what) {
	case 0: coev_watch_set(m->wa, COEV_READ); break;
	case 1: coev_watch_free(m->wa); break;
	case 2: coev_timer_set(m->tm, coev_now() + COEV_MSEC(1)); break;
	default: coev_sockset_watch(m->ss, m->fd, COEV_READ); break;
	}
	fprintf(stderr, "misuse %d returned\n", m->what);
}

static int misuse_other_worker(void *arg)
{
	misuse_t *m = arg;

	coev_pin_to((unsigned)(m->owner ^ 1));
	misuse_call(m);
	return 0;
}

static void *misuse_thread(void *arg)
{
	misuse_call(arg);
	return NULL;
}

static int misuse_main(void *arg)
{
	misuse_t *m = arg;
	int sv[2];
	coev_task_t *t;
	pthread_t th;

	coev_pin();
	m->owner = coev_worker_id();
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	m->fd = sv[0];
	coev_watch_new(sv[0], wrec_cb, NULL, &m->wa);
	coev_timer_new(trec_cb, NULL, &m->tm);
	coev_sockset_new(srec_cb, NULL, &m->ss);
	if (m->from_plain) {
		pthread_create(&th, NULL, misuse_thread, m);
		pthread_join(th, NULL);
	} else {
		coev_spawn(misuse_other_worker, m, &t);
		coev_join(t, NULL);
	}
	return 0;
}

static void misuse_child(void *arg)
{
	coev_config_t cfg;

	coev_config_init(&cfg);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_SEC(2);
	coev_run(misuse_main, arg, &cfg);
}

/* Proves: using a watch, timer or socket set from another worker's thread
 * or from a plain thread aborts with a message naming the call. */
static void test_watch_other_thread_aborts(void **state)
{
	static const char *const names[] = {"coev_watch_set", "coev_watch_free",
					    "coev_timer_set",
					    "coev_sockset_watch"};
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	for (int what = 0; what < 4; what++) {
		for (int plain = 0; plain < 2; plain++) {
			misuse_t m = {.what = what, .from_plain = plain};
			assert_int_equal(tu_run_in_child(misuse_child, &m, res),
					 0);
			int ok = tu_child_signaled(res, SIGABRT) &&
				 strstr(res->out, names[what]) &&
				 strstr(res->out, "not the worker");
			if (!ok) {
				fprintf(stderr, "misuse %s from %s:\n",
					names[what],
					plain ? "a plain thread"
					      : "another worker");
				tu_child_dump(res);
			}
			assert_true(ok);
		}
	}
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_read_is_level_triggered),
		cmocka_unit_test(test_watch_write_and_stop),
		cmocka_unit_test(test_watch_read_write_one_side_ready),
		cmocka_unit_test(test_watch_free_after_one_side_fired),
		cmocka_unit_test(test_watch_free_inside_callback),
		cmocka_unit_test(test_watch_set_inside_callback),
		cmocka_unit_test(test_watch_two_watches_one_fd),
		cmocka_unit_test(test_watch_errors),
		cmocka_unit_test(test_timer_deadline_reset_and_free),
		cmocka_unit_test(test_sockset_fds_and_timer),
		cmocka_unit_test(test_sockset_free_inside_callbacks),
		cmocka_unit_test(test_sockset_inout_one_side_ready),
		cmocka_unit_test(test_watch_other_thread_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
