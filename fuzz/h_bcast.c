/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_bcast.c — the broadcast harness: the broadcast channel
 * (sync/broadcast.c) with receivers waiting, lagging, giving up and
 * subscribing late, a sender in a task or outside the runtime, and close.
 *
 * Program: workers (1-3); a capacity (1-4); the sender, a task or a plain
 * thread (a foreign actor), sending the numbers 0 to n - 1 (n 1-10) in
 * order; 1-3 receivers, each a task or a plain thread, subscribed before
 * the first send or by the sender just before its k-th send (a late
 * subscriber, handed its receiver through an event), each receiving in
 * forms the program picks (blocking, try with yields, a short deadline
 * retried); who closes: main once the sender is done, or the sender
 * after one of its sends (the later sends fail), or main frees the
 * channel instead of closing it (which closes it) and each receiver
 * unsubscribes itself, the last one freeing it; a task receiver may be
 * cancelled by main.
 *
 * Oracles: since value p is the p-th send, a receiver knows where it
 * stands. Each receiver subscribed at position s sees s, s + 1, ... in
 * order with no gap, except that a COEV_ELAGGED moves it on by exactly
 * its count (coev_bcast_missed), and only when it was more than the
 * capacity behind (the ring's tail then, missed + its position +
 * capacity, lies between the sends done before the call and those begun
 * by its return); pending never exceeds the capacity; every send before
 * the close succeeds and every send after it fails with COEV_ECLOSED;
 * after COEV_ECLOSED a receiver (not cancelled) has accounted for every
 * value that was sent (seen or missed): close delivers all kept values;
 * -ETIMEDOUT only once coev_now() has reached the deadline (virtual
 * time); -ECANCELED only in a cancelled receiver; no wait left hanging
 * (the deadlock detector); nothing leaked (the channel freed by its last
 * user, whichever it is).
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define RECEIVERS 3
#define VALUES 10
#define TRIES 6

enum { F_BLOCK, F_TRY, F_DL, F_FORMS };

struct rcv {
	unsigned id;
	bool thread;	      /* a plain thread, not a task */
	bool late;	      /* subscribed by the sender */
	unsigned late_at;     /* before this send (late) */
	bool cancel;	      /* main cancels it (task) */
	bool cancelled;	      /* main did */
	uint8_t form[VALUES]; /* per receive, cycled */
	coev_bcast_rx_t *rx;
	coev_event_t handed; /* a late receiver's rx is there */
	unsigned start;	     /* its first position */
	unsigned expect;     /* the next value it must see */
	unsigned seen, missed;
	const char *doing;
	bool gone;   /* it unsubscribed itself */
	bool has_rx; /* it was handed its receiver */
	int end;     /* its last result */
};

static struct state {
	unsigned workers, cap, n, nrcv;
	bool sender_thread;
	bool free_early;       /* main frees instead of closing */
	unsigned closer_after; /* the sender closes after this send; n: main */
	struct rcv r[RECEIVERS];
	coev_bcast_t *b;
	unsigned started; /* sends begun while open */
	unsigned ok;	  /* sends that succeeded */
	bool closing;	  /* a close was called (receivers may see it) */
	bool closed;	  /* a close returned 0 */
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
			if ((r = coev_bcast_try_recv(c->rx, v)) != -EAGAIN)
				return r;
			if (!c->thread)
				coev_yield();
		}
		return coev_bcast_recv(c->rx, v);
	case F_DL:
		for (int i = 0; i < 2; i++) {
			dl = coev_now() + 300;
			r = timed(coev_bcast_recv_dl(c->rx, v, dl), dl);
			if (r != -ETIMEDOUT)
				return r;
		}
		return coev_bcast_recv(c->rx, v);
	default: return coev_bcast_recv(c->rx, v);
	}
}

/* One result of a receive, judged. Returns false when the receiver is
 * done (closed or cancelled). */
