/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_select_any.c — the select over mixed sources
 * (include/coev/select.h, bridge/select_any.c): each kind of case winning
 * while the others wait, the losers untouched (a message not taken, a
 * future still pending and awaitable, a task still joinable), a random
 * choice among ready cases, everything losing to the deadline, a
 * cancelled select, a plain thread's select, a stream's line and bytes
 * read ahead but left for the reader, broadcast and latest-value
 * receivers (a losing one receives nothing), an event, a signal watch
 * (a losing case leaves the delivery), and a stress run on two
 * workers with forced migration in which no message is lost or taken
 * twice.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/testutil.h"

#define NOTHING 0xDEADULL

static coev_chan_t *chan(size_t cap)
{
	coev_chan_t *ch = NULL;

	TU_CHECK_EQ(coev_chan_new(&ch, sizeof(uint64_t), cap), 0);
	return ch;
}

static int sleep_then(void *arg)
{
	coev_sleep(COEV_MSEC(5));
	return (int)(intptr_t)arg;
}

static int forever(void *arg)
{
	(void)arg;
	return coev_sleep_until(COEV_FOREVER);
}

/* The cases every test below builds on: a receive, a send on a full
 * channel, a future, a task, an fd and a deadline; each test makes one of
 * them ready. */
struct mix {
	coev_chan_t *in, *full;
	coev_future_t *f;
	coev_task_t *t;
	int pipe[2];
	uint64_t got, out;
	coev_any_t cs[6];
};

static void mix_init(struct mix *m, coev_fn task_fn, void *task_arg,
		     coev_time_t at)
{
	uint64_t one = 1;

	m->in = chan(0);
	m->full = chan(1);
	TU_CHECK_EQ(coev_chan_send(m->full, &one), 0);
	TU_CHECK_EQ(coev_future_new(&m->f), 0);
	TU_CHECK_EQ(coev_spawn(task_fn, task_arg, &m->t), 0);
	TU_CHECK_EQ(pipe2(m->pipe, O_NONBLOCK | O_CLOEXEC), 0);
	m->got = NOTHING;
	m->out = 77;
	m->cs[0] = coev_any_recv(m->in, &m->got);
	m->cs[1] = coev_any_send(m->full, &m->out);
	m->cs[2] = coev_any_future(m->f);
	m->cs[3] = coev_any_task(m->t);
	m->cs[4] = coev_any_fd(m->pipe[0], COEV_READ);
	m->cs[5] = coev_any_until(at);
}

/* The losers are untouched: the full channel still holds its one message,
 * the future is pending unless it won, the task's handle is joinable. */
static void mix_fini(struct mix *m, int winner)
{
	uint64_t v = 0;
	int res = 0;

	TU_CHECK_EQ(coev_chan_len(m->full), 1);
	if (winner != 2)
		TU_CHECK_EQ(coev_future_poll(m->f, NULL), -EAGAIN);
	TU_CHECK_EQ(coev_future_set(m->f, 5), winner == 2 ? -EALREADY : 0);
	TU_CHECK_EQ(coev_future_wait(m->f, &res), 0);
	coev_cancel(m->t);
	TU_CHECK_EQ(coev_join_dl(m->t, tu_guard(), NULL), 0);
	TU_CHECK_EQ(coev_chan_recv(m->full, &v), 0);
	coev_future_release(m->f);
	coev_chan_free(m->in);
	coev_chan_free(m->full);
	close(m->pipe[0]);
	close(m->pipe[1]);
}

static int sender(void *arg)
{
	uint64_t v = 42;

	coev_sleep(COEV_MSEC(2));
	return coev_chan_send(arg, &v);
}

static int completer(void *arg)
{
	coev_sleep(COEV_MSEC(2));
	return coev_future_set(arg, 9);
}

static int complete_soon(void *arg)
{
	coev_yield();
	return coev_future_set(arg, 9);
}

static int writer(void *arg)
{
	coev_sleep(COEV_MSEC(2));
	return write(*(int *)arg, "x", 1) == 1 ? 0 : -1;
}

static int taker(void *arg)
{
	uint64_t v;

	coev_sleep(COEV_MSEC(2));
	return coev_chan_recv(arg, &v);
}

