/*
 * tests/sync/test_chan.c — channels (include/coev/chan.h): argument
 * checks, exact copies of elem_size bytes, try operations against a FIFO
 * model, many producers and consumers (tasks and plain threads) on
 * bounded, unbounded and rendezvous channels losing and duplicating
 * nothing, per-sender order, FIFO service of waiters, capacity, real
 * hand-over on a rendezvous channel, close (draining, waking everyone,
 * racing senders), deadlines, cancellation of blocked senders and
 * receivers, cancels and deadlines racing a matching operation, the
 * loop-callback context, and freeing a channel that still has waiters.
 *
 * Every message carries an id, its sender, a sequence number and a
 * checksum. A ledger keeps two bitmaps: ids whose send reported success
 * and ids received; at the end they must be equal, with no id received
 * twice. Task and thread bodies record failures with TU_CHECK; the test
 * thread checks tu_assert_no_failures().
 */
/* tu_on_loop: a loop callback, the one context the public API gives no
 * hook for (white-box). */
#define TU_LOOP_CALLS
#include "tests/testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* ---- helpers ------------------------------------------------------------ */

/* Time for a task that was seen starting to reach its wait. */
#define SETTLE COEV_MSEC(TU_SCALE(20, 40, 60))

/* The longest of the short random deadlines the storms use. */
#define SHORT_NS COEV_USEC(TU_SCALE(100, 200, 400))

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: per-endpoint, so no shared state. */
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

/* Back off after a try that failed: a task lets others run, a thread
 * gives up its time slice. */
static void relax(void)
{
	if (coev_self())
		coev_yield();
	else
		sched_yield();
}

/* Let a waiter that was seen starting reach its wait. */
static void settle(void)
{
	if (coev_self())
		coev_sleep(SETTLE);
	else
		tu_nap_ms((long)(SETTLE / COEV_MSEC(1)));
}

/* ---- messages and the ledger -------------------------------------------- */

typedef struct msg {
	uint64_t id;
	uint32_t src; /* sender index */
	uint32_t seq; /* sender's sequence number */
	uint64_t sum; /* of the three above */
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
	uint64_t old = atomic_fetch_or_explicit(&l->sent[id / 64], bit,
						memory_order_relaxed);
	if (old & bit)
		atomic_fetch_add(&l->dup_sent, 1);
	atomic_fetch_add_explicit(&l->nsent, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->sum_sent, id, memory_order_relaxed);
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

static int send_how(coev_chan_t *ch, const void *m, int how, uint64_t *rng)
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

static int recv_how(coev_chan_t *ch, void *m, int how, uint64_t *rng)
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
static bool retry_rc(int rc)
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

static void mp_check_len(mp_t *mp)
{
	if (mp->c.cap == COEV_CHAN_UNBOUNDED)
		return;
	size_t len = coev_chan_len(mp->ch);
	if (len > mp->c.cap && atomic_fetch_add(&mp->len_over, 1) == 0)
		TU_CHECK_MSG(0, "len %zu above cap %zu", len, mp->c.cap);
}

static int mp_produce(void *arg)
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

static int mp_consume(void *arg)
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

static void *mp_produce_thread(void *arg)
{
	mp_produce(arg);
	return NULL;
}

static void *mp_consume_thread(void *arg)
{
	mp_consume(arg);
	return NULL;
}

static void *mp_monitor_thread(void *arg)
{
	mp_t *mp = arg;

	while (!atomic_load(&mp->stop_monitor)) {
		mp_check_len(mp);
		sched_yield();
	}
	return NULL;
}

static void ep_start(coev_rt_t *rt, ep_t *e, bool task, coev_fn fn,
		     void *(*thread_fn)(void *), const char *name)
{
	if (task)
		assert_int_equal(coev_rt_spawn(rt, name, fn, e, &e->task), 0);
	else
		assert_int_equal(pthread_create(&e->th, NULL, thread_fn, e), 0);
}

static void ep_join(ep_t *e)
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
static long long mp_run(const mp_cfg_t *c, coev_rt_t *rt, uint64_t round)
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
static void mp_run_once(const mp_cfg_t *c)
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

/* ---- arguments, copies, the try operations -------------------------------- */

static void test_chan_new_rejects_bad_arguments(void **state)
{
	coev_chan_t *ch = (coev_chan_t *)&ch;
	char buf[8] = {0};

	(void)state;
	assert_int_equal(coev_chan_new(NULL, 8, 1), -EINVAL);
	assert_int_equal(coev_chan_new(&ch, 0, 1), -EINVAL);
	assert_int_equal(coev_chan_new(&ch, 65537, 1), -EINVAL);
	assert_int_equal(coev_chan_new(&ch, (size_t)-1, 0), -EINVAL);
	assert_int_equal(coev_chan_new(&ch, 0, COEV_CHAN_UNBOUNDED), -EINVAL);

	/* The limits themselves are accepted, with every kind of capacity. */
	static const size_t caps[] = {0, 1, 5, COEV_CHAN_UNBOUNDED};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		assert_int_equal(coev_chan_new(&ch, 1, caps[i]), 0);
		assert_non_null(ch);
		assert_true(coev_chan_cap(ch) == caps[i]);
		assert_int_equal(coev_chan_len(ch), 0);
		assert_int_equal(coev_chan_closed(ch), 0);
		coev_chan_free(ch);
		assert_int_equal(coev_chan_new(&ch, 65536, caps[i]), 0);
		assert_true(coev_chan_cap(ch) == caps[i]);
		coev_chan_free(ch);
	}

	/* NULL arguments of the other calls. */
	assert_int_equal(coev_chan_new(&ch, sizeof buf, 2), 0);
	assert_int_equal(coev_chan_send(NULL, buf), -EINVAL);
	assert_int_equal(coev_chan_send(ch, NULL), -EINVAL);
	assert_int_equal(coev_chan_send_dl(NULL, buf, 0), -EINVAL);
	assert_int_equal(coev_chan_send_dl(ch, NULL, 0), -EINVAL);
	assert_int_equal(coev_chan_try_send(NULL, buf), -EINVAL);
	assert_int_equal(coev_chan_try_send(ch, NULL), -EINVAL);
	assert_int_equal(coev_chan_recv(NULL, buf), -EINVAL);
	assert_int_equal(coev_chan_recv(ch, NULL), -EINVAL);
	assert_int_equal(coev_chan_recv_dl(NULL, buf, 0), -EINVAL);
	assert_int_equal(coev_chan_recv_dl(ch, NULL, 0), -EINVAL);
	assert_int_equal(coev_chan_try_recv(NULL, buf), -EINVAL);
	assert_int_equal(coev_chan_try_recv(ch, NULL), -EINVAL);
	/* None of them sent anything. */
	assert_int_equal(coev_chan_len(ch), 0);
	assert_int_equal(coev_chan_try_recv(ch, buf), -EAGAIN);
	coev_chan_free(ch);
	coev_chan_free(NULL);
}

/* Sends a pattern of size bytes from a buffer of exactly that size (ASan
 * sees an over-read) and receives it into a larger one whose tail must
 * stay untouched. */
static void copy_roundtrip(coev_chan_t *ch, size_t size, unsigned salt)
{
	unsigned char *msg = malloc(size);
	unsigned char *out = malloc(size + 64);

	assert_non_null(msg);
	assert_non_null(out);
	for (size_t i = 0; i < size; i++)
		msg[i] = (unsigned char)(i * 31 + salt);
	memset(out, 0xEE, size + 64);
	assert_int_equal(coev_chan_try_send(ch, msg), 0);
	/* The caller keeps msg: scribbling on it now must not matter. */
	memset(msg, 0, size);
	assert_int_equal(coev_chan_try_recv(ch, out), 0);
	for (size_t i = 0; i < size; i++) {
		if (out[i] != (unsigned char)(i * 31 + salt))
			fail_msg("size %zu: byte %zu is %u", size, i, out[i]);
	}
	for (size_t i = size; i < size + 64; i++) {
		if (out[i] != 0xEE)
			fail_msg("size %zu: byte %zu past the end written",
				 size, i);
	}
	free(msg);
	free(out);
}

typedef struct rdv_copy {
	coev_chan_t *ch;
	size_t size;
	unsigned char *out;
	int rc;
} rdv_copy_t;

static void *rdv_copy_receiver(void *arg)
{
	rdv_copy_t *r = arg;

	r->rc = coev_chan_recv_dl(r->ch, r->out, tu_guard());
	return NULL;
}

