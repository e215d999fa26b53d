/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_chan.c — the channel harness: the bounded channel's lock-free
 * ring (sync/chan.c) against its waiters, select and close.
 *
 * Program: workers (1-3); a capacity (1-4 mostly, sometimes 0 or
 * unbounded); 1-3 producers sending 1-6 numbered messages each and 1-3
 * consumers receiving until the channel closes, each call in a form the
 * program picks (blocking, try with yields, a short deadline retried,
 * select with a case on a channel nobody uses; a consumer also a batch
 * receive of 1-4 messages, in the same three waiting forms); who closes: main once
 * the producers are done, or one producer after one of its sends, while
 * the others still send. A program byte also lets one consumer take a
 * short-deadline receive that may give up.
 *
 * Oracles: every message whose send reported success is received exactly
 * once, and none whose send failed; each consumer sees each producer's
 * messages in the order they were sent, within a batch and across; once a producer saw
 * COEV_ECLOSED every later send of it fails the same way, and every send
 * after the close fails; while the channel is open every message sent
 * reaches a consumer with nothing else happening (main waits for that
 * before it closes); every consumer ends with COEV_ECLOSED; len never
 * exceeds the capacity, cap is the capacity given and closed says 1
 * once closed; a _dl call answers -ETIMEDOUT only once coev_now() has
 * reached its deadline (virtual time); no wait is left hanging (the deadlock detector:
 * a lost wakeup); nothing leaked.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS 6
#define TRIES 8 /* try-form attempts before falling back to blocking */

/* F_BATCH: a batch receive (coev_chan_recv_batch) of 1 to BATCH_MAX
 * messages, blocking, try with yields or a short deadline retried; a
 * producer given it sends blocking. */
enum { F_BLOCK, F_TRY, F_DL, F_SELECT, F_BATCH, F_FORMS };
#define BATCH_MAX 4

static struct state {
	unsigned workers, nprod, ncons, items;
	size_t cap;
	unsigned closer;      /* a producer index, or nprod: main closes */
	unsigned close_after; /* the closer's item after which it closes */
	uint8_t form[PRODUCERS + CONSUMERS][ITEMS * 2];
	coev_chan_t *ch, *never_r, *never_s;
	bool closed;		  /* a close returned 0 */
	unsigned sent[PRODUCERS]; /* sends that succeeded: items 0..sent-1 */
	unsigned seen[PRODUCERS][ITEMS];
	int last[CONSUMERS][PRODUCERS];
	const char *doing[PRODUCERS + CONSUMERS];
	unsigned received, total; /* total: once the producers are done */
	bool prods_done;
	coev_event_t drained; /* every sent message received */
	int main_ret;
} st;

static void check_len(void)
{
	size_t n = coev_chan_len(st.ch);

	H_CHECK(coev_chan_cap(st.ch) == st.cap, "cap %zu, given %zu",
		coev_chan_cap(st.ch), st.cap);
	if (st.cap != COEV_CHAN_UNBOUNDED)
		H_CHECK(n <= st.cap, "len %zu above capacity %zu", n, st.cap);
	if (st.closed)
		H_CHECK(coev_chan_closed(st.ch) == 1, "closed, but not said");
}

/* A _dl call's answer r, deadline dl: -ETIMEDOUT only once it passed. */
static int timed(int r, coev_time_t dl)
{
	H_CHECK(r != -ETIMEDOUT || coev_now() >= dl,
		"-ETIMEDOUT %lld ns before the deadline",
		(long long)(dl - coev_now()));
	return r;
}

static int send_form(unsigned form, int *msg)
{
	coev_sel_t c[2];
	coev_time_t dl;
	int r;

	switch (form) {
	case F_TRY:
		for (int i = 0; i < TRIES; i++) {
			if ((r = coev_chan_try_send(st.ch, msg)) != -EAGAIN)
				return r;
			coev_yield();
		}
		return coev_chan_send(st.ch, msg);
	case F_DL:
		for (int i = 0; i < 2; i++) {
			dl = coev_now() + 300;
			r = timed(coev_chan_send_dl(st.ch, msg, dl), dl);
			if (r != -ETIMEDOUT)
				return r;
		}
		return coev_chan_send(st.ch, msg);
	case F_SELECT:
		c[0] = (coev_sel_t){st.never_r, COEV_SEL_RECV, &(int){0}, 0};
		c[1] = (coev_sel_t){st.ch, COEV_SEL_SEND, msg, 0};
		r = coev_select(c, 2);
		H_CHECK(r == 1, "select send chose %d", r);
		return c[1].result;
	default: return coev_chan_send(st.ch, msg);
	}
}