static int each_kind_main(void *arg)
{
	coev_time_t far = tu_guard();
	coev_task_t *h;
	struct mix m;
	int r;

	(void)arg;
	for (int kind = 0; kind < 6; kind++) {
		mix_init(&m, kind == 3 ? sleep_then : forever,
			 (void *)(intptr_t)31,
			 kind == 5 ? coev_now() + COEV_MSEC(3) : far);
		h = NULL;
		if (kind == 0)
			coev_spawn(sender, m.in, &h);
		else if (kind == 1)
			coev_spawn(taker, m.full, &h);
		else if (kind == 2)
			coev_spawn(completer, m.f, &h);
		else if (kind == 4)
			coev_spawn(writer, &m.pipe[1], &h);
		r = coev_select_any(m.cs, 6, far);
		TU_CHECK_MSG(r == kind, "kind %d: select returned %d", kind, r);
		if (kind == 0)
			TU_CHECK(m.got == 42 && m.cs[0].result == 0);
		else
			TU_CHECK_EQ(m.got, NOTHING);
		if (kind == 1) {
			/* The taker took the old message; ours went in. */
			TU_CHECK_EQ(m.cs[1].result, 0);
			TU_CHECK_EQ(coev_join(h, NULL), 0);
			h = NULL;
		}
		if (kind == 2)
			TU_CHECK_EQ(m.cs[2].result, 9);
		if (kind == 3) {
			TU_CHECK_EQ(m.cs[3].result, 31);
			TU_CHECK_EQ(coev_join(m.t, &r), 0);
			TU_CHECK_EQ(r, 31);
			TU_CHECK_EQ(coev_spawn(forever, NULL, &m.t), 0);
		}
		if (kind == 4)
			TU_CHECK_EQ(m.cs[4].result, (int)COEV_READ);
		if (kind == 5)
			TU_CHECK(coev_now() >= m.cs[5].at);
		if (h)
			TU_CHECK_EQ(coev_join(h, NULL), 0);
		mix_fini(&m, kind);
	}
	return 0;
}

