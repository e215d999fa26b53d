/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_lock.c — the sync primitives' answers, one primitive per run.
 *
 * Program: the primitive (unfair or fair mutex, rwlock, semaphore, event,
 * condition variable, wait group, barrier, once); workers (1-3); 2-4
 * parties, the first maybe a plain thread (an actor: it blocks where a
 * task suspends), of up to 5 operations (every wait form, with and
 * without deadline, the try forms, holds across a yield); a party that
 * main cancels after some yields (waits the program needs are shielded).
 *
 * Oracles, from coev/sync.h, on every answer: errors only as documented
 * (-ETIMEDOUT once coev_now() reached the deadline, -ECANCELED only in a
 * cancelled task); success for a call that needed no wait (rule 2: an
 * idle mutex, rwlock or semaphore, an event known set, a wait group known
 * zero, a once known done); and a model per primitive: one mutex holder;
 * readers xor one writer; at most `permits` holders, all back at the end;
 * order (a party seen parked on a fair mutex or one-permit semaphore, or
 * on a rwlock where it or the newcomer writes, is not overtaken unless it
 * gives up); a cond wait returns holding the mutex, 0 only after a signal
 * sent since it began, and every wake a signal surely gave is a 0 that
 * returns; a wait group's wait is 0 only once every done began; each
 * barrier round releases exactly its parties, none before all arrived,
 * one serial; once's function runs never twice at a time nor after
 * success, its failure only to its caller, 0 only after success; an event
 * wait is 0 only if a set could be seen. A withdrawn wait leaves nothing
 * queued (the tries succeed on the idle object at the end; destroy finds
 * no waiter); no wake is lost (deadlock detector); nothing leaks.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define PARTIES 4
#define OPS 5
#define ROUNDS 3

/* clang-format off */
enum kind { K_MUTEX, K_FAIR, K_RWLOCK, K_SEM, K_EVENT, K_COND, K_WG, K_BARRIER,
	    K_ONCE, K_KINDS };
static const char *const kind_name[K_KINDS] = { "mutex", "fair mutex",
	"rwlock", "semaphore", "event", "cond", "wait group", "barrier", "once" };
/* clang-format on */

struct party {
	unsigned id;
	bool actor;
	uint8_t op[OPS];
	unsigned nops;
	const char *doing;
	coev_task_t *task;
	uint64_t tid; /* its id (the handle goes with main's join) */
	sim_actor_t a;
	/* order: lock calls begun; per party, the call it was in when seen
	 * parked as ours began (0: not parked) */
	unsigned attempt, ahead[PARTIES], overtaken;
	bool wr;	/* the read-write lock call is a write */
	bool ran;	/* once: this call ran the function */
	int fn_ret;	/* once: what it returned */
	unsigned round; /* barrier: rounds begun */
	bool cv_in;	/* cond: in a wait, counted in st.waiters */
	coev_time_t cv_dl;
};

static struct state {
	unsigned kind, workers, np, cancel, cancel_after, arg;
	struct party p[PARTIES];
	coev_mutex_t mu;
	coev_rwlock_t rw;
	coev_sem_t sem;
	coev_event_t ev;
	coev_cond_t cv;
	coev_wg_t wg;
	coev_barrier_t bar;
	coev_once_t once;
	/* holders (mutex, semaphore, readers) and writers; calls in flight */
	int held, writers, busy;
	unsigned begun; /* lock and acquire calls begun */
	unsigned tokens, waiters, sig_seq, credit, woken, consumes, produces;
	unsigned owed; /* cond: wakes surely given (cv_firm) */
	bool cancel_sent;
	unsigned wg_total, dones_begun, dones_ended; /* wait group */
	unsigned released[ROUNDS], serial[ROUNDS];   /* barrier */
	unsigned fn_runs;			     /* once */
	bool fn_running, fn_done, once_ok;
	/* event: sets and clears begun and in flight; the last that ended */
	unsigned sets, clears, ev_flight, phase1_left;
	int ev_last;
	bool ev_overlap; /* the last ones overlapped: the flag unknown */
	int main_ret;
} st;

/* --- common ------------------------------------------------------------ */

static coev_time_t dl_of(unsigned a)
{
	return (a % 4) ? coev_deadline((coev_time_t)(a % 4) * 250) : coev_now();
}

