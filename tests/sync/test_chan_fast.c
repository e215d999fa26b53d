/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_chan_fast.c — the bounded channel's lock-free ring
 * (sync/chan.c) under contention: 4 producer and 4 consumer tasks on 2
 * workers, each call taking a random form (blocking, try, deadline,
 * select with a case that never fires, and for consumers a batch receive
 * of 1 to 8 messages, blocking, try or deadline), with the channel closed in the
 * middle by one producer while the others send. Every message whose send reported success is received exactly
 * once, each consumer sees each producer's messages in increasing order,
 * every send after the close fails with COEV_ECLOSED and its message is
 * never received, and len stays within the capacity.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

#define NP 4
#define NC 4
#define PER TU_SCALE(50000, 20000, 8000)
#define AFTER 16 /* sends each producer tries once it saw the close */

struct fast {
	coev_chan_t *ch;
	coev_chan_t *never_r, *never_s; /* select cases that never fire */
	size_t cap;
	atomic_int closed_seen;
	uint64_t sent[NP];	/* sends that succeeded (seqs 0..sent-1) */
	unsigned char *got[NP]; /* per producer: times each seq arrived */
	int pid;
};

struct prod {
	struct fast *f;
	int id;
};

static int send_one(struct fast *f, uint64_t *m, uint64_t *rs)
{
	coev_sel_t c[2];
	int r;

	switch (rnd(rs) % 4) {
	case 0: return coev_chan_send(f->ch, m);
	case 1:
		while ((r = coev_chan_try_send(f->ch, m)) == -EAGAIN)
			coev_yield();
		return r;
	case 2:
		do
			r = coev_chan_send_dl(f->ch, m,
					      coev_now() + COEV_USEC(50));
		while (r == -ETIMEDOUT);
		return r;
	default:
		c[0] = (coev_sel_t){.ch = f->never_r,
				    .op = COEV_SEL_RECV,
				    .buf = &(uint64_t){0}};
		c[1] = (coev_sel_t){.ch = f->ch, .op = COEV_SEL_SEND, .buf = m};
		r = coev_select(c, 2);
		TU_CHECK_EQ(r, 1);
		return c[1].result;
	}
}

static int recv_one(struct fast *f, uint64_t *m, uint64_t *rs)
{
	coev_sel_t c[2];
	int r;

	switch (rnd(rs) % 4) {
	case 0: return coev_chan_recv(f->ch, m);
	case 1:
		while ((r = coev_chan_try_recv(f->ch, m)) == -EAGAIN)
			coev_yield();
		return r;
	case 2:
		do
			r = coev_chan_recv_dl(f->ch, m,
					      coev_now() + COEV_USEC(50));
		while (r == -ETIMEDOUT);
		return r;
	default:
		c[0] = (coev_sel_t){.ch = f->ch, .op = COEV_SEL_RECV, .buf = m};
		c[1] = (coev_sel_t){.ch = f->never_s,
				    .op = COEV_SEL_SEND,
				    .buf = &(uint64_t){0}};
		r = coev_select(c, 2);
		TU_CHECK_EQ(r, 0);
		return c[0].result;
	}
}

#define BATCH 8

/* Some messages into m (at most BATCH): a count, or a receive's error.
 * Half the time one message as recv_one takes it, else a batch receive
 * of 1 to BATCH in a random form (blocking, try, deadline). */
static int recv_some(struct fast *f, uint64_t *m, uint64_t *rs)
{
	size_t max = 1 + rnd(rs) % BATCH;
	int r;

	switch (rnd(rs) % 6) {
	case 0: return coev_chan_recv_batch(f->ch, m, max, COEV_FOREVER);
	case 1:
		while ((r = coev_chan_try_recv_batch(f->ch, m, max)) == -EAGAIN)
			coev_yield();
		return r;
	case 2:
		do
			r = coev_chan_recv_batch(f->ch, m, max,
						 coev_now() + COEV_USEC(50));
		while (r == -ETIMEDOUT);
		return r;
	default: return (r = recv_one(f, m, rs)) == 0 ? 1 : r;
	}
}