static void test_chan_copies_exactly_elem_size(void **state)
{
	static const size_t sizes[] = {1, 3, 8, 17, 24, 1000, 4096, 65536};

	(void)state;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		coev_chan_t *ch;

		/* Bounded: wrap around the ring a few times. */
		assert_int_equal(coev_chan_new(&ch, size, 2), 0);
		for (unsigned k = 0; k < 5; k++)
			copy_roundtrip(ch, size, k + (unsigned)i);
		coev_chan_free(ch);
		assert_int_equal(coev_chan_new(&ch, size, COEV_CHAN_UNBOUNDED),
				 0);
		for (unsigned k = 0; k < 5; k++)
			copy_roundtrip(ch, size, k * 7 + (unsigned)i);
		coev_chan_free(ch);

		/* Rendezvous: straight from the sender's buffer into the
		 * receiver's, between two plain threads. */
		rdv_copy_t r = {.size = size};
		pthread_t th;
		unsigned char *msg = malloc(size);
		r.out = malloc(size + 64);
		assert_non_null(msg);
		assert_non_null(r.out);
		memset(r.out, 0xEE, size + 64);
		for (size_t b = 0; b < size; b++)
			msg[b] = (unsigned char)(b * 13 + 5);
		assert_int_equal(coev_chan_new(&r.ch, size, 0), 0);
		assert_int_equal(
			pthread_create(&th, NULL, rdv_copy_receiver, &r), 0);
		assert_int_equal(coev_chan_send_dl(r.ch, msg, tu_guard()), 0);
		pthread_join(th, NULL);
		assert_int_equal(r.rc, 0);
		assert_memory_equal(r.out, msg, size);
		for (size_t b = size; b < size + 64; b++)
			assert_int_equal(r.out[b], 0xEE);
		coev_chan_free(r.ch);
		free(msg);
		free(r.out);
	}
}

/*
 * Random try operations against a FIFO model, from one thread: try_send
 * fails with -EAGAIN exactly when the model is full (a rendezvous channel
 * without a receiver: always), try_recv exactly when it is empty, the
 * _dl forms with a past deadline only try (-ETIMEDOUT instead of
 * -EAGAIN), the blocking forms succeed at once when they need not wait,
 * len follows the model, and messages come out in order. After a close
 * sends fail, the rest drains, then COEV_ECLOSED.
 */
static void model_run(size_t cap, unsigned ops, uint64_t s)
{
	coev_chan_t *ch;
	size_t room = cap == COEV_CHAN_UNBOUNDED ? ops : cap;
	uint64_t *q = malloc((room + 1) * sizeof *q);
	size_t head = 0, n = 0;
	uint64_t next = 1, v;

	assert_non_null(q);
	assert_int_equal(coev_chan_new(&ch, sizeof(uint64_t), cap), 0);
	for (unsigned i = 0; i < ops; i++) {
		unsigned op = (unsigned)(rnd(&s) % 8);
		int rc;
		bool full = n == room, send = op < 4;
		if (send) {
			v = next;
			switch (op) {
			case 0: rc = coev_chan_try_send(ch, &v); break;
			case 1:
				rc = coev_chan_send_dl(ch, &v, coev_now() - 1);
				break;
			case 2: rc = coev_chan_send_dl(ch, &v, 0); break;
			default:
				rc = full ? coev_chan_try_send(ch, &v)
					  : coev_chan_send(ch, &v);
				break;
			}
			int want = !full		? 0
				   : op == 1 || op == 2 ? -ETIMEDOUT
							: -EAGAIN;
			if (rc != want)
				fail_msg("cap %zu op %u: send %d with %zu "
					 "queued: %d (%s)",
					 cap, i, (int)op, n, rc,
					 coev_strerror(rc));
			if (rc == 0) {
				q[(head + n) % (room + 1)] = next++;
				n++;
			}
		} else {
			v = 0xDEAD;
			switch (op) {
			case 4: rc = coev_chan_try_recv(ch, &v); break;
			case 5:
				rc = coev_chan_recv_dl(ch, &v, coev_now() - 1);
				break;
			case 6: rc = coev_chan_recv_dl(ch, &v, 0); break;
			default:
				rc = n == 0 ? coev_chan_try_recv(ch, &v)
					    : coev_chan_recv(ch, &v);
				break;
			}
			int want = n > 0		? 0
				   : op == 5 || op == 6 ? -ETIMEDOUT
							: -EAGAIN;
			if (rc != want)
				fail_msg("cap %zu op %u: recv %d with %zu "
					 "queued: %d (%s)",
					 cap, i, (int)op, n, rc,
					 coev_strerror(rc));
			if (rc == 0) {
				if (v != q[head])
					fail_msg("cap %zu op %u: got %llu, "
						 "expected %llu",
						 cap, i, (unsigned long long)v,
						 (unsigned long long)q[head]);
				head = (head + 1) % (room + 1);
				n--;
			} else if (v != 0xDEAD) {
				fail_msg("a failed recv wrote its buffer");
			}
		}
		if (coev_chan_len(ch) != n)
			fail_msg("cap %zu op %u: len %zu, model %zu", cap, i,
				 coev_chan_len(ch), n);
	}
	/* Close with n messages queued. */
	assert_int_equal(coev_chan_close(ch), 0);
	assert_int_equal(coev_chan_closed(ch), 1);
	v = next;
	assert_int_equal(coev_chan_try_send(ch, &v), COEV_ECLOSED);
	assert_int_equal(coev_chan_send(ch, &v), COEV_ECLOSED);
	assert_int_equal(coev_chan_send_dl(ch, &v, 0), COEV_ECLOSED);
	assert_int_equal(coev_chan_len(ch), n);
	while (n > 0) {
		assert_int_equal(coev_chan_try_recv(ch, &v), 0);
		assert_true(v == q[head]);
		head = (head + 1) % (room + 1);
		n--;
	}
	v = 0xDEAD;
	assert_int_equal(coev_chan_try_recv(ch, &v), COEV_ECLOSED);
	assert_int_equal(coev_chan_recv(ch, &v), COEV_ECLOSED);
	assert_int_equal(coev_chan_recv_dl(ch, &v, 0), COEV_ECLOSED);
	assert_true(v == 0xDEAD);
	coev_chan_free(ch);
	free(q);
}

static void test_chan_try_ops_match_a_fifo_model(void **state)
{
	static const size_t caps[] = {0, 1, 2, 3, 7, 64, COEV_CHAN_UNBOUNDED};
	unsigned ops = TU_SCALE(50000, 50000, 30000);

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		model_run(caps[i], ops, seed(i, 42));
}

/* An unbounded channel takes everything without a receiver, grows while
 * its oldest message is in the middle of its buffer, and keeps order. */
static int unbounded_main(void *arg)
{
	coev_chan_t *ch;
	uint64_t n = (uint64_t)TU_SCALE(1000000, 1000000, 1000000);
	uint64_t sent = 0, got = 0, v;

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, COEV_CHAN_UNBOUNDED), 0);
	/* Rounds of "send k, receive k/2", k growing: the live region
	 * keeps moving through the buffer as it grows. */
	for (uint64_t k = 1; sent < n; k = k * 3 / 2 + 1) {
		for (uint64_t i = 0; i < k && sent < n; i++) {
			v = sent++;
			int rc = (i & 1) ? coev_chan_send(ch, &v)
					 : coev_chan_try_send(ch, &v);
			if (rc != 0) {
				TU_CHECK_MSG(0, "send %llu: %s",
					     (unsigned long long)v,
					     coev_strerror(rc));
				return -1;
			}
		}
		for (uint64_t i = 0; i < k / 2; i++) {
			TU_CHECK_EQ(coev_chan_recv(ch, &v), 0);
			if (v != got++) {
				TU_CHECK_EQ(v, got - 1);
				return -1;
			}
		}
		TU_CHECK_EQ(coev_chan_len(ch), sent - got);
	}
	while (got < sent) {
		TU_CHECK_EQ(coev_chan_try_recv(ch, &v), 0);
		if (v != got++) {
			TU_CHECK_EQ(v, got - 1);
			return -1;
		}
	}
	TU_CHECK_EQ(coev_chan_try_recv(ch, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_len(ch), 0);
	coev_chan_free(ch);
	return 0;
}

static void test_chan_unbounded_grows_keeping_order(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(unbounded_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- many producers and consumers ----------------------------------------- */

static void test_chan_bounded_mpmc_loses_and_duplicates_nothing(void **state)
{
	(void)state;
	/* Capacity 1: every message contends. */
	mp_cfg_t c1 = {.cap = 1,
		       .task_prod = 6,
		       .task_cons = 6,
		       .per = MP_TOTAL / 2 / 6,
		       .send_how = HOW_BLOCK,
		       .recv_how = HOW_BLOCK};
	mp_run_once(&c1);
	/* A larger buffer, more producers than consumers. */
	mp_cfg_t c64 = {.cap = 64,
			.task_prod = 8,
			.task_cons = 3,
			.per = MP_TOTAL / 2 / 8,
			.send_how = HOW_BLOCK,
			.recv_how = HOW_BLOCK};
	mp_run_once(&c64);
}

static void test_chan_unbounded_mpmc_loses_and_duplicates_nothing(void **state)
{
	(void)state;
	mp_cfg_t c = {.cap = COEV_CHAN_UNBOUNDED,
		      .task_prod = 8,
		      .task_cons = 8,
		      .per = MP_TOTAL / 8,
		      .send_how = HOW_BLOCK,
		      .recv_how = HOW_BLOCK};
	mp_run_once(&c);
}

static void test_chan_rendezvous_mpmc_loses_and_duplicates_nothing(void **state)
{
	(void)state;
	mp_cfg_t c = {.cap = 0,
		      .task_prod = 8,
		      .task_cons = 8,
		      .per = MP_TOTAL / 8,
		      .send_how = HOW_BLOCK,
		      .recv_how = HOW_BLOCK};
	mp_run_once(&c);
}

/* One consumer sees each producer's messages strictly consecutively. */
static void test_chan_single_consumer_sees_each_sender_in_order(void **state)
{
	static const size_t caps[] = {0, 4, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .task_prod = 4,
			      .thread_prod = 2,
			      .task_cons = i != 1,
			      .thread_cons = i == 1,
			      .per = TU_SCALE(40000, 30000, 20000),
			      .send_how = HOW_MIX,
			      .recv_how = HOW_MIX,
			      .consecutive = true};
		mp_run_once(&c);
	}
}

/* Tasks and plain threads on both sides, each call taking a random form
 * (blocking, try, short deadline), with a thread watching len <= cap. */
static void test_chan_tasks_and_threads_mixed_with_every_call_form(void **state)
{
	static const size_t caps[] = {0, 3, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .task_prod = 3,
			      .thread_prod = 2,
			      .task_cons = 3,
			      .thread_cons = 2,
			      .per = TU_SCALE(60000, 40000, 30000),
			      .send_how = HOW_MIX,
			      .recv_how = HOW_MIX,
			      .monitor_len = true};
		mp_run_once(&c);
	}
}