/* An error answer: one the call documents, and only when it may. */
static void check_err(struct party *p, int r, coev_time_t dl, const char *c)
{
	if (r == -ETIMEDOUT)
		H_CHECK(dl != COEV_FOREVER && coev_now() >= dl,
			"party %u: %s: -ETIMEDOUT %lld ns before its deadline",
			p->id, c, (long long)(dl - coev_now()));
	else if (r == -ECANCELED)
		H_CHECK(!p->actor && coev_cancelled() == 1,
			"party %u: %s: -ECANCELED, not cancelled", p->id, c);
	else
		H_CHECK(0, "party %u: %s: %d", p->id, c, r);
}

/* A wait's deadline: none, or one from the op's bits. */
static coev_time_t op_dl(bool timed, unsigned a)
{
	return timed ? dl_of(a) : COEV_FOREVER;
}

static void shield(struct party *p, bool on)
{
	if (!p->actor)
		H_CHECK((on ? coev_shield_begin() : coev_shield_end()) == 0,
			"shield");
}

static void maybe_yield(unsigned a)
{
	if (a & 1)
		coev_yield();
}

/* A lock or acquire call begins: a token, nonzero when the object is
 * idle (nobody holds it, no call in flight). It ends: whether the object
 * stayed so but for this call, which then needed no wait (rule 2). */
static unsigned call_begin(void)
{
	bool idle = !st.held && !st.writers && !st.busy;

	st.busy++;
	return idle ? ++st.begun : (++st.begun, 0);
}

static bool call_end(unsigned tok)
{
	st.busy--;
	return tok && st.begun == tok;
}

/* --- mutexes ----------------------------------------------------------- */

static struct party *party_of(uint64_t id)
{
	for (unsigned i = 0; i < st.np; i++)
		if (st.p[i].tid && st.p[i].tid == id)
			return &st.p[i];
	return NULL;
}

/* Order: as p's lock call begins, note which parties are parked on obj
 * (wait: its wait note), in which call; wr: p writes (two readers may be
 * admitted together, so their order is not checked). */
static void order_begin(struct party *p, const void *obj, int wait, bool wr)
{
	coev_task_info_t info[PARTIES + 2];
	int n = coev_rt_tasks(coev_rt_current(), info, PARTIES + 2);

	p->attempt++;
	p->wr = wr;
	memset(p->ahead, 0, sizeof p->ahead);
	for (int i = 0; i < n && i < PARTIES + 2; i++) {
		struct party *q = party_of(info[i].id);

		if (q && q != p && info[i].state == COEV_TASK_WAITING &&
		    info[i].wait == wait && info[i].obj == obj && (wr || q->wr))
			p->ahead[q->id] = q->attempt;
	}
}

/* p got the lock: whoever was parked ahead of p and is still in that
 * call was overtaken, a fault once that call succeeds (a call that gives
 * up withdraws, and may be overtaken). */
static void order_got(struct party *p)
{
	for (unsigned i = 0; i < st.np; i++)
		if (p->ahead[i] && p->ahead[i] == st.p[i].attempt)
			st.p[i].overtaken = st.p[i].attempt;
	H_CHECK(p->overtaken != p->attempt,
		"party %u: the %s went to a locker that came after this "
		"one was parked",
		p->id, kind_name[st.kind]);
}

/* The mutexes and the semaphore (op 0 wait, 1 with a deadline, 2 try,
 * 3 sleep): at most one holder, or `permits`. */
static int excl_call(unsigned op, coev_time_t dl)
{
	if (st.kind == K_SEM)
		return op == 2	 ? coev_sem_tryacquire(&st.sem)
		       : op == 1 ? coev_sem_acquire_dl(&st.sem, dl)
				 : coev_sem_acquire(&st.sem);
	return op == 2	 ? coev_mutex_trylock(&st.mu)
	       : op == 1 ? coev_mutex_lock_dl(&st.mu, dl)
			 : coev_mutex_lock(&st.mu);
}

