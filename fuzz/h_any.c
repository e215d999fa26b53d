/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_any.c — the select-over-anything harness: coev_select_any
 * (coev/select.h) over a channel receive (maybe twice on one channel), a
 * channel send, a future, a task's end, a broadcast receiver and a
 * deadline, while producers send, a consumer receives, a broadcaster
 * broadcasts, a completer completes the future and a target task ends; with call deadlines, the cancellation of the selector
 * and a selector that is a plain thread.
 *
 * Program: workers (1-3); the inbound channel's capacity (rendezvous, 1
 * or unbounded) and the outbound one's (rendezvous or 1); 1-3 producers,
 * each sending 1-3 values, yielding or sleeping between; the completer's
 * and the target's delays; whether the selector is a plain thread,
 * whether it lists the receive twice; per round (4-11 rounds) the call's
 * deadline (none, ahead, past) and the deadline case's (ahead, past,
 * none); main's steps, which may cancel the selector (a task). After its
 * rounds the selector receives what is left of the producers' values and
 * closes the outbound channel; the consumer receives until it is closed.
 *
 * Oracles (coev/select.h rules 1-4, coev/sync.h rule 2):
 *   - exactly one case fires: the index returned is a listed, usable
 *     case; a receive case's buffer holds a value only when that case
 *     was chosen, and that value is one a producer sent and nobody
 *     received before (none taken twice), with the case's result 0; the
 *     send case's value reaches the consumer, once and in order;
 *   - no value is lost when a losing receive raced a sender: after the
 *     rounds the selector receives exactly the values not yet taken, and
 *     the consumer receives exactly the values the send case sent; the
 *     broadcast values come in order, none skipped nor twice, whether by
 *     the select's case or by the receives after it;
 *   - a future case fires only once the future is complete, with its
 *     result, and the future stays awaitable (a wait that only tries
 *     returns that result);
 *   - a task case fires only once its function has returned, with its
 *     result, and its handle stays joinable (a join that only tries
 *     succeeds with the same result);
 *   - a deadline case fires only once coev_now() has reached it;
 *     -ETIMEDOUT only from a call with a deadline that has passed and
 *     whose deadline case (if any) lies after it; -ECANCELED only in a
 *     cancelled selector outside its shield; nothing else;
 *   - no wait hangs (every wait has a partner that comes), nothing
 *     leaks.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define PRODUCERS 3
#define PER 3
#define ROUNDS 11
#define STEPS 3
#define NOTHING 0xDEADu

enum { C_RECV, C_SEND, C_FUT, C_TASK, C_DL, C_BCAST, C_RECV2, NCASES };

struct producer {
	unsigned id, n, pace;
};

static struct state {
	unsigned workers, nprod, rounds;
	size_t in_cap, out_cap;
	struct producer pr[PRODUCERS];
	bool got[PRODUCERS * PER]; /* values received, by id*PER+k */
	unsigned total, received;
	uint8_t call[ROUNDS], dlcase[ROUNDS];
	unsigned fut_delay, task_delay;
	bool thread, dup, cancelled, shielded;
	uint8_t step[STEPS][2];
	coev_chan_t *in, *out;
	coev_future_t *f;
	bool fut_set, fut_off;
	coev_task_t *target;
	bool target_ended, target_taken;
	unsigned sent, consumed;  /* send case's values, and the consumer's */
	coev_bcast_t *b;	  /* a broadcaster sends 0 .. nb-1 on it */
	coev_bcast_rx_t *rx;	  /* the selector's receiver */
	unsigned nb, bpace, bgot; /* values, pace; received in order */
	coev_task_t *sel, *cons, *comp, *caster, *prods[PRODUCERS];
	sim_actor_t sa;
	coev_event_t fin;
	const char *doing;
	unsigned calls;
	int main_ret;
} st;

static void pace(unsigned how)
{
	if (how % 3 == 1)
		coev_yield();
	else if (how % 3 == 2)
		coev_sleep((coev_time_t)(how / 3 % 4) * 300);
}

static int producer(void *arg)
{
	struct producer *p = arg;

	for (unsigned k = 0; k < p->n; k++) {
		unsigned v = p->id * PER + k;

		pace(p->pace >> k);
		H_CHECK(coev_chan_send(st.in, &v) == 0, "producer's send");
	}
	return 0;
}