static int recv_form(unsigned form, int *msg)
{
	coev_sel_t c[2];
	coev_time_t dl;
	int r;

	switch (form) {
	case F_TRY:
		for (int i = 0; i < TRIES; i++) {
			if ((r = coev_chan_try_recv(st.ch, msg)) != -EAGAIN)
				return r;
			coev_yield();
		}
		return coev_chan_recv(st.ch, msg);
	case F_DL:
		for (int i = 0; i < 2; i++) {
			dl = coev_now() + 300;
			r = timed(coev_chan_recv_dl(st.ch, msg, dl), dl);
			if (r != -ETIMEDOUT)
				return r;
		}
		return coev_chan_recv(st.ch, msg);
	case F_SELECT:
		c[0] = (coev_sel_t){st.ch, COEV_SEL_RECV, msg, 0};
		c[1] = (coev_sel_t){st.never_s, COEV_SEL_SEND, &(int){0}, 0};
		r = coev_select(c, 2);
		H_CHECK(r == 0, "select receive chose %d", r);
		return c[0].result;
	default: return coev_chan_recv(st.ch, msg);
	}
}

/* Messages into msgs by the form the program byte picks: a count (1 to
 * BATCH_MAX), or a receive's error. */
static int recv_some(unsigned byte, int *msgs)
{
	size_t max = 1 + (byte / F_FORMS) % BATCH_MAX;
	coev_time_t dl;
	int r;

	if (byte % F_FORMS != F_BATCH)
		return (r = recv_form(byte % F_FORMS, msgs)) == 0 ? 1 : r;
	switch (byte / F_FORMS / BATCH_MAX % 3) {
	case 1:
		for (int i = 0; i < TRIES; i++) {
			r = coev_chan_try_recv_batch(st.ch, msgs, max);
			if (r != -EAGAIN)
				return r;
			coev_yield();
		}
		break;
	case 2:
		for (int i = 0; i < 2; i++) {
			dl = coev_now() + 300;
			r = timed(coev_chan_recv_batch(st.ch, msgs, max, dl),
				  dl);
			if (r != -ETIMEDOUT)
				return r;
		}
		break;
	}
	return coev_chan_recv_batch(st.ch, msgs, max, COEV_FOREVER);
}

static int producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	bool saw_closed = false;
	int r;

	for (unsigned i = 0; i < st.items; i++) {
		int msg = (int)(id * 100 + i);
		bool closed_before = st.closed;

		st.doing[id] = "send";
		r = send_form(st.form[id][i] % F_FORMS, &msg);
		if (r == 0) {
			H_CHECK(!saw_closed && !closed_before,
				"producer %u: send %u succeeded after %s", id,
				i, saw_closed ? "a COEV_ECLOSED" : "the close");
			H_CHECK(st.sent[id] == i, "producer %u: gap", id);
			st.sent[id] = i + 1;
		} else {
			H_CHECK(r == COEV_ECLOSED, "producer %u: send %u: %d",
				id, i, r);
			saw_closed = true;
		}
		check_len();
		if (id == st.closer && i == st.close_after) {
			st.doing[id] = "close";
			r = coev_chan_close(st.ch);
			H_CHECK(r == 0, "close: %d", r);
			st.closed = true;
		}
	}
	st.doing[id] = "done";
	return 0;
}

static int consumer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned k = 0;
	int msgs[BATCH_MAX], msg, r;

	for (;;) {
		st.doing[PRODUCERS + id] = "recv";
		r = recv_some(st.form[PRODUCERS + id][k++ % (ITEMS * 2)], msgs);
		if (r == COEV_ECLOSED)
			break;
		H_CHECK(r >= 1 && r <= BATCH_MAX, "consumer %u: recv: %d", id,
			r);
		for (int j = 0; j < r; j++) {
			msg = msgs[j];
			unsigned p = (unsigned)msg / 100,
				 seq = (unsigned)msg % 100;

			H_CHECK(p < st.nprod && seq < st.items,
				"bad message %d", msg);
			H_CHECK(st.last[id][p] < (int)seq,
				"consumer %u: producer %u's %u after %d", id, p,
				seq, st.last[id][p]);
			st.last[id][p] = (int)seq;
			H_CHECK(++st.seen[p][seq] == 1,
				"message %d received twice", msg);
			if (++st.received == st.total && st.prods_done)
				coev_event_set(&st.drained);
		}
		check_len();
	}
	/* Closed and drained: stays so. */
	H_CHECK(coev_chan_try_recv(st.ch, &msg) == COEV_ECLOSED,
		"consumer %u: a receive after COEV_ECLOSED", id);
	st.doing[PRODUCERS + id] = "done";
	return 0;
}

