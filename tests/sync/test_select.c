/*
 * tests/sync/test_select.c — select over channels (include/coev/chan.h):
 * argument checks, only the chosen case taking effect, NULL-channel cases
 * ignored, closed channels making their cases ready, try_select, random
 * choice among ready cases, many concurrent selects (tasks and plain
 * threads, senders, receivers and both at once) on shared channels losing
 * and duplicating no message, deadlines, cancellation, cancels and
 * deadlines racing a matching operation, one channel in a send and a
 * receive case of the same select, closes racing selects, and the
 * loop-callback context.
 *
 * Every message carries an id, its sender, a sequence number and a
 * checksum; a ledger of two bitmaps (reported sent, received) must end
 * equal with no id received twice. Task and thread bodies record failures
 * with TU_CHECK; the test thread checks tu_assert_no_failures().
 */
/* tu_on_loop: a loop callback, the one context the public API gives no
 * hook for (white-box). */
#define TU_LOOP_CALLS
#include "tests/testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* ---- helpers ------------------------------------------------------------ */

#define SETTLE COEV_MSEC(TU_SCALE(20, 40, 60))
#define SHORT_NS COEV_USEC(TU_SCALE(100, 200, 400))
#define SENTINEL 0xDEADULL

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t seed(uint64_t a, uint64_t b)
{
	uint64_t s = (a + 1) * 0x9E3779B97F4A7C15ULL ^
		     (b + 7) * 0xBF58476D1CE4E5B9ULL;

	return s ? s : 1;
}

static void relax(void)
{
	if (coev_self())
		coev_yield();
	else
		sched_yield();
}

static coev_sel_t sel_send(coev_chan_t *ch, void *buf)
{
	return (coev_sel_t){
		.ch = ch, .op = COEV_SEL_SEND, .buf = buf, .result = 12345};
}

static coev_sel_t sel_recv(coev_chan_t *ch, void *buf)
{
	return (coev_sel_t){
		.ch = ch, .op = COEV_SEL_RECV, .buf = buf, .result = 12345};
}

static coev_chan_t *chan(size_t cap)
{
	coev_chan_t *ch = NULL;

	if (coev_chan_new(&ch, sizeof(uint64_t), cap) != 0)
		abort();
	return ch;
}

static void put(coev_chan_t *ch, uint64_t v)
{
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), 0);
}

/* ---- messages and the ledger (as in test_chan.c) ------------------------- */

typedef struct msg {
	uint64_t id;
	uint32_t src;
	uint32_t seq;
	uint64_t sum;
} msg_t;

static uint64_t msg_sum(uint64_t id, uint32_t src, uint32_t seq)
{
	return (id * 0x9E3779B97F4A7C15ULL) ^
	       ((uint64_t)src << 32 | seq) * 0xD6E8FEB86659FD93ULL ^ 0xC0E5ULL;
}

static msg_t msg_make(uint64_t id, uint32_t src, uint32_t seq)
{
	msg_t m = {.id = id, .src = src, .seq = seq};

	m.sum = msg_sum(id, src, seq);
	return m;
}

static bool msg_ok(const msg_t *m)
{
	return m->sum == msg_sum(m->id, m->src, m->seq);
}

static const msg_t msg_blank = {SENTINEL, 0xFFFFFFFFu, 0xFFFFFFFFu, 0};

static bool msg_untouched(const msg_t *m)
{
	return memcmp(m, &msg_blank, sizeof *m) == 0;
}

typedef struct ledger {
	size_t n;
	_Atomic uint64_t *sent, *got;
	atomic_llong nsent, ngot, dup_sent, dup_got, stray;
} ledger_t;

static void ledger_init(ledger_t *l, size_t n)
{
	size_t words = (n + 63) / 64 + 1;

	memset(l, 0, sizeof *l);
	l->n = n;
	l->sent = calloc(words, sizeof *l->sent);
	l->got = calloc(words, sizeof *l->got);
	if (!l->sent || !l->got)
		abort();
}

static void ledger_fini(ledger_t *l)
{
	free((void *)l->sent);
	free((void *)l->got);
}

static void ledger_mark_sent(ledger_t *l, uint64_t id)
{
	if (id >= l->n) {
		atomic_fetch_add(&l->stray, 1);
		return;
	}
	uint64_t bit = 1ULL << (id % 64);
	if (atomic_fetch_or(&l->sent[id / 64], bit) & bit)
		atomic_fetch_add(&l->dup_sent, 1);
	atomic_fetch_add(&l->nsent, 1);
}

static void ledger_mark_got(ledger_t *l, const msg_t *m)
{
	if (!msg_ok(m) || m->id >= l->n) {
		if (atomic_fetch_add(&l->stray, 1) == 0)
			TU_CHECK_MSG(0,
				     "corrupt message: id %llu src %u seq %u",
				     (unsigned long long)m->id, m->src, m->seq);
		return;
	}
	uint64_t bit = 1ULL << (m->id % 64);
	if ((atomic_fetch_or(&l->got[m->id / 64], bit) & bit) &&
	    atomic_fetch_add(&l->dup_got, 1) == 0)
		TU_CHECK_MSG(0, "message %llu received twice",
			     (unsigned long long)m->id);
	atomic_fetch_add(&l->ngot, 1);
}

