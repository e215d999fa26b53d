/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/chan_util.h — helpers shared by the channel and select suites
 * (test_chan_*.c, test_select*.c).
 *
 *  - No sleep lines a waiter up: to know that a task waits on a channel,
 *    tu_wait_parked(rt, t, COEV_WAIT_CHANNEL, ch) (COEV_WAIT_SELECT, NULL
 *    for a select). SHORT_NS: the longest of the short random deadlines
 *    the storms use; rnd(), seed(): xorshift64* per endpoint; relax():
 *    back off after a try that failed (a task yields, a thread gives up
 *    its time slice).
 *  - msg_t: a message carrying an id, its sender, a sequence number and a
 *    checksum (msg_make, msg_ok); msg_blank / msg_untouched() for receive
 *    buffers that must stay unwritten.
 *  - ledger_t: two bitmaps, ids whose send reported success and ids
 *    received; ledger_check() wants them equal, with no id received twice.
 *  - HOW_*, send_how(), recv_how(), retry_rc(): the ways to send and
 *    receive (blocking, try, short deadline, or one of them at random).
 *  - mp_run(), mp_run_once(): one many-to-many exchange of tasks and plain
 *    threads on a fresh channel, checked with the ledger, per-sender order
 *    and len <= cap.
 *  - qw_t, qw_sender(), qw_receiver(): a task blocked in one send or
 *    receive with the guard deadline, for tests that queue waiters.
 *  - canceller_t: a plain thread that cancels tasks on request; END_*,
 *    race_stats_t, A_VAL, B_VAL for the cancel and deadline races;
 *    SENTINEL, what a receive buffer holds until something is received.
 *  - sel_send(), sel_recv(), chan(), put(): select cases and uint64_t
 *    channels in one line.
 *
 * Task and thread bodies record failures with TU_CHECK; the test thread
 * checks tu_assert_no_failures(). Everything is static and marked unused,
 * as in tests/testutil.h: each suite uses only part of it.
 */
#ifndef COEV_TESTS_SYNC_CHAN_UTIL_H
#define COEV_TESTS_SYNC_CHAN_UTIL_H

#include "tests/testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* ---- helpers ------------------------------------------------------------ */

/* The longest of the short random deadlines the storms use. */
#define SHORT_NS COEV_USEC(TU_SCALE(100, 200, 400))

/* What a receive buffer holds before a receive that must not write it. */
#define SENTINEL 0xDEADULL

TU_UNUSED static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: per-endpoint, so no shared state. */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

TU_UNUSED static uint64_t seed(uint64_t a, uint64_t b)
{
	uint64_t s = (a + 1) * 0x9E3779B97F4A7C15ULL ^
		     (b + 7) * 0xBF58476D1CE4E5B9ULL;

	return s ? s : 1;
}

/* Back off after a try that failed: a task lets others run, a thread
 * gives up its time slice. */
TU_UNUSED static void relax(void)
{
	if (coev_self())
		coev_yield();
	else
		sched_yield();
}

/* ---- messages and the ledger -------------------------------------------- */

typedef struct msg {
	uint64_t id;
	uint32_t src; /* sender index */
	uint32_t seq; /* sender's sequence number */
	uint64_t sum; /* of the three above */
} msg_t;

TU_UNUSED static uint64_t msg_sum(uint64_t id, uint32_t src, uint32_t seq)
{
	return (id * 0x9E3779B97F4A7C15ULL) ^
	       ((uint64_t)src << 32 | seq) * 0xD6E8FEB86659FD93ULL ^ 0xC0E5ULL;
}

TU_UNUSED static msg_t msg_make(uint64_t id, uint32_t src, uint32_t seq)
{
	msg_t m = {.id = id, .src = src, .seq = seq};

	m.sum = msg_sum(id, src, seq);
	return m;
}

TU_UNUSED static bool msg_ok(const msg_t *m)
{
	return m->sum == msg_sum(m->id, m->src, m->seq);
}

/* A receive buffer before the receive; msg_untouched(m): m not written. */
static const msg_t msg_blank TU_UNUSED = {SENTINEL, 0xFFFFFFFFu, 0xFFFFFFFFu,
					  0};

TU_UNUSED static bool msg_untouched(const msg_t *m)
{
	return memcmp(m, &msg_blank, sizeof *m) == 0;
}