static int broadcaster(void *arg)
{
	(void)arg;
	for (unsigned v = 0; v < st.nb; v++) {
		pace(st.bpace >> v);
		H_CHECK(coev_bcast_send(st.b, &v) == 1, "broadcast");
	}
	return 0;
}

/* A broadcast value came in: the next one, none missed (the ring holds
 * them all). */
static void bgot(unsigned v, const char *how)
{
	H_CHECK(v == st.bgot && v < st.nb, "%s got broadcast %u, expected %u",
		how, v, st.bgot);
	st.bgot++;
}

static int consumer(void *arg)
{
	unsigned v;
	int r;

	(void)arg;
	while ((r = coev_chan_recv(st.out, &v)) == 0) {
		H_CHECK(v == st.consumed, "consumer got %u, expected %u", v,
			st.consumed);
		st.consumed++;
	}
	H_CHECK(r == COEV_ECLOSED, "consumer's receive: %d", r);
	return 0;
}

static int completer(void *arg)
{
	(void)arg;
	pace(st.fut_delay);
	st.fut_set = true;
	H_CHECK(coev_future_set(st.f, 77) == 0, "future set");
	return 0;
}

static int target(void *arg)
{
	(void)arg;
	pace(st.task_delay);
	st.target_ended = true;
	return 55;
}

/* A value came in: a producer's, not seen before. */
static void got(unsigned v, const char *how)
{
	H_CHECK(v < PRODUCERS * PER && v / PER < st.nprod &&
			v % PER < st.pr[v / PER].n,
		"%s got %u, which nobody sent", how, v);
	H_CHECK(!st.got[v], "%s got %u a second time", how, v);
	st.got[v] = true;
	st.received++;
}

/* Build the round's cases; returns how many. */
static size_t cases(coev_any_t *cs, unsigned *bufs, unsigned k, coev_time_t *at)
{
	unsigned d = st.dlcase[k], *b1 = &bufs[0], *b2 = &bufs[1];

	bufs[0] = bufs[1] = bufs[2] = NOTHING;
	cs[C_BCAST] = coev_any_bcast(st.rx, &bufs[2]);
	cs[C_RECV] = coev_any_recv(st.in, b1);
	cs[C_SEND] = coev_any_send(st.out, &st.sent);
	cs[C_FUT] = coev_any_future(st.fut_off ? NULL : st.f);
	cs[C_TASK] = coev_any_task(st.target_taken ? NULL : st.target);
	*at = d % 3 == 0   ? coev_now() + (coev_time_t)(d / 3 % 4) * 300
	      : d % 3 == 1 ? coev_now() - 1
			   : COEV_FOREVER;
	cs[C_DL] = coev_any_until(*at);
	cs[C_RECV2] = coev_any_recv(st.in, b2);
	return st.dup ? NCASES : NCASES - 1;
}

/* The chosen case's effects, checked. */
static void chosen(coev_any_t *cs, int r, const unsigned *bufs, coev_time_t t)
{
	unsigned b1 = bufs[0], b2 = bufs[1];
	int res = 0;

	H_CHECK(r == C_RECV || b1 == NOTHING, "receive case lost %u", b1);
	H_CHECK(r == C_RECV2 || b2 == NOTHING, "second receive lost %u", b2);
	H_CHECK(r == C_BCAST || bufs[2] == NOTHING, "broadcast case lost %u",
		bufs[2]);
	switch (r) {
	case C_BCAST:
		H_CHECK(cs[r].result == 0, "broadcast result %d", cs[r].result);
		bgot(bufs[2], "select");
		break;
	case C_RECV:
	case C_RECV2:
		H_CHECK(cs[r].result == 0, "receive result %d", cs[r].result);
		got(r == C_RECV ? b1 : b2, "select");
		break;
	case C_SEND:
		H_CHECK(cs[r].result == 0, "send result %d", cs[r].result);
		st.sent++;
		break;
	case C_FUT:
		H_CHECK(st.fut_set && cs[r].result == 77,
			"future case fired: set %d, result %d", st.fut_set,
			cs[r].result);
		H_CHECK(coev_future_wait_dl(st.f, 0, &res) == 0 && res == 77,
			"the future is no longer awaitable (%d)", res);
		st.fut_off = true;
		break;
	case C_TASK:
		H_CHECK(st.target_ended && cs[r].result == 55,
			"task case fired: ended %d, result %d", st.target_ended,
			cs[r].result);
		H_CHECK(coev_join_dl(st.target, 0, &res) == 0 && res == 55,
			"the task is not joinable (%d)", res);
		st.target_taken = true;
		break;
	default: /* C_DL */
		H_CHECK(t >= cs[C_DL].at, "deadline case fired early");
		break;
	}
}

