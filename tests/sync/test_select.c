/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_select.c — what one select does (include/coev/chan.h):
 * argument checks, up to COEV_SELECT_MAX cases, only the chosen case
 * taking effect, NULL-channel cases ignored, closed channels making their
 * cases ready, try_select when nothing is ready, random choice among ready
 * cases, and one channel in a send and a receive case of the same select.
 *
 * The select cases, channels and messages come from chan_util.h.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

/* ---- arguments ------------------------------------------------------------ */

static void test_select_rejects_bad_arguments(void **state)
{
	coev_chan_t *a = chan(4), *b = chan(4);
	uint64_t x = 1, y = SENTINEL;
	coev_sel_t c[COEV_SELECT_MAX + 1];

	(void)state;
	put(a, 7);
	assert_int_equal(coev_select(NULL, 1), -EINVAL);
	assert_int_equal(coev_select_dl(NULL, 2, 0), -EINVAL);
	assert_int_equal(coev_try_select(NULL, 1), -EINVAL);

	/* A bad op or a NULL buf, next to a ready case: nothing happens. */
	static const int bad_ops[] = {0, 3, -1, COEV_SEL_SEND | COEV_SEL_RECV};
	for (size_t i = 0; i < sizeof bad_ops / sizeof bad_ops[0]; i++) {
		c[0] = sel_recv(a, &y);
		c[1] = (coev_sel_t){.ch = b, .op = bad_ops[i], .buf = &x};
		assert_int_equal(coev_try_select(c, 2), -EINVAL);
		assert_int_equal(coev_select_dl(c, 2, tu_guard()), -EINVAL);
		assert_int_equal(coev_select(c, 2), -EINVAL);
	}
	c[0] = sel_recv(a, &y);
	c[1] = sel_send(b, NULL);
	assert_int_equal(coev_try_select(c, 2), -EINVAL);
	assert_int_equal(coev_select(c, 2), -EINVAL);
	c[1] = sel_recv(b, NULL);
	assert_int_equal(coev_select_dl(c, 2, 0), -EINVAL);
	assert_int_equal(y, SENTINEL);
	assert_int_equal(coev_chan_len(a), 1);
	assert_int_equal(coev_chan_len(b), 0);

	/* Too many cases; exactly COEV_SELECT_MAX is fine. */
	for (int i = 0; i <= COEV_SELECT_MAX; i++)
		c[i] = sel_recv(b, &y);
	c[COEV_SELECT_MAX - 1] = sel_recv(a, &y);
	assert_int_equal(coev_try_select(c, COEV_SELECT_MAX + 1), -EINVAL);
	assert_int_equal(coev_select(c, COEV_SELECT_MAX + 1), -EINVAL);
	assert_int_equal(coev_select_dl(c, COEV_SELECT_MAX + 1, 0), -EINVAL);
	assert_int_equal(coev_chan_len(a), 1);
	assert_int_equal(coev_try_select(c, COEV_SELECT_MAX),
			 COEV_SELECT_MAX - 1);
	assert_int_equal(c[COEV_SELECT_MAX - 1].result, 0);
	assert_int_equal(y, 7);

	/* No cases: nothing is ever ready. */
	assert_int_equal(coev_try_select(NULL, 0), -EAGAIN);
	coev_time_t dl = coev_now() + COEV_MSEC(10);
	assert_int_equal(coev_select_dl(NULL, 0, dl), -ETIMEDOUT);
	assert_true(coev_now() >= dl);
	coev_chan_free(a);
	coev_chan_free(b);
}