/*
 * Which ids were reported sent and which were received. Marking is
 * lock-free (one fetch_or per message); the check runs after every sender
 * and receiver has finished (joined), which orders it after all marks.
 */
typedef struct ledger {
	size_t n;
	_Atomic uint64_t *sent, *got;
	atomic_llong nsent, ngot, dup_sent, dup_got, stray;
	atomic_ullong sum_sent, sum_got;
} ledger_t;

TU_UNUSED static void ledger_init(ledger_t *l, size_t n)
{
	size_t words = (n + 63) / 64 + 1;

	memset(l, 0, sizeof *l);
	l->n = n;
	l->sent = calloc(words, sizeof *l->sent);
	l->got = calloc(words, sizeof *l->got);
	if (!l->sent || !l->got)
		abort();
}

TU_UNUSED static void ledger_fini(ledger_t *l)
{
	free((void *)l->sent);
	free((void *)l->got);
}

TU_UNUSED static void ledger_mark_sent(ledger_t *l, uint64_t id)
{
	if (id >= l->n) {
		atomic_fetch_add(&l->stray, 1);
		return;
	}
	uint64_t bit = 1ULL << (id % 64);
	uint64_t old = atomic_fetch_or_explicit(&l->sent[id / 64], bit,
						memory_order_relaxed);
	if (old & bit)
		atomic_fetch_add(&l->dup_sent, 1);
	atomic_fetch_add_explicit(&l->nsent, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->sum_sent, id, memory_order_relaxed);
}

TU_UNUSED static void ledger_mark_got(ledger_t *l, const msg_t *m)
{
	if (!msg_ok(m) || m->id >= l->n) {
		if (atomic_fetch_add(&l->stray, 1) == 0)
			TU_CHECK_MSG(0,
				     "corrupt message: id %llu src %u seq %u",
				     (unsigned long long)m->id, m->src, m->seq);
		return;
	}
	uint64_t bit = 1ULL << (m->id % 64);
	uint64_t old = atomic_fetch_or_explicit(&l->got[m->id / 64], bit,
						memory_order_relaxed);
	if ((old & bit) && atomic_fetch_add(&l->dup_got, 1) == 0)
		TU_CHECK_MSG(0, "message %llu received twice",
			     (unsigned long long)m->id);
	atomic_fetch_add_explicit(&l->ngot, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->sum_got, m->id, memory_order_relaxed);
}

/* Every message received was reported sent, every message reported sent
 * was received, each once; want_sent >= 0: and that many were sent. */
TU_UNUSED static void ledger_check(ledger_t *l, long long want_sent)
{
	size_t lost = 0, phantom = 0, words = (l->n + 63) / 64;
	long long first_lost = -1, first_phantom = -1;

	TU_CHECK_EQ(atomic_load(&l->stray), 0);
	TU_CHECK_EQ(atomic_load(&l->dup_sent), 0);
	TU_CHECK_EQ(atomic_load(&l->dup_got), 0);
	if (want_sent >= 0)
		TU_CHECK_EQ(atomic_load(&l->nsent), want_sent);
	TU_CHECK_EQ(atomic_load(&l->ngot), atomic_load(&l->nsent));
	TU_CHECK(atomic_load(&l->sum_got) == atomic_load(&l->sum_sent));
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

/* ---- the ways to send and receive ---------------------------------------- */

enum {
	HOW_BLOCK, /* send / recv (or the _dl form with COEV_FOREVER) */
	HOW_TRY,   /* try_send / try_recv, backing off on -EAGAIN */
	HOW_DL,	   /* the _dl form with a short random deadline */
	HOW_MIX,   /* one of the three at random for each call */
};

TU_UNUSED static int send_how(coev_chan_t *ch, const void *m, int how,
			      uint64_t *rng)
{
	if (how == HOW_MIX)
		how = (int)(rnd(rng) % 3);
	switch (how) {
	case HOW_BLOCK:
		return rnd(rng) & 1 ? coev_chan_send(ch, m)
				    : coev_chan_send_dl(ch, m, COEV_FOREVER);
	case HOW_TRY: return coev_chan_try_send(ch, m);
	default:
		return coev_chan_send_dl(
			ch, m, coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS));
	}
}

TU_UNUSED static int recv_how(coev_chan_t *ch, void *m, int how, uint64_t *rng)
{
	if (how == HOW_MIX)
		how = (int)(rnd(rng) % 3);
	switch (how) {
	case HOW_BLOCK:
		return rnd(rng) & 1 ? coev_chan_recv(ch, m)
				    : coev_chan_recv_dl(ch, m, COEV_FOREVER);
	case HOW_TRY: return coev_chan_try_recv(ch, m);
	default:
		return coev_chan_recv_dl(
			ch, m, coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS));
	}
}