/* No runtime at all: plain threads block on the channel by themselves. */
static void test_chan_plain_threads_without_a_runtime(void **state)
{
	static const size_t caps[] = {0, 3, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .thread_prod = 3,
			      .thread_cons = 3,
			      .per = TU_SCALE(40000, 30000, 20000),
			      .send_how = i == 1 ? HOW_MIX : HOW_BLOCK,
			      .recv_how = i == 1 ? HOW_BLOCK : HOW_MIX};
		mp_run_once(&c);
	}
}

/* Every send and receive with a short random deadline, retried when it
 * times out: a waiter handed a message as its deadline passed must
 * report success, or the message is lost or doubled. Plain threads time
 * out precisely (a task's timer has the loop's granularity) and random
 * pauses between operations make deadlines pass while partners arrive. */
static void test_chan_deadline_storm_loses_nothing(void **state)
{
	static const size_t caps[] = {0, 1, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .task_prod = 4,
			      .thread_prod = 1,
			      .task_cons = 4,
			      .thread_cons = 1,
			      .per = TU_SCALE(30000, 20000, 15000),
			      .send_how = HOW_DL,
			      .recv_how = HOW_DL};
		mp_run_once(&c);
		mp_cfg_t j = {.cap = caps[i],
			      .task_prod = 1,
			      .thread_prod = 2,
			      .task_cons = 1,
			      .thread_cons = 2,
			      .per = TU_SCALE(20000, 10000, 8000),
			      .send_how = HOW_DL,
			      .recv_how = HOW_DL,
			      .jitter = SHORT_NS};
		mp_run_once(&j);
	}
}

/* ---- capacity --------------------------------------------------------------- */

/*
 * Without receivers, senders racing with try_send fill the channel to
 * exactly its capacity (a rendezvous channel: nothing); then receivers
 * racing with try_recv take exactly those messages, once each.
 */
typedef struct fill {
	coev_chan_t *ch;
	ledger_t *led;
	unsigned idx, attempts;
	atomic_int *go;
	long long ok;
} fill_t;

#define FILL_EPS 8 /* 4 tasks, 4 threads */

static int fill_sender(void *arg)
{
	fill_t *f = arg;

	while (!atomic_load(f->go))
		relax();
	for (unsigned i = 0; i < f->attempts; i++) {
		uint64_t id = (uint64_t)f->idx * f->attempts + i;
		msg_t m = msg_make(id, f->idx, i);
		int rc = coev_chan_try_send(f->ch, &m);
		if (rc == 0) {
			ledger_mark_sent(f->led, id);
			f->ok++;
		} else {
			TU_CHECK_EQ(rc, -EAGAIN);
		}
		if (i % 4 == 0)
			relax();
	}
	return 0;
}

static int fill_receiver(void *arg)
{
	fill_t *f = arg;
	msg_t m;
	int rc;

	while (!atomic_load(f->go))
		relax();
	while ((rc = coev_chan_try_recv(f->ch, &m)) == 0) {
		ledger_mark_got(f->led, &m);
		f->ok++;
		relax();
	}
	TU_CHECK_EQ(rc, -EAGAIN);
	return 0;
}

static void *fill_sender_thread(void *arg)
{
	fill_sender(arg);
	return NULL;
}

static void *fill_receiver_thread(void *arg)
{
	fill_receiver(arg);
	return NULL;
}

static long long fill_phase(coev_rt_t *rt, coev_chan_t *ch, ledger_t *led,
			    bool send)
{
	fill_t f[FILL_EPS];
	coev_task_t *t[FILL_EPS];
	pthread_t th[FILL_EPS];
	atomic_int go = 0;
	long long total = 0;

	for (unsigned i = 0; i < FILL_EPS; i++) {
		f[i] = (fill_t){.ch = ch,
				.led = led,
				.idx = i,
				.attempts = 64,
				.go = &go};
		if (i < FILL_EPS / 2)
			assert_int_equal(coev_rt_spawn(rt, "fill",
						       send ? fill_sender
							    : fill_receiver,
						       &f[i], &t[i]),
					 0);
		else
			assert_int_equal(
				pthread_create(&th[i], NULL,
					       send ? fill_sender_thread
						    : fill_receiver_thread,
					       &f[i]),
				0);
	}
	atomic_store(&go, 1);
	for (unsigned i = 0; i < FILL_EPS; i++) {
		if (i < FILL_EPS / 2)
			assert_int_equal(coev_join(t[i], NULL), 0);
		else
			pthread_join(th[i], NULL);
		total += f[i].ok;
	}
	return total;
}

static void test_chan_concurrent_try_send_fills_exactly_to_cap(void **state)
{
	static const size_t caps[] = {0, 1, 5, 37};
	coev_rt_t *rt = tu_new_rt(2);
	unsigned rounds = TU_SCALE(200, 100, 100);

	(void)state;
	for (unsigned r = 0; r < rounds; r++) {
		size_t cap = caps[r % 4];
		coev_chan_t *ch;
		ledger_t led;
		ledger_init(&led, FILL_EPS * 64);
		assert_int_equal(coev_chan_new(&ch, sizeof(msg_t), cap), 0);
		long long sent = fill_phase(rt, ch, &led, true);
		TU_CHECK_EQ(sent, (long long)cap);
		TU_CHECK_EQ(coev_chan_len(ch), cap);
		long long got = fill_phase(rt, ch, &led, false);
		TU_CHECK_EQ(got, (long long)cap);
		TU_CHECK_EQ(coev_chan_len(ch), 0);
		ledger_check(&led, (long long)cap);
		coev_chan_free(ch);
		ledger_fini(&led);
		tu_assert_no_failures();
	}
	coev_rt_free(rt);
}

/* ---- order of waiters ---------------------------------------------------- */

typedef struct qw {
	coev_chan_t *ch;
	uint64_t val; /* to send, or received */
	atomic_int started;
	atomic_int finished; /* rc is set */
	int rc;
} qw_t;

static int qw_sender(void *arg)
{
	qw_t *q = arg;

	atomic_store(&q->started, 1);
	q->rc = coev_chan_send_dl(q->ch, &q->val, tu_guard());
	atomic_store(&q->finished, 1);
	return 0;
}

static int qw_receiver(void *arg)
{
	qw_t *q = arg;

	atomic_store(&q->started, 1);
	q->rc = coev_chan_recv_dl(q->ch, &q->val, tu_guard());
	atomic_store(&q->finished, 1);
	return 0;
}

#define QN 6

/* Spawns fn for q[0..QN), each after the previous one reached its wait. */
static void queue_up(coev_chan_t *ch, coev_fn fn, qw_t *q, coev_task_t **t,
		     uint64_t base)
{
	for (int i = 0; i < QN; i++) {
		q[i] = (qw_t){.ch = ch, .val = base + (uint64_t)i};
		TU_CHECK_EQ(coev_spawn_named("queued", fn, &q[i], &t[i]), 0);
		TU_CHECK_EQ(tu_wait_at_least(&q[i].started, 1), 0);
		coev_sleep(SETTLE);
	}
}

static void join_all(coev_task_t **t, int n)
{
	for (int i = 0; i < n; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
}

static int order_main(void *arg)
{
	coev_chan_t *ch;
	coev_task_t *t[QN];
	qw_t q[QN];
	uint64_t v;

	(void)arg;
	/* Senders waiting on a rendezvous channel are served in order. */
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, 0), 0);
	queue_up(ch, qw_sender, q, t, 0);
	for (int i = 0; i < QN; i++) {
		TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), 0);
		TU_CHECK_EQ(v, i);
	}
	join_all(t, QN);
	for (int i = 0; i < QN; i++)
		TU_CHECK_EQ(q[i].rc, 0);

	/* Receivers waiting on it too; sends follow each other at once. */
	queue_up(ch, qw_receiver, q, t, 1000);
	for (int i = 0; i < QN; i++) {
		v = (uint64_t)i;
		TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), 0);
	}
	join_all(t, QN);
	for (int i = 0; i < QN; i++) {
		TU_CHECK_EQ(q[i].rc, 0);
		TU_CHECK_EQ(q[i].val, i);
	}
	coev_chan_free(ch);

	/* Senders waiting on a full bounded channel: the buffered messages
	 * first, then the waiters' in the order they came. */
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, 2), 0);
	v = 100;
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), 0);
	v = 101;
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), 0);
	queue_up(ch, qw_sender, q, t, 0);
	TU_CHECK_EQ(coev_chan_len(ch), 2);
	for (int i = 0; i < QN + 2; i++) {
		TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), 0);
		TU_CHECK_EQ(v, i < 2 ? 100 + i : i - 2);
	}
	join_all(t, QN);

	/* Receivers waiting on an empty bounded channel, and on an
	 * unbounded one: the first to wait gets the first message. */
	for (int k = 0; k < 2; k++) {
		if (k == 1) {
			coev_chan_free(ch);
			TU_CHECK_EQ(coev_chan_new(&ch, sizeof v,
						  COEV_CHAN_UNBOUNDED),
				    0);
		}
		queue_up(ch, qw_receiver, q, t, 1000);
		for (int i = 0; i < QN; i++) {
			v = (uint64_t)i;
			TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), 0);
		}
		join_all(t, QN);
		for (int i = 0; i < QN; i++) {
			TU_CHECK_EQ(q[i].rc, 0);
			TU_CHECK_MSG(q[i].val == (uint64_t)i,
				     "%s: receiver %d (queued %d-th) got %llu",
				     k ? "unbounded" : "bounded", i, i,
				     (unsigned long long)q[i].val);
		}
	}
	coev_chan_free(ch);
	return 0;
}