static void round_once(unsigned k)
{
	coev_any_t cs[NCASES];
	unsigned bufs[3], c = st.call[k];
	coev_time_t at, dl, t;
	size_t n = cases(cs, bufs, k, &at);
	int r;

	dl = c % 3 == 0	  ? COEV_FOREVER
	     : c % 3 == 1 ? coev_now() + (coev_time_t)(c / 3 % 4) * 300
			  : coev_now() - 1;
	st.calls++;
	r = coev_select_any(cs, n, dl);
	t = coev_now();
	if (r >= 0) {
		H_CHECK((size_t)r < n, "select_any returned %d of %zu", r, n);
		chosen(cs, r, bufs, t);
		return;
	}
	H_CHECK(bufs[0] == NOTHING && bufs[1] == NOTHING && bufs[2] == NOTHING,
		"error %d, but received", r);
	switch (r) {
	case -ETIMEDOUT:
		H_CHECK(dl != COEV_FOREVER && t >= dl && at > dl,
			"timed out: deadline %lld, now %lld, deadline case "
			"%lld",
			(long long)dl, (long long)t, (long long)at);
		break;
	case -ECANCELED:
		H_CHECK(st.cancelled && !st.shielded,
			"-ECANCELED in a selector %s",
			st.cancelled ? "inside its shield"
				     : "nobody cancelled");
		H_CHECK(coev_shield_begin() == 0, "shield");
		st.shielded = true;
		break;
	default: H_CHECK(0, "select_any answered %d", r);
	}
}

static void selector(void)
{
	unsigned v;

	st.doing = "selecting";
	for (unsigned k = 0; k < st.rounds; k++)
		round_once(k);
	st.doing = "draining";
	/* A cancel that comes now is not one the rounds could see. */
	if (coev_self())
		H_CHECK(coev_shield_begin() == 0, "shield");
	/* What the losing receives did not take is all still there. */
	while (st.received < st.total) {
		H_CHECK(coev_chan_recv(st.in, &v) == 0, "drain");
		got(v, "the drain");
	}
	H_CHECK(coev_chan_try_recv(st.in, &v) == -EAGAIN,
		"a value nobody sent: %u", v);
	while (st.bgot < st.nb) {
		H_CHECK(coev_bcast_recv(st.rx, &v) == 0, "broadcast drain");
		bgot(v, "the drain");
	}
	H_CHECK(coev_bcast_try_recv(st.rx, &v) == -EAGAIN,
		"a broadcast nobody sent: %u", v);
	coev_chan_close(st.out);
	if (coev_self())
		H_CHECK(coev_shield_end() == 0, "shield end");
	if (st.shielded)
		H_CHECK(coev_shield_end() == 0, "shield end");
	st.doing = "done";
	coev_event_set(&st.fin);
}

static int selector_task(void *arg)
{
	(void)arg;
	selector();
	return 0;
}

static void selector_thread(void *arg)
{
	(void)arg;
	selector();
}

static void start(void)
{
	for (unsigned i = 0; i < st.nprod; i++)
		H_CHECK(coev_spawn(producer, &st.pr[i], &st.prods[i]) == 0,
			"spawn");
	H_CHECK(coev_spawn(consumer, NULL, &st.cons) == 0, "spawn");
	H_CHECK(coev_spawn(completer, NULL, &st.comp) == 0, "spawn");
	H_CHECK(coev_spawn(target, NULL, &st.target) == 0, "spawn");
	H_CHECK(coev_spawn(broadcaster, NULL, &st.caster) == 0, "spawn");
	if (st.thread)
		H_CHECK(sim_actor_start(&st.sa, "selector", selector_thread,
					NULL) == 0,
			"actor start");
	else
		H_CHECK(coev_spawn(selector_task, NULL, &st.sel) == 0, "spawn");
}