static int producer(void *arg)
{
	struct prod *p = arg;
	struct fast *f = p->f;
	uint64_t rs = seed((uint64_t)p->id, f->cap), seq = 0, m;
	int r;

	for (; seq < PER; seq++) {
		m = (uint64_t)p->id << 32 | seq;
		if ((r = send_one(f, &m, &rs)) != 0)
			break;
		/* Producer 0 closes halfway, the others still sending. */
		if (p->id == 0 && seq == PER / 2)
			TU_CHECK_EQ(coev_chan_close(f->ch), 0);
	}
	f->sent[p->id] = seq;
	if (seq == PER)
		return 0;
	TU_CHECK_EQ(r, COEV_ECLOSED);
	/* Closed: every later send fails too, whatever its form. */
	for (int i = 0; i < AFTER; i++) {
		m = (uint64_t)p->id << 32 | (seq + 1 + (uint64_t)i);
		TU_CHECK_EQ(send_one(f, &m, &rs), COEV_ECLOSED);
	}
	return 0;
}

static int consumer(void *arg)
{
	struct prod *p = arg;
	struct fast *f = p->f;
	uint64_t rs = seed((uint64_t)p->id + 100, f->cap), ms[BATCH];
	uint64_t last[NP];
	size_t len;
	int r = 0, n = 0, k = 0;

	for (int i = 0; i < NP; i++)
		last[i] = UINT64_MAX;
	for (;;) {
		if (k == n) {
			if ((r = recv_some(f, ms, &rs)) <= 0)
				break;
			TU_CHECK(r <= BATCH);
			n = r;
			k = 0;
		}
		uint64_t m = ms[k++];
		unsigned pid = (unsigned)(m >> 32);
		uint64_t seq = m & 0xffffffffu;

		TU_CHECK(pid < NP && seq < PER + AFTER + 1);
		if (pid >= NP || seq >= PER)
			continue;
		TU_CHECK_MSG(last[pid] == UINT64_MAX || seq > last[pid],
			     "producer %u: %llu after %llu", pid,
			     (unsigned long long)seq,
			     (unsigned long long)last[pid]);
		last[pid] = seq;
		f->got[pid][seq]++; /* one writer per seq, if exactly once */
		if (f->cap != COEV_CHAN_UNBOUNDED &&
		    (len = coev_chan_len(f->ch)) > f->cap)
			TU_CHECK_MSG(false, "len %zu > cap %zu", len, f->cap);
	}
	TU_CHECK_EQ(r, COEV_ECLOSED);
	return 0;
}

static int fast_main(void *arg)
{
	struct fast *f = arg;
	struct prod ps[NP], cs[NC];
	coev_task_t *pt[NP], *ct[NC];

	for (int i = 0; i < NP; i++) {
		ps[i] = (struct prod){f, i};
		TU_CHECK_EQ(coev_spawn_named("prod", producer, &ps[i], &pt[i]),
			    0);
	}
	for (int i = 0; i < NC; i++) {
		cs[i] = (struct prod){f, i};
		TU_CHECK_EQ(coev_spawn_named("cons", consumer, &cs[i], &ct[i]),
			    0);
	}
	for (int i = 0; i < NP; i++)
		TU_CHECK_EQ(coev_join(pt[i], NULL), 0);
	for (int i = 0; i < NC; i++)
		TU_CHECK_EQ(coev_join(ct[i], NULL), 0);
	return 0;
}

static void run_cap(size_t cap)
{
	struct fast f = {.cap = cap};
	uint64_t total = 0;

	assert_int_equal(coev_chan_new(&f.ch, sizeof(uint64_t), cap), 0);
	assert_int_equal(coev_chan_new(&f.never_r, sizeof(uint64_t), 0), 0);
	assert_int_equal(coev_chan_new(&f.never_s, sizeof(uint64_t), 0), 0);
	for (int i = 0; i < NP; i++)
		assert_non_null(f.got[i] = calloc(PER, 1));
	assert_int_equal(tu_run_main(fast_main, &f, 2), 0);
	tu_assert_no_failures();
	for (int i = 0; i < NP; i++) {
		for (uint64_t s = 0; s < PER; s++) {
			unsigned want = s < f.sent[i];

			if (f.got[i][s] != want)
				fail_msg("cap %zu: producer %d seq %llu "
					 "received %u times, sent %s",
					 cap, i, (unsigned long long)s,
					 f.got[i][s], want ? "yes" : "no");
		}
		total += f.sent[i];
		free(f.got[i]);
	}
	/* The close came in the middle: some sends failed. */
	assert_true(f.sent[0] == PER / 2 + 1 && total < (uint64_t)NP * PER);
	assert_int_equal(coev_chan_len(f.ch), 0);
	coev_chan_free(f.ch);
	coev_chan_free(f.never_r);
	coev_chan_free(f.never_s);
}