static void test_chan_waiters_are_served_in_order(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(order_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- rendezvous ---------------------------------------------------------- */

typedef struct hand {
	coev_chan_t *ch;
	atomic_int entered;   /* receivers that called recv */
	atomic_int completed; /* sends that returned 0 */
	atomic_int early;     /* sends that completed with nobody receiving */
	atomic_int about;     /* single sender: about to send */
	atomic_int done;      /* single sender: send returned */
	unsigned per;
	int rc;
} hand_t;

static int hand_one_sender(void *arg)
{
	hand_t *h = arg;
	uint64_t v = 77;

	atomic_store(&h->about, 1);
	h->rc = coev_chan_send_dl(h->ch, &v, tu_guard());
	atomic_store(&h->done, 1);
	return 0;
}

static int hand_sender(void *arg)
{
	hand_t *h = arg;
	uint64_t rng = seed((uint64_t)(uintptr_t)&rng, 3);

	for (unsigned i = 0; i < h->per; i++) {
		uint64_t v = i;
		int rc;
		while ((rc = rnd(&rng) % 4 == 0
				     ? coev_chan_try_send(h->ch, &v)
				     : coev_chan_send_dl(h->ch, &v,
							 tu_guard())) ==
		       -EAGAIN)
			relax();
		if (rc != 0) {
			TU_CHECK_MSG(0, "send: %s", coev_strerror(rc));
			return rc;
		}
		/* Seq-cst with the receivers' increment: a send can only
		 * complete after its receiver entered recv. */
		int n = atomic_fetch_add(&h->completed, 1) + 1;
		if (n > atomic_load(&h->entered))
			atomic_fetch_add(&h->early, 1);
	}
	return 0;
}

static int hand_receiver(void *arg)
{
	hand_t *h = arg;
	uint64_t v;

	for (;;) {
		atomic_fetch_add(&h->entered, 1);
		int rc = coev_chan_recv_dl(h->ch, &v, tu_guard());
		if (rc == COEV_ECLOSED)
			return 0;
		if (rc != 0) {
			TU_CHECK_MSG(0, "recv: %s", coev_strerror(rc));
			return rc;
		}
	}
}

static void *hand_sender_thread(void *arg)
{
	hand_sender(arg);
	return NULL;
}

static void *hand_receiver_thread(void *arg)
{
	hand_receiver(arg);
	return NULL;
}

static void test_chan_rendezvous_send_completes_only_when_taken(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	hand_t h = {0};
	coev_task_t *t;
	uint64_t v = 0;

	(void)state;
	assert_int_equal(coev_chan_new(&h.ch, sizeof v, 0), 0);
	/* Nobody receiving: the sender stays in its send, and a try_send
	 * finds no receiver either. */
	assert_int_equal(coev_rt_spawn(rt, "sender", hand_one_sender, &h, &t),
			 0);
	assert_int_equal(tu_thread_wait_at_least(&h.about, 1), 0);
	settle();
	assert_int_equal(atomic_load(&h.done), 0);
	assert_int_equal(coev_chan_len(h.ch), 0);
	assert_int_equal(coev_chan_try_send(h.ch, &v), -EAGAIN);
	assert_int_equal(atomic_load(&h.done), 0);
	assert_int_equal(coev_chan_recv_dl(h.ch, &v, tu_guard()), 0);
	assert_int_equal(v, 77);
	assert_int_equal(coev_join(t, NULL), 0);
	assert_int_equal(h.rc, 0);
	assert_int_equal(coev_chan_try_recv(h.ch, &v), -EAGAIN);

	/* Many senders and receivers, tasks and threads: the number of
	 * completed sends never exceeds the receivers that entered recv. */
	enum { TS = 3, TR = 3 };
	coev_task_t *st[TS], *rtk[TR];
	pthread_t sth, rth;
	h.per = (unsigned)TU_SCALE(100000, 50000, 30000);
	for (int i = 0; i < TR; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "recv", hand_receiver, &h, &rtk[i]),
			0);
	assert_int_equal(pthread_create(&rth, NULL, hand_receiver_thread, &h),
			 0);
	for (int i = 0; i < TS; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "send", hand_sender, &h, &st[i]), 0);
	assert_int_equal(pthread_create(&sth, NULL, hand_sender_thread, &h), 0);
	for (int i = 0; i < TS; i++)
		assert_int_equal(coev_join(st[i], NULL), 0);
	pthread_join(sth, NULL);
	assert_int_equal(coev_chan_close(h.ch), 0);
	for (int i = 0; i < TR; i++)
		assert_int_equal(coev_join(rtk[i], NULL), 0);
	pthread_join(rth, NULL);
	assert_int_equal(atomic_load(&h.completed), (TS + 1) * (int)h.per);
	assert_int_equal(atomic_load(&h.early), 0);
	coev_chan_free(h.ch);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- close --------------------------------------------------------------- */

/* Close with messages buffered: sends fail, the buffered messages come out
 * in order, then COEV_ECLOSED from every receive form. */
static void close_drain(size_t cap)
{
	coev_chan_t *ch;
	uint64_t v;
	unsigned n = cap == 0 ? 0 : 3;

	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, cap), 0);
	for (unsigned i = 0; i < n; i++) {
		v = i;
		TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), 0);
	}
	TU_CHECK_EQ(coev_chan_close(ch), 0);
	TU_CHECK_EQ(coev_chan_closed(ch), 1);
	TU_CHECK_EQ(coev_chan_len(ch), n);
	v = 500;
	TU_CHECK_EQ(coev_chan_send(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_send_dl(ch, &v, 0), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(v, 500);
	TU_CHECK_EQ(coev_chan_len(ch), n);
	for (unsigned i = 0; i < n; i++) {
		v = 999;
		int rc = i == 0	  ? coev_chan_recv(ch, &v)
			 : i == 1 ? coev_chan_try_recv(ch, &v)
				  : coev_chan_recv_dl(ch, &v, tu_guard());
		TU_CHECK_EQ(rc, 0);
		TU_CHECK_EQ(v, i);
	}
	v = 999;
	TU_CHECK_EQ(coev_chan_recv(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, 0), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_try_recv(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(v, 999);
	TU_CHECK_EQ(coev_chan_close(ch), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_closed(ch), 1);
	coev_chan_free(ch);
}

static int close_drain_main(void *arg)
{
	(void)arg;
	close_drain(0);
	close_drain(3);
	close_drain(8);
	close_drain(COEV_CHAN_UNBOUNDED);
	return 0;
}

static void test_chan_close_drains_then_reports_closed(void **state)
{
	(void)state;
	/* From a plain thread, then from a task. */
	close_drain_main(NULL);
	tu_assert_no_failures();
	assert_int_equal(tu_run_main(close_drain_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* Many closers at once: exactly one gets 0. */
typedef struct closer {
	coev_chan_t *ch;
	atomic_int *go, *zero, *closed;
} closer_t;

static int closer_fn(void *arg)
{
	closer_t *c = arg;

	while (!atomic_load(c->go))
		relax();
	int rc = coev_chan_close(c->ch);
	if (rc == 0)
		atomic_fetch_add(c->zero, 1);
	else if (rc == COEV_ECLOSED)
		atomic_fetch_add(c->closed, 1);
	else
		TU_CHECK_MSG(0, "close: %s", coev_strerror(rc));
	return 0;
}

static void *closer_thread(void *arg)
{
	closer_fn(arg);
	return NULL;
}

static void test_chan_close_twice_returns_closed(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	unsigned rounds = TU_SCALE(300, 200, 150);

	(void)state;
	for (unsigned r = 0; r < rounds; r++) {
		atomic_int go = 0, zero = 0, closed = 0;
		coev_task_t *t[3];
		pthread_t th[3];
		coev_chan_t *ch;
		closer_t c;
		assert_int_equal(coev_chan_new(&ch, 4, r % 3), 0);
		c = (closer_t){
			.ch = ch, .go = &go, .zero = &zero, .closed = &closed};
		for (int i = 0; i < 3; i++) {
			assert_int_equal(coev_rt_spawn(rt, "closer", closer_fn,
						       &c, &t[i]),
					 0);
			assert_int_equal(
				pthread_create(&th[i], NULL, closer_thread, &c),
				0);
		}
		atomic_store(&go, 1);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(coev_join(t[i], NULL), 0);
			pthread_join(th[i], NULL);
		}
		assert_int_equal(atomic_load(&zero), 1);
		assert_int_equal(atomic_load(&closed), 5);
		assert_int_equal(coev_chan_close(ch), COEV_ECLOSED);
		coev_chan_free(ch);
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/*
 * Close while tasks and threads are blocked: senders on a full bounded
 * channel and on a rendezvous channel, receivers on an empty bounded,
 * unbounded and rendezvous channel. Every one of them returns
 * COEV_ECLOSED; the full channel's buffered messages still drain.
 */
enum { CW_FULL, CW_RDV_SEND, CW_EMPTY, CW_UNB, CW_RDV_RECV, CW_N };

typedef struct cw {
	coev_chan_t *ch;
	bool sender;
	bool forever; /* no deadline: only the close can end it */
	atomic_int started;
	atomic_int finished;
	uint64_t val;
	int rc;
} cw_t;

static int cw_fn(void *arg)
{
	cw_t *w = arg;
	coev_time_t dl = w->forever ? COEV_FOREVER : tu_guard();

	w->val = 4242;
	atomic_store(&w->started, 1);
	w->rc = w->sender ? coev_chan_send_dl(w->ch, &w->val, dl)
			  : coev_chan_recv_dl(w->ch, &w->val, dl);
	atomic_store(&w->finished, 1);
	return 0;
}

static void *cw_thread(void *arg)
{
	cw_fn(arg);
	return NULL;
}

static void test_chan_close_wakes_every_blocked_waiter(void **state)
{
	enum { TASKS = 3, THREADS = 1, PER = TASKS + THREADS };
	static const size_t caps[CW_N] = {2, 0, 2, COEV_CHAN_UNBOUNDED, 0};
	coev_rt_t *rt = tu_new_rt(2);
	coev_chan_t *ch[CW_N];
	cw_t w[CW_N][PER];
	coev_task_t *t[CW_N][TASKS];
	pthread_t th[CW_N][THREADS];
	uint64_t v;

	(void)state;
	for (int k = 0; k < CW_N; k++) {
		assert_int_equal(coev_chan_new(&ch[k], sizeof v, caps[k]), 0);
		if (k == CW_FULL) {
			for (v = 1; v <= 2; v++)
				assert_int_equal(coev_chan_try_send(ch[k], &v),
						 0);
		}
		for (int i = 0; i < PER; i++) {
			w[k][i] = (cw_t){.ch = ch[k],
					 .sender = k == CW_FULL ||
						   k == CW_RDV_SEND,
					 .forever = i == 0};
			if (i < TASKS)
				assert_int_equal(coev_rt_spawn(rt, "blocked",
							       cw_fn, &w[k][i],
							       &t[k][i]),
						 0);
			else
				assert_int_equal(
					pthread_create(&th[k][i - TASKS], NULL,
						       cw_thread, &w[k][i]),
					0);
		}
	}
	for (int k = 0; k < CW_N; k++)
		for (int i = 0; i < PER; i++)
			assert_int_equal(
				tu_thread_wait_at_least(&w[k][i].started, 1),
				0);
	settle();
	for (int k = 0; k < CW_N; k++)
		for (int i = 0; i < PER; i++)
			assert_int_equal(atomic_load(&w[k][i].finished), 0);
	for (int k = 0; k < CW_N; k++)
		assert_int_equal(coev_chan_close(ch[k]), 0);
	for (int k = 0; k < CW_N; k++) {
		for (int i = 0; i < PER; i++) {
			if (i < TASKS) {
				int rc =
					coev_join_dl(t[k][i], tu_guard(), NULL);
				if (rc != 0) {
					fail_msg("kind %d waiter %d not woken "
						 "by the close",
						 k, i);
				}
			} else {
				pthread_join(th[k][i - TASKS], NULL);
			}
			if (w[k][i].rc != COEV_ECLOSED)
				fail_msg("kind %d waiter %d: %d (%s)", k, i,
					 w[k][i].rc, coev_strerror(w[k][i].rc));
			/* A receiver got nothing. */
			assert_int_equal(w[k][i].val, 4242);
		}
	}
	/* The full channel still hands out what it held. */
	for (uint64_t i = 1; i <= 2; i++) {
		assert_int_equal(coev_chan_recv(ch[CW_FULL], &v), 0);
		assert_int_equal(v, i);
	}
	for (int k = 0; k < CW_N; k++) {
		assert_int_equal(coev_chan_try_recv(ch[k], &v), COEV_ECLOSED);
		coev_chan_free(ch[k]);
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* Close at a random moment while tasks and threads send and receive in
 * every form: what was reported sent is received, once; what failed with
 * COEV_ECLOSED never shows up. */
static void test_chan_close_racing_senders_loses_nothing(void **state)
{
	static const size_t caps[] = {0, 1, 4, COEV_CHAN_UNBOUNDED};
	coev_rt_t *rt = tu_new_rt(2);
	unsigned rounds = TU_SCALE(400, 200, 150);
	long long sent_total = 0, closed_early = 0;

	(void)state;
	for (unsigned r = 0; r < rounds; r++) {
		mp_cfg_t c = {.cap = caps[r % 4],
			      .task_prod = 2,
			      .thread_prod = 1,
			      .task_cons = 2,
			      .thread_cons = 1,
			      .per = 2000,
			      .send_how = HOW_MIX,
			      .recv_how = HOW_MIX,
			      .close_early = true,
			      .close_within =
				      COEV_USEC(TU_SCALE(2000, 4000, 8000))};
		long long sent = mp_run(&c, rt, r);
		sent_total += sent;
		closed_early += sent < 3 * 2000;
		tu_assert_no_failures();
	}
	/* The closes did land in the middle of the traffic. */
	assert_true(closed_early > 0);
	(void)sent_total;
	coev_rt_free(rt);
}

/* ---- deadlines ----------------------------------------------------------- */

/* Each blocked form with a deadline 20 ms ahead: -ETIMEDOUT, not before
 * the deadline, nothing sent or received; the channel works afterwards. */
static void deadline_checks(void)
{
	coev_chan_t *full, *empty, *rdv;
	uint64_t v = 1, out = 0xDEAD;
	coev_time_t dl;

	TU_CHECK_EQ(coev_chan_new(&full, sizeof v, 1), 0);
	TU_CHECK_EQ(coev_chan_new(&empty, sizeof v, COEV_CHAN_UNBOUNDED), 0);
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof v, 0), 0);
	TU_CHECK_EQ(coev_chan_try_send(full, &v), 0);

	v = 2;
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_send_dl(full, &v, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_recv_dl(empty, &out, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_recv_dl(rdv, &out, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(out, 0xDEAD);

	/* Nothing was left behind: the full channel holds its one message,
	 * the rendezvous channel has no sender or receiver queued. */
	TU_CHECK_EQ(coev_chan_len(full), 1);
	TU_CHECK_EQ(coev_chan_try_recv(full, &out), 0);
	TU_CHECK_EQ(out, 1);
	TU_CHECK_EQ(coev_chan_try_recv(full, &out), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_recv(rdv, &out), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(full, &v), 0);
	TU_CHECK_EQ(coev_chan_try_send(empty, &v), 0);
	TU_CHECK_EQ(coev_chan_try_recv(empty, &out), 0);
	TU_CHECK_EQ(out, 2);
	coev_chan_free(full);
	coev_chan_free(empty);
	coev_chan_free(rdv);
}

static int deadline_main(void *arg)
{
	(void)arg;
	deadline_checks();
	return 0;
}

static void test_chan_deadline_times_out_at_the_deadline(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(deadline_main, NULL, 2), 0);
	tu_assert_no_failures();
	/* A plain thread. */
	deadline_checks();
	tu_assert_no_failures();
}

/* A deadline at or before now only tries: it succeeds when it can at once
 * (a receiver is waiting on a rendezvous channel), and otherwise fails
 * without leaving anything queued. */
static int past_receiver(void *arg)
{
	qw_t *q = arg;

	atomic_store(&q->started, 1);
	q->rc = coev_chan_recv_dl(q->ch, &q->val, coev_now() + COEV_MSEC(30));
	return 0;
}

static int past_main(void *arg)
{
	coev_chan_t *rdv;
	coev_task_t *t;
	qw_t q;
	uint64_t v = 5;
	const coev_time_t past[] = {0, 1, coev_now() - 1, coev_now()};

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof v, 0), 0);
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, past[i]), -ETIMEDOUT);
		TU_CHECK_EQ(coev_chan_recv_dl(rdv, &v, past[i]), -ETIMEDOUT);
	}
	/* No sender stayed queued: a receiver waiting now gets nothing. */
	q = (qw_t){.ch = rdv, .val = 0xDEAD};
	TU_CHECK_EQ(coev_spawn(past_receiver, &q, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(q.rc, -ETIMEDOUT);
	TU_CHECK_EQ(q.val, 0xDEAD);

	/* With a receiver waiting, a send with a past deadline succeeds. */
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		q = (qw_t){.ch = rdv, .val = 0xDEAD};
		TU_CHECK_EQ(coev_spawn_named("queued", qw_receiver, &q, &t), 0);
		TU_CHECK_EQ(tu_wait_at_least(&q.started, 1), 0);
		coev_sleep(SETTLE);
		v = 10 + i;
		TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, past[i]), 0);
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		TU_CHECK_EQ(q.rc, 0);
		TU_CHECK_EQ(q.val, 10 + i);
	}
	/* With a sender waiting, a receive with a past deadline succeeds. */
	q = (qw_t){.ch = rdv, .val = 99};
	TU_CHECK_EQ(coev_spawn_named("queued", qw_sender, &q, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&q.started, 1), 0);
	coev_sleep(SETTLE);
	v = 0;
	TU_CHECK_EQ(coev_chan_recv_dl(rdv, &v, coev_now() - 1), 0);
	TU_CHECK_EQ(v, 99);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(q.rc, 0);
	coev_chan_free(rdv);
	return 0;
}

static void test_chan_past_deadline_only_tries(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(past_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* A deadline pushed with coev_deadline_push bounds the forms without one. */
static int pushed_main(void *arg)
{
	coev_chan_t *rdv;
	uint64_t v = 1;

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof v, 0), 0);
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	coev_time_t tok = coev_deadline_push(dl);
	TU_CHECK(tok >= 0);
	TU_CHECK_EQ(coev_chan_recv(rdv, &v), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(coev_chan_send(rdv, &v), -ETIMEDOUT);
	/* The earlier deadline wins over the call's own. */
	TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, tu_guard()), -ETIMEDOUT);
	coev_deadline_pop(tok);
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
	coev_chan_free(rdv);
	return 0;
}

static void test_chan_pushed_deadline_applies(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(pushed_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- cancellation ---------------------------------------------------------- */

/* A blocked waiter cancelled by a task and by a plain thread (the test
 * thread): -ECANCELED, nothing sent or received, the channel unchanged
 * and usable. */
static void cancel_one(coev_rt_t *rt, coev_chan_t *ch, bool sender)
{
	qw_t q = {.ch = ch, .val = 0xDEAD};
	coev_task_t *t;

	assert_int_equal(coev_rt_spawn(rt, "blocked",
				       sender ? qw_sender : qw_receiver, &q,
				       &t),
			 0);
	assert_int_equal(tu_thread_wait_at_least(&q.started, 1), 0);
	settle();
	assert_int_equal(atomic_load(&q.finished), 0); /* still waiting */
	assert_int_equal(coev_cancel(t), 0);
	assert_int_equal(coev_join_dl(t, tu_guard(), NULL), 0);
	assert_int_equal(q.rc, -ECANCELED);
	assert_true(q.val == 0xDEAD);
}

typedef struct cancel_in_task {
	coev_chan_t *ch;
	bool sender;
	int rc;
} cancel_in_task_t;

static int cancel_from_task_main(void *arg)
{
	cancel_in_task_t *c = arg;
	qw_t q = {.ch = c->ch, .val = 0xDEAD};
	coev_task_t *t;

	TU_CHECK_EQ(coev_spawn_named("blocked",
				     c->sender ? qw_sender : qw_receiver, &q,
				     &t),
		    0);
	TU_CHECK_EQ(tu_wait_at_least(&q.started, 1), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(atomic_load(&q.finished), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), NULL), 0);
	c->rc = q.rc;
	TU_CHECK(q.val == 0xDEAD);
	return 0;
}

static void check_chan_intact(coev_chan_t *ch, bool was_full)
{
	uint64_t v;

	if (was_full) {
		/* Only the message that filled it. */
		assert_int_equal(coev_chan_len(ch), 1);
		assert_int_equal(coev_chan_try_recv(ch, &v), 0);
		assert_int_equal(v, 1);
	}
	/* No waiter left queued (rendezvous: nobody to take or give). */
	assert_int_equal(coev_chan_try_recv(ch, &v), -EAGAIN);
	if (coev_chan_cap(ch) == 0) {
		assert_int_equal(coev_chan_try_send(ch, &v), -EAGAIN);
	}
	/* And it still works. */
	if (coev_chan_cap(ch) != 0) {
		v = 7;
		assert_int_equal(coev_chan_try_send(ch, &v), 0);
		assert_int_equal(coev_chan_try_recv(ch, &v), 0);
		assert_int_equal(v, 7);
	}
}

static void test_chan_cancel_blocked_waiter(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	uint64_t v = 1;

	(void)state;
	/* kind 0: receiver on a rendezvous channel; 1: receiver on an empty
	 * bounded one; 2: sender on a rendezvous channel; 3: sender on a
	 * full bounded one. */
	for (int kind = 0; kind < 4; kind++) {
		bool sender = kind >= 2, full = kind == 3;
		for (int from_task = 0; from_task < 2; from_task++) {
			coev_chan_t *ch;
			assert_int_equal(
				coev_chan_new(&ch, sizeof v, kind % 2 ? 1 : 0),
				0);
			if (full)
				assert_int_equal(coev_chan_try_send(ch, &v), 0);
			if (from_task) {
				cancel_in_task_t c = {.ch = ch,
						      .sender = sender};
				coev_task_t *m;
				assert_int_equal(
					coev_rt_spawn(rt, "main",
						      cancel_from_task_main, &c,
						      &m),
					0);
				assert_int_equal(coev_join(m, NULL), 0);
				assert_int_equal(c.rc, -ECANCELED);
			} else {
				cancel_one(rt, ch, sender);
			}
			check_chan_intact(ch, full);
			coev_chan_free(ch);
		}
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* A shield hides the cancel: the receive waits and gets its message; out
 * of the shield the next wait fails. */
static int shield_sender(void *arg)
{
	coev_chan_t *ch = arg;
	uint64_t v = 31;

	coev_sleep(SETTLE);
	return coev_chan_send_dl(ch, &v, tu_guard());
}

static int shield_main(void *arg)
{
	coev_chan_t *ch;
	coev_task_t *t;
	uint64_t v = 0;
	int r = -1;

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, 0), 0);
	TU_CHECK_EQ(coev_spawn(shield_sender, ch, &t), 0);
	TU_CHECK_EQ(coev_cancel(coev_self()), 0);
	TU_CHECK_EQ(coev_shield_begin(), 0);
	TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), 0);
	TU_CHECK_EQ(v, 31);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 0);
	TU_CHECK_EQ(coev_shield_end(), 0);
	TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), -ECANCELED);
	TU_CHECK_EQ(coev_chan_send(ch, &v), -ECANCELED);
	coev_chan_free(ch);
	return 0;
}