/* An answer that means "not now, try again" for that form. */
TU_UNUSED static bool retry_rc(int rc)
{
	return rc == -EAGAIN || rc == -ETIMEDOUT;
}

/* ---- many producers, many consumers -------------------------------------- */

typedef struct mp_cfg {
	size_t cap;
	unsigned task_prod, thread_prod; /* producers: tasks, then threads */
	unsigned task_cons, thread_cons; /* consumers: tasks, then threads */
	uint32_t per;			 /* messages per producer */
	int send_how, recv_how;		 /* HOW_* */
	bool consecutive;		 /* one consumer: seq == last + 1 */
	bool monitor_len;		 /* a thread samples len <= cap */
	bool close_early; /* close at a random moment, not after the sends */
	coev_time_t close_within; /* close_early: at most this long after */
	coev_time_t jitter; /* > 0: busy pause of up to this after each op */
} mp_cfg_t;

struct mp;

typedef struct ep {
	struct mp *mp;
	unsigned idx;
	uint64_t rng;
	int64_t *last; /* consumer: last seq seen per producer */
	coev_task_t *task;
	pthread_t th;
	bool closed_seen; /* producer: a send failed with COEV_ECLOSED */
} ep_t;

typedef struct mp {
	mp_cfg_t c;
	coev_chan_t *ch;
	ledger_t led;
	unsigned nprod, ncons;
	ep_t *prod, *cons;
	atomic_llong order_bad; /* per-sender order violations */
	atomic_llong len_over;	/* len seen above cap */
	atomic_int stop_monitor;
} mp_t;

TU_UNUSED static void mp_check_len(mp_t *mp)
{
	if (mp->c.cap == COEV_CHAN_UNBOUNDED)
		return;
	size_t len = coev_chan_len(mp->ch);
	if (len > mp->c.cap && atomic_fetch_add(&mp->len_over, 1) == 0)
		TU_CHECK_MSG(0, "len %zu above cap %zu", len, mp->c.cap);
}

TU_UNUSED static int mp_produce(void *arg)
{
	ep_t *e = arg;
	mp_t *mp = e->mp;

	for (uint32_t seq = 0; seq < mp->c.per; seq++) {
		uint64_t id = (uint64_t)e->idx * mp->c.per + seq;
		msg_t m = msg_make(id, e->idx, seq);
		int rc;
		while (retry_rc(
			rc = send_how(mp->ch, &m, mp->c.send_how, &e->rng)))
			relax();
		if (rc == COEV_ECLOSED && mp->c.close_early) {
			/* Closed for good: later sends fail the same way. */
			TU_CHECK_EQ(coev_chan_try_send(mp->ch, &m),
				    COEV_ECLOSED);
			e->closed_seen = true;
			return 0;
		}
		if (rc != 0) {
			TU_CHECK_MSG(0, "producer %u, message %u: %s", e->idx,
				     seq, coev_strerror(rc));
			return rc;
		}
		ledger_mark_sent(&mp->led, id);
		mp_check_len(mp);
		if (mp->c.jitter)
			tu_spin_ns((coev_time_t)(rnd(&e->rng) %
						 (uint64_t)mp->c.jitter));
	}
	return 0;
}

TU_UNUSED static int mp_consume(void *arg)
{
	ep_t *e = arg;
	mp_t *mp = e->mp;

	for (;;) {
		msg_t m;
		memset(&m, 0xA5, sizeof m);
		int rc = recv_how(mp->ch, &m, mp->c.recv_how, &e->rng);
		if (retry_rc(rc)) {
			relax();
			continue;
		}
		if (rc == COEV_ECLOSED)
			return 0;
		if (rc != 0) {
			TU_CHECK_MSG(0, "consumer %u: %s", e->idx,
				     coev_strerror(rc));
			return rc;
		}
		ledger_mark_got(&mp->led, &m);
		mp_check_len(mp);
		if (mp->c.jitter)
			tu_spin_ns((coev_time_t)(rnd(&e->rng) %
						 (uint64_t)mp->c.jitter));
		if (!msg_ok(&m) || m.src >= mp->nprod)
			continue;
		int64_t *last = &e->last[m.src];
		bool ok = mp->c.consecutive ? (int64_t)m.seq == *last + 1
					    : (int64_t)m.seq > *last;
		if (!ok && atomic_fetch_add(&mp->order_bad, 1) == 0)
			TU_CHECK_MSG(0,
				     "consumer %u: from producer %u seq %u "
				     "after %lld",
				     e->idx, m.src, m.seq, (long long)*last);
		*last = m.seq;
	}
}