static void excl_op(struct party *p, unsigned b)
{
	unsigned op = b % 4, a = b / 4, tok;
	bool sem = st.kind == K_SEM;
	/* A semaphore of one permit is handed in order as a fair mutex. */
	bool ordered = (st.kind == K_FAIR || (sem && st.arg == 1)) &&
		       !p->actor && op < 2;
	coev_time_t dl = op_dl(op == 1, a);
	int r;

	if (op == 3) {
		coev_sleep((coev_time_t)(a % 3) * 200);
		return;
	}
	p->doing = op == 2 ? "try" : sem ? "acquire" : "lock";
	if (ordered)
		order_begin(p, sem ? (void *)&st.sem : (void *)&st.mu,
			    sem ? COEV_WAIT_SEM : COEV_WAIT_MUTEX, true);
	tok = call_begin();
	r = excl_call(op, dl);
	if (call_end(tok))
		H_CHECK(r == 0, "party %u: %s of an idle %s: %d", p->id,
			p->doing, kind_name[st.kind], r);
	if (op == 2 && r == (sem ? -EAGAIN : -EBUSY))
		return;
	if (r != 0) {
		check_err(p, r, dl, p->doing);
		return;
	}
	if (ordered)
		order_got(p);
	H_CHECK(++st.held <= (sem ? (int)st.arg : 1), "%d holders of the %s",
		st.held, kind_name[st.kind]);
	maybe_yield(a / 4);
	st.held--;
	st.busy++;
	if (sem)
		H_CHECK(coev_sem_release(&st.sem) == 0, "release");
	else
		coev_mutex_unlock(&st.mu);
	st.busy--;
}

/* --- read-write lock ---------------------------------------------------- */

static void rw_section(unsigned a, bool wr)
{
	int *in = wr ? &st.writers : &st.held;

	++*in;
	H_CHECK(st.writers <= 1 && (!st.writers || !st.held),
		"%d writers and %d readers in the rwlock", st.writers, st.held);
	maybe_yield(a);
	--*in;
	st.busy++;
	if (wr)
		coev_rwlock_wrunlock(&st.rw);
	else
		coev_rwlock_rdunlock(&st.rw);
	st.busy--;
}

static void rw_op(struct party *p, unsigned b)
{
	unsigned op = b % 6, a = b / 8;
	bool wr = op & 1, try = op >= 4;
	coev_time_t dl = op_dl(op == 2 || op == 3, a);
	unsigned tok;
	int r;

	p->doing = wr ? "wrlock" : "rdlock";
	if (!try && !p->actor)
		order_begin(p, &st.rw, COEV_WAIT_SEM, wr);
	tok = call_begin();
	if (try)
		r = wr ? coev_rwlock_trywrlock(&st.rw)
		       : coev_rwlock_tryrdlock(&st.rw);
	else if (dl != COEV_FOREVER)
		r = wr ? coev_rwlock_wrlock_dl(&st.rw, dl)
		       : coev_rwlock_rdlock_dl(&st.rw, dl);
	else
		r = wr ? coev_rwlock_wrlock(&st.rw)
		       : coev_rwlock_rdlock(&st.rw);
	if (call_end(tok))
		H_CHECK(r == 0, "party %u: %s of an idle rwlock: %d", p->id,
			p->doing, r);
	if (try && r == -EBUSY)
		return;
	if (r != 0) {
		check_err(p, r, dl, p->doing);
		return;
	}
	if (!try && !p->actor)
		order_got(p);
	rw_section(a / 4, wr);
}

/* --- event --------------------------------------------------------------- */

/* The flag as far as the program knows: 1 set, 0 clear, -1 in flux. */
static int ev_known(void)
{
	return st.ev_flight || st.ev_overlap ? -1 : st.ev_last;
}

static void ev_wait(struct party *p, bool timed, unsigned a)
{
	int k0 = ev_known(), r;
	unsigned s0 = st.sets, c0 = st.clears;
	coev_time_t dl = op_dl(timed, a);

	p->doing = "event wait";
	r = timed ? coev_event_wait_dl(&st.ev, dl) : coev_event_wait(&st.ev);
	if (k0 == 1 && st.clears == c0)
		H_CHECK(r == 0, "party %u: wait on a set event: %d", p->id, r);
	if (r == 0)
		H_CHECK(k0 != 0 || st.sets != s0,
			"party %u: event wait returned 0, never set", p->id);
	else
		check_err(p, r, dl, "event wait");
}

