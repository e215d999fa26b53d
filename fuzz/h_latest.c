/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_latest.c — the latest-value harness: the latest-value channel
 * (sync/latest.c) with receivers waiting, borrowing, giving up and
 * subscribing late, a sender in a task or outside the runtime, and close.
 *
 * Program: workers (1-3); the sender, a task or a plain thread (a foreign
 * actor), sending 1 to n (n 0-8) in order, so that the value sent is the
 * version it makes (the initial value 0 is version 0); 1-3 receivers, each
 * a task or a plain thread, subscribed before the first send or by the
 * sender just before its k-th send (handed over through an event), each
 * call in a form the program picks (blocking, try with yields, a short
 * deadline retried, a borrow); who closes: main once the sender is done,
 * or the sender after one of its sends; or main frees the channel instead
 * of closing it (which closes it), and each receiver unsubscribes itself,
 * the last one freeing it; a task receiver may be cancelled by main.
 *
 * Oracles: a receiver never sees a version older than one it saw, nor
 * the same one twice from a receive, and coev_latest_seen agrees with the
 * value (value and version are one number here); a value received is at
 * least every send done before the call and at most every send begun by
 * its return; a borrow is the same, but may repeat; COEV_ECLOSED only
 * once closed, and then the receiver's last version is the final one
 * (close hands over the unseen value first): after the last send and the
 * close every receiver (not cancelled) ends on the final value; every
 * send before the close succeeds and every one after fails;
 * -ETIMEDOUT only once the deadline passed (virtual time); -ECANCELED
 * only in a cancelled receiver; no wait left hanging; nothing leaked.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define RECEIVERS 3
#define VALUES 8
#define FORMS_N 12
#define TRIES 6

enum { F_BLOCK, F_TRY, F_DL, F_BORROW, F_FORMS };

struct rcv {
	unsigned id;
	bool thread, late, cancel, cancelled;
	unsigned late_at;
	uint8_t form[FORMS_N];
	coev_latest_rx_t *rx;
	coev_event_t handed;
	unsigned last; /* the version it saw last */
	unsigned borrows;
	const char *doing;
	bool gone;   /* it unsubscribed itself */
	bool has_rx; /* it was handed its receiver */
	int end;
};

static struct state {
	unsigned workers, n, nrcv;
	bool sender_thread;
	bool free_early;       /* main frees instead of closing */
	unsigned closer_after; /* the sender closes after this send; n: main */
	struct rcv r[RECEIVERS];
	coev_latest_t *w;
	unsigned started; /* sends begun while open */
	unsigned ok;	  /* sends that succeeded */
	bool closing;	  /* a close was called (receivers may see it) */
	bool closed;
	const char *sender_doing;
	int main_ret;
} st;

static int timed(int r, coev_time_t dl)
{
	H_CHECK(r != -ETIMEDOUT || coev_now() >= dl,
		"-ETIMEDOUT %lld ns before the deadline",
		(long long)(dl - coev_now()));
	return r;
}

static int recv_form(struct rcv *c, unsigned form, unsigned *v)
{
	coev_time_t dl;
	int r;

	switch (form) {
	case F_TRY:
		for (int i = 0; i < TRIES; i++) {
			if ((r = coev_latest_try_recv(c->rx, v)) != -EAGAIN)
				return r;
			if (!c->thread)
				coev_yield();
		}
		return coev_latest_recv(c->rx, v);
	case F_DL:
		for (int i = 0; i < 2; i++) {
			dl = coev_now() + 300;
			r = timed(coev_latest_recv_dl(c->rx, v, dl), dl);
			if (r != -ETIMEDOUT)
				return r;
		}
		return coev_latest_recv(c->rx, v);
	default: return coev_latest_recv(c->rx, v);
	}
}

/* A value v read in a call begun after `before` sends had returned. */
static void check_value(struct rcv *c, unsigned v, unsigned before, bool again)
{
	H_CHECK(again ? v >= c->last : v > c->last,
		"receiver %u: version %u after %u", c->id, v, c->last);
	H_CHECK(v >= before && v <= st.started,
		"receiver %u: version %u, sends %u..%u", c->id, v, before,
		st.started);
	H_CHECK(coev_latest_seen(c->rx) == v, "receiver %u: seen %llu, got %u",
		c->id, (unsigned long long)coev_latest_seen(c->rx), v);
	c->last = v;
}