/* 64 channels, one case each, every one in turn the only ready one. */
static void test_select_max_cases_each_chosen_when_ready(void **state)
{
	coev_chan_t *ch[COEV_SELECT_MAX];
	uint64_t buf[COEV_SELECT_MAX];
	coev_sel_t c[COEV_SELECT_MAX];

	(void)state;
	for (int i = 0; i < COEV_SELECT_MAX; i++)
		ch[i] = chan(i % 2 ? 1 : COEV_CHAN_UNBOUNDED);
	for (int k = 0; k < COEV_SELECT_MAX; k++) {
		put(ch[k], 1000 + (uint64_t)k);
		for (int i = 0; i < COEV_SELECT_MAX; i++) {
			buf[i] = SENTINEL;
			c[i] = sel_recv(ch[i], &buf[i]);
		}
		int r = k % 2 ? coev_try_select(c, COEV_SELECT_MAX)
			      : coev_select(c, COEV_SELECT_MAX);
		assert_int_equal(r, k);
		assert_int_equal(c[k].result, 0);
		for (int i = 0; i < COEV_SELECT_MAX; i++)
			assert_int_equal(buf[i], i == k ? 1000 + (uint64_t)k
							: SENTINEL);
	}
	for (int i = 0; i < COEV_SELECT_MAX; i++) {
		assert_int_equal(coev_chan_len(ch[i]), 0);
		coev_chan_free(ch[i]);
	}
}

/* ---- which case, and only that one ----------------------------------------- */

/*
 * Of recv A (empty), send B (full), recv C (holding a message), send D
 * (room) only some are ready; whichever is chosen is the only one that
 * took effect: the other receive buffers are untouched, the other
 * channels hold what they held.
 */
static void only_chosen_round(bool blocking)
{
	coev_chan_t *a = chan(1), *b = chan(1), *cc = chan(2), *d = chan(1);
	uint64_t ba = SENTINEL, sb = 20, bc = SENTINEL, sd = 40;
	int picks[4] = {0};

	for (int round = 0; round < 200; round++) {
		/* Reset: A empty, B full, C one message, D empty. */
		uint64_t v;
		while (coev_chan_try_recv(a, &v) == 0) {
		}
		while (coev_chan_try_recv(d, &v) == 0) {
		}
		if (coev_chan_len(b) == 0)
			put(b, 2);
		if (coev_chan_len(cc) == 0)
			put(cc, 3);
		ba = bc = SENTINEL;
		coev_sel_t c[4] = {sel_recv(a, &ba), sel_send(b, &sb),
				   sel_recv(cc, &bc), sel_send(d, &sd)};
		int r = blocking ? coev_select_dl(c, 4, tu_guard())
				 : coev_try_select(c, 4);
		TU_CHECK_MSG(r == 2 || r == 3, "chose %d", r);
		if (r != 2 && r != 3)
			break;
		picks[r]++;
		TU_CHECK_EQ(c[r].result, 0);
		TU_CHECK_EQ(ba, SENTINEL);
		TU_CHECK_EQ(coev_chan_len(a), 0);
		TU_CHECK_EQ(coev_chan_len(b), 1);
		if (r == 2) {
			TU_CHECK_EQ(bc, 3);
			TU_CHECK_EQ(coev_chan_len(cc), 0);
			TU_CHECK_EQ(coev_chan_len(d), 0);
		} else {
			TU_CHECK_EQ(bc, SENTINEL);
			TU_CHECK_EQ(coev_chan_len(cc), 1);
			TU_CHECK_EQ(coev_chan_len(d), 1);
			TU_CHECK_EQ(coev_chan_try_recv(d, &v), 0);
			TU_CHECK_EQ(v, 40);
		}
	}
	TU_CHECK(picks[2] > 0 && picks[3] > 0);
	/* B still holds its first message only. */
	uint64_t v = 0;
	TU_CHECK_EQ(coev_chan_try_recv(b, &v), 0);
	TU_CHECK_EQ(v, 2);
	coev_chan_free(a);
	coev_chan_free(b);
	coev_chan_free(cc);
	coev_chan_free(d);
}

static int only_chosen_main(void *arg)
{
	(void)arg;
	only_chosen_round(true);
	only_chosen_round(false);
	return 0;
}