TU_UNUSED static void *mp_produce_thread(void *arg)
{
	mp_produce(arg);
	return NULL;
}

TU_UNUSED static void *mp_consume_thread(void *arg)
{
	mp_consume(arg);
	return NULL;
}

TU_UNUSED static void *mp_monitor_thread(void *arg)
{
	mp_t *mp = arg;

	while (!atomic_load(&mp->stop_monitor)) {
		mp_check_len(mp);
		sched_yield();
	}
	return NULL;
}

TU_UNUSED static void ep_start(coev_rt_t *rt, ep_t *e, bool task, coev_fn fn,
			       void *(*thread_fn)(void *), const char *name)
{
	if (task)
		assert_int_equal(coev_rt_spawn(rt, name, fn, e, &e->task), 0);
	else
		assert_int_equal(pthread_create(&e->th, NULL, thread_fn, e), 0);
}

TU_UNUSED static void ep_join(ep_t *e)
{
	int r = -1;

	if (e->task) {
		assert_int_equal(coev_join(e->task, &r), 0);
		e->task = NULL;
		TU_CHECK_EQ(r, 0);
	} else {
		assert_int_equal(pthread_join(e->th, NULL), 0);
	}
}

/*
 * Runs one many-to-many exchange on a fresh channel: consumers start
 * first, then producers; the test thread joins the producers, closes the
 * channel and joins the consumers (or, with close_early, closes at a
 * random moment while the producers still send). rt: the runtime for the
 * tasks (NULL when there are none). Returns the number of messages sent.
 */
TU_UNUSED static long long mp_run(const mp_cfg_t *c, coev_rt_t *rt,
				  uint64_t round)
{
	mp_t mp = {.c = *c};
	pthread_t mon;

	mp.nprod = c->task_prod + c->thread_prod;
	mp.ncons = c->task_cons + c->thread_cons;
	ledger_init(&mp.led, (size_t)mp.nprod * c->per);
	assert_int_equal(coev_chan_new(&mp.ch, sizeof(msg_t), c->cap), 0);
	mp.prod = calloc(mp.nprod, sizeof *mp.prod);
	mp.cons = calloc(mp.ncons, sizeof *mp.cons);
	assert_non_null(mp.prod);
	assert_non_null(mp.cons);
	if (c->monitor_len)
		assert_int_equal(
			pthread_create(&mon, NULL, mp_monitor_thread, &mp), 0);
	for (unsigned i = 0; i < mp.ncons; i++) {
		ep_t *e = &mp.cons[i];
		e->mp = &mp;
		e->idx = i;
		e->rng = seed(round, 1000 + i);
		e->last = malloc(mp.nprod * sizeof *e->last);
		assert_non_null(e->last);
		for (unsigned p = 0; p < mp.nprod; p++)
			e->last[p] = -1;
		ep_start(rt, e, i < c->task_cons, mp_consume, mp_consume_thread,
			 "consumer");
	}
	for (unsigned i = 0; i < mp.nprod; i++) {
		ep_t *e = &mp.prod[i];
		e->mp = &mp;
		e->idx = i;
		e->rng = seed(round, i);
		ep_start(rt, e, i < c->task_prod, mp_produce, mp_produce_thread,
			 "producer");
	}
	if (c->close_early) {
		uint64_t r = seed(round, 99);
		tu_spin_ns((coev_time_t)(rnd(&r) % (uint64_t)c->close_within));
		assert_int_equal(coev_chan_close(mp.ch), 0);
	}
	for (unsigned i = 0; i < mp.nprod; i++)
		ep_join(&mp.prod[i]);
	if (!c->close_early)
		assert_int_equal(coev_chan_close(mp.ch), 0);
	for (unsigned i = 0; i < mp.ncons; i++)
		ep_join(&mp.cons[i]);
	if (c->monitor_len) {
		atomic_store(&mp.stop_monitor, 1);
		pthread_join(mon, NULL);
	}
	ledger_check(&mp.led,
		     c->close_early ? -1 : (long long)mp.nprod * c->per);
	TU_CHECK_EQ(atomic_load(&mp.order_bad), 0);
	TU_CHECK_EQ(atomic_load(&mp.len_over), 0);
	TU_CHECK_EQ(coev_chan_len(mp.ch), 0);
	TU_CHECK_EQ(coev_chan_closed(mp.ch), 1);
	long long sent = atomic_load(&mp.led.nsent);
	coev_chan_free(mp.ch);
	for (unsigned i = 0; i < mp.ncons; i++)
		free(mp.cons[i].last);
	free(mp.prod);
	free(mp.cons);
	ledger_fini(&mp.led);
	return sent;
}

