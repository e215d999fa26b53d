/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_select.c — the select harness: coev_select and every channel
 * call (coev/chan.h) on two channels at once, judged on their answers,
 * with close, deadlines and the cancellation of a waiting task.
 *
 * Program: workers (1-3); two channels, each of capacity 0, 1, 2 or
 * unbounded; 1-3 players, each a task or a plain thread (a foreign actor),
 * each with 1-6 operations: a send, a receive, a batch receive (1-4) or a
 * select of up to five cases (sends and receives on either channel, a
 * case with no channel, one channel twice), each in one of three forms:
 * waiting without a limit, with a deadline 0-900 ns ahead (0: only
 * tries), or the try form. Main takes up to three steps while they run,
 * each after some yields: cancel a player that is a task, close a
 * channel, or nothing. Once the players are done, or at a virtual
 * deadline when they wait for each other for ever, main closes both
 * channels, joins them and drains what is left.
 *
 * Each message is unique (sender, channel, number) and numbered in the
 * order its sender offered it on that channel. A sequential model follows
 * each channel: the sends that returned 0, the messages received, and
 * the sends and receives in flight. From it, a message was buffered
 * throughout a receive when more sends had returned 0 before the receive
 * began than all receives that have taken or may take messages by its
 * end; a free slot was there throughout a send in the same way.
 *
 * Oracles (coev/chan.h, coev/sync.h rules 2 and 3):
 *   - each message whose send returned 0 (or whose select case was
 *     chosen with result 0) is received exactly once; one whose send
 *     failed, or whose select case was not chosen, never;
 *   - each receiver sees each sender's messages on a channel in order;
 *   - a select returns the index of a case with a channel, with result 0
 *     or COEV_ECLOSED; only that case had an effect: every other
 *     receive case's buffer is untouched and every other send case's
 *     message is never received; a receive case closed got nothing;
 *   - -ETIMEDOUT only from a deadline form, and only once coev_now() has
 *     reached the deadline; -ECANCELED only in a task main cancelled;
 *     -EAGAIN only from a try form; none of these, nor COEV_ECLOSED from
 *     a receive, when the model says a message (or, for a send, a free
 *     slot) was there throughout the call: a call that needs no wait
 *     succeeds, even past its deadline or cancelled;
 *   - COEV_ECLOSED only once the close has begun; no send succeeds that
 *     began after a close returned; once a receive reported the channel
 *     closed and empty, main's final drain finds nothing;
 *   - coev_chan_cap is the capacity given, coev_chan_len never above it,
 *     coev_chan_closed 1 after the close;
 *   - no waiter is left queued (coev_chan_free aborts), no wait hangs,
 *     nothing leaks.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define PLAYERS 3
#define OPS 6
#define CASES 6 /* four, one channel again, one switched off */
#define BATCH_MAX 4
#define SEQS (OPS * CASES)
#define STEPS 3
#define RECEIVERS (PLAYERS + 1) /* the players and main's final drain */
#define SENTINEL (-1)
#define GIVE_UP COEV_USEC(300) /* main closes both channels by then */

enum { O_SEND, O_RECV, O_SELECT, O_BATCH };
enum { F_BLOCK, F_DL, F_TRY };
enum { M_NONE, M_FLIGHT, M_OK, M_FAILED };

struct chan {
	coev_chan_t *ch;
	size_t cap;
	bool closing, closed; /* the close began, returned */
	bool drained;	      /* a receive got COEV_ECLOSED */
	/* The model: sends returned 0, messages received, and the weights
	 * of the receives (their max) and sends in flight. */
	unsigned sent, taken, rclaim, sclaim;
};

struct player {
	uint8_t op[OPS], arg[OPS];
	unsigned nops, id;
	bool thread, cancelled;
	unsigned seq[2];
	coev_task_t *t;
	sim_actor_t a;
	const char *doing;
};

static struct state {
	unsigned workers, np;
	struct chan c[2];
	struct player p[PLAYERS];
	uint8_t step[STEPS][2];
	/* Per message: M_*, and how often received. */
	uint8_t msg[PLAYERS][2][SEQS], got[PLAYERS][2][SEQS];
	int last[RECEIVERS][PLAYERS][2];
	unsigned finished;
	coev_event_t done;
	int main_ret;
} st;

static int encode(unsigned p, unsigned c, unsigned seq)
{
	return (int)(p << 12 | c << 8 | seq);
}