static void ev_op(struct party *p, unsigned b)
{
	unsigned op = b % 4, a = b / 4;
	int k0 = ev_known(), v;
	unsigned s0 = st.sets, c0 = st.clears;

	if (op >= 2) {
		ev_wait(p, true, a);
		return;
	}
	if (a & 1) {
		p->doing = "is_set";
		v = coev_event_is_set(&st.ev);
		H_CHECK(k0 < 0 || st.sets != s0 || st.clears != c0 || v == k0,
			"party %u: is_set %d, the event is %d", p->id, v, k0);
		return;
	}
	p->doing = op ? "clear" : "set";
	op ? st.clears++ : st.sets++;
	st.ev_overlap = st.ev_flight > 0;
	st.ev_flight++;
	(op ? coev_event_clear : coev_event_set)(&st.ev);
	st.ev_flight--;
	st.ev_last = !op;
}

/* --- condition variable ---------------------------------------------------- */

static void cv_lock(struct party *p)
{
	shield(p, true);
	H_CHECK(coev_mutex_lock(&st.mu) == 0, "cond's mutex");
	shield(p, false);
	H_CHECK(++st.held == 1, "%d holders of the cond's mutex", st.held);
}

static void cv_unlock(void)
{
	st.held--;
	coev_mutex_unlock(&st.mu);
}

/* Wait for a token; give up on the first error, with the mutex held. */
static void cv_consume(struct party *p, bool timed, unsigned a)
{
	coev_time_t dl = op_dl(timed, a);
	unsigned seq;
	int r = 0;

	cv_lock(p);
	while (st.tokens == 0) {
		p->doing = "cond wait";
		seq = st.sig_seq;
		st.waiters++;
		p->cv_in = true;
		p->cv_dl = dl;
		st.held--;
		r = timed ? coev_cond_wait_dl(&st.cv, &st.mu, dl)
			  : coev_cond_wait(&st.cv, &st.mu);
		H_CHECK(++st.held == 1,
			"party %u: cond wait returned (%d) without the mutex: "
			"%d holders",
			p->id, r, st.held);
		st.waiters--;
		p->cv_in = false;
		if (r != 0) {
			check_err(p, r, dl, "cond wait");
			break;
		}
		H_CHECK(st.sig_seq != seq,
			"party %u: cond wait returned 0 with no signal sent",
			p->id);
		H_CHECK(++st.woken <= st.credit,
			"%u cond waits woken by signals that could wake %u",
			st.woken, st.credit);
	}
	if (r == 0)
		st.tokens--;
	cv_unlock();
}

/* Just after a signal (all: broadcast) under the mutex: the waiters it
 * surely found queued or granted (queued before the mutex was let go; no
 * deadline passed, no cancel sent by its return), less those that may
 * hold an earlier grant (pending): the wakes it surely gave. */
static unsigned cv_firm(bool all, unsigned pending)
{
	unsigned firm = 0;

	for (unsigned i = 0; i < st.np; i++)
		firm += st.p[i].cv_in &&
			(st.p[i].cv_dl == COEV_FOREVER ||
			 coev_now() < st.p[i].cv_dl) &&
			!(st.cancel_sent && st.cancel == i);
	if (firm <= pending)
		return 0;
	return all ? firm - pending : 1;
}

static void cv_produce(struct party *p, bool all)
{
	unsigned pending;

	p->doing = all ? "broadcast" : "signal";
	cv_lock(p);
	st.tokens++;
	st.sig_seq++;
	pending = st.credit - st.woken;
	st.credit += all ? st.waiters : st.waiters > 0;
	if (all)
		coev_cond_broadcast(&st.cv);
	else
		coev_cond_signal(&st.cv);
	st.owed += cv_firm(all, pending);
	cv_unlock();
}

static void cv_op(struct party *p, unsigned b)
{
	if (b % 4 < 2)
		cv_consume(p, b % 4 == 1, b / 4);
	else
		cv_produce(p, b % 4 == 3);
}

/* --- wait group ----------------------------------------------------------- */