static void test_chan_shield_hides_a_cancel(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(shield_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- cancels and deadlines racing the matching operation ------------------ */

/*
 * A helper plain thread that cancels tasks on request: the requester posts
 * a task and later waits until the cancel was made (before it joins the
 * task, which releases the handle).
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
	assert_int_equal(pthread_create(&c->th, NULL, canceller_main, c), 0);
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

/* From a task (the lock is held for a few instructions only). */
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

typedef struct racer {
	coev_chan_t *ch;
	bool sender;
	coev_time_t dl;
	uint64_t val;
	atomic_int started;
	int rc;
} racer_t;

static int racer_fn(void *arg)
{
	racer_t *r = arg;

	atomic_store(&r->started, 1);
	r->rc = r->sender ? coev_chan_send_dl(r->ch, &r->val, r->dl)
			  : coev_chan_recv_dl(r->ch, &r->val, r->dl);
	return 0;
}

typedef struct race_stats {
	long long won, lost; /* the waiter's operation succeeded / failed */
} race_stats_t;

#define A_VAL 0xAAAAULL
#define B_VAL 0xBBBBULL
#define SENTINEL 0xDEADULL

/*
 * One round: a waiter W (a task) sends B or receives on a rendezvous
 * channel or a bounded channel of capacity 1 (full of A when W sends),
 * while the main task does the matching operation and W is cancelled
 * (by the main task or the helper thread) or reaches a short deadline,
 * in a random order and with random delays. Whatever the outcome, it
 * must be consistent: B was either sent and received once, or not sent.
 */
static void race_round(coev_chan_t *rdv, coev_chan_t *one, canceller_t *cn,
		       uint64_t *rng, race_stats_t *st)
{
	bool sender = rnd(rng) & 1, bounded = rnd(rng) & 1;
	int end = (int)(rnd(rng) % END_N);
	coev_chan_t *ch = bounded ? one : rdv;
	racer_t r = {.ch = ch, .sender = sender, .rc = 99};
	coev_task_t *t;
	uint64_t got = SENTINEL, v;
	int crc = 0;

	r.val = sender ? B_VAL : SENTINEL;
	r.dl = end == END_DEADLINE
		       ? coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS)
		       : tu_guard();
	if (bounded && sender) {
		v = A_VAL;
		TU_CHECK_EQ(coev_chan_try_send(one, &v), 0);
	}
	TU_CHECK_EQ(coev_spawn_named("racer", racer_fn, &r, &t), 0);
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
		if (!sender && !bounded) {
			v = B_VAL;
			crc = coev_chan_send_dl(rdv, &v, dl);
		} else if (!sender) {
			v = B_VAL;
			crc = coev_chan_try_send(one, &v);
		} else if (!bounded) {
			crc = coev_chan_recv_dl(rdv, &got, dl);
		} else {
			crc = coev_chan_try_recv(one, &got);
		}
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
	TU_CHECK_MSG(r.rc == 0 || r.rc == want_fail, "waiter: %d (%s)", r.rc,
		     coev_strerror(r.rc));
	if (r.rc == 0)
		st->won++;
	else
		st->lost++;
	if (!sender && r.rc != 0)
		TU_CHECK(r.val == SENTINEL);
	if (!bounded) {
		/* Rendezvous: both sides succeed together or not at all. */
		TU_CHECK_MSG(crc == 0 || crc == -ETIMEDOUT, "main: %d (%s)",
			     crc, coev_strerror(crc));
		TU_CHECK_MSG((crc == 0) == (r.rc == 0),
			     "%s: waiter %d, main %d",
			     sender ? "waiting sender" : "waiting receiver",
			     r.rc, crc);
		if (r.rc == 0 && crc == 0)
			TU_CHECK(sender ? got == B_VAL : r.val == B_VAL);
	} else if (!sender) {
		/* B went into the buffer; W took it or it is still there. */
		TU_CHECK_EQ(crc, 0);
		int left = coev_chan_try_recv(one, &got);
		if (r.rc == 0) {
			TU_CHECK(r.val == B_VAL);
			TU_CHECK_EQ(left, -EAGAIN);
		} else {
			TU_CHECK_EQ(left, 0);
			TU_CHECK(got == B_VAL);
		}
	} else {
		/* Main took A; B went in after it, or not at all. */
		TU_CHECK_EQ(crc, 0);
		TU_CHECK(got == A_VAL);
		int left = coev_chan_try_recv(one, &got);
		if (r.rc == 0) {
			TU_CHECK_EQ(left, 0);
			TU_CHECK(got == B_VAL);
		} else {
			TU_CHECK_EQ(left, -EAGAIN);
		}
	}
	/* Nothing left over for the next round. */
	TU_CHECK_EQ(coev_chan_try_recv(one, &got), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_recv(rdv, &got), -EAGAIN);
	v = 0;
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
}

static int race_main(void *arg)
{
	race_stats_t *st = arg;
	coev_chan_t *rdv, *one;
	canceller_t cn;
	uint64_t rng = seed(2024, 7);
	unsigned rounds = TU_SCALE(10000, 6000, 4000);

	canceller_start(&cn);
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof(uint64_t), 0), 0);
	TU_CHECK_EQ(coev_chan_new(&one, sizeof(uint64_t), 1), 0);
	for (unsigned i = 0; i < rounds && atomic_load(&tu_failures) == 0; i++)
		race_round(rdv, one, &cn, &rng, st);
	coev_chan_free(rdv);
	coev_chan_free(one);
	canceller_stop(&cn);
	return 0;
}