/* Judge one receive; false when the receiver is done. */
static bool judge(struct rcv *c, int r, unsigned v, unsigned before)
{
	if (r == 0) {
		check_value(c, v, before, false);
		return true;
	}
	c->end = r;
	if (r == -ECANCELED) {
		H_CHECK(c->cancelled, "receiver %u: -ECANCELED uncancelled",
			c->id);
		return false;
	}
	H_CHECK(r == COEV_ECLOSED, "receiver %u: %d", c->id, r);
	H_CHECK(st.closing, "receiver %u: COEV_ECLOSED while open", c->id);
	H_CHECK(c->last == st.ok,
		"receiver %u: closed on version %u, the final is %u", c->id,
		c->last, st.ok);
	return false;
}

static void receive_all(struct rcv *c)
{
	unsigned v = 0, k = 0, before, form;
	int r;

	if (c->late) {
		c->doing = "wait for its receiver";
		r = coev_event_wait(&c->handed);
		if (r == -ECANCELED && c->cancelled) {
			c->end = r;
			c->doing = "cancelled";
			return;
		}
		H_CHECK(r == 0, "receiver %u: handed: %d", c->id, r);
	}
	c->has_rx = true;
	c->last = (unsigned)coev_latest_seen(c->rx);
	for (;;) {
		form = c->form[k++ % FORMS_N] % F_FORMS;
		before = st.ok;
		if (form == F_BORROW && c->borrows < 4) {
			c->doing = "borrow";
			c->borrows++;
			H_CHECK(coev_latest_borrow(c->rx, &v) == 0, "borrow");
			check_value(c, v, before, true);
			continue;
		}
		c->doing = "recv";
		r = recv_form(c, form, &v);
		if (!judge(c, r, v, before))
			break;
	}
	c->doing = "done";
}

/* With free_early the channel's last user frees it: each receiver
 * unsubscribes itself once done (main those that never ran). */
static void leave(struct rcv *c)
{
	/* A late receiver cancelled before it was handed its receiver
	 * leaves that to main. */
	if (st.free_early && c->has_rx) {
		coev_latest_unsubscribe(c->rx);
		c->gone = true;
	}
}

static int rcv_task(void *arg)
{
	receive_all(arg);
	leave(arg);
	return 0;
}

static void rcv_thread(void *arg)
{
	receive_all(arg);
	leave(arg);
}

static void subscribe(struct rcv *c)
{
	H_CHECK(coev_latest_subscribe(st.w, &c->rx) == 0, "subscribe");
	H_CHECK(coev_latest_seen(c->rx) == st.ok,
		"subscribed at version %llu, %u sent",
		(unsigned long long)coev_latest_seen(c->rx), st.ok);
}

static void send_all(void)
{
	int r;

	for (unsigned i = 1; i <= st.n; i++) {
		bool closed_before = st.closed;

		for (unsigned j = 0; j < st.nrcv; j++)
			if (st.r[j].late && st.r[j].late_at == i) {
				subscribe(&st.r[j]);
				coev_event_set(&st.r[j].handed);
			}
		st.sender_doing = "send";
		if (!st.closed)
			st.started++;
		r = coev_latest_send(st.w, &i);
		if (r == 0) {
			H_CHECK(!closed_before, "send %u after the close", i);
			H_CHECK(st.ok + 1 == i, "send %u: a gap", i);
			st.ok++;
		} else {
			H_CHECK(r == COEV_ECLOSED && st.closed, "send %u: %d",
				i, r);
		}
		if (i == st.closer_after) {
			st.sender_doing = "close";
			st.closing = true;
			H_CHECK(coev_latest_close(st.w) == 0, "close");
			st.closed = true;
		}
	}
	for (unsigned j = 0; j < st.nrcv; j++)
		if (st.r[j].late && st.r[j].late_at > st.n) {
			subscribe(&st.r[j]);
			coev_event_set(&st.r[j].handed);
		}
	st.sender_doing = "done";
}

static int send_task(void *arg)
{
	(void)arg;
	send_all();
	return 0;
}

static void send_thread(void *arg)
{
	(void)arg;
	send_all();
}