static void ledger_check(ledger_t *l, long long want_sent)
{
	size_t lost = 0, phantom = 0, words = (l->n + 63) / 64;
	long long first_lost = -1, first_phantom = -1;

	TU_CHECK_EQ(atomic_load(&l->stray), 0);
	TU_CHECK_EQ(atomic_load(&l->dup_sent), 0);
	TU_CHECK_EQ(atomic_load(&l->dup_got), 0);
	if (want_sent >= 0)
		TU_CHECK_EQ(atomic_load(&l->nsent), want_sent);
	TU_CHECK_EQ(atomic_load(&l->ngot), atomic_load(&l->nsent));
	for (size_t w = 0; w < words; w++) {
		uint64_t s = atomic_load(&l->sent[w]),
			 g = atomic_load(&l->got[w]);
		if ((s & ~g) && first_lost < 0)
			first_lost =
				(long long)(w * 64 +
					    (size_t)__builtin_ctzll(s & ~g));
		if ((g & ~s) && first_phantom < 0)
			first_phantom =
				(long long)(w * 64 +
					    (size_t)__builtin_ctzll(g & ~s));
		lost += (size_t)__builtin_popcountll(s & ~g);
		phantom += (size_t)__builtin_popcountll(g & ~s);
	}
	TU_CHECK_MSG(lost == 0,
		     "%zu messages reported sent were never received "
		     "(first: %lld)",
		     lost, first_lost);
	TU_CHECK_MSG(phantom == 0,
		     "%zu messages received were never reported sent "
		     "(first: %lld)",
		     phantom, first_phantom);
}

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
} delayed_t;

