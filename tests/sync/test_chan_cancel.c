/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_chan_cancel.c — cancelling channel operations
 * (include/coev/chan.h): a blocked sender or receiver cancelled by a task
 * or a plain thread leaves the channel unchanged, a shield hides a cancel,
 * a cancel or deadline racing the matching operation ends consistently
 * (the message moved once or not at all), and producers and consumers
 * cancelled and restarted at random moments lose nothing.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

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
	assert_int_equal(tu_wait_parked(rt, t, COEV_WAIT_CHANNEL, ch), 0);
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
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_CHANNEL, c->ch), 0);
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
typedef struct shielded {
	coev_chan_t *ch;
	coev_task_t *receiver;
} shielded_t;

static int shield_sender(void *arg)
{
	shielded_t *sh = arg;
	uint64_t v = 31;

	/* Once the receiver waits. */
	TU_CHECK_EQ(
		tu_wait_parked(NULL, sh->receiver, COEV_WAIT_CHANNEL, sh->ch),
		0);
	return coev_chan_send_dl(sh->ch, &v, tu_guard());
}

static int shield_main(void *arg)
{
	coev_chan_t *ch;
	coev_task_t *t;
	uint64_t v = 0;
	int r = -1;
	shielded_t sh;

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, 0), 0);
	sh = (shielded_t){.ch = ch, .receiver = coev_self()};
	TU_CHECK_EQ(coev_spawn(shield_sender, &sh, &t), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_chan_cancel_blocked_waiter),
		TU_FD_TEST(test_chan_shield_hides_a_cancel),
		TU_FD_TEST(
			test_chan_cancel_or_deadline_racing_a_match_loses_nothing),
		TU_FD_TEST(test_chan_cancel_storm_loses_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