static void check_chan(unsigned c)
{
	struct chan *k = &st.c[c];
	size_t n = coev_chan_len(k->ch);

	H_CHECK(coev_chan_cap(k->ch) == k->cap, "cap %zu", k->cap);
	if (k->cap != COEV_CHAN_UNBOUNDED)
		H_CHECK(n <= k->cap, "channel %u: len %zu above cap %zu", c, n,
			k->cap);
	if (k->closed)
		H_CHECK(coev_chan_closed(k->ch) == 1, "closed channel %u", c);
}

/* A new message of sender p on channel c, in flight. */
static int offer(unsigned p, unsigned c)
{
	unsigned seq = st.p[p].seq[c]++;

	H_CHECK(seq < SEQS, "too many messages");
	st.msg[p][c][seq] = M_FLIGHT;
	return encode(p, c, seq);
}

/* Message m's send ended: sent (0) or not. */
static void settle_send(int m, bool sent)
{
	unsigned p = (unsigned)m >> 12, c = ((unsigned)m >> 8) & 15,
		 seq = (unsigned)m & 255;

	st.msg[p][c][seq] = sent ? M_OK : M_FAILED;
	if (sent)
		st.c[c].sent++;
	else
		H_CHECK(!st.got[p][c][seq],
			"message %#x received, but its send failed", m);
}

/* Receiver r took message m from channel c. */
static void take(unsigned r, unsigned c, int m)
{
	unsigned p = (unsigned)m >> 12, mc = ((unsigned)m >> 8) & 15,
		 seq = (unsigned)m & 255;

	H_CHECK(m >= 0 && p < st.np && mc == c && seq < st.p[p].seq[c],
		"channel %u: a message %#x nobody sent on it", c, m);
	H_CHECK(st.msg[p][c][seq] == M_FLIGHT || st.msg[p][c][seq] == M_OK,
		"message %#x received, but its send failed or was not chosen",
		m);
	H_CHECK(++st.got[p][c][seq] == 1, "message %#x received twice", m);
	H_CHECK(st.last[r][p][c] < (int)seq,
		"receiver %u: sender %u's %u on channel %u after %d", r, p, seq,
		c, st.last[r][p][c]);
	st.last[r][p][c] = (int)seq;
	st.c[c].taken++;
}

/* What a call may answer besides its success, by form (and whether the
 * model says it could not have had to wait). */
static void check_fail(struct player *pl, unsigned form, int r, coev_time_t dl,
		       bool ready, const char *what)
{
	H_CHECK(!ready,
		"player %u: %s answered %d with a partner there "
		"throughout",
		pl->id, what, r);
	switch (r) {
	case -ETIMEDOUT:
		H_CHECK(form == F_DL, "player %u: %s timed out", pl->id, what);
		H_CHECK(coev_now() >= dl, "player %u: %s timed out early",
			pl->id, what);
		break;
	case -ECANCELED:
		H_CHECK(form != F_TRY && pl->cancelled,
			"player %u: %s answered -ECANCELED, not cancelled",
			pl->id, what);
		break;
	case -EAGAIN:
		H_CHECK(form == F_TRY, "player %u: %s answered -EAGAIN", pl->id,
			what);
		break;
	default: H_CHECK(0, "player %u: %s answered %d", pl->id, what, r);
	}
}

/* The model's view at the end of a receive of weight w on c that began
 * with s0 sends done: a message was there throughout. */
static bool recv_ready(unsigned c, unsigned s0)
{
	struct chan *k = &st.c[c];

	return s0 > k->taken + k->rclaim;
}

/* The same for a send that began with t0 messages taken. */
static bool send_ready(unsigned c, unsigned t0)
{
	struct chan *k = &st.c[c];

	if (k->cap == COEV_CHAN_UNBOUNDED)
		return true;
	return k->cap + t0 > k->sent + k->sclaim;
}

static void op_send(struct player *pl, unsigned c, unsigned form,
		    coev_time_t dl)
{
	struct chan *k = &st.c[c];
	int m = offer(pl->id, c), r;
	bool after_close = k->closed, ready;
	unsigned t0 = k->taken;

	k->sclaim++;
	r = form == F_BLOCK ? coev_chan_send(k->ch, &m)
	    : form == F_DL  ? coev_chan_send_dl(k->ch, &m, dl)
			    : coev_chan_try_send(k->ch, &m);
	k->sclaim--;
	ready = send_ready(c, t0) && !k->closing;
	settle_send(m, r == 0);
	if (r == 0) {
		H_CHECK(!after_close, "player %u: a send after the close",
			pl->id);
	} else if (r == COEV_ECLOSED) {
		H_CHECK(k->closing, "player %u: COEV_ECLOSED before the close",
			pl->id);
	} else {
		check_fail(pl, form, r, dl, ready, "send");
	}
}