static int main_task(void *arg)
{
	coev_task_t *ts[RECEIVERS] = {0}, *sender = NULL;
	sim_actor_t as[RECEIVERS], sa;
	unsigned v;
	int r;

	(void)arg;
	for (unsigned j = 0; j < st.nrcv; j++) {
		struct rcv *c = &st.r[j];

		if (!c->late)
			subscribe(c);
		if (c->thread)
			H_CHECK(sim_actor_start(&as[j], "receiver", rcv_thread,
						c) == 0,
				"actor");
		else
			H_CHECK(coev_spawn(rcv_task, c, &ts[j]) == 0, "spawn");
	}
	if (st.sender_thread)
		H_CHECK(sim_actor_start(&sa, "sender", send_thread, NULL) == 0,
			"actor");
	else
		H_CHECK(coev_spawn(send_task, NULL, &sender) == 0, "spawn");
	for (unsigned j = 0; j < st.nrcv; j++)
		if (st.r[j].cancel && ts[j]) {
			st.r[j].cancelled = true;
			H_CHECK(coev_cancel(ts[j]) == 0, "cancel");
		}
	if (st.sender_thread)
		sim_actor_join(sa);
	else
		H_CHECK(coev_join(sender, NULL) == 0, "join sender");
	H_CHECK(coev_latest_get(st.w, &v) == 0 && v == st.ok,
		"get: %u, the final is %u", v, st.ok);
	st.closing = true;
	if (st.free_early) {
		/* Closes too; the receivers still hold it. */
		coev_latest_free(st.w);
		st.w = NULL;
	} else {
		r = coev_latest_close(st.w);
		H_CHECK(r == (st.closed ? COEV_ECLOSED : 0), "main's close: %d",
			r);
	}
	st.closed = true;
	for (unsigned j = 0; j < st.nrcv; j++) {
		if (st.r[j].thread)
			sim_actor_join(as[j]);
		else
			H_CHECK(coev_join(ts[j], NULL) == 0, "join receiver");
		if (!st.r[j].gone)
			coev_latest_unsubscribe(st.r[j].rx);
	}
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;
	unsigned zero = 0;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	H_CHECK(coev_latest_new(&st.w, sizeof(unsigned), &zero) == 0, "new");
	for (unsigned j = 0; j < st.nrcv; j++)
		H_CHECK(coev_event_init(&st.r[j].handed) == 0, "event");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	/* The receivers unsubscribed: this frees it (NULL: main did). */
	coev_latest_free(st.w);
	for (unsigned j = 0; j < st.nrcv; j++)
		coev_event_destroy(&st.r[j].handed);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	fprintf(out,
		"  latest: %u values, sender %s (%s), %u sent, closer after "
		"%u\n",
		st.n, st.sender_thread ? "thread" : "task",
		st.sender_doing ? st.sender_doing : "not started", st.ok,
		st.closer_after);
	for (unsigned j = 0; j < st.nrcv; j++) {
		struct rcv *c = &st.r[j];

		fprintf(out, "  receiver %u (%s%s%s): %s, last version %u\n", j,
			c->thread ? "thread" : "task", c->late ? ", late" : "",
			c->cancel ? ", cancelled" : "",
			c->doing ? c->doing : "not started", c->last);
	}
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned b;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.n = prog_byte(&g) % (VALUES + 1);
	b = prog_byte(&g);
	st.sender_thread = b % 3 == 2;
	st.free_early = b / 3 % 2;
	b = prog_byte(&g) % (st.n + 2);
	st.closer_after = b >= 1 && b <= st.n ? b : st.n + 1;
	st.nrcv = 1 + prog_byte(&g) % RECEIVERS;
	for (unsigned j = 0; j < st.nrcv; j++) {
		struct rcv *c = &st.r[j];

		b = prog_byte(&g);
		c->id = j;
		c->thread = b % 4 == 3;
		c->late = (b >> 2) % 3 == 2;
		c->cancel = !c->thread && (b >> 4) % 5 == 4;
		c->late_at = 1 + prog_byte(&g) % (st.n + 1);
		for (unsigned k = 0; k < FORMS_N; k++)
			c->form[k] = (uint8_t)prog_byte(&g);
	}
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	for (unsigned j = 0; j < st.nrcv; j++)
		H_CHECK(st.r[j].end == COEV_ECLOSED ||
				(st.r[j].cancelled &&
				 (st.r[j].end == -ECANCELED || !st.r[j].doing)),
			"receiver %u ended with %d", j, st.r[j].end);
}

const struct harness h_latest = {
	"latest",
	"a latest-value channel's receivers: versions only grow, close",
	run,
};