static int main_task(void *arg)
{
	(void)arg;
	start();
	for (unsigned s = 0; s < STEPS; s++) {
		for (unsigned y = 0; y < st.step[s][0] % 8; y++)
			coev_yield();
		if (st.step[s][1] % 4 == 3 && !st.thread) {
			st.cancelled = true;
			H_CHECK(coev_cancel(st.sel) == 0, "cancel");
		}
	}
	/* A plain thread's join would block this worker, which the others
	 * may need: wait for the selector as a task first. A selector task
	 * cancelled before it first ran never ran: main does its part. */
	if (st.thread) {
		H_CHECK(coev_event_wait(&st.fin) == 0, "fin");
		sim_actor_join(st.sa);
	} else {
		H_CHECK(coev_join(st.sel, NULL) == 0, "join");
		if (!st.doing)
			selector();
	}
	for (unsigned i = 0; i < st.nprod; i++)
		H_CHECK(coev_join(st.prods[i], NULL) == 0, "join");
	H_CHECK(coev_join(st.cons, NULL) == 0, "join");
	H_CHECK(coev_join(st.comp, NULL) == 0, "join");
	H_CHECK(coev_join(st.caster, NULL) == 0, "join");
	if (!st.target_taken)
		H_CHECK(coev_join(st.target, NULL) == 0, "join");
	H_CHECK(st.consumed == st.sent, "sent %u, the consumer got %u", st.sent,
		st.consumed);
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	H_CHECK(coev_event_init(&st.fin) == 0, "event_init");
	H_CHECK(coev_chan_new(&st.in, sizeof(unsigned), st.in_cap) == 0 &&
			coev_chan_new(&st.out, sizeof(unsigned), st.out_cap) ==
				0 &&
			coev_future_new(&st.f) == 0 &&
			coev_bcast_new(&st.b, sizeof(unsigned), PER + 1) == 0 &&
			coev_bcast_subscribe(st.b, &st.rx) == 0,
		"new");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	coev_future_release(st.f);
	coev_bcast_unsubscribe(st.rx);
	coev_bcast_free(st.b);
	coev_chan_free(st.in);
	coev_chan_free(st.out);
	coev_event_destroy(&st.fin);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	fprintf(out,
		"  selector (%s%s%s): %s, %u calls; received %u of %u, sent "
		"%u (consumed %u); future %s, target %s\n",
		st.thread ? "thread" : "task", st.dup ? ", receive twice" : "",
		st.cancelled ? ", cancelled" : "",
		st.doing ? st.doing : "not started", st.calls, st.received,
		st.total, st.sent, st.consumed, st.fut_set ? "set" : "pending",
		st.target_ended ? "ended" : "running");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	static const size_t caps[3] = {0, 1, COEV_CHAN_UNBOUNDED};
	struct prog g = {data, len, 0};
	unsigned b;

	memset(&st, 0, sizeof st);
	b = prog_byte(&g);
	st.workers = 1 + b % 3;
	st.in_cap = caps[b / 3 % 3];
	st.out_cap = b / 9 % 2;
	st.thread = (b >> 5) & (b >> 6) & 1;
	st.dup = (b >> 7) & 1;
	b = prog_byte(&g);
	st.nprod = 1 + b % PRODUCERS;
	st.rounds = 4 + b / PRODUCERS % (ROUNDS - 3);
	for (unsigned i = 0; i < st.nprod; i++) {
		b = prog_byte(&g);
		st.pr[i].id = i;
		st.pr[i].n = 1 + b % PER;
		st.pr[i].pace = b / PER;
		st.total += st.pr[i].n;
	}
	st.fut_delay = prog_byte(&g);
	st.task_delay = prog_byte(&g);
	b = prog_byte(&g);
	st.nb = b % (PER + 1);
	st.bpace = b / (PER + 1);
	for (unsigned k = 0; k < ROUNDS; k++) {
		st.call[k] = (uint8_t)prog_byte(&g);
		st.dlcase[k] = (uint8_t)prog_byte(&g);
	}
	for (unsigned s = 0; s < STEPS; s++) {
		st.step[s][0] = (uint8_t)prog_byte(&g);
		st.step[s][1] = (uint8_t)prog_byte(&g);
	}
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
}

const struct harness h_any = {
	"any",
	"select over anything: channel receives and a send, a future, a "
	"task's end, deadlines; cancel, a plain thread",
	run,
};