/* mp_run on a fresh 2-worker runtime (when tasks take part). */
TU_UNUSED static void mp_run_once(const mp_cfg_t *c)
{
	coev_rt_t *rt = NULL;

	if (c->task_prod + c->task_cons > 0)
		rt = tu_new_rt(2);
	mp_run(c, rt, 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* Messages in each of the big many-to-many runs. */
#define MP_TOTAL TU_SCALE(4000000, 1500000, 1000000)

/* ---- waiters queued on a channel ----------------------------------------- */

typedef struct qw {
	coev_chan_t *ch;
	uint64_t val; /* to send, or received */
	atomic_int started;
	atomic_int finished; /* rc is set */
	int rc;
} qw_t;

TU_UNUSED static int qw_sender(void *arg)
{
	qw_t *q = arg;

	atomic_store(&q->started, 1);
	q->rc = coev_chan_send_dl(q->ch, &q->val, tu_guard());
	atomic_store(&q->finished, 1);
	return 0;
}

TU_UNUSED static int qw_receiver(void *arg)
{
	qw_t *q = arg;

	atomic_store(&q->started, 1);
	q->rc = coev_chan_recv_dl(q->ch, &q->val, tu_guard());
	atomic_store(&q->finished, 1);
	return 0;
}

/* ---- cancels and deadlines racing the matching operation ------------------ */

/*
 * A helper plain thread that cancels tasks on request: the requester posts
 * a task and later waits until the cancel was made (before it joins the
 * task, which releases the handle). canceller_start aborts when it cannot
 * start the thread: it runs in a task, where cmocka's assertions cannot.
 */
typedef struct canceller {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	coev_task_t *req; /* [mu] */
	bool stop;	  /* [mu] */
	atomic_int done;  /* requests carried out */
	int posted;	  /* [requester] */
} canceller_t;

TU_UNUSED static void *canceller_main(void *arg)
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

TU_UNUSED static void canceller_start(canceller_t *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->th, NULL, canceller_main, c) != 0)
		abort();
}

TU_UNUSED static void canceller_stop(canceller_t *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

/* From a task (the lock is held for a few instructions only). */
TU_UNUSED static void canceller_post(canceller_t *c, coev_task_t *t)
{
	pthread_mutex_lock(&c->mu);
	c->req = t;
	c->posted++;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

TU_UNUSED static void canceller_wait(canceller_t *c)
{
	while (atomic_load(&c->done) < c->posted)
		coev_yield();
}

enum { END_CANCEL_TASK, END_CANCEL_THREAD, END_DEADLINE, END_N };

typedef struct race_stats {
	long long won, lost; /* the waiter's operation succeeded / failed */
} race_stats_t;

#define A_VAL 0xAAAAULL
#define B_VAL 0xBBBBULL

/* ---- select cases and uint64_t channels ---------------------------------- */

/* A send or receive case; result starts at 12345, which no select writes. */
TU_UNUSED static coev_sel_t sel_send(coev_chan_t *ch, void *buf)
{
	return (coev_sel_t){
		.ch = ch, .op = COEV_SEL_SEND, .buf = buf, .result = 12345};
}

TU_UNUSED static coev_sel_t sel_recv(coev_chan_t *ch, void *buf)
{
	return (coev_sel_t){
		.ch = ch, .op = COEV_SEL_RECV, .buf = buf, .result = 12345};
}

TU_UNUSED static coev_chan_t *chan(size_t cap)
{
	coev_chan_t *ch = NULL;

	if (coev_chan_new(&ch, sizeof(uint64_t), cap) != 0)
		abort();
	return ch;
}

TU_UNUSED static void put(coev_chan_t *ch, uint64_t v)
{
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), 0);
}

#endif