static void
test_chan_cancel_or_deadline_racing_a_match_loses_nothing(void **state)
{
	race_stats_t st = {0};

	(void)state;
	assert_int_equal(tu_run_main(race_main, &st, 2), 0);
	tu_assert_no_failures();
	/* Both outcomes happened: the races were really run. */
	assert_true(st.won > 0);
	assert_true(st.lost > 0);
}

/*
 * Producer and consumer tasks cancelled at random moments (by the main
 * task or a plain thread) and restarted where they stopped: a producer
 * whose send failed sends that message again; no message is lost to a
 * cancelled receive or doubled by a cancelled send.
 */
typedef struct cs_ep {
	mp_t *mp;
	unsigned idx;
	bool producer;
	uint32_t next; /* producer: next seq */
	uint64_t rng;
	coev_task_t *t;
	int64_t *last;
	bool finished;
} cs_ep_t;

static int cs_fn(void *arg)
{
	cs_ep_t *e = arg;
	mp_t *mp = e->mp;

	for (;;) {
		msg_t m;
		int rc;
		if (e->producer) {
			if (e->next == mp->c.per)
				return 0;
			uint64_t id = (uint64_t)e->idx * mp->c.per + e->next;
			m = msg_make(id, e->idx, e->next);
			rc = send_how(mp->ch, &m, HOW_MIX, &e->rng);
			if (rc == 0) {
				ledger_mark_sent(&mp->led, id);
				e->next++;
				continue;
			}
		} else {
			memset(&m, 0xA5, sizeof m);
			rc = recv_how(mp->ch, &m, HOW_MIX, &e->rng);
			if (rc == 0) {
				ledger_mark_got(&mp->led, &m);
				if (msg_ok(&m) && m.src < mp->nprod) {
					if ((int64_t)m.seq <= e->last[m.src])
						atomic_fetch_add(&mp->order_bad,
								 1);
					e->last[m.src] = m.seq;
				}
				continue;
			}
			if (rc == COEV_ECLOSED)
				return 0;
		}
		if (rc == -ECANCELED)
			return -ECANCELED;
		if (!retry_rc(rc)) {
			TU_CHECK_MSG(0, "%s %u: %s",
				     e->producer ? "producer" : "consumer",
				     e->idx, coev_strerror(rc));
			return rc;
		}
		relax();
	}
}

