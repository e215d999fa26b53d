/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_chan_basic.c — channels (include/coev/chan.h), the
 * single operations: argument checks, exact copies of elem_size bytes,
 * try operations against a FIFO model, an unbounded channel growing while
 * it keeps order, concurrent try_send filling exactly to capacity, real
 * hand-over on a rendezvous channel, and freeing a channel (aborting when
 * a waiter is still blocked on it, dropping its buffered messages).
 *
 * The messages, the ledger and the other helpers are in chan_util.h.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

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
	assert_int_equal(tu_wait_parked(rt, t, COEV_WAIT_CHANNEL, h.ch), 0);
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

/* ---- freeing ---------------------------------------------------------------- */

typedef struct freer {
	coev_chan_t *ch;
	atomic_int started;
	tu_thread_at_t at; /* the plain thread's */
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

	TU_THREAD_AT(&f->at);
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
	coev_task_t *t = NULL;
	pthread_t th;

	if (coev_chan_new(&f.ch, sizeof(uint64_t), 0) != 0)
		_exit(3);
	if (!arg) {
		coev_config_t cfg;
		coev_config_init(&cfg);
		cfg.workers = 2;
		if (coev_rt_new(&cfg, &rt) != 0 ||
		    coev_rt_spawn(rt, "chan-waiter", free_waiter, &f, &t) != 0)
			_exit(4);
	} else if (pthread_create(&th, NULL, free_waiter_thread, &f) != 0) {
		_exit(5);
	}
	if (tu_thread_wait_at_least(&f.started, 1) != 0)
		_exit(6);
	/* In its wait: the free must find it queued. */
	if ((t ? tu_wait_parked(rt, t, COEV_WAIT_CHANNEL, f.ch)
	       : tu_wait_thread_parked(&f.at)) != 0)
		_exit(7);
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
		TU_FD_TEST(test_chan_concurrent_try_send_fills_exactly_to_cap),
		TU_FD_TEST(test_chan_rendezvous_send_completes_only_when_taken),
		TU_FD_TEST(test_chan_free_with_a_blocked_waiter_aborts),
		TU_FD_TEST(test_chan_free_drops_buffered_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