static void op_recv(struct player *pl, unsigned c, unsigned form,
		    coev_time_t dl, size_t max, bool batch)
{
	struct chan *k = &st.c[c];
	int buf[BATCH_MAX], r;
	unsigned s0 = k->sent;
	bool ready;

	for (size_t i = 0; i < BATCH_MAX; i++)
		buf[i] = SENTINEL;
	k->rclaim += (unsigned)max;
	if (batch)
		r = form == F_BLOCK ? coev_chan_recv_batch(k->ch, buf, max,
							   COEV_FOREVER)
		    : form == F_DL  ? coev_chan_recv_batch(k->ch, buf, max, dl)
				    : coev_chan_try_recv_batch(k->ch, buf, max);
	else
		r = form == F_BLOCK ? coev_chan_recv(k->ch, buf)
		    : form == F_DL  ? coev_chan_recv_dl(k->ch, buf, dl)
				    : coev_chan_try_recv(k->ch, buf);
	k->rclaim -= (unsigned)max;
	ready = recv_ready(c, s0);
	if (!batch && r == 0)
		r = 1;
	if (r > 0) {
		H_CHECK((size_t)r <= max, "batch of %d, max %zu", r, max);
		for (int i = 0; i < r; i++)
			take(pl->id, c, buf[i]);
		for (size_t i = (size_t)r; i < max; i++)
			H_CHECK(buf[i] == SENTINEL,
				"a batch wrote past its count");
		return;
	}
	H_CHECK(buf[0] == SENTINEL, "a failed receive wrote %#x", buf[0]);
	if (r == COEV_ECLOSED) {
		H_CHECK(k->closing && !ready,
			"player %u: COEV_ECLOSED on channel %u %s", pl->id, c,
			k->closing ? "with a message there"
				   : "before the close");
		k->drained = true;
		return;
	}
	check_fail(pl, form, r, dl, ready, batch ? "batch receive" : "receive");
}

/* A select's cases from its argument byte. */
static size_t build_cases(struct player *pl, unsigned arg, coev_sel_t *cs,
			  int *bufs)
{
	size_t n = 0;

	for (unsigned b = 0; b < 4; b++) {
		unsigned c = b / 2;

		if (!(arg & (1u << b)))
			continue;
		cs[n].ch = st.c[c].ch;
		cs[n].op = b % 2 ? COEV_SEL_RECV : COEV_SEL_SEND;
		n++;
	}
	if ((arg & 0x10) && n > 0) /* the first case's channel again */
		cs[n++] = (coev_sel_t){cs[0].ch, cs[0].op, NULL, 0};
	if (arg & 0x20) /* a case switched off */
		cs[n++] = (coev_sel_t){NULL, COEV_SEL_RECV, NULL, 0};
	for (size_t i = 0; i < n; i++) {
		unsigned c = cs[i].ch == st.c[1].ch;

		cs[i].buf = &bufs[i];
		cs[i].result = 12345;
		bufs[i] = cs[i].ch && cs[i].op == COEV_SEL_SEND
				  ? offer(pl->id, c)
				  : SENTINEL;
	}
	return n;
}

/* Which channels a select's cases send on (bit c) and receive on (bit
 * c + 2). */
static unsigned case_sides(const coev_sel_t *cs, size_t n)
{
	unsigned sides = 0;

	for (size_t i = 0; i < n; i++)
		if (cs[i].ch)
			sides |= 1u << ((cs[i].ch == st.c[1].ch) +
					(cs[i].op == COEV_SEL_RECV ? 2 : 0));
	return sides;
}

/* The chosen case i (of a select that returned it) and its effect. */
static void judge_case(struct player *pl, coev_sel_t *cs, int *bufs, int i,
		       bool after_close[2])
{
	coev_sel_t *x = &cs[i];
	unsigned c = x->ch == st.c[1].ch;
	struct chan *k = &st.c[c];

	H_CHECK(x->ch != NULL, "select chose case %d, which has no channel", i);
	H_CHECK(x->result == 0 || x->result == COEV_ECLOSED,
		"select's case %d: result %d", i, x->result);
	H_CHECK(x->result == 0 || k->closing,
		"select's case %d: COEV_ECLOSED before the close", i);
	if (x->op == COEV_SEL_SEND) {
		H_CHECK(x->result != 0 || !after_close[c],
			"player %u: a select sent after the close", pl->id);
		settle_send(bufs[i], x->result == 0);
	} else if (x->result == 0) {
		take(pl->id, c, bufs[i]);
	} else {
		H_CHECK(bufs[i] == SENTINEL, "a closed receive case got %#x",
			bufs[i]);
		k->drained = true;
	}
}