static void cs_spawn(cs_ep_t *e)
{
	TU_CHECK_EQ(coev_spawn_named(e->producer ? "producer" : "consumer",
				     cs_fn, e, &e->t),
		    0);
}

#define CS_PER TU_SCALE(100000, 50000, 40000) /* messages per producer */

static int cancel_storm_main(void *arg)
{
	static const size_t caps[] = {0, 2, COEV_CHAN_UNBOUNDED};
	enum { NP = 4, NC = 4 };
	long long *cancels = arg;
	canceller_t cn;

	canceller_start(&cn);
	for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
		mp_t mp = {.c = {.cap = caps[k], .per = CS_PER}};
		cs_ep_t ep[NP + NC];
		uint64_t rng = seed(k, 555);
		unsigned done = 0;

		mp.nprod = NP;
		ledger_init(&mp.led, (size_t)NP * mp.c.per);
		TU_CHECK_EQ(coev_chan_new(&mp.ch, sizeof(msg_t), caps[k]), 0);
		for (unsigned i = 0; i < NP + NC; i++) {
			ep[i] = (cs_ep_t){.mp = &mp,
					  .idx = i < NP ? i : i - NP,
					  .producer = i < NP,
					  .rng = seed(k, i)};
			if (!ep[i].producer) {
				ep[i].last = malloc(NP * sizeof(int64_t));
				for (int p = 0; p < NP; p++)
					ep[i].last[p] = -1;
			}
		}
		for (unsigned i = NP; i < NP + NC; i++)
			cs_spawn(&ep[i]);
		for (unsigned i = 0; i < NP; i++)
			cs_spawn(&ep[i]);
		while (done < NP && atomic_load(&tu_failures) == 0) {
			/* A few yields or a short sleep between cancels. */
			if (rnd(&rng) % 4 == 0)
				coev_sleep((coev_time_t)(rnd(&rng) %
							 COEV_USEC(200)));
			else
				for (int y = (int)(rnd(&rng) % 8); y > 0; y--)
					coev_yield();
			cs_ep_t *e = &ep[rnd(&rng) % (NP + NC)];
			if (e->finished)
				continue;
			bool by_thread = rnd(&rng) & 1;
			if (by_thread) {
				canceller_post(&cn, e->t);
				canceller_wait(&cn);
			} else {
				TU_CHECK_EQ(coev_cancel(e->t), 0);
			}
			(*cancels)++;
			int r = -1;
			TU_CHECK_EQ(coev_join_dl(e->t, tu_guard(), &r), 0);
			if (r == 0 && e->producer) {
				e->finished = true;
				done++;
			} else {
				TU_CHECK_MSG(r == -ECANCELED, "%s: %d",
					     e->producer ? "producer"
							 : "consumer",
					     r);
				cs_spawn(e);
			}
		}
		/* Let the producers finish without cancels, then close. */
		for (unsigned i = 0; i < NP; i++) {
			if (!ep[i].finished)
				TU_CHECK_EQ(coev_join(ep[i].t, NULL), 0);
		}
		TU_CHECK_EQ(coev_chan_close(mp.ch), 0);
		for (unsigned i = NP; i < NP + NC; i++) {
			int r = -1;
			TU_CHECK_EQ(coev_join(ep[i].t, &r), 0);
			TU_CHECK_EQ(r, 0);
			free(ep[i].last);
		}
		ledger_check(&mp.led, (long long)NP * mp.c.per);
		TU_CHECK_EQ(atomic_load(&mp.order_bad), 0);
		coev_chan_free(mp.ch);
		ledger_fini(&mp.led);
	}
	canceller_stop(&cn);
	return 0;
}

static void test_chan_cancel_storm_loses_nothing(void **state)
{
	long long cancels = 0;

	(void)state;
	assert_int_equal(tu_run_main(cancel_storm_main, &cancels, 2), 0);
	tu_assert_no_failures();
	assert_true(cancels > 0);
}

/* ---- a worker thread outside a task ------------------------------------------ */

typedef struct cb_chans {
	coev_chan_t *empty, *full, *rdv, *unb;
} cb_chans_t;