static void test_chan_fast_bounded_close_in_the_middle(void **state)
{
	static const size_t caps[] = {1, 4, 64, 3};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		run_cap(caps[i]);
}

static void test_chan_fast_unbounded_close_in_the_middle(void **state)
{
	(void)state;
	run_cap(COEV_CHAN_UNBOUNDED);
}

/* Try forms only, from tasks on both workers: no message lost or
 * duplicated while the fast paths and the lock race. */
struct tryst {
	coev_chan_t *ch;
	atomic_uint_fast64_t sum_sent, sum_recv, n_recv;
	atomic_int prod_left;
};

static int try_prod(void *arg)
{
	struct tryst *s = arg;
	uint64_t m;

	for (uint64_t i = 1; i <= (uint64_t)PER; i++) {
		m = i;
		while (coev_chan_try_send(s->ch, &m) == -EAGAIN)
			coev_yield();
		atomic_fetch_add(&s->sum_sent, m);
	}
	atomic_fetch_sub(&s->prod_left, 1);
	return 0;
}

static int try_cons(void *arg)
{
	struct tryst *s = arg;
	uint64_t m;
	int r;

	for (;;) {
		r = coev_chan_try_recv(s->ch, &m);
		if (r == 0) {
			atomic_fetch_add(&s->sum_recv, m);
			atomic_fetch_add(&s->n_recv, 1);
			continue;
		}
		TU_CHECK_EQ(r, -EAGAIN);
		if (atomic_load(&s->prod_left) == 0 &&
		    atomic_load(&s->n_recv) == (uint64_t)NP * PER)
			return 0;
		coev_yield();
	}
}

static int try_main(void *arg)
{
	coev_task_t *t[NP + NC];

	for (int i = 0; i < NP + NC; i++)
		TU_CHECK_EQ(coev_spawn_named(i < NP ? "tprod" : "tcons",
					     i < NP ? try_prod : try_cons, arg,
					     &t[i]),
			    0);
	for (int i = 0; i < NP + NC; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	return 0;
}

static void test_chan_fast_try_forms_under_contention(void **state)
{
	static const size_t caps[] = {1, 4, 64};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		struct tryst s = {.prod_left = NP};

		assert_int_equal(
			coev_chan_new(&s.ch, sizeof(uint64_t), caps[i]), 0);
		assert_int_equal(tu_run_main(try_main, &s, 2), 0);
		tu_assert_no_failures();
		assert_true(atomic_load(&s.sum_sent) ==
			    atomic_load(&s.sum_recv));
		assert_int_equal(coev_chan_len(s.ch), 0);
		coev_chan_free(s.ch);
	}
}

/* A batch receive's answers, on this plain thread: what is ready, in
 * order, at most max, across the ring's wrap; -EAGAIN when empty and
 * open, COEV_ECLOSED once closed and drained, -EINVAL for max 0; the
 * same on an unbounded channel (the locked path). */