static int delayed_op(void *arg)
{
	delayed_t *d = arg;

	coev_sleep(SETTLE);
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
	delayed_t d = {.ch = r, .v = 77, .send = true};
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

static int close_later(void *arg)
{
	coev_sleep(SETTLE);
	return coev_chan_close(arg);
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
		TU_CHECK_EQ(coev_spawn(close_later, targets[k], &t), 0);
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

/* ---- many selects on shared channels ------------------------------------------ */

/*
 * NCH channels (rendezvous, bounded 2, unbounded) shared by producers
 * (select over send cases), consumers (select over receive cases) and
 * mixed endpoints (a send case and receive cases in one select, the send
 * channel among the receive ones at times), tasks and plain threads, each
 * call a random form of select. A case whose channel closed is switched
 * off by setting its channel to NULL. Checks: every chosen case's effect,
 * and no other (untouched receive buffers; the ledger: what was reported
 * sent is received once, nothing else is); per sender and channel, order.
 */
#define NCH 3
#define MAXSRC 16

typedef struct sx {
	coev_chan_t *ch[NCH];
	ledger_t led;
	uint32_t per; /* messages per source */
	unsigned nsrc;
	bool close_early;
	atomic_int sends_done;
	atomic_llong order_bad, touched, self_match;
} sx_t;

enum { ROLE_PROD, ROLE_CONS, ROLE_MIXED };

typedef struct sx_ep {
	sx_t *sx;
	int role;
	unsigned src; /* producers and mixed: source index */
	uint64_t rng;
	bool closed[NCH];
	int64_t last[MAXSRC][NCH];
	coev_task_t *task;
	pthread_t th;
} sx_ep_t;

static uint64_t sx_id(sx_t *sx, unsigned src, uint32_t seq, int c)
{
	return ((uint64_t)src * sx->per + seq) * NCH + (uint64_t)c;
}

/* A random form of select; retried by the caller on -EAGAIN and
 * -ETIMEDOUT, which must have had no effect. */
static int sx_select(coev_sel_t *c, size_t n, uint64_t *rng)
{
	switch (rnd(rng) % 5) {
	case 0: return coev_select(c, n);
	case 1: return coev_select_dl(c, n, COEV_FOREVER);
	case 2: return coev_try_select(c, n);
	default:
		return coev_select_dl(
			c, n, coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS));
	}
}

static void sx_got(sx_ep_t *e, const msg_t *m, int c)
{
	sx_t *sx = e->sx;

	ledger_mark_got(&sx->led, m);
	if (!msg_ok(m) || m->src >= MAXSRC)
		return;
	if ((int)(m->id % NCH) != c && atomic_fetch_add(&sx->order_bad, 1) == 0)
		TU_CHECK_MSG(0, "message for channel %d came from channel %d",
			     (int)(m->id % NCH), c);
	int64_t *last = &e->last[m->src][c];
	if ((int64_t)m->seq <= *last &&
	    atomic_fetch_add(&sx->order_bad, 1) == 0)
		TU_CHECK_MSG(0, "from %u on channel %d: seq %u after %lld",
			     m->src, c, m->seq, (long long)*last);
	*last = m->seq;
}

static bool sx_all_closed(sx_ep_t *e)
{
	for (int c = 0; c < NCH; c++)
		if (!e->closed[c])
			return false;
	return true;
}

static int sx_run(void *arg)
{
	sx_ep_t *e = arg;
	sx_t *sx = e->sx;
	uint32_t seq = 0;
	bool sending = e->role != ROLE_CONS;

	for (;;) {
		if (sending && seq == sx->per) {
			sending = false;
			atomic_fetch_add(&sx->sends_done, 1);
			if (e->role == ROLE_PROD)
				return 0;
		}
		if (sx_all_closed(e)) {
			if (sending)
				atomic_fetch_add(&sx->sends_done, 1);
			TU_CHECK(sx->close_early || !sending);
			return 0;
		}
		/* The cases: [0, NCH) sends, [NCH, 2 NCH) receives; those
		 * not wanted this time have a NULL channel. */
		coev_sel_t c[2 * NCH];
		msg_t out[NCH], in[NCH];
		int send_on = -1;
		if (sending && e->role == ROLE_MIXED) {
			send_on = (int)(rnd(&e->rng) % NCH);
			if (e->closed[send_on])
				send_on = -1;
		}
		for (int k = 0; k < NCH; k++) {
			out[k] = msg_make(sx_id(sx, e->src, seq, k), e->src,
					  seq);
			in[k] = msg_blank;
			bool s = sending && !e->closed[k] &&
				 (e->role == ROLE_PROD ? rnd(&e->rng) % 4 != 0
						       : k == send_on);
			bool r = e->role != ROLE_PROD && !e->closed[k] &&
				 (e->role == ROLE_CONS || rnd(&e->rng) % 2 ||
				  !sending);
			c[k] = sel_send(s ? sx->ch[k] : NULL, &out[k]);
			c[NCH + k] = sel_recv(r ? sx->ch[k] : NULL, &in[k]);
		}
		bool any = false;
		for (int k = 0; k < 2 * NCH; k++)
			any = any || c[k].ch;
		if (!any)
			continue;
		int rc = sx_select(c, 2 * NCH, &e->rng);
		bool others_clean = true;
		for (int k = 0; k < NCH; k++)
			if (k + NCH != rc && !msg_untouched(&in[k]))
				others_clean = false;
		if (!others_clean && atomic_fetch_add(&sx->touched, 1) == 0)
			TU_CHECK_MSG(0,
				     "select returned %d but wrote another "
				     "case's buffer",
				     rc);
		if (rc == -EAGAIN || rc == -ETIMEDOUT) {
			relax();
			continue;
		}
		if (rc < 0 || rc >= 2 * NCH) {
			TU_CHECK_MSG(0, "select: %d (%s)", rc,
				     coev_strerror(rc));
			return rc;
		}
		int k = rc % NCH;
		if (c[rc].result == COEV_ECLOSED) {
			TU_CHECK(rc < NCH || msg_untouched(&in[k]));
			e->closed[k] = true;
			continue;
		}
		TU_CHECK_EQ(c[rc].result, 0);
		if (rc < NCH) {
			ledger_mark_sent(&sx->led, out[k].id);
			seq++;
		} else {
			if (msg_ok(&in[k]) && in[k].src == e->src &&
			    in[k].seq == seq && sending && c[k].ch &&
			    atomic_fetch_add(&sx->self_match, 1) == 0)
				TU_CHECK_MSG(0, "a select received its own "
						"send case's message");
			sx_got(e, &in[k], k);
		}
	}
}

static void *sx_thread(void *arg)
{
	sx_run(arg);
	return NULL;
}

typedef struct sx_cfg {
	unsigned task_prod, thread_prod, task_mixed, thread_mixed;
	unsigned task_cons, thread_cons;
	uint32_t per;
	bool close_early;
	coev_time_t close_within;
} sx_cfg_t;

/* Runs one exchange; returns the number of messages sent. */
static long long sx_exchange(coev_rt_t *rt, const sx_cfg_t *cfg, uint64_t round)
{
	static const size_t caps[NCH] = {0, 2, COEV_CHAN_UNBOUNDED};
	unsigned np = cfg->task_prod + cfg->thread_prod;
	unsigned nm = cfg->task_mixed + cfg->thread_mixed;
	unsigned nc = cfg->task_cons + cfg->thread_cons;
	unsigned n = np + nm + nc;
	sx_t sx = {.per = cfg->per,
		   .nsrc = np + nm,
		   .close_early = cfg->close_early};
	sx_ep_t *ep = calloc(n, sizeof *ep);
	uint64_t rng = seed(round, 31337);

	assert_non_null(ep);
	assert_true(np + nm <= MAXSRC);
	ledger_init(&sx.led, (size_t)(np + nm) * cfg->per * NCH);
	for (int k = 0; k < NCH; k++)
		assert_int_equal(
			coev_chan_new(&sx.ch[k], sizeof(msg_t), caps[k]), 0);
	/* Consumers first, then mixed, then producers. */
	for (unsigned i = 0; i < n; i++) {
		sx_ep_t *e = &ep[i];
		bool task;
		e->sx = &sx;
		e->rng = seed(round, i);
		if (i < nc) {
			e->role = ROLE_CONS;
			task = i < cfg->task_cons;
		} else if (i < nc + nm) {
			e->role = ROLE_MIXED;
			e->src = i - nc;
			task = i - nc < cfg->task_mixed;
		} else {
			e->role = ROLE_PROD;
			e->src = i - nc;
			task = i - nc - nm < cfg->task_prod;
		}
		for (int s = 0; s < MAXSRC; s++)
			for (int k = 0; k < NCH; k++)
				e->last[s][k] = -1;
		if (task)
			assert_int_equal(coev_rt_spawn(rt, "selector", sx_run,
						       e, &e->task),
					 0);
		else
			assert_int_equal(
				pthread_create(&e->th, NULL, sx_thread, e), 0);
	}
	if (cfg->close_early) {
		int order[NCH] = {0, 1, 2};
		for (int k = NCH - 1; k > 0; k--) {
			int j = (int)(rnd(&rng) % (uint64_t)(k + 1)),
			    tmp = order[k];
			order[k] = order[j];
			order[j] = tmp;
		}
		for (int k = 0; k < NCH; k++) {
			tu_spin_ns((coev_time_t)(rnd(&rng) %
						 (uint64_t)cfg->close_within));
			assert_int_equal(coev_chan_close(sx.ch[order[k]]), 0);
		}
	} else {
		/* Every source done sending, then close. */
		assert_int_equal(
			tu_thread_wait_at_least(&sx.sends_done, (int)(np + nm)),
			0);
		for (int k = 0; k < NCH; k++)
			assert_int_equal(coev_chan_close(sx.ch[k]), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		int r = -1;
		if (ep[i].task) {
			assert_int_equal(coev_join(ep[i].task, &r), 0);
			TU_CHECK_EQ(r, 0);
		} else {
			pthread_join(ep[i].th, NULL);
		}
	}
	ledger_check(&sx.led,
		     cfg->close_early ? -1 : (long long)(np + nm) * cfg->per);
	TU_CHECK_EQ(atomic_load(&sx.order_bad), 0);
	TU_CHECK_EQ(atomic_load(&sx.touched), 0);
	TU_CHECK_EQ(atomic_load(&sx.self_match), 0);
	long long sent = atomic_load(&sx.led.nsent);
	for (int k = 0; k < NCH; k++) {
		TU_CHECK_EQ(coev_chan_len(sx.ch[k]), 0);
		coev_chan_free(sx.ch[k]);
	}
	ledger_fini(&sx.led);
	free(ep);
	return sent;
}

static void test_select_concurrent_selects_conserve_messages(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	sx_cfg_t c = {.task_prod = 3,
		      .thread_prod = 1,
		      .task_mixed = 3,
		      .thread_mixed = 1,
		      .task_cons = 3,
		      .thread_cons = 1,
		      .per = TU_SCALE(60000, 30000, 20000)};

	(void)state;
	sx_exchange(rt, &c, 1);
	tu_assert_no_failures();
	/* Tasks only, more of them. */
	sx_cfg_t t = {.task_prod = 5,
		      .task_mixed = 5,
		      .task_cons = 5,
		      .per = TU_SCALE(40000, 20000, 15000)};
	sx_exchange(rt, &t, 2);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* Channels closed one by one at random moments while selects send and
 * receive: a send case that got COEV_ECLOSED sent nothing, everything
 * reported sent is received once. */
static void test_select_racing_close_loses_nothing(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	unsigned rounds = TU_SCALE(200, 150, 100);
	int early = 0;

	(void)state;
	for (unsigned r = 0; r < rounds; r++) {
		sx_cfg_t c = {.task_prod = 2,
			      .thread_prod = 1,
			      .task_mixed = 2,
			      .task_cons = 2,
			      .thread_cons = 1,
			      .per = 1000,
			      .close_early = true,
			      .close_within =
				      COEV_USEC(TU_SCALE(1000, 2000, 4000))};
		long long sent = sx_exchange(rt, &c, 100 + r);
		early += sent < 5 * 1000;
		tu_assert_no_failures();
	}
	assert_true(early > 0);
	coev_rt_free(rt);
}

/* ---- deadlines ---------------------------------------------------------------- */

static void select_deadline_checks(void)
{
	coev_chan_t *rs = chan(0), *rr = chan(0), *full = chan(1),
		    *empty = chan(COEV_CHAN_UNBOUNDED);
	uint64_t x = 8, br = SENTINEL, be = SENTINEL, v;

	put(full, 1);
	coev_sel_t c[4] = {sel_send(rs, &x), sel_recv(rr, &br),
			   sel_send(full, &x), sel_recv(empty, &be)};
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_select_dl(c, 4, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(br, SENTINEL);
	TU_CHECK_EQ(be, SENTINEL);
	/* Nothing stayed queued or went anywhere. */
	TU_CHECK_EQ(coev_chan_try_recv(rs, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(rr, &x), -EAGAIN);
	TU_CHECK_EQ(coev_chan_len(full), 1);
	TU_CHECK_EQ(coev_chan_len(empty), 0);
	/* A past deadline with a ready case: it is taken. */
	put(empty, 4);
	TU_CHECK_EQ(coev_select_dl(c, 4, coev_now() - 1), 3);
	TU_CHECK_EQ(be, 4);
	coev_chan_free(rs);
	coev_chan_free(rr);
	coev_chan_free(full);
	coev_chan_free(empty);
}

static int select_deadline_main(void *arg)
{
	(void)arg;
	select_deadline_checks();
	/* A pushed deadline bounds coev_select. */
	coev_chan_t *r = chan(0);
	uint64_t b = SENTINEL;
	coev_sel_t c[1] = {sel_recv(r, &b)};
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	coev_time_t tok = coev_deadline_push(dl);
	TU_CHECK(tok >= 0);
	TU_CHECK_EQ(coev_select(c, 1), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(coev_select_dl(c, 1, tu_guard()), -ETIMEDOUT);
	coev_deadline_pop(tok);
	TU_CHECK_EQ(b, SENTINEL);
	coev_chan_free(r);
	return 0;
}

static void test_select_deadline_times_out_at_the_deadline(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(select_deadline_main, NULL, 2), 0);
	tu_assert_no_failures();
	select_deadline_checks(); /* a plain thread */
	tu_assert_no_failures();
}

/* ---- cancellation ------------------------------------------------------------- */

typedef struct blocked_sel {
	coev_chan_t *r, *full;
	uint64_t x, b;
	atomic_int started, finished;
	int rc;
} blocked_sel_t;

static int blocked_sel(void *arg)
{
	blocked_sel_t *s = arg;
	coev_sel_t c[3] = {sel_recv(s->r, &s->b), sel_send(s->full, &s->x),
			   sel_send(s->r, &s->x)};

	atomic_store(&s->started, 1);
	s->rc = coev_select(c, 3);
	atomic_store(&s->finished, 1);
	return 0;
}

static int cancel_sel_main(void *arg)
{
	blocked_sel_t *s = arg;
	coev_task_t *t;

	TU_CHECK_EQ(coev_spawn(blocked_sel, s, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&s->started, 1), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(atomic_load(&s->finished), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), NULL), 0);
	return 0;
}

/* A select blocked on a receive and two sends, cancelled by a task and by
 * a plain thread: -ECANCELED, no effect, no case left queued, and the
 * channels work afterwards. */
static void test_select_cancel_blocked_select(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);

	(void)state;
	for (int from_task = 0; from_task < 2; from_task++) {
		blocked_sel_t s = {
			.r = chan(0), .full = chan(1), .x = 9, .b = SENTINEL};
		coev_task_t *t;
		uint64_t v = 1;
		put(s.full, 1);
		if (from_task) {
			assert_int_equal(coev_rt_spawn(rt, "main",
						       cancel_sel_main, &s, &t),
					 0);
			assert_int_equal(coev_join(t, NULL), 0);
		} else {
			assert_int_equal(coev_rt_spawn(rt, "blocked",
						       blocked_sel, &s, &t),
					 0);
			assert_int_equal(tu_thread_wait_at_least(&s.started, 1),
					 0);
			tu_nap_ms((long)(SETTLE / COEV_MSEC(1)));
			assert_int_equal(atomic_load(&s.finished), 0);
			assert_int_equal(coev_cancel(t), 0);
			assert_int_equal(coev_join_dl(t, tu_guard(), NULL), 0);
		}
		assert_int_equal(s.rc, -ECANCELED);
		assert_true(s.b == SENTINEL);
		assert_int_equal(coev_chan_try_send(s.r, &v), -EAGAIN);
		assert_int_equal(coev_chan_try_recv(s.r, &v), -EAGAIN);
		assert_int_equal(coev_chan_len(s.full), 1);
		assert_int_equal(coev_chan_try_recv(s.full, &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(coev_chan_try_recv(s.full, &v), -EAGAIN);
		coev_chan_free(s.r);
		coev_chan_free(s.full);
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- cancels and deadlines racing a match --------------------------------------- */

typedef struct canceller {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	coev_task_t *req;
	bool stop;
	atomic_int done;
	int posted;
} canceller_t;

static void *canceller_main(void *arg)
{
	canceller_t *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->req && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (!c->req)
			break;
		coev_task_t *t = c->req;
		c->req = NULL;
		pthread_mutex_unlock(&c->mu);
		TU_CHECK_EQ(coev_cancel(t), 0);
		atomic_fetch_add(&c->done, 1);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void canceller_start(canceller_t *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->th, NULL, canceller_main, c) != 0)
		abort();
}

static void canceller_stop(canceller_t *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

static void canceller_post(canceller_t *c, coev_task_t *t)
{
	pthread_mutex_lock(&c->mu);
	c->req = t;
	c->posted++;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void canceller_wait(canceller_t *c)
{
	while (atomic_load(&c->done) < c->posted)
		coev_yield();
}

enum { END_CANCEL_TASK, END_CANCEL_THREAD, END_DEADLINE, END_N };

#define A_VAL 0xAAAAULL
#define B_VAL 0xBBBBULL
#define X_VAL 0x1111ULL
#define Y_VAL 0x2222ULL

typedef struct sel_racer {
	coev_chan_t *rdv, *one;
	bool sender;
	coev_time_t dl;
	uint64_t b0, b1; /* receive buffers, or the messages X and Y */
	atomic_int started;
	int rc, result;
} sel_racer_t;

static int sel_racer_fn(void *arg)
{
	sel_racer_t *r = arg;
	coev_sel_t c[2];

	if (r->sender) {
		c[0] = sel_send(r->rdv, &r->b0);
		c[1] = sel_send(r->one, &r->b1);
	} else {
		c[0] = sel_recv(r->rdv, &r->b0);
		c[1] = sel_recv(r->one, &r->b1);
	}
	atomic_store(&r->started, 1);
	r->rc = coev_select_dl(c, 2, r->dl);
	if (r->rc >= 0 && r->rc < 2)
		r->result = c[r->rc].result;
	return 0;
}

typedef struct race_stats {
	long long won, lost;
} race_stats_t;

/*
 * One round: W (a task) selects over [rdv, one] (receiving, or sending X
 * on rdv and Y on one, which is then full of A), while the main task does
 * the matching operation on one of the two channels and W is cancelled
 * (by the main task or the helper thread) or reaches a short deadline, in
 * a random order. W's outcome and the main task's must agree.
 */
static void sel_race_round(coev_chan_t *rdv, coev_chan_t *one, canceller_t *cn,
			   uint64_t *rng, race_stats_t *st)
{
	bool sender = rnd(rng) & 1, on_rdv = rnd(rng) & 1;
	int end = (int)(rnd(rng) % END_N);
	sel_racer_t r = {.rdv = rdv, .one = one, .sender = sender};
	coev_task_t *t;
	uint64_t got = SENTINEL, v;
	int crc = 0;

	r.b0 = sender ? X_VAL : SENTINEL;
	r.b1 = sender ? Y_VAL : SENTINEL;
	r.rc = 99;
	r.dl = end == END_DEADLINE
		       ? coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS)
		       : tu_guard();
	if (sender)
		put(one, A_VAL);
	TU_CHECK_EQ(coev_spawn_named("racer", sel_racer_fn, &r, &t), 0);
	switch (rnd(rng) % 4) {
	case 0: break;
	case 1: coev_yield(); break;
	case 2: tu_spin_ns((coev_time_t)(rnd(rng) % COEV_USEC(20))); break;
	default:
		TU_CHECK_EQ(tu_wait_at_least(&r.started, 1), 0);
		tu_spin_ns((coev_time_t)(rnd(rng) % COEV_USEC(20)));
		break;
	}
	bool end_first = rnd(rng) & 1;
	for (int step = 0; step < 2; step++) {
		if ((step == 0) == end_first) {
			if (end == END_CANCEL_TASK)
				TU_CHECK_EQ(coev_cancel(t), 0);
			else if (end == END_CANCEL_THREAD)
				canceller_post(cn, t);
			continue;
		}
		coev_time_t dl =
			coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS);
		v = B_VAL;
		if (!sender)
			crc = on_rdv ? coev_chan_send_dl(rdv, &v, dl)
				     : coev_chan_try_send(one, &v);
		else
			crc = on_rdv ? coev_chan_recv_dl(rdv, &got, dl)
				     : coev_chan_try_recv(one, &got);
	}
	if (end == END_CANCEL_THREAD)
		canceller_wait(cn);
	int ret = 0;
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), &ret), 0);
	if (!atomic_load(&r.started)) {
		/* Cancelled before it first ran: it never ran. */
		TU_CHECK_EQ(ret, -ECANCELED);
		r.rc = -ECANCELED;
	}

	int want_fail = end == END_DEADLINE ? -ETIMEDOUT : -ECANCELED;
	TU_CHECK_MSG(r.rc == 0 || r.rc == 1 || r.rc == want_fail,
		     "select: %d (%s)", r.rc, coev_strerror(r.rc));
	if (r.rc >= 0) {
		TU_CHECK_EQ(r.result, 0);
		st->won++;
	} else {
		st->lost++;
	}
	if (!sender) {
		/* Only the chosen buffer is written. */
		TU_CHECK(r.rc == 0 || r.b0 == SENTINEL);
		TU_CHECK(r.rc == 1 || r.b1 == SENTINEL);
		if (on_rdv) {
			TU_CHECK(crc == 0 || crc == -ETIMEDOUT);
			TU_CHECK_MSG((crc == 0) == (r.rc == 0),
				     "select %d, send %d", r.rc, crc);
			TU_CHECK(r.rc != 0 || r.b0 == B_VAL);
			TU_CHECK(r.rc != 1);
		} else {
			TU_CHECK_EQ(crc, 0);
			TU_CHECK(r.rc != 0);
			int left = coev_chan_try_recv(one, &got);
			if (r.rc == 1) {
				TU_CHECK(r.b1 == B_VAL);
				TU_CHECK_EQ(left, -EAGAIN);
			} else {
				TU_CHECK_EQ(left, 0);
				TU_CHECK(got == B_VAL);
			}
		}
	} else if (on_rdv) {
		/* The main task received on rdv: X, if W chose rdv. */
		TU_CHECK(crc == 0 || crc == -ETIMEDOUT);
		TU_CHECK_MSG((crc == 0) == (r.rc == 0), "select %d, recv %d",
			     r.rc, crc);
		TU_CHECK(crc != 0 || got == X_VAL);
		TU_CHECK(r.rc != 1);
		TU_CHECK_EQ(coev_chan_try_recv(one, &got), 0);
		TU_CHECK(got == A_VAL);
	} else {
		/* The main task took A from one; Y went in after it iff W
		 * chose one. */
		TU_CHECK_EQ(crc, 0);
		TU_CHECK(got == A_VAL);
		TU_CHECK(r.rc != 0);
		int left = coev_chan_try_recv(one, &got);
		if (r.rc == 1) {
			TU_CHECK_EQ(left, 0);
			TU_CHECK(got == Y_VAL);
		} else {
			TU_CHECK_EQ(left, -EAGAIN);
		}
	}
	TU_CHECK_EQ(coev_chan_try_recv(one, &got), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_recv(rdv, &got), -EAGAIN);
	v = 0;
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
}

static int sel_race_main(void *arg)
{
	race_stats_t *st = arg;
	coev_chan_t *rdv = chan(0), *one = chan(1);
	canceller_t cn;
	uint64_t rng = seed(77, 1);
	unsigned rounds = TU_SCALE(10000, 6000, 4000);

	canceller_start(&cn);
	for (unsigned i = 0; i < rounds && atomic_load(&tu_failures) == 0; i++)
		sel_race_round(rdv, one, &cn, &rng, st);
	coev_chan_free(rdv);
	coev_chan_free(one);
	canceller_stop(&cn);
	return 0;
}

static void
test_select_cancel_or_deadline_racing_a_match_loses_nothing(void **state)
{
	race_stats_t st = {0};

	(void)state;
	assert_int_equal(tu_run_main(sel_race_main, &st, 2), 0);
	tu_assert_no_failures();
	assert_true(st.won > 0);
	assert_true(st.lost > 0);
}

/* ---- one channel in a send and a receive case ---------------------------------- */

typedef struct partner {
	coev_chan_t *ch;
	bool send;
	uint64_t v;
	int rc;
} partner_t;

static int partner_fn(void *arg)
{
	partner_t *p = arg;

	coev_sleep(SETTLE);
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
		partner_t p = {.ch = r, .send = k == 1, .v = k ? 66 : SENTINEL};
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

/*
 * Many tasks and a thread, each selecting over [send on r, receive on r]
 * on one rendezvous channel with short deadlines: they pair up with each
 * other, a select never with itself, and every message sent is received
 * once.
 */
typedef struct pair_ep {
	coev_chan_t *r;
	ledger_t *led;
	unsigned idx;
	uint32_t attempts;
	uint64_t rng;
	atomic_llong *self_match, *touched;
	long long sent, got;
} pair_ep_t;

static int pair_fn(void *arg)
{
	pair_ep_t *e = arg;

	for (uint32_t a = 0; a < e->attempts; a++) {
		msg_t out = msg_make((uint64_t)e->idx * e->attempts + a, e->idx,
				     a),
		      in = msg_blank;
		coev_sel_t c[2] = {sel_send(e->r, &out), sel_recv(e->r, &in)};
		if (rnd(&e->rng) & 1) {
			coev_sel_t tmp = c[0];
			c[0] = c[1];
			c[1] = tmp;
		}
		int rc = coev_select_dl(
			c, 2,
			coev_now() + (coev_time_t)(rnd(&e->rng) % SHORT_NS));
		if (rc == -ETIMEDOUT) {
			if (!msg_untouched(&in))
				atomic_fetch_add(e->touched, 1);
			continue;
		}
		if (rc != 0 && rc != 1) {
			TU_CHECK_MSG(0, "select: %d (%s)", rc,
				     coev_strerror(rc));
			return rc;
		}
		TU_CHECK_EQ(c[rc].result, 0);
		if (c[rc].op == COEV_SEL_SEND) {
			if (!msg_untouched(&in))
				atomic_fetch_add(e->touched, 1);
			ledger_mark_sent(e->led, out.id);
			e->sent++;
		} else {
			if (msg_ok(&in) && in.id == out.id)
				atomic_fetch_add(e->self_match, 1);
			ledger_mark_got(e->led, &in);
			e->got++;
		}
	}
	return 0;
}

static void *pair_thread(void *arg)
{
	pair_fn(arg);
	return NULL;
}

static void test_select_pairs_selects_on_one_rendezvous_channel(void **state)
{
	enum { NT = 6 };
	coev_rt_t *rt = tu_new_rt(2);
	pair_ep_t ep[NT + 1];
	coev_task_t *t[NT];
	pthread_t th;
	ledger_t led;
	atomic_llong self_match = 0, touched = 0;
	coev_chan_t *r;
	uint32_t attempts = TU_SCALE(40000, 20000, 15000);
	long long sent = 0, got = 0;

	(void)state;
	assert_int_equal(coev_chan_new(&r, sizeof(msg_t), 0), 0);
	ledger_init(&led, (size_t)(NT + 1) * attempts);
	for (unsigned i = 0; i <= NT; i++) {
		ep[i] = (pair_ep_t){.r = r,
				    .led = &led,
				    .idx = i,
				    .attempts = attempts,
				    .rng = seed(i, 9),
				    .self_match = &self_match,
				    .touched = &touched};
		if (i < NT)
			assert_int_equal(coev_rt_spawn(rt, "pair", pair_fn,
						       &ep[i], &t[i]),
					 0);
		else
			assert_int_equal(
				pthread_create(&th, NULL, pair_thread, &ep[i]),
				0);
	}
	for (unsigned i = 0; i < NT; i++)
		assert_int_equal(coev_join(t[i], NULL), 0);
	pthread_join(th, NULL);
	for (unsigned i = 0; i <= NT; i++) {
		sent += ep[i].sent;
		got += ep[i].got;
	}
	ledger_check(&led, -1);
	assert_int_equal(sent, got);
	assert_true(sent > 0);
	assert_int_equal(atomic_load(&self_match), 0);
	assert_int_equal(atomic_load(&touched), 0);
	ledger_fini(&led);
	coev_chan_free(r);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- a worker thread outside a task ---------------------------------------------- */

static void select_cb(void *arg)
{
	coev_chan_t **ch = arg; /* [0] empty rendezvous, [1] one message */
	uint64_t b0 = SENTINEL, b1 = SENTINEL;
	coev_sel_t none[1] = {sel_recv(ch[0], &b0)};
	coev_sel_t ready[2] = {sel_recv(ch[0], &b0), sel_recv(ch[1], &b1)};

	int a = coev_select_dl(none, 1, coev_now() + COEV_MSEC(10));
	TU_CHECK_EQ(a, COEV_ENOTCORO);
	if (a == COEV_ENOTCORO)
		TU_CHECK_EQ(coev_select(none, 1), COEV_ENOTCORO);
	/* Rule 4: even with a ready case, only the try form works. */
	TU_CHECK_EQ(coev_select(ready, 2), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_select_dl(ready, 2, tu_guard()), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_len(ch[1]), 1);
	TU_CHECK_EQ(b1, SENTINEL);
	TU_CHECK_EQ(coev_try_select(none, 1), -EAGAIN);
	TU_CHECK_EQ(coev_try_select(ready, 2), 1);
	TU_CHECK_EQ(b1, 12);
	TU_CHECK_EQ(b0, SENTINEL);
}

static int loop_cb_main(void *arg)
{
	coev_chan_t *ch[2] = {chan(0), chan(1)};

	(void)arg;
	put(ch[1], 12);
	TU_CHECK_EQ(tu_on_loop(select_cb, ch), 0);
	coev_chan_free(ch[0]);
	coev_chan_free(ch[1]);
	return 0;
}

static void test_select_loop_callback_gets_enotcoro(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(loop_cb_main, NULL, 2), 0);
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
		TU_FD_TEST(test_select_concurrent_selects_conserve_messages),
		TU_FD_TEST(test_select_racing_close_loses_nothing),
		TU_FD_TEST(test_select_deadline_times_out_at_the_deadline),
		TU_FD_TEST(test_select_cancel_blocked_select),
		TU_FD_TEST(
			test_select_cancel_or_deadline_racing_a_match_loses_nothing),
		TU_FD_TEST(test_select_same_channel_in_send_and_recv_cases),
		TU_FD_TEST(test_select_pairs_selects_on_one_rendezvous_channel),
		TU_FD_TEST(test_select_loop_callback_gets_enotcoro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