static int main_task(void *arg)
{
	coev_task_t *ps[PRODUCERS], *cs[CONSUMERS];
	int r;

	(void)arg;
	for (unsigned i = 0; i < st.ncons; i++)
		H_CHECK(coev_spawn(consumer, (void *)(uintptr_t)i, &cs[i]) == 0,
			"spawn");
	for (unsigned i = 0; i < st.nprod; i++)
		H_CHECK(coev_spawn(producer, (void *)(uintptr_t)i, &ps[i]) == 0,
			"spawn");
	for (unsigned i = 0; i < st.nprod; i++)
		H_CHECK(coev_join(ps[i], NULL) == 0, "join producer");
	if (!st.closed) {
		/* Open, every send returned: each message must reach a
		 * consumer without anything else happening (a receiver
		 * left parked beside a buffered message is a lost wakeup,
		 * which the close would otherwise hide). */
		for (unsigned i = 0; i < st.nprod; i++)
			st.total += st.sent[i];
		st.prods_done = true;
		if (st.received < st.total)
			H_CHECK(coev_event_wait(&st.drained) == 0, "drained");
	}
	r = coev_chan_close(st.ch);
	H_CHECK(r == (st.closed ? COEV_ECLOSED : 0), "main's close: %d", r);
	st.closed = true;
	for (unsigned i = 0; i < st.ncons; i++)
		H_CHECK(coev_join(cs[i], NULL) == 0, "join consumer");
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	H_CHECK(coev_chan_new(&st.ch, sizeof(int), st.cap) == 0, "chan_new");
	H_CHECK(coev_event_init(&st.drained) == 0, "event_init");
	H_CHECK(coev_chan_new(&st.never_r, sizeof(int), 0) == 0, "chan_new");
	H_CHECK(coev_chan_new(&st.never_s, sizeof(int), 0) == 0, "chan_new");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	coev_chan_free(st.ch);
	coev_chan_free(st.never_r);
	coev_chan_free(st.never_s);
	coev_event_destroy(&st.drained);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	fprintf(out, "  channel: capacity %zd, closer %u after %u\n",
		(ssize_t)st.cap, st.closer, st.close_after);
	for (unsigned i = 0; i < st.nprod; i++)
		fprintf(out, "  producer %u: %s (%u sent)\n", i,
			st.doing[i] ? st.doing[i] : "not started", st.sent[i]);
	for (unsigned i = 0; i < st.ncons; i++)
		fprintf(out, "  consumer %u: %s\n", i,
			st.doing[PRODUCERS + i] ? st.doing[PRODUCERS + i]
						: "not started");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned c;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	c = prog_byte(&g) % 8;
	st.cap = c < 6 ? 1 + c % 4 : c == 6 ? 0 : COEV_CHAN_UNBOUNDED;
	st.nprod = 1 + prog_byte(&g) % PRODUCERS;
	st.ncons = 1 + prog_byte(&g) % CONSUMERS;
	st.items = 1 + prog_byte(&g) % ITEMS;
	st.closer = prog_byte(&g) % (st.nprod + 1);
	st.close_after = prog_byte(&g) % st.items;
	for (unsigned i = 0; i < PRODUCERS + CONSUMERS; i++)
		for (unsigned j = 0; j < ITEMS * 2; j++)
			st.form[i][j] = (uint8_t)prog_byte(&g);
	for (unsigned i = 0; i < CONSUMERS; i++)
		for (unsigned p = 0; p < PRODUCERS; p++)
			st.last[i][p] = -1;
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	for (unsigned p = 0; p < st.nprod; p++)
		for (unsigned i = 0; i < st.items; i++)
			H_CHECK(st.seen[p][i] == (i < st.sent[p]),
				"producer %u's message %u: sent %s, received "
				"%u times",
				p, i, i < st.sent[p] ? "yes" : "no",
				st.seen[p][i]);
}

const struct harness h_chan = {
	"chan",
	"a channel's lock-free ring, waiters, select and close",
	run,
};