static void test_select_any_each_kind_wins(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(each_kind_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- already ready, fairness, try ------------------------------------------ */

static int fair_main(void *arg)
{
	coev_future_t *f;
	coev_task_t *t;
	coev_chan_t *ch = chan(COEV_CHAN_UNBOUNDED);
	uint64_t v = 3, got;
	int wins[4] = {0}, r, n = TU_SCALE(2000, 1000, 300);

	(void)arg;
	TU_CHECK_EQ(coev_future_new(&f), 0);
	TU_CHECK_EQ(coev_future_set(f, 1), 0);
	TU_CHECK_EQ(coev_spawn(sleep_then, NULL, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0); /* ended, consumed: respawn */
	TU_CHECK_EQ(coev_spawn(sleep_then, (void *)(intptr_t)4, &t), 0);
	while (coev_wait_any(&t, 1, COEV_FOREVER) != 0)
		;
	coev_any_t cs[4] = {coev_any_future(f), coev_any_task(t),
			    coev_any_until(coev_now()),
			    coev_any_recv(ch, &got)};
	for (int i = 0; i < n; i++) {
		TU_CHECK_EQ(coev_chan_send(ch, &v), 0);
		r = coev_select_any(cs, 4, COEV_FOREVER);
		TU_CHECK(r >= 0 && r < 4);
		if (r >= 0 && r < 4)
			wins[r]++;
		if (r != 3) /* keep one message queued, no more */
			TU_CHECK_EQ(coev_chan_recv(ch, &got), 0);
	}
	/* Each ready case goes first about a quarter of the time. */
	for (int k = 0; k < 4; k++)
		TU_CHECK_MSG(wins[k] > n / 8, "case %d won %d of %d", k,
			     wins[k], n);
	/* The task's handle was never consumed. */
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 4);
	/* Nothing ready: the try form says so. */
	cs[0] = coev_any_task(NULL);
	cs[1].kind = COEV_ANY_NONE;
	cs[2] = coev_any_until(COEV_FOREVER);
	TU_CHECK_EQ(coev_try_select_any(cs, 4), -EAGAIN);
	TU_CHECK_EQ(coev_chan_send(ch, &v), 0);
	TU_CHECK_EQ(coev_try_select_any(cs, 4), 3);
	coev_future_release(f);
	coev_chan_free(ch);
	return 0;
}

static void test_select_any_ready_cases_are_chosen_at_random(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(fair_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- deadline, cancel, bad calls ------------------------------------------ */

static int deadline_main(void *arg)
{
	struct mix m;
	coev_time_t dl;
	int r;

	(void)arg;
	mix_init(&m, forever, NULL, COEV_FOREVER);
	dl = coev_now() + COEV_MSEC(10);
	r = coev_select_any(m.cs, 6, dl);
	TU_CHECK_EQ(r, -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(m.got, NOTHING);
	/* A pushed deadline bounds it too. */
	dl = coev_now() + COEV_MSEC(5);
	coev_time_t tok = coev_deadline_push(dl);
	TU_CHECK_EQ(coev_select_any(m.cs, 6, COEV_FOREVER), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	coev_deadline_pop(tok);
	/* Bad calls. */
	TU_CHECK_EQ(coev_select_any(NULL, 1, dl), -EINVAL);
	TU_CHECK_EQ(coev_select_any(m.cs, COEV_SELECT_MAX + 1, dl), -EINVAL);
	m.cs[0].buf = NULL;
	TU_CHECK_EQ(coev_select_any(m.cs, 6, dl), -EINVAL);
	m.cs[0].buf = &m.got;
	m.cs[4].events = 0;
	TU_CHECK_EQ(coev_select_any(m.cs, 6, dl), -EINVAL);
	m.cs[4].events = COEV_READ;
	m.cs[3].task = coev_self();
	TU_CHECK_EQ(coev_select_any(m.cs, 6, dl), -EDEADLK);
	m.cs[3].task = m.t;
	m.cs[5].kind = 99;
	TU_CHECK_EQ(coev_select_any(m.cs, 6, dl), -EINVAL);
	mix_fini(&m, -1);
	return 0;
}

static void test_select_any_all_lose_to_the_deadline(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(deadline_main, NULL, 2), 0);
	tu_assert_no_failures();
}

struct cancelled {
	struct mix m;
	atomic_int rc;
};

static int blocked(void *arg)
{
	struct cancelled *c = arg;

	atomic_store(&c->rc, coev_select_any(c->m.cs, 6, tu_guard()));
	return 0;
}

static int cancel_main(void *arg)
{
	struct cancelled c;
	coev_task_t *t;

	(void)arg;
	atomic_init(&c.rc, 1);
	mix_init(&c.m, forever, NULL, COEV_FOREVER);
	TU_CHECK_EQ(coev_spawn(blocked, &c, &t), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_SELECT, c.m.cs), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), NULL), 0);
	TU_CHECK_EQ(atomic_load(&c.rc), -ECANCELED);
	TU_CHECK_EQ(c.m.got, NOTHING);
	/* Nothing stayed registered: the future completes and is freed, the
	 * task is joined, the channels take partners. */
	mix_fini(&c.m, -1);
	return 0;
}

static void test_select_any_cancelled_while_waiting(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cancel_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- a plain thread --------------------------------------------------------- */

static int plain_helper(void *arg)
{
	coev_sleep(COEV_MSEC(3));
	return coev_future_set(arg, 12);
}

static void test_select_any_from_a_plain_thread(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_future_t *f;
	coev_task_t *t, *ender;
	coev_chan_t *ch = chan(0);
	uint64_t got = NOTHING;
	int r;

	(void)state;
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_rt_spawn(rt, "ender", forever, NULL, &ender), 0);
	assert_int_equal(coev_rt_spawn(rt, "helper", plain_helper, f, &t), 0);
	coev_any_t cs[4] = {coev_any_recv(ch, &got), coev_any_future(f),
			    coev_any_task(ender), coev_any_fd(0, COEV_READ)};
	/* An fd case needs a worker's loop. */
	assert_int_equal(coev_select_any(cs, 4, tu_guard()), -EINVAL);
	assert_int_equal(coev_select_any(cs, 3, tu_guard()), 1);
	assert_int_equal(cs[1].result, 12);
	assert_true(got == NOTHING);
	assert_int_equal(coev_join(t, NULL), 0);
	/* A deadline with nothing ready. */
	coev_time_t dl = coev_now() + COEV_MSEC(5);
	cs[1].kind = COEV_ANY_NONE;
	assert_int_equal(coev_select_any(cs, 3, dl), -ETIMEDOUT);
	assert_true(coev_now() >= dl);
	/* A task's end reaches a plain thread too. */
	coev_cancel(ender);
	assert_int_equal(coev_select_any(cs, 3, tu_guard()), 2);
	assert_int_equal(cs[2].result, -ECANCELED);
	assert_int_equal(coev_join(ender, &r), 0);
	assert_int_equal(r, -ECANCELED);
	coev_future_release(f);
	coev_chan_free(ch);
	coev_rt_free(rt);
}

/* ---- streams ------------------------------------------------------------------ */

static int write_later(void *arg)
{
	int fd = (int)(intptr_t)arg;

	coev_sleep(COEV_MSEC(2));
	return write(fd, "lo\nwor", 6) == 6 ? 0 : -1;
}

/* One select over a stream's line (or bytes) and a deadline. */
static int select_stream(coev_any_t c, coev_time_t at)
{
	coev_any_t cs[2] = {c, coev_any_until(at)};
	int r = coev_select_any(cs, 2, tu_guard());

	return r == 0 ? cs[0].result : r == 1 ? -ETIMEDOUT : r;
}

static int stream_main(void *arg)
{
	coev_time_t far = tu_guard();
	coev_stream_t *s = NULL;
	coev_task_t *w;
	char line[16];
	int sv[2];

	(void)arg;
	TU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	TU_CHECK_EQ(coev_stream_fd(sv[0], 0, &s), 0);
	/* Half a line: the line case loses to the deadline, yet what it
	 * read ahead stays buffered, and the bytes case wins with it. */
	TU_CHECK_EQ(write(sv[1], "hel", 3), 3);
	TU_CHECK_EQ(
		select_stream(coev_any_line(s, 0), coev_now() + COEV_MSEC(2)),
		-ETIMEDOUT);
	TU_CHECK_EQ(coev_stream_buffered(s), 3);
	TU_CHECK_EQ(select_stream(coev_any_bytes(s), far), 3);
	/* The rest of the line comes while the select waits. */
	TU_CHECK_EQ(coev_spawn(write_later, (void *)(intptr_t)sv[1], &w), 0);
	TU_CHECK_EQ(select_stream(coev_any_line(s, 0), far), 6);
	TU_CHECK_EQ(coev_stream_read_line(s, line, sizeof line, 0), 6);
	TU_CHECK(memcmp(line, "hello\n", 6) == 0);
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	/* No newline within max bytes. */
	TU_CHECK_EQ(write(sv[1], "ldxyz", 5), 5);
	TU_CHECK_EQ(select_stream(coev_any_line(s, 4), far), -EMSGSIZE);
	/* The end of the stream comes before a newline. */
	TU_CHECK_EQ(shutdown(sv[1], SHUT_WR), 0);
	TU_CHECK_EQ(select_stream(coev_any_line(s, 0), far), COEV_EEOF);
	TU_CHECK_EQ(coev_stream_buffered(s), 8);
	TU_CHECK_EQ(select_stream(coev_any_bytes(s), far), 8);
	coev_stream_close(s);
	close(sv[1]);
	return 0;
}

static void test_select_any_stream_line_and_bytes(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(stream_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- broadcast and latest-value receivers ----------------------------------------- */

static int bcast_later(void *arg)
{
	int v = 5;

	coev_sleep(COEV_MSEC(2));
	return coev_bcast_send(arg, &v) == 1 ? 0 : -1;
}

static int latest_later(void *arg)
{
	int v = 7;

	coev_sleep(COEV_MSEC(2));
	return coev_latest_send(arg, &v);
}

/* One select over a receiver case and a deadline: the case's result, or
 * -ETIMEDOUT when the deadline case won. */
static int select_rx(coev_any_t c, coev_time_t at)
{
	coev_any_t cs[2] = {c, coev_any_until(at)};
	int r = coev_select_any(cs, 2, tu_guard());

	return r == 0 ? cs[0].result : r == 1 ? -ETIMEDOUT : r;
}

static int set_later(void *arg)
{
	coev_sleep(COEV_MSEC(2));
	coev_event_set(arg);
	return 0;
}

static int receivers_main(void *arg)
{
	coev_time_t far = tu_guard();
	coev_bcast_t *b;
	coev_bcast_rx_t *rx;
	coev_latest_t *w;
	coev_latest_rx_t *lx;
	coev_task_t *t;
	int v = -1, zero = 0, six = 6, lost = 0, won = 0;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof(int), 4), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &rx), 0);
	TU_CHECK_EQ(coev_latest_new(&w, sizeof(int), &zero), 0);
	TU_CHECK_EQ(coev_latest_subscribe(w, &lx), 0);
	/* Nothing yet: the deadline wins, nothing is received. */
	TU_CHECK_EQ(
		select_rx(coev_any_bcast(rx, &v), coev_now() + COEV_MSEC(1)),
		-ETIMEDOUT);
	TU_CHECK_EQ(
		select_rx(coev_any_latest(lx, &v), coev_now() + COEV_MSEC(1)),
		-ETIMEDOUT);
	TU_CHECK_EQ(v, -1);
	/* A send while the select waits. */
	TU_CHECK_EQ(coev_spawn(bcast_later, b, &t), 0);
	TU_CHECK_EQ(select_rx(coev_any_bcast(rx, &v), far), 0);
	TU_CHECK_EQ(v, 5);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(coev_spawn(latest_later, w, &t), 0);
	TU_CHECK_EQ(select_rx(coev_any_latest(lx, &v), far), 0);
	TU_CHECK_EQ(v, 7);
	TU_CHECK_EQ(coev_latest_seen(lx), 1);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	/* Both ready: a receiver case that loses receives nothing. */
	TU_CHECK_EQ(coev_bcast_send(b, &six), 1);
	for (int i = 0; i < 64; i++) {
		v = -1;
		if (select_rx(coev_any_bcast(rx, &v), coev_now() - 1) ==
		    -ETIMEDOUT) {
			TU_CHECK_EQ(v, -1);
			TU_CHECK_EQ(coev_bcast_pending(rx), 1);
			lost++;
			continue;
		}
		TU_CHECK_EQ(v, 6);
		TU_CHECK_EQ(coev_bcast_pending(rx), 0);
		TU_CHECK_EQ(coev_bcast_send(b, &six), 1);
		won++;
	}
	TU_CHECK(lost > 0 && won > 0);
	/* Closing answers the cases. */
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), 0);
	TU_CHECK_EQ(coev_bcast_close(b), 0);
	TU_CHECK_EQ(coev_latest_close(w), 0);
	TU_CHECK_EQ(select_rx(coev_any_bcast(rx, &v), far), COEV_ECLOSED);
	TU_CHECK_EQ(select_rx(coev_any_latest(lx, &v), far), COEV_ECLOSED);
	coev_bcast_unsubscribe(rx);
	coev_bcast_free(b);
	/* An event (Go's ctx.Done()): set while the select waits, and still
	 * set after it. */
	coev_event_t e;
	TU_CHECK_EQ(coev_event_init(&e), 0);
	TU_CHECK_EQ(select_rx(coev_any_event(&e), coev_now() + COEV_MSEC(1)),
		    -ETIMEDOUT);
	TU_CHECK_EQ(coev_spawn(set_later, &e, &t), 0);
	TU_CHECK_EQ(select_rx(coev_any_event(&e), far), 0);
	TU_CHECK_EQ(coev_event_is_set(&e), 1);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	coev_event_destroy(&e);
	coev_latest_unsubscribe(lx);
	coev_latest_free(w);
	return 0;
}