static void test_select_only_the_chosen_case_takes_effect(void **state)
{
	(void)state;
	/* From a plain thread, then from a task. */
	only_chosen_main(NULL);
	tu_assert_no_failures();
	assert_int_equal(tu_run_main(only_chosen_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* Cases whose channel is NULL are never chosen, whatever their op and
 * buffer; with only such cases nothing is ever ready. */
typedef struct delayed {
	coev_chan_t *ch;
	uint64_t v;
	bool send;
	coev_task_t *selector; /* not NULL: act once it blocks in a select */
} delayed_t;

/* As a task: until task t blocks in a select. */
static void select_parked(coev_task_t *t)
{
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_SELECT, NULL), 0);
}

static int delayed_op(void *arg)
{
	delayed_t *d = arg;

	if (d->selector)
		select_parked(d->selector);
	return d->send ? coev_chan_send_dl(d->ch, &d->v, tu_guard())
		       : coev_chan_recv_dl(d->ch, &d->v, tu_guard());
}

static int null_main(void *arg)
{
	coev_chan_t *a = chan(COEV_CHAN_UNBOUNDED), *r = chan(0);
	uint64_t x = 5, y = SENTINEL, z = SENTINEL;
	coev_task_t *t;
	int ret = -1;

	(void)arg;
	put(a, 9);
	for (int i = 0; i < 50; i++) {
		coev_sel_t c[4] = {sel_recv(NULL, &y), sel_send(NULL, &x),
				   sel_recv(a, &z), sel_recv(NULL, &y)};
		put(a, 9);
		z = SENTINEL;
		TU_CHECK_EQ(coev_try_select(c, 4), 2);
		TU_CHECK_EQ(z, 9);
		TU_CHECK_EQ(y, SENTINEL);
	}
	/* Only NULL channels. */
	coev_sel_t n[2] = {sel_recv(NULL, &y), sel_send(NULL, &x)};
	TU_CHECK_EQ(coev_try_select(n, 2), -EAGAIN);
	coev_time_t dl = coev_now() + COEV_MSEC(15);
	TU_CHECK_EQ(coev_select_dl(n, 2, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(y, SENTINEL);

	/* A blocked select with NULL cases around a real one is woken by
	 * a partner on the real one. */
	delayed_t d = {.ch = r, .v = 77, .send = true, .selector = coev_self()};
	TU_CHECK_EQ(coev_spawn(delayed_op, &d, &t), 0);
	coev_sel_t w[3] = {sel_send(NULL, &x), sel_recv(r, &z),
			   sel_recv(NULL, &y)};
	TU_CHECK_EQ(coev_select_dl(w, 3, tu_guard()), 1);
	TU_CHECK_EQ(z, 77);
	TU_CHECK_EQ(y, SENTINEL);
	TU_CHECK_EQ(coev_join(t, &ret), 0);
	TU_CHECK_EQ(ret, 0);
	coev_chan_free(a);
	coev_chan_free(r);
	return 0;
}

static void test_select_ignores_null_channel_cases(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(null_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- closed channels ---------------------------------------------------------- */

typedef struct later {
	coev_chan_t *ch;
	coev_task_t *selector;
} later_t;

/* Closes ch once the selector blocks in its select. */
static int close_later(void *arg)
{
	later_t *l = arg;

	select_parked(l->selector);
	return coev_chan_close(l->ch);
}

static int closed_main(void *arg)
{
	coev_chan_t *open = chan(1), *shut = chan(2), *rdv = chan(0);
	uint64_t bo = SENTINEL, bs = SENTINEL, x = 11;
	coev_task_t *t;

	(void)arg;
	/* Buffered messages first: a closed channel's receive case gets
	 * them with result 0. */
	put(shut, 1);
	put(shut, 2);
	TU_CHECK_EQ(coev_chan_close(shut), 0);
	for (uint64_t i = 1; i <= 2; i++) {
		coev_sel_t c[2] = {sel_recv(open, &bo), sel_recv(shut, &bs)};
		TU_CHECK_EQ(coev_select_dl(c, 2, tu_guard()), 1);
		TU_CHECK_EQ(c[1].result, 0);
		TU_CHECK_EQ(bs, i);
	}
	/* Then the case is ready with COEV_ECLOSED, its buffer untouched,
	 * both from select and try_select. */
	for (int k = 0; k < 2; k++) {
		bs = SENTINEL;
		coev_sel_t c[2] = {sel_recv(open, &bo), sel_recv(shut, &bs)};
		TU_CHECK_EQ(k ? coev_try_select(c, 2)
			      : coev_select_dl(c, 2, tu_guard()),
			    1);
		TU_CHECK_EQ(c[1].result, COEV_ECLOSED);
		TU_CHECK_EQ(bs, SENTINEL);
		TU_CHECK_EQ(bo, SENTINEL);
	}
	/* A send case on a closed channel: ready, COEV_ECLOSED, nothing sent. */
	put(open, 5); /* open is now full: its send case is not ready */
	coev_sel_t s[2] = {sel_send(open, &x), sel_send(shut, &x)};
	TU_CHECK_EQ(coev_select_dl(s, 2, tu_guard()), 1);
	TU_CHECK_EQ(s[1].result, COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_len(shut), 0);
	TU_CHECK_EQ(coev_chan_len(open), 1);

	/* Blocked selects woken by a close: a receive case on an empty
	 * rendezvous channel, a send case on a full channel and one on a
	 * rendezvous channel; the other case never becomes ready. */
	coev_chan_t *empty_rdv = chan(0);
	coev_chan_t *targets[3] = {empty_rdv, open, rdv};
	for (int k = 0; k < 3; k++) {
		uint64_t b = SENTINEL;
		coev_chan_t *other = chan(0);
		coev_sel_t c[2];
		int ret = -1;
		c[0] = k == 0 ? sel_recv(targets[k], &b)
			      : sel_send(targets[k], &x);
		c[1] = sel_recv(other, &bo);
		later_t l = {.ch = targets[k], .selector = coev_self()};
		TU_CHECK_EQ(coev_spawn(close_later, &l, &t), 0);
		TU_CHECK_EQ(coev_select_dl(c, 2, tu_guard()), 0);
		TU_CHECK_EQ(c[0].result, COEV_ECLOSED);
		TU_CHECK_EQ(b, SENTINEL);
		TU_CHECK_EQ(bo, SENTINEL);
		TU_CHECK_EQ(coev_join(t, &ret), 0);
		TU_CHECK_EQ(ret, 0);
		/* The other channel has no waiter left behind. */
		TU_CHECK_EQ(coev_chan_try_send(other, &x), -EAGAIN);
		coev_chan_free(other);
	}
	/* The full channel kept its message and nothing more. */
	TU_CHECK_EQ(coev_chan_len(open), 1);
	TU_CHECK_EQ(coev_chan_try_recv(open, &bo), 0);
	TU_CHECK_EQ(bo, 5);
	coev_chan_free(empty_rdv);
	coev_chan_free(open);
	coev_chan_free(shut);
	coev_chan_free(rdv);
	return 0;
}

static void test_select_closed_channel_makes_its_case_ready(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(closed_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- nothing ready ---------------------------------------------------------- */

/* try_select (and a past deadline) on cases none of which can proceed:
 * -EAGAIN (-ETIMEDOUT), nothing changed, nothing left queued. A
 * rendezvous send case becomes ready once a receiver waits. */
static int nothing_main(void *arg)
{
	coev_chan_t *empty = chan(2), *full = chan(1), *rs = chan(0),
		    *rr = chan(0);
	uint64_t be = SENTINEL, br = SENTINEL, x = 3, v;
	coev_task_t *t;
	int ret = -1;

	(void)arg;
	put(full, 1);
	coev_sel_t c[4] = {sel_recv(empty, &be), sel_send(full, &x),
			   sel_send(rs, &x), sel_recv(rr, &br)};
	for (int i = 0; i < 100; i++) {
		TU_CHECK_EQ(coev_try_select(c, 4), -EAGAIN);
		TU_CHECK_EQ(coev_select_dl(c, 4, 0), -ETIMEDOUT);
		TU_CHECK_EQ(coev_select_dl(c, 4, coev_now() - 1), -ETIMEDOUT);
		TU_CHECK_EQ(coev_select_dl(c, 4, coev_now()), -ETIMEDOUT);
	}
	TU_CHECK_EQ(be, SENTINEL);
	TU_CHECK_EQ(br, SENTINEL);
	TU_CHECK_EQ(coev_chan_len(empty), 0);
	TU_CHECK_EQ(coev_chan_len(full), 1);
	TU_CHECK_EQ(coev_chan_try_recv(rs, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(rr, &x), -EAGAIN);

	/* A receiver waiting on rs: the send case is ready, even to a try. */
	delayed_t d = {.ch = rs, .v = SENTINEL};
	TU_CHECK_EQ(coev_spawn(delayed_op, &d, &t), 0);
	x = 64;
	coev_time_t give_up = tu_guard();
	int r;
	while ((r = coev_try_select(c, 4)) == -EAGAIN && coev_now() < give_up)
		coev_sleep(COEV_MSEC(1));
	TU_CHECK_EQ(r, 2);
	TU_CHECK_EQ(c[2].result, 0);
	TU_CHECK_EQ(coev_join(t, &ret), 0);
	TU_CHECK_EQ(ret, 0);
	TU_CHECK_EQ(d.v, 64);
	TU_CHECK_EQ(coev_chan_len(full), 1);
	TU_CHECK_EQ(be, SENTINEL);
	coev_chan_free(empty);
	coev_chan_free(full);
	coev_chan_free(rs);
	coev_chan_free(rr);
	return 0;
}

static void test_select_try_returns_eagain_when_nothing_is_ready(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(nothing_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- random choice ---------------------------------------------------------- */

/*
 * With k cases ready, each is chosen about 1/k of the time: over n tries
 * each gets at least n/(2k) (the expectation is n/k; the binomial
 * deviation is far smaller than the margin). Receive cases, send cases,
 * a mix, one channel in several cases, and blocking select as well as
 * try_select.
 */
static void fair_run(int kind, bool blocking, int *counts, int k, int n)
{
	coev_chan_t *ch[4];
	uint64_t buf[4], x = 1;
	coev_sel_t c[4];

	for (int i = 0; i < k; i++)
		ch[i] = chan(COEV_CHAN_UNBOUNDED);
	for (int i = 0; i < k; i++) {
		counts[i] = 0;
		put(ch[i], 100 + (uint64_t)i);
		/* kind 0: receives; 1: sends; 2: alternate; 3: one channel. */
		coev_chan_t *on = kind == 3 ? ch[0] : ch[i];
		bool send = kind == 1 || (kind == 2 && i % 2);
		c[i] = send ? sel_send(on, &x) : sel_recv(on, &buf[i]);
	}
	if (kind == 3)
		for (int i = 1; i < k; i++)
			put(ch[0], 100);
	for (int t = 0; t < n; t++) {
		int r = blocking ? coev_select_dl(c, (size_t)k, tu_guard())
				 : coev_try_select(c, (size_t)k);
		if (r < 0 || r >= k) {
			TU_CHECK_MSG(0, "select: %d", r);
			break;
		}
		counts[r]++;
		/* Keep every case ready: put back what was taken. */
		coev_chan_t *on = c[r].ch;
		if (c[r].op == COEV_SEL_RECV)
			put(on, 100);
		else
			TU_CHECK_EQ(coev_chan_try_recv(on, &x), 0);
	}
	for (int i = 0; i < k; i++)
		coev_chan_free(ch[i]);
}

static void test_select_picks_among_ready_cases_at_random(void **state)
{
	int n = TU_SCALE(8000, 8000, 4000), counts[4];

	(void)state;
	for (int kind = 0; kind < 4; kind++) {
		for (int k = 2; k <= 4; k += 2) {
			for (int blocking = 0; blocking < 2; blocking++) {
				fair_run(kind, blocking, counts, k, n);
				for (int i = 0; i < k; i++) {
					if (counts[i] < n / (2 * k))
						fail_msg("kind %d, %d cases, "
							 "%s: case %d chosen "
							 "%d of %d times",
							 kind, k,
							 blocking ? "select"
								  : "try",
							 i, counts[i], n);
				}
			}
		}
	}
	tu_assert_no_failures();
}

/* ---- one channel in a send and a receive case ---------------------------------- */

typedef struct partner {
	coev_chan_t *ch;
	bool send;
	uint64_t v;
	int rc;
	coev_task_t *selector; /* acts once it blocks in its select */
} partner_t;

static int partner_fn(void *arg)
{
	partner_t *p = arg;

	select_parked(p->selector);
	p->rc = p->send ? coev_chan_send_dl(p->ch, &p->v, tu_guard())
			: coev_chan_recv_dl(p->ch, &p->v, tu_guard());
	return 0;
}

static int same_main(void *arg)
{
	coev_chan_t *b = chan(4), *r = chan(0);
	uint64_t x = 50, buf, v;
	int picks[2] = {0};
	coev_task_t *t;

	(void)arg;
	/* Buffered, with room and messages: either case, with its effect
	 * and only that. */
	put(b, 1);
	put(b, 2);
	for (int i = 0; i < 400; i++) {
		buf = SENTINEL;
		coev_sel_t c[2] = {sel_send(b, &x), sel_recv(b, &buf)};
		int rc = i % 2 ? coev_try_select(c, 2)
			       : coev_select_dl(c, 2, tu_guard());
		TU_CHECK(rc == 0 || rc == 1);
		if (rc != 0 && rc != 1)
			break;
		picks[rc]++;
		if (rc == 0) {
			TU_CHECK_EQ(buf, SENTINEL);
			TU_CHECK_EQ(coev_chan_len(b), 3);
			/* Back to 1, 2: drop the oldest, requeue, drop x. */
			TU_CHECK_EQ(coev_chan_try_recv(b, &v), 0);
			TU_CHECK_EQ(v, 1);
			TU_CHECK_EQ(coev_chan_try_recv(b, &v), 0);
			TU_CHECK_EQ(v, 2);
			TU_CHECK_EQ(coev_chan_try_recv(b, &v), 0);
			TU_CHECK_EQ(v, 50);
		} else {
			TU_CHECK_EQ(buf, 1);
			TU_CHECK_EQ(coev_chan_len(b), 1);
			TU_CHECK_EQ(coev_chan_try_recv(b, &v), 0);
			TU_CHECK_EQ(v, 2);
		}
		put(b, 1);
		put(b, 2);
	}
	TU_CHECK(picks[0] > 0 && picks[1] > 0);

	/* Rendezvous, alone: a select cannot be its own partner. */
	buf = SENTINEL;
	coev_sel_t c[2] = {sel_send(r, &x), sel_recv(r, &buf)};
	TU_CHECK_EQ(coev_try_select(c, 2), -EAGAIN);
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_select_dl(c, 2, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(buf, SENTINEL);
	TU_CHECK_EQ(coev_chan_try_recv(r, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(r, &v), -EAGAIN);

	/* With a partner: a receiver takes the send case, a sender the
	 * receive case. */
	for (int k = 0; k < 2; k++) {
		partner_t p = {.ch = r,
			       .send = k == 1,
			       .v = k ? 66 : SENTINEL,
			       .selector = coev_self()};
		buf = SENTINEL;
		TU_CHECK_EQ(coev_spawn(partner_fn, &p, &t), 0);
		int rc = coev_select_dl(c, 2, tu_guard());
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		TU_CHECK_EQ(p.rc, 0);
		if (k == 0) {
			TU_CHECK_EQ(rc, 0);
			TU_CHECK_EQ(p.v, 50);
			TU_CHECK_EQ(buf, SENTINEL);
		} else {
			TU_CHECK_EQ(rc, 1);
			TU_CHECK_EQ(buf, 66);
		}
		TU_CHECK_EQ(c[rc < 0 ? 0 : rc].result, 0);
	}
	coev_chan_free(b);
	coev_chan_free(r);
	return 0;
}

static void test_select_same_channel_in_send_and_recv_cases(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(same_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_select_rejects_bad_arguments),
		TU_FD_TEST(test_select_max_cases_each_chosen_when_ready),
		TU_FD_TEST(test_select_only_the_chosen_case_takes_effect),
		TU_FD_TEST(test_select_ignores_null_channel_cases),
		TU_FD_TEST(test_select_closed_channel_makes_its_case_ready),
		TU_FD_TEST(
			test_select_try_returns_eagain_when_nothing_is_ready),
		TU_FD_TEST(test_select_picks_among_ready_cases_at_random),
		TU_FD_TEST(test_select_same_channel_in_send_and_recv_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