static void wg_op(struct party *p, unsigned b)
{
	bool zero = st.dones_ended == st.wg_total, timed = b % 3 == 2;
	coev_time_t dl = op_dl(timed, b / 4);
	int r;

	if (b % 3 == 0) {
		p->doing = "done";
		st.dones_begun++;
		coev_wg_done(&st.wg);
		st.dones_ended++;
		return;
	}
	p->doing = "wg wait";
	r = timed ? coev_wg_wait_dl(&st.wg, dl) : coev_wg_wait(&st.wg);
	if (zero)
		H_CHECK(r == 0, "party %u: wait on a zero wait group: %d",
			p->id, r);
	if (r == 0)
		H_CHECK(st.dones_begun == st.wg_total,
			"party %u: wait returned 0 after %u of %u dones", p->id,
			st.dones_begun, st.wg_total);
	else
		check_err(p, r, dl, "wg wait");
}

/* --- barrier ------------------------------------------------------------- */

static void bar_got(struct party *p, int r)
{
	unsigned g = p->round - 1;

	for (unsigned i = 0; i < st.np; i++)
		H_CHECK(st.p[i].round > g,
			"party %u left round %u before party %u arrived", p->id,
			g, i);
	H_CHECK(++st.released[g] <= st.np, "round %u released %u parties", g,
		st.released[g]);
	if (r == COEV_BARRIER_SERIAL)
		H_CHECK(++st.serial[g] == 1, "round %u: two serial parties", g);
}

/* Each round: maybe a try with a deadline (which sees the cancel), then,
 * if that gave up, a wait the round needs (shielded). */
static void bar_round(struct party *p, unsigned b)
{
	coev_time_t dl = dl_of(b / 4);
	int r = 0;

	p->doing = "barrier";
	p->round++;
	maybe_yield(b / 2);
	if (b & 1) {
		r = coev_barrier_wait_dl(&st.bar, dl);
		if (r < 0)
			check_err(p, r, dl, "barrier wait_dl");
	}
	if (!(b & 1) || r < 0) {
		shield(p, true);
		r = coev_barrier_wait(&st.bar);
		shield(p, false);
	}
	H_CHECK(r == 0 || r == COEV_BARRIER_SERIAL, "party %u: barrier: %d",
		p->id, r);
	bar_got(p, r);
}

/* --- once ------------------------------------------------------------------ */

static int once_fn(void *arg)
{
	struct party *p = arg;

	H_CHECK(!st.fn_running, "once's function runs twice at a time");
	H_CHECK(!st.fn_done, "once's function runs after it succeeded");
	st.fn_running = true;
	p->ran = true;
	st.fn_runs++;
	if (st.arg & 4)
		coev_sleep((coev_time_t)(st.arg % 4) * 200);
	else
		maybe_yield(st.arg);
	st.fn_running = false;
	if (st.fn_runs <= st.arg % 3) {
		return p->fn_ret = -EIO;
	}
	st.fn_done = true;
	return p->fn_ret = 0;
}

static void once_op(struct party *p, unsigned b)
{
	bool ok = st.once_ok, timed = b % 3 == 1;
	coev_time_t dl = op_dl(timed, b / 4);
	int r;

	if (b % 3 == 2) {
		p->doing = "once_done";
		r = coev_once_done(&st.once);
		H_CHECK(r == 0 || r == 1, "once_done: %d", r);
		H_CHECK(!ok || r == 1, "once_done 0 after a once returned 0");
		H_CHECK(!r || st.fn_done, "once_done 1 before fn succeeded");
		return;
	}
	p->doing = "once";
	p->ran = false;
	r = timed ? coev_once_dl(&st.once, once_fn, p, dl)
		  : coev_once(&st.once, once_fn, p);
	if (ok)
		H_CHECK(r == 0, "party %u: once on a done once: %d", p->id, r);
	if (r == 0) {
		H_CHECK(st.fn_done && !st.fn_running,
			"party %u: once returned 0 before fn succeeded", p->id);
		H_CHECK(!p->ran || p->fn_ret == 0, "once 0, fn failed");
		H_CHECK(coev_once_done(&st.once) == 1, "not done after 0");
		st.once_ok = true;
	} else if (r == -EIO) {
		H_CHECK(p->ran && p->fn_ret == -EIO,
			"party %u: fn's failure, not having run it", p->id);
	} else {
		H_CHECK(!p->ran, "party %u: ran fn, then %d", p->id, r);
		check_err(p, r, dl, "once");
	}
}