static void must_wait_cb(void *arg)
{
	cb_chans_t *c = arg;
	uint64_t v = 3, out = SENTINEL;
	coev_time_t soon = coev_now() + COEV_MSEC(10);

	/* The _dl forms first, so that a broken check cannot block the
	 * worker for long; the forms without deadline only if they passed. */
	int a = coev_chan_recv_dl(c->empty, &out, soon);
	int b = coev_chan_send_dl(c->full, &v, soon);
	int d = coev_chan_send_dl(c->rdv, &v, soon);
	int e = coev_chan_recv_dl(c->rdv, &out, soon);
	TU_CHECK_EQ(a, COEV_ENOTCORO);
	TU_CHECK_EQ(b, COEV_ENOTCORO);
	TU_CHECK_EQ(d, COEV_ENOTCORO);
	TU_CHECK_EQ(e, COEV_ENOTCORO);
	if (a == COEV_ENOTCORO && b == COEV_ENOTCORO && d == COEV_ENOTCORO &&
	    e == COEV_ENOTCORO) {
		TU_CHECK_EQ(coev_chan_recv(c->empty, &out), COEV_ENOTCORO);
		TU_CHECK_EQ(coev_chan_send(c->full, &v), COEV_ENOTCORO);
		TU_CHECK_EQ(coev_chan_send(c->rdv, &v), COEV_ENOTCORO);
		TU_CHECK_EQ(coev_chan_recv(c->rdv, &out), COEV_ENOTCORO);
	}
	TU_CHECK(out == SENTINEL);
	/* The try forms, len and close work there. */
	TU_CHECK_EQ(coev_chan_try_recv(c->empty, &out), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(c->full, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(c->empty, &v), 0);
	TU_CHECK_EQ(coev_chan_try_recv(c->empty, &out), 0);
	TU_CHECK_EQ(out, 3);
	TU_CHECK_EQ(coev_chan_try_send(c->unb, &v), 0);
	TU_CHECK_EQ(coev_chan_len(c->unb), 1);
	TU_CHECK_EQ(coev_chan_close(c->unb), 0);
	TU_CHECK_EQ(coev_chan_try_send(c->unb, &v), COEV_ECLOSED);
}

/* Rule 4 says the waiting forms return COEV_ENOTCORO there, even when they
 * would not have to wait; nothing may happen then. */
static void could_complete_cb(void *arg)
{
	cb_chans_t *c = arg;
	uint64_t v = 9, out = SENTINEL;

	TU_CHECK_EQ(coev_chan_send(c->empty, &v), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_send_dl(c->empty, &v, tu_guard()), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_len(c->empty), 0);
	TU_CHECK_EQ(coev_chan_send(c->unb, &v), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_len(c->unb), 0);
	TU_CHECK_EQ(coev_chan_recv(c->full, &out), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_recv_dl(c->full, &out, tu_guard()),
		    COEV_ENOTCORO);
	TU_CHECK(out == SENTINEL);
	TU_CHECK_EQ(coev_chan_len(c->full), 1);
}

static int loop_cb_main(void *arg)
{
	cb_chans_t c;
	uint64_t v = 1;
	bool ready = arg != NULL;

	TU_CHECK_EQ(coev_chan_new(&c.empty, sizeof v, 1), 0);
	TU_CHECK_EQ(coev_chan_new(&c.full, sizeof v, 1), 0);
	TU_CHECK_EQ(coev_chan_new(&c.rdv, sizeof v, 0), 0);
	TU_CHECK_EQ(coev_chan_new(&c.unb, sizeof v, COEV_CHAN_UNBOUNDED), 0);
	TU_CHECK_EQ(coev_chan_try_send(c.full, &v), 0);
	TU_CHECK_EQ(tu_on_loop(ready ? could_complete_cb : must_wait_cb, &c),
		    0);
	coev_chan_free(c.empty);
	coev_chan_free(c.full);
	coev_chan_free(c.rdv);
	coev_chan_free(c.unb);
	return 0;
}

static void
test_chan_loop_callback_gets_enotcoro_from_waiting_forms(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(loop_cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void test_chan_loop_callback_gets_enotcoro_even_when_ready(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(loop_cb_main, (void *)1, 2), 0);
	tu_assert_no_failures();
}

/* ---- freeing ---------------------------------------------------------------- */

typedef struct freer {
	coev_chan_t *ch;
	atomic_int started;
} freer_t;

static int free_waiter(void *arg)
{
	freer_t *f = arg;
	uint64_t v;

	atomic_store(&f->started, 1);
	return coev_chan_recv(f->ch, &v);
}

static void *free_waiter_thread(void *arg)
{
	freer_t *f = arg;
	uint64_t v = 1;

	atomic_store(&f->started, 1);
	coev_chan_send(f->ch, &v);
	return NULL;
}

/* In the child: a task (arg NULL) or a plain thread blocked on the
 * channel when it is freed. */
static void free_with_waiter_child(void *arg)
{
	freer_t f = {0};
	coev_rt_t *rt = NULL;
	pthread_t th;

	if (coev_chan_new(&f.ch, sizeof(uint64_t), 0) != 0)
		_exit(3);
	if (!arg) {
		coev_config_t cfg;
		coev_config_init(&cfg);
		cfg.workers = 2;
		if (coev_rt_new(&cfg, &rt) != 0 ||
		    coev_rt_spawn(rt, "chan-waiter", free_waiter, &f, NULL) !=
			    0)
			_exit(4);
	} else if (pthread_create(&th, NULL, free_waiter_thread, &f) != 0) {
		_exit(5);
	}
	if (tu_thread_wait_at_least(&f.started, 1) != 0)
		_exit(6);
	settle();
	coev_chan_free(f.ch);
	fprintf(stderr, "coev_chan_free returned\n");
	_exit(0);
}

static void test_chan_free_with_a_blocked_waiter_aborts(void **state)
{
	static tu_child_t res;

	(void)state;
	for (int thread = 0; thread < 2; thread++) {
		assert_int_equal(tu_run_in_child(free_with_waiter_child,
						 thread ? (void *)1 : NULL,
						 &res),
				 0);
		if (!tu_child_signaled(&res, SIGABRT) ||
		    !strcasestr(res.out, "chan") ||
		    strstr(res.out, "returned")) {
			tu_child_dump(&res);
			fail_msg("%s waiter: expected an abort naming the "
				 "channel (status 0x%x)",
				 thread ? "thread" : "task", res.status);
		}
	}
}

/* Buffered messages are freed with the channel (ASan's leak check sees
 * it), with or without a close. */
static void test_chan_free_drops_buffered_messages(void **state)
{
	static const size_t caps[] = {1, 16, COEV_CHAN_UNBOUNDED};
	char big[4096] = {1};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		for (int closed = 0; closed < 2; closed++) {
			coev_chan_t *ch;
			assert_int_equal(
				coev_chan_new(&ch, sizeof big, caps[i]), 0);
			size_t n =
				caps[i] == COEV_CHAN_UNBOUNDED ? 1000 : caps[i];
			for (size_t k = 0; k < n; k++)
				assert_int_equal(coev_chan_try_send(ch, big),
						 0);
			if (closed)
				assert_int_equal(coev_chan_close(ch), 0);
			assert_int_equal(coev_chan_len(ch), n);
			coev_chan_free(ch);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_chan_new_rejects_bad_arguments),
		TU_FD_TEST(test_chan_copies_exactly_elem_size),
		TU_FD_TEST(test_chan_try_ops_match_a_fifo_model),
		TU_FD_TEST(test_chan_unbounded_grows_keeping_order),
		TU_FD_TEST(test_chan_bounded_mpmc_loses_and_duplicates_nothing),
		TU_FD_TEST(
			test_chan_unbounded_mpmc_loses_and_duplicates_nothing),
		TU_FD_TEST(
			test_chan_rendezvous_mpmc_loses_and_duplicates_nothing),
		TU_FD_TEST(test_chan_single_consumer_sees_each_sender_in_order),
		TU_FD_TEST(
			test_chan_tasks_and_threads_mixed_with_every_call_form),
		TU_FD_TEST(test_chan_plain_threads_without_a_runtime),
		TU_FD_TEST(test_chan_deadline_storm_loses_nothing),
		TU_FD_TEST(test_chan_concurrent_try_send_fills_exactly_to_cap),
		TU_FD_TEST(test_chan_waiters_are_served_in_order),
		TU_FD_TEST(test_chan_rendezvous_send_completes_only_when_taken),
		TU_FD_TEST(test_chan_close_drains_then_reports_closed),
		TU_FD_TEST(test_chan_close_twice_returns_closed),
		TU_FD_TEST(test_chan_close_wakes_every_blocked_waiter),
		TU_FD_TEST(test_chan_close_racing_senders_loses_nothing),
		TU_FD_TEST(test_chan_deadline_times_out_at_the_deadline),
		TU_FD_TEST(test_chan_past_deadline_only_tries),
		TU_FD_TEST(test_chan_pushed_deadline_applies),
		TU_FD_TEST(test_chan_cancel_blocked_waiter),
		TU_FD_TEST(test_chan_shield_hides_a_cancel),
		TU_FD_TEST(
			test_chan_cancel_or_deadline_racing_a_match_loses_nothing),
		TU_FD_TEST(test_chan_cancel_storm_loses_nothing),
		TU_FD_TEST(
			test_chan_loop_callback_gets_enotcoro_from_waiting_forms),
		TU_FD_TEST(
			test_chan_loop_callback_gets_enotcoro_even_when_ready),
		TU_FD_TEST(test_chan_free_with_a_blocked_waiter_aborts),
		TU_FD_TEST(test_chan_free_drops_buffered_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