static void op_select(struct player *pl, unsigned arg, unsigned form,
		      coev_time_t dl)
{
	coev_sel_t cs[CASES];
	int bufs[CASES], r;
	unsigned sides, s0[2], t0[2];
	bool after_close[2], ready = false;
	size_t n = build_cases(pl, arg, cs, bufs);

	sides = case_sides(cs, n);
	if (form == F_BLOCK && !sides)
		form = F_DL; /* nothing could ever end its wait */
	for (unsigned c = 0; c < 2; c++) {
		after_close[c] = st.c[c].closed;
		s0[c] = st.c[c].sent;
		t0[c] = st.c[c].taken;
		st.c[c].sclaim += (sides >> c) & 1;
		st.c[c].rclaim += (sides >> (c + 2)) & 1;
	}
	r = form == F_BLOCK ? coev_select(cs, n)
	    : form == F_DL  ? coev_select_dl(cs, n, dl)
			    : coev_try_select(cs, n);
	for (unsigned c = 0; c < 2; c++) {
		st.c[c].sclaim -= (sides >> c) & 1;
		st.c[c].rclaim -= (sides >> (c + 2)) & 1;
		if ((sides >> c) & 1)
			ready |= send_ready(c, t0[c]) || after_close[c];
		if ((sides >> (c + 2)) & 1)
			ready |= recv_ready(c, s0[c]) || after_close[c];
	}
	if (r >= 0) {
		H_CHECK((size_t)r < n, "select returned %d of %zu", r, n);
		judge_case(pl, cs, bufs, r, after_close);
	} else {
		check_fail(pl, form, r, dl, ready, "select");
	}
	/* Only the chosen case had an effect. */
	for (size_t i = 0; i < n; i++) {
		if ((int)i == r || !cs[i].ch)
			continue;
		if (cs[i].op == COEV_SEL_SEND)
			settle_send(bufs[i], false);
		else
			H_CHECK(bufs[i] == SENTINEL,
				"select returned %d, but its case %zu received "
				"%#x",
				r, i, bufs[i]);
	}
}

static void play(struct player *pl)
{
	for (unsigned i = 0; i < pl->nops; i++) {
		unsigned op = pl->op[i], arg = pl->arg[i];
		unsigned kind = op % 4, form = (op / 4) % 3, c = (op / 12) % 2;
		coev_time_t dl =
			coev_now() + (coev_time_t)((op / 24) % 4) * 300;

		switch (kind) {
		case O_SEND:
			pl->doing = "send";
			op_send(pl, c, form, dl);
			break;
		case O_RECV:
			pl->doing = "receive";
			op_recv(pl, c, form, dl, 1, false);
			break;
		case O_SELECT:
			pl->doing = "select";
			op_select(pl, arg, form, dl);
			break;
		case O_BATCH:
			pl->doing = "batch receive";
			op_recv(pl, c, form, dl, 1 + arg % BATCH_MAX, true);
			break;
		}
		check_chan(c);
	}
	pl->doing = "done";
	if (++st.finished == st.np)
		coev_event_set(&st.done);
}

static int player_task(void *arg)
{
	play(arg);
	return 0;
}

static void player_thread(void *arg)
{
	play(arg);
}

static void close_chan(unsigned c)
{
	struct chan *k = &st.c[c];
	bool was = k->closing;
	int r;

	k->closing = true;
	r = coev_chan_close(k->ch);
	H_CHECK(r == (was ? COEV_ECLOSED : 0), "close %u: %d", c, r);
	k->closed = true;
	check_chan(c);
}

/* After everything: what is left goes to main, receiver np. */
static void drain(unsigned c)
{
	int m, r;

	while ((r = coev_chan_try_recv(st.c[c].ch, &m)) == 0) {
		H_CHECK(!st.c[c].drained,
			"channel %u reported closed and empty, then held %#x",
			c, m);
		take(st.np, c, m);
	}
	H_CHECK(r == COEV_ECLOSED, "drain %u: %d", c, r);
}

