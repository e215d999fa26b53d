/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_select_mpmc.c — many concurrent selects on shared
 * channels (include/coev/chan.h): producers, consumers and selects with
 * both kinds of case, tasks and plain threads, losing and duplicating no
 * message, also while the channels are closed one by one; and selects
 * over [send on r, receive on r] on one rendezvous channel pairing with
 * each other, never with themselves.
 *
 * Every message carries an id, its sender, a sequence number and a
 * checksum; the ledger (chan_util.h) wants what was reported sent
 * received, once.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

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

/* ---- selects pairing on one rendezvous channel ---------------------------- */

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_select_concurrent_selects_conserve_messages),
		TU_FD_TEST(test_select_racing_close_loses_nothing),
		TU_FD_TEST(test_select_pairs_selects_on_one_rendezvous_channel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