static bool judge(struct rcv *c, int r, unsigned v, unsigned before)
{
	uint64_t m;

	if (r == 0) {
		H_CHECK(v == c->expect, "receiver %u: %u, expected %u", c->id,
			v, c->expect);
		c->expect = v + 1;
		c->seen++;
		return true;
	}
	if (r == COEV_ELAGGED) {
		m = coev_bcast_missed(c->rx);
		H_CHECK(m >= 1 && m <= VALUES, "receiver %u: lagged by %llu",
			c->id, (unsigned long long)m);
		c->expect += (unsigned)m;
		c->missed += (unsigned)m;
		/* The ring's tail at the receive was expect + cap. */
		H_CHECK(c->expect + st.cap >= before &&
				c->expect + st.cap <= st.started,
			"receiver %u: lagged to %u with capacity %u, sends "
			"%u..%u",
			c->id, c->expect, st.cap, before, st.started);
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
	H_CHECK(c->expect == st.ok,
		"receiver %u: closed at %u, but %u were sent (seen %u, "
		"missed %u, from %u)",
		c->id, c->expect, st.ok, c->seen, c->missed, c->start);
	return false;
}

static void receive_all(struct rcv *c)
{
	unsigned v = 0, k = 0, before;
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
	c->expect = c->start;
	for (;;) {
		c->doing = "recv";
		before = st.ok;
		r = recv_form(c, c->form[k++ % VALUES] % F_FORMS, &v);
		if (!judge(c, r, v, before))
			break;
		H_CHECK(coev_bcast_pending(c->rx) <= st.cap,
			"pending above the capacity");
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
		coev_bcast_unsubscribe(c->rx);
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
	H_CHECK(coev_bcast_subscribe(st.b, &c->rx) == 0, "subscribe");
	/* No send runs meanwhile (main subscribes before the sender
	 * starts; the sender between its sends). */
	c->start = st.ok;
}

static void send_all(void)
{
	int r;

	for (unsigned i = 0; i < st.n; i++) {
		bool closed_before = st.closed;

		for (unsigned j = 0; j < st.nrcv; j++)
			if (st.r[j].late && st.r[j].late_at == i) {
				subscribe(&st.r[j]);
				coev_event_set(&st.r[j].handed);
			}
		st.sender_doing = "send";
		if (!st.closed)
			st.started++;
		r = coev_bcast_send(st.b, &i);
		if (r >= 0) {
			H_CHECK(!closed_before, "send %u after the close", i);
			H_CHECK(st.ok == i, "send %u: a gap", i);
			st.ok++;
		} else {
			H_CHECK(r == COEV_ECLOSED && st.closed, "send %u: %d",
				i, r);
		}
		if (i == st.closer_after) {
			st.sender_doing = "close";
			st.closing = true;
			H_CHECK(coev_bcast_close(st.b) == 0, "close");
			st.closed = true;
		}
	}
	/* Late subscribers whose turn never came (sends ended first). */
	for (unsigned j = 0; j < st.nrcv; j++)
		if (st.r[j].late && st.r[j].late_at >= st.n) {
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
	struct rcv *c;
	int r;

	(void)arg;
	for (unsigned j = 0; j < st.nrcv; j++) {
		c = &st.r[j];
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
	st.closing = true;
	if (st.free_early) {
		/* Closes too; the receivers still hold it. */
		coev_bcast_free(st.b);
		st.b = NULL;
	} else {
		r = coev_bcast_close(st.b);
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
			coev_bcast_unsubscribe(st.r[j].rx);
	}
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	H_CHECK(coev_bcast_new(&st.b, sizeof(unsigned), st.cap) == 0, "new");
	for (unsigned j = 0; j < st.nrcv; j++)
		H_CHECK(coev_event_init(&st.r[j].handed) == 0, "event");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	/* The receivers unsubscribed: this frees it (NULL: main did). */
	coev_bcast_free(st.b);
	for (unsigned j = 0; j < st.nrcv; j++)
		coev_event_destroy(&st.r[j].handed);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	fprintf(out,
		"  broadcast: capacity %u, %u values, sender %s (%s), %u "
		"sent, closer after %u\n",
		st.cap, st.n, st.sender_thread ? "thread" : "task",
		st.sender_doing ? st.sender_doing : "not started", st.ok,
		st.closer_after);
	for (unsigned j = 0; j < st.nrcv; j++) {
		struct rcv *c = &st.r[j];

		fprintf(out,
			"  receiver %u (%s%s%s): %s, from %u, expects %u, "
			"seen %u, missed %u\n",
			j, c->thread ? "thread" : "task",
			c->late ? ", late" : "", c->cancel ? ", cancelled" : "",
			c->doing ? c->doing : "not started", c->start,
			c->expect, c->seen, c->missed);
	}
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned b;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.cap = 1 + prog_byte(&g) % 4;
	st.n = 1 + prog_byte(&g) % VALUES;
	b = prog_byte(&g);
	st.sender_thread = b % 3 == 2;
	st.free_early = b / 3 % 2;
	b = prog_byte(&g) % (st.n + 2);
	st.closer_after = b < st.n ? b : st.n;
	st.nrcv = 1 + prog_byte(&g) % RECEIVERS;
	for (unsigned j = 0; j < st.nrcv; j++) {
		struct rcv *c = &st.r[j];

		b = prog_byte(&g);
		c->id = j;
		c->thread = b % 4 == 3;
		c->late = (b >> 2) % 3 == 2;
		c->cancel = !c->thread && (b >> 4) % 5 == 4;
		c->late_at = prog_byte(&g) % (st.n + 1);
		for (unsigned k = 0; k < VALUES; k++)
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

const struct harness h_bcast = {
	"bcast",
	"a broadcast channel's receivers: order, lag counts, close",
	run,
};