/* --- parties --------------------------------------------------------------- */

static void party_main(struct party *p)
{
	static void (*const op[K_KINDS])(struct party *, unsigned) = {
		excl_op, excl_op, rw_op,     excl_op, ev_op,
		cv_op,	 wg_op,	  bar_round, once_op,
	};
	unsigned n = st.kind == K_BARRIER ? st.arg % ROUNDS + 1 : p->nops;

	p->doing = "started";
	for (unsigned i = 0; i < n; i++)
		op[st.kind](p, p->op[i]);
	if (st.kind == K_EVENT) {
		/* The last one sets: no clear comes after that. */
		if (--st.phase1_left == 0)
			ev_op(p, 0);
		if (p->op[0] & 0x80)
			ev_wait(p, false, 0);
	}
	p->doing = "done";
}

static int party_task(void *arg)
{
	party_main(arg);
	return 0;
}

static void party_actor(void *arg)
{
	party_main(arg);
}

/* What main adds for the program to finish: the cond's missing tokens,
 * the wait group's last done. */
static void main_part(void)
{
	struct party m = {.id = PARTIES, .actor = true};

	if (st.kind == K_COND)
		for (unsigned i = st.produces; i < st.consumes; i++)
			cv_produce(&m, i & 1);
	if (st.kind == K_WG)
		wg_op(&m, 0);
}

/* After every party: the object is idle, with nobody left queued. */
static void check_idle(void)
{
	int r = 0;

	if (st.kind == K_MUTEX || st.kind == K_FAIR) {
		if ((r = coev_mutex_trylock(&st.mu)) == 0)
			coev_mutex_unlock(&st.mu);
	} else if (st.kind == K_RWLOCK) {
		if ((r = coev_rwlock_trywrlock(&st.rw)) == 0)
			coev_rwlock_wrunlock(&st.rw);
		if (r == 0 && (r = coev_rwlock_tryrdlock(&st.rw)) == 0)
			coev_rwlock_rdunlock(&st.rw);
	} else if (st.kind == K_SEM) {
		H_CHECK(coev_sem_value(&st.sem) == st.arg,
			"the semaphore ended with %u of %u permits",
			coev_sem_value(&st.sem), st.arg);
		for (unsigned i = 0; r == 0 && i < st.arg; i++)
			r = coev_sem_tryacquire(&st.sem);
		for (unsigned i = 0; r == 0 && i < st.arg; i++)
			coev_sem_release(&st.sem);
	} else if (st.kind == K_BARRIER) {
		for (unsigned g = 0; g < st.arg % ROUNDS + 1; g++)
			H_CHECK(st.released[g] == st.np && st.serial[g] == 1,
				"round %u: %u released, %u serial", g,
				st.released[g], st.serial[g]);
	} else if (st.kind == K_COND) {
		H_CHECK(st.woken >= st.owed,
			"%u cond waits got 0, %u wakes sure", st.woken,
			st.owed);
	} else if (st.kind == K_ONCE) {
		H_CHECK(coev_once_done(&st.once) == st.fn_done,
			"once_done %d, fn succeeded %d",
			coev_once_done(&st.once), st.fn_done);
	}
	H_CHECK(r == 0, "the idle %s refuses a try: %d", kind_name[st.kind], r);
}

static int main_task(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.np; i++) {
		struct party *p = &st.p[i];

		if (p->actor)
			H_CHECK(sim_actor_start(&p->a, "party", party_actor,
						p) == 0,
				"actor");
		else
			H_CHECK(coev_spawn(party_task, p, &p->task) == 0,
				"spawn");
		p->tid = coev_task_id(p->task);
	}
	for (unsigned i = 0; i < st.cancel_after; i++)
		coev_yield();
	/* Only once it runs: a task cancelled before that never runs,
	 * and the program needs its wakes. (No loop waits for that: under
	 * PCT a loop that stays runnable starves the others.) */
	if (st.cancel < st.np && st.p[st.cancel].task &&
	    st.p[st.cancel].doing) {
		st.cancel_sent = true;
		coev_cancel(st.p[st.cancel].task);
	}
	main_part();
	/* Tasks first: a worker blocked in an actor's join runs no task. */
	for (unsigned i = 0; i < st.np; i++)
		if (st.p[i].task)
			H_CHECK(coev_join(st.p[i].task, NULL) == 0, "join");
	for (unsigned i = 0; i < st.np; i++)
		if (st.p[i].actor)
			sim_actor_join(st.p[i].a);
	check_idle();
	return 0;
}