static int main_task(void *arg)
{
	coev_time_t give_up = coev_deadline(GIVE_UP);

	(void)arg;
	for (unsigned i = 0; i < st.np; i++) {
		struct player *pl = &st.p[i];

		if (pl->thread)
			H_CHECK(sim_actor_start(&pl->a, "player", player_thread,
						pl) == 0,
				"actor start");
		else
			H_CHECK(coev_spawn(player_task, pl, &pl->t) == 0,
				"spawn");
	}
	for (unsigned s = 0; s < STEPS; s++) {
		unsigned what = st.step[s][1] % 8, who = (what / 2) % st.np;

		for (unsigned y = 0; y < st.step[s][0] % 8; y++)
			coev_yield();
		if (what == 1 && !st.p[who].thread) {
			st.p[who].cancelled = true;
			H_CHECK(coev_cancel(st.p[who].t) == 0, "cancel");
		} else if (what == 2 || what == 3) {
			close_chan(what - 2);
		}
	}
	/* Players waiting for each other for ever: the close ends it. */
	coev_event_wait_dl(&st.done, give_up);
	for (unsigned c = 0; c < 2; c++)
		close_chan(c);
	for (unsigned i = 0; i < st.np; i++) {
		if (st.p[i].thread)
			sim_actor_join(st.p[i].a);
		else
			H_CHECK(coev_join(st.p[i].t, NULL) == 0, "join");
	}
	for (unsigned c = 0; c < 2; c++)
		drain(c);
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	H_CHECK(coev_event_init(&st.done) == 0, "event_init");
	for (unsigned c = 0; c < 2; c++)
		H_CHECK(coev_chan_new(&st.c[c].ch, sizeof(int), st.c[c].cap) ==
				0,
			"chan_new");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	for (unsigned c = 0; c < 2; c++)
		coev_chan_free(st.c[c].ch); /* aborts on a waiter left queued */
	coev_event_destroy(&st.done);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned c = 0; c < 2; c++)
		fprintf(out,
			"  channel %u: capacity %zd%s, %u sent, %u taken, "
			"%u/%u receives/sends in flight\n",
			c, (ssize_t)st.c[c].cap,
			st.c[c].closing ? ", closed" : "", st.c[c].sent,
			st.c[c].taken, st.c[c].rclaim, st.c[c].sclaim);
	for (unsigned i = 0; i < st.np; i++)
		fprintf(out, "  player %u (%s%s): %s\n", i,
			st.p[i].thread ? "thread" : "task",
			st.p[i].cancelled ? ", cancelled" : "",
			st.p[i].doing ? st.p[i].doing : "not started");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	static const size_t caps[4] = {0, 1, 2, COEV_CHAN_UNBOUNDED};
	struct prog g = {data, len, 0};
	unsigned b;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	b = prog_byte(&g);
	st.c[0].cap = caps[b % 4];
	st.c[1].cap = caps[(b / 4) % 4];
	b = prog_byte(&g);
	st.np = 1 + b % PLAYERS;
	for (unsigned i = 0; i < st.np; i++) {
		struct player *pl = &st.p[i];

		pl->id = i;
		pl->thread = (b >> (2 + i)) & (b >> 7) & 1;
		pl->nops = 1 + prog_byte(&g) % OPS;
		for (unsigned k = 0; k < pl->nops; k++) {
			pl->op[k] = (uint8_t)prog_byte(&g);
			pl->arg[k] = (uint8_t)prog_byte(&g);
		}
	}
	for (unsigned s = 0; s < STEPS; s++) {
		st.step[s][0] = (uint8_t)prog_byte(&g);
		st.step[s][1] = (uint8_t)prog_byte(&g);
	}
	for (unsigned r = 0; r < RECEIVERS; r++)
		for (unsigned p = 0; p < PLAYERS; p++)
			st.last[r][p][0] = st.last[r][p][1] = -1;
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	for (unsigned p = 0; p < st.np; p++)
		for (unsigned c = 0; c < 2; c++)
			for (unsigned s = 0; s < st.p[p].seq[c]; s++)
				H_CHECK(st.got[p][c][s] ==
						(st.msg[p][c][s] == M_OK),
					"message %#x: %s, received %u times",
					encode(p, c, s),
					st.msg[p][c][s] == M_OK ? "sent"
								: "not sent",
					st.got[p][c][s]);
}

const struct harness h_select = {
	"select",
	"select and every channel call on two channels, with close, "
	"deadlines and cancel",
	run,
};