static void check_batch_answers(size_t cap)
{
	coev_chan_t *ch;
	uint64_t m[8], next = 0, want = 0;

	assert_int_equal(coev_chan_new(&ch, sizeof(uint64_t), cap), 0);
	assert_int_equal(coev_chan_try_recv_batch(ch, m, 8), -EAGAIN);
	assert_int_equal(coev_chan_recv_batch(ch, m, 8, coev_now()),
			 -ETIMEDOUT);
	assert_int_equal(coev_chan_recv_batch(ch, m, 0, COEV_FOREVER), -EINVAL);
	assert_int_equal(coev_chan_recv_batch(NULL, m, 1, COEV_FOREVER),
			 -EINVAL);
	/* 3 in, then 2 and 1 out, many times: positions wrap a 4-slot
	 * ring. */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 3; i++, next++)
			assert_int_equal(coev_chan_try_send(ch, &next), 0);
		assert_int_equal(coev_chan_try_recv_batch(ch, m, 2), 2);
		assert_int_equal(m[0], want);
		assert_int_equal(m[1], want + 1);
		assert_int_equal(coev_chan_recv_batch(ch, m, 8, COEV_FOREVER),
				 1);
		assert_int_equal(m[0], want + 2);
		want += 3;
	}
	for (int i = 0; i < 4; i++, next++)
		assert_int_equal(coev_chan_try_send(ch, &next), 0);
	assert_int_equal(coev_chan_close(ch), 0);
	/* Closed: what is buffered first, then COEV_ECLOSED. */
	assert_int_equal(coev_chan_recv_batch(ch, m, 8, COEV_FOREVER), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(m[i], want + (uint64_t)i);
	assert_int_equal(coev_chan_recv_batch(ch, m, 8, COEV_FOREVER),
			 COEV_ECLOSED);
	assert_int_equal(coev_chan_try_recv_batch(ch, m, 8), COEV_ECLOSED);
	coev_chan_free(ch);
}

static void test_chan_fast_batch_receive_answers(void **state)
{
	(void)state;
	check_batch_answers(4);
	check_batch_answers(COEV_CHAN_UNBOUNDED);
}

/* A batch receiver cancelled while messages arrive: whatever its call
 * claimed it returns (a count), or it returns -ECANCELED having claimed
 * nothing; with the rest drained after, every message arrives once, in
 * order. */
struct cancel_round {
	coev_chan_t *ch;
	uint64_t m[4];
	int r;
};

static int batch_waiter(void *arg)
{
	struct cancel_round *c = arg;

	c->r = coev_chan_recv_batch(c->ch, c->m, 4, COEV_FOREVER);
	return 0;
}

static int cancel_main(void *arg)
{
	uint64_t rs = seed(7, 0), next = 0, want = 0, m[4];
	struct cancel_round c;
	coev_task_t *t;
	int n;

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&c.ch, sizeof(uint64_t), 4), 0);
	for (int round = 0; round < TU_SCALE(2000, 500, 200); round++) {
		int sends = (int)(rnd(&rs) % 4), yields = (int)(rnd(&rs) % 3);

		/* A waiter cancelled before it ran took nothing. */
		c.r = -ECANCELED;
		TU_CHECK_EQ(coev_spawn_named("bw", batch_waiter, &c, &t), 0);
		for (int i = 0; i < yields; i++)
			coev_yield();
		for (int i = 0; i < sends; i++, next++)
			TU_CHECK_EQ(coev_chan_try_send(c.ch, &next), 0);
		if (rnd(&rs) % 2)
			coev_yield();
		TU_CHECK_EQ(coev_cancel(t), 0);
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		TU_CHECK(c.r == -ECANCELED || (c.r >= 1 && c.r <= 4));
		for (int i = 0; i < c.r; i++, want++)
			TU_CHECK_EQ(c.m[i], want);
		while ((n = coev_chan_try_recv_batch(c.ch, m, 4)) > 0)
			for (int i = 0; i < n; i++, want++)
				TU_CHECK_EQ(m[i], want);
		TU_CHECK_EQ(n, -EAGAIN);
		TU_CHECK_EQ(want, next);
	}
	coev_chan_free(c.ch);
	return 0;
}

static void test_chan_fast_cancelled_batch_loses_nothing(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cancel_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_chan_fast_bounded_close_in_the_middle),
		TU_FD_TEST(test_chan_fast_unbounded_close_in_the_middle),
		TU_FD_TEST(test_chan_fast_try_forms_under_contention),
		TU_FD_TEST(test_chan_fast_batch_receive_answers),
		TU_FD_TEST(test_chan_fast_cancelled_batch_loses_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