static void objects(bool make)
{
	if (!make) {
		coev_mutex_destroy(&st.mu);
		coev_rwlock_destroy(&st.rw);
		coev_sem_destroy(&st.sem);
		coev_event_destroy(&st.ev);
		coev_cond_destroy(&st.cv);
		coev_wg_destroy(&st.wg);
		coev_barrier_destroy(&st.bar);
		return;
	}
	H_CHECK(coev_mutex_init(&st.mu,
				st.kind == K_FAIR ? COEV_MUTEX_FAIR : 0) == 0,
		"mutex_init");
	H_CHECK(coev_rwlock_init(&st.rw) == 0, "rwlock_init");
	H_CHECK(coev_sem_init(&st.sem, st.arg) == 0, "sem_init");
	H_CHECK(coev_event_init(&st.ev) == 0, "event_init");
	H_CHECK(coev_cond_init(&st.cv) == 0, "cond_init");
	H_CHECK(coev_wg_init(&st.wg) == 0, "wg_init");
	coev_wg_add(&st.wg, (long)st.wg_total);
	H_CHECK(coev_barrier_init(&st.bar, st.np) == 0, "barrier_init");
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	fprintf(out, "  %s (arg %u): held %d, writers %d, busy %d, tokens %u\n",
		kind_name[st.kind], st.arg, st.held, st.writers, st.busy,
		st.tokens);
	for (unsigned i = 0; i < st.np; i++)
		fprintf(out, "  party %u (%s%s): %s\n", i,
			st.p[i].actor ? "actor" : "task",
			st.cancel == i ? ", cancelled" : "",
			st.p[i].doing ? st.p[i].doing : "not started");
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	/* Here, not before sim_run: it begins by clearing the description. */
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	objects(true);
	st.main_ret = coev_run(main_task, NULL, &cfg);
	objects(false);
}

/* Make the program finishable: a wait with no deadline comes after the
 * party's own wakes (wait group), and the cond gets its tokens. */
static void fix_up(struct party *p)
{
	bool later_wake = false;

	for (unsigned j = p->nops; j-- > 0;) {
		unsigned b = p->op[j];

		if (st.kind == K_WG && b % 3 == 0) {
			later_wake = true;
			st.wg_total++;
		} else if (st.kind == K_WG && b % 3 == 1 && later_wake) {
			p->op[j] = (uint8_t)(b + 1); /* a wait with deadline */
		}
		if (st.kind != K_COND)
			continue;
		if (b % 4 >= 2) {
			later_wake = true;
			st.produces++;
			continue;
		}
		st.consumes++;
		if (b % 4 == 0 && later_wake)
			p->op[j] = (uint8_t)(b + 1);
	}
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};

	memset(&st, 0, sizeof st);
	st.kind = prog_byte(&g) % K_KINDS;
	st.workers = 1 + prog_byte(&g) % 3;
	st.np = 2 + prog_byte(&g) % (PARTIES - 1);
	st.arg = prog_byte(&g);
	if (st.kind == K_SEM)
		st.arg = 1 + st.arg % 2;
	st.cancel = prog_byte(&g) % (st.np + 1);
	st.cancel_after = prog_byte(&g) % 4;
	st.phase1_left = st.np;
	for (unsigned i = 0; i < st.np; i++) {
		struct party *p = &st.p[i];

		p->id = i;
		/* One plain thread at most: the simulation's plain threads
		 * share one OS thread, so a mutex takes two for one. */
		p->actor = i == 0 && (prog_byte(&g) & 1);
		p->nops = 1 + prog_byte(&g) % OPS;
		for (unsigned j = 0; j < OPS; j++)
			p->op[j] = (uint8_t)prog_byte(&g);
		fix_up(p);
	}
	st.wg_total++; /* main's */
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
}

const struct harness h_lock = {
	"lock",
	"each sync primitive's answers against a sequential model",
	run,
};