static void test_select_any_receivers_and_event(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(receivers_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- signals ------------------------------------------------------------------- */

static int kill_later(void *arg)
{
	(void)arg;
	coev_sleep(COEV_MSEC(2));
	return kill(getpid(), SIGUSR2);
}

/* Raise SIGUSR2 and wait until it has been counted, through a second
 * watch (every watch sees every delivery), so the first has it too. */
static void raise_seen(coev_signal_t *w2)
{
	TU_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
	TU_CHECK_EQ(coev_signal_wait(w2, NULL, tu_guard()), SIGUSR2);
}

static int signal_main(void *arg)
{
	coev_time_t far = tu_guard();
	coev_siginfo_t info = {0, 0, 0, 0};
	int sig = SIGUSR2, lost = 0, won = 0;
	coev_signal_t *w, *w2;
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_signal_new(&sig, 1, &w), 0);
	TU_CHECK_EQ(coev_signal_new(&sig, 1, &w2), 0);
	TU_CHECK_EQ(
		select_rx(coev_any_signal(w, &info), coev_now() + COEV_MSEC(1)),
		-ETIMEDOUT);
	/* A delivery while the select waits. */
	TU_CHECK_EQ(coev_spawn(kill_later, NULL, &t), 0);
	TU_CHECK_EQ(select_rx(coev_any_signal(w, &info), far), SIGUSR2);
	TU_CHECK_EQ(info.signo, SIGUSR2);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(coev_signal_wait(w2, NULL, far), SIGUSR2);
	/* Both ready: a signal case that loses leaves the delivery. */
	raise_seen(w2);
	for (int i = 0; i < 64; i++) {
		if (select_rx(coev_any_signal(w, NULL), coev_now() - 1) ==
		    -ETIMEDOUT) {
			lost++;
			continue;
		}
		won++;
		raise_seen(w2);
	}
	TU_CHECK(lost > 0 && won > 0);
	/* One kill more than the select took: exactly one is left. */
	TU_CHECK_EQ(coev_signal_wait(w, NULL, 0), SIGUSR2);
	TU_CHECK_EQ(coev_signal_wait(w, NULL, 0), -ETIMEDOUT);
	coev_signal_free(w2);
	coev_signal_free(w);
	return 0;
}

static void test_select_any_signal(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(signal_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- stress: two workers, forced migration ----------------------------------- */

#define PRODUCERS 3

struct stress {
	coev_chan_t *ch;
	int per;
	atomic_int sent;
};

static int producer(void *arg)
{
	struct stress *s = arg;

	for (int i = 0; i < s->per; i++) {
		uint64_t v = (uint64_t)atomic_fetch_add(&s->sent, 1);
		if (coev_chan_send(s->ch, &v) != 0)
			return -1;
		if (i % 7 == 0)
			coev_yield();
	}
	return 0;
}

static int stress_main(void *arg)
{
	struct stress s = {chan(0), TU_SCALE(400, 200, 60), 0};
	coev_task_t *p[PRODUCERS];
	unsigned char *seen;
	coev_future_t *f;
	uint64_t got;
	int total = PRODUCERS * s.per, n = 0, other = 0, r;

	(void)arg;
	seen = calloc((size_t)total, 1);
	TU_CHECK(seen != NULL);
	for (int i = 0; i < PRODUCERS; i++)
		TU_CHECK_EQ(coev_spawn(producer, &s, &p[i]), 0);
	while (n < total) {
		/* Each round: the channel races a future completed by a
		 * helper and a very short deadline. */
		TU_CHECK_EQ(coev_future_new(&f), 0);
		coev_task_t *h;
		TU_CHECK_EQ(coev_spawn(complete_soon, f, &h), 0);
		coev_any_t cs[3] = {coev_any_recv(s.ch, &got),
				    coev_any_future(f),
				    coev_any_until(coev_now() + COEV_USEC(50))};
		r = coev_select_any(cs, 3, tu_guard());
		TU_CHECK(r >= 0 && r < 3);
		if (r == 0) {
			TU_CHECK(got < (uint64_t)total && !seen[got]);
			if (got < (uint64_t)total)
				seen[got] = 1;
			n++;
		} else {
			other++;
		}
		TU_CHECK_EQ(coev_join(h, NULL), 0);
		coev_future_release(f);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		TU_CHECK_EQ(coev_join(p[i], &r), 0);
		TU_CHECK_EQ(r, 0);
	}
	/* Every message arrived exactly once, and nothing is left. */
	TU_CHECK_EQ(coev_chan_try_recv(s.ch, &got), -EAGAIN);
	(void)other;
	free(seen);
	coev_chan_free(s.ch);
	return 0;
}

static void test_select_any_migrating_loses_nothing(void **state)
{
	coev_config_t cfg = tu_config(2);

	(void)state;
	cfg.debug |= COEV_DEBUG_MIGRATE;
	assert_int_equal(coev_run(stress_main, NULL, &cfg), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_select_any_each_kind_wins),
		TU_FD_TEST(test_select_any_ready_cases_are_chosen_at_random),
		TU_FD_TEST(test_select_any_all_lose_to_the_deadline),
		TU_FD_TEST(test_select_any_cancelled_while_waiting),
		TU_FD_TEST(test_select_any_from_a_plain_thread),
		TU_FD_TEST(test_select_any_stream_line_and_bytes),
		TU_FD_TEST(test_select_any_receivers_and_event),
		TU_FD_TEST(test_select_any_signal),
		TU_FD_TEST(test_select_any_migrating_loses_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
