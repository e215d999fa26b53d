/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_sync.c — the sync and channels harness.
 *
 * Program: workers (1-3); a semaphore's permits (1-3); a channel's
 * capacity (0-2, 0 a rendezvous); 1-2 producers sending 1-6 numbered
 * messages each and 1-2 consumers receiving until the channel closes;
 * 2-5 tasks of up to 6 operations on one mutex, the semaphore and an
 * event (sections with and without deadlines, trylock, event waits,
 * yields, sleeps); and a task that main cancels after some yields.
 *
 * Beside them, lifetimes: some of a wait group, an event, a once, a
 * mutex, a semaphore, a condition variable, a barrier and a channel, each
 * in a heap block of its own with two parties (tasks or foreign actors)
 * that wait and wake, and the party whose call returns last by the
 * program's logic gives the block up at once (see life_gone).
 *
 * Oracles: mutual exclusion (one holder in the mutex section, at most
 * `permits` in the semaphore's); every message received exactly once, and
 * each consumer sees each producer's messages in the order they were sent
 * (the channel's sequential model); the semaphore ends with all its
 * permits (none lost to a cancellation or a timeout); no wait is left
 * hanging (the simulation's deadlock detector); nothing leaked; coev
 * touches no object after its last waiter returned (coev/sync.h's
 * lifetime rule: the block's pattern is intact when the run ends, and
 * ASan builds report any access where it happens).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/harness.h"

#if defined(COEV_ASAN)
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

#define TASKS 5
#define OPS 6
#define PRODUCERS 2
#define CONSUMERS 2
#define ITEMS 6

enum {
	OP_MUTEX,
	OP_SEM,
	OP_SEM_DL,
	OP_EVENT,
	OP_MUTEX_DL,
	OP_TRYLOCK,
	OP_YIELD,
	OP_SLEEP
};

struct task_prog {
	uint8_t op[OPS];
	unsigned nops;
	const char *doing;
};

enum {
	L_WG,
	L_EVENT,
	L_ONCE,
	L_MUTEX,
	L_SEM,
	L_COND,
	L_BARRIER,
	L_CHAN,
	L_KINDS
};

static const char *const life_name[L_KINDS] = {
	"wait group",	      "event",	 "once",    "mutex", "semaphore",
	"condition variable", "barrier", "channel",
};

/* One object's heap block (the mutex beside the condition variable). */
struct life_block {
	coev_mutex_t mu;
	union {
		coev_wg_t wg;
		coev_event_t ev;
		coev_once_t once;
		coev_sem_t sem;
		coev_cond_t cv;
		coev_barrier_t bar;
	};
	int flag; /* the condition variable's predicate */
};

/* Party 0 waits, party 1 wakes (both lock the mutex and both arrive at
 * the barrier; either may run once's function). */
struct life_party {
	unsigned kind, id;
	unsigned how; /* a program byte: bit 0 an actor, then op choices */
	const char *doing;
	coev_task_t *task;
	sim_actor_t actor;
};

static struct state {
	unsigned workers, permits, cap, ntasks, nprod, ncons, items;
	unsigned cancel_task, cancel_after; /* cancel_task == ntasks: none */
	struct task_prog t[TASKS];
	coev_mutex_t mu;
	coev_sem_t sem;
	coev_event_t ev;
	coev_chan_t *ch;
	int in_mutex, in_sem;
	/* got[c][p]: messages of producer p seen by consumer c, in order */
	int got[CONSUMERS][PRODUCERS][ITEMS];
	unsigned ngot[CONSUMERS][PRODUCERS];
	const char *prod_doing[PRODUCERS], *cons_doing[CONSUMERS];
	unsigned seen[PRODUCERS][ITEMS];
	unsigned sem_end;
	int main_ret;
	/* lifetimes */
	unsigned life; /* bit per L_*: the objects of this run */
	struct life_party lp[L_KINDS][2];
	struct life_block *lb[L_KINDS];
	coev_chan_t *lch;
	unsigned lleft[L_KINDS]; /* parties still to return (mutex, barrier) */
	bool lgone[L_KINDS];
} st;

static void mutex_section(unsigned a)
{
	st.in_mutex++;
	H_CHECK(st.in_mutex == 1, "%d tasks hold the mutex", st.in_mutex);
	if (a & 1)
		coev_yield();
	st.in_mutex--;
	coev_mutex_unlock(&st.mu);
}

static void sem_section(unsigned a)
{
	st.in_sem++;
	H_CHECK(st.in_sem <= (int)st.permits, "%d holders of %u permits",
		st.in_sem, st.permits);
	if (a & 1)
		coev_yield();
	st.in_sem--;
	coev_sem_release(&st.sem);
}

static coev_time_t short_deadline(unsigned a)
{
	return coev_deadline((coev_time_t)(a % 3) * 300);
}

static int task_main(void *arg)
{
	struct task_prog *p = arg;
	int r;

	for (unsigned i = 0; i < p->nops; i++) {
		unsigned op = p->op[i] % 8, a = p->op[i] / 8;

		switch (op) {
		case OP_MUTEX:
			p->doing = "mutex lock";
			r = coev_mutex_lock(&st.mu);
			H_CHECK(r == 0 || r == -ECANCELED, "lock: %d", r);
			if (r == 0)
				mutex_section(a);
			break;
		case OP_MUTEX_DL:
			p->doing = "mutex lock with a deadline";
			r = coev_mutex_lock_dl(&st.mu, short_deadline(a));
			H_CHECK(r == 0 || r == -ECANCELED || r == -ETIMEDOUT,
				"lock_dl: %d", r);
			if (r == 0)
				mutex_section(a);
			break;
		case OP_TRYLOCK:
			if (coev_mutex_trylock(&st.mu) == 0)
				mutex_section(0);
			break;
		case OP_SEM:
			p->doing = "semaphore acquire";
			r = coev_sem_acquire(&st.sem);
			H_CHECK(r == 0 || r == -ECANCELED, "acquire: %d", r);
			if (r == 0)
				sem_section(a);
			break;
		case OP_SEM_DL:
			p->doing = "semaphore acquire with a deadline";
			r = coev_sem_acquire_dl(&st.sem, short_deadline(a));
			H_CHECK(r == 0 || r == -ECANCELED || r == -ETIMEDOUT,
				"acquire_dl: %d", r);
			if (r == 0)
				sem_section(a);
			break;
		case OP_EVENT:
			p->doing = "event wait";
			r = coev_event_wait(&st.ev);
			H_CHECK(r == 0 || r == -ECANCELED, "event wait: %d", r);
			break;
		case OP_YIELD: coev_yield(); break;
		case OP_SLEEP:
			p->doing = "sleep";
			coev_sleep((coev_time_t)(a % 4) * 200);
			break;
		}
	}
	p->doing = "done";
	return 0;
}

static int producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	int r;

	for (unsigned i = 0; i < st.items; i++) {
		int msg = (int)(id * 100 + i);

		st.prod_doing[id] = "send";
		r = coev_chan_send(st.ch, &msg);
		H_CHECK(r == 0, "producer %u: send %u: %d", id, i, r);
	}
	st.prod_doing[id] = "done";
	return 0;
}

static int consumer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	int msg, r;

	for (;;) {
		st.cons_doing[id] = "recv";
		r = coev_chan_recv(st.ch, &msg);
		if (r == COEV_ECLOSED)
			break;
		H_CHECK(r == 0, "consumer %u: recv: %d", id, r);
		unsigned p = (unsigned)msg / 100, seq = (unsigned)msg % 100;

		H_CHECK(p < st.nprod && seq < st.items, "bad message %d", msg);
		H_CHECK(st.ngot[id][p] == 0 ||
				st.got[id][p][st.ngot[id][p] - 1] < (int)seq,
			"consumer %u: producer %u's %u after %d", id, p, seq,
			st.got[id][p][st.ngot[id][p] - 1]);
		st.got[id][p][st.ngot[id][p]++] = (int)seq;
		H_CHECK(++st.seen[p][seq] == 1, "message %d received twice",
			msg);
	}
	st.cons_doing[id] = "done";
	return 0;
}

/* --- lifetimes --------------------------------------------------------- */

#define LIFE_PATTERN 0xa5

/*
 * The program is done with object k: its last user's call has returned.
 * As if the block were freed and its memory reused, it is filled with a
 * pattern, and poisoned under ASan; it is checked and freed when the run
 * ends (life_end).
 */
static void life_gone(unsigned k)
{
	H_CHECK(!st.lgone[k], "the %s given up twice", life_name[k]);
	st.lgone[k] = true;
	/* (The channel's own memory went back with coev_chan_free.) */
	memset(st.lb[k], LIFE_PATTERN, sizeof *st.lb[k]);
#if defined(COEV_ASAN)
	__asan_poison_memory_region(st.lb[k], sizeof *st.lb[k]);
#endif
}

static int life_once_fn(void *arg)
{
	*(bool *)arg = true;
	return 0;
}

/* Both parties call once; the one that did not run the function returns
 * last by the program's logic (the runner's call may still be in
 * flight). */
static bool life_once(struct life_block *b)
{
	bool ran = false;
	int r = coev_once(&b->once, life_once_fn, &ran);

	H_CHECK(r == 0, "once: %d", r);
	return !ran;
}

/* A reference count under the mutex; the party that drops the last one
 * gives the mutex up after unlocking it. Tries with short deadlines
 * first, and the first lock taken is the party's last: a locker that
 * gave up while the other party unlocked can find the mutex free while
 * that unlock is still inside its call. */
static bool life_mutex(struct life_party *p, struct life_block *b)
{
	bool last;
	int r = -ETIMEDOUT;

	for (unsigned i = 0; r != 0 && i < (p->how >> 2) % 8; i++) {
		r = coev_mutex_lock_dl(&b->mu, short_deadline(p->how >> 5));
		H_CHECK(r == 0 || r == -ETIMEDOUT, "lock_dl: %d", r);
	}
	if (r != 0)
		r = coev_mutex_lock(&b->mu);
	H_CHECK(r == 0, "lock: %d", r);
	last = --st.lleft[L_MUTEX] == 0;
	/* A task may hold it across a yield: the other party then comes
	 * to wait. */
	if (!(p->how & 1) && (p->how & 2))
		coev_yield();
	coev_mutex_unlock(&b->mu);
	return last;
}

/* The waiter returns once it saw the flag set, holding nothing. */
static bool life_cond(struct life_party *p, struct life_block *b)
{
	H_CHECK(coev_mutex_lock(&b->mu) == 0, "cond's lock");
	if (p->id == 1) {
		b->flag = 1;
		if (p->how & 2)
			coev_cond_broadcast(&b->cv);
		else
			coev_cond_signal(&b->cv);
		coev_mutex_unlock(&b->mu);
		return false;
	}
	while (!b->flag)
		H_CHECK(coev_cond_wait(&b->cv, &b->mu) == 0, "cond_wait");
	coev_mutex_unlock(&b->mu);
	return true;
}

/* Party 1 sends one or two messages and closes; party 0 receives until
 * the channel is closed and frees it. */
static bool life_chan(struct life_party *p)
{
	int m = 0, r;

	if (p->id == 1) {
		for (unsigned i = 0; i < 1 + (p->how >> 1) % 2; i++)
			H_CHECK(coev_chan_send(st.lch, &m) == 0, "send");
		H_CHECK(coev_chan_close(st.lch) == 0, "close");
		return false;
	}
	while ((r = coev_chan_recv(st.lch, &m)) == 0)
		;
	H_CHECK(r == COEV_ECLOSED, "recv: %d", r);
	coev_chan_free(st.lch);
	return true;
}

static bool life_call(struct life_party *p, struct life_block *b)
{
	int r;

	switch (p->kind) {
	case L_WG:
		if (p->id == 1) {
			coev_wg_done(&b->wg);
			return false;
		}
		H_CHECK((r = coev_wg_wait(&b->wg)) == 0, "wg_wait: %d", r);
		return true;
	case L_EVENT:
		if (p->id == 1) {
			coev_event_set(&b->ev);
			return false;
		}
		H_CHECK((r = coev_event_wait(&b->ev)) == 0, "event: %d", r);
		return true;
	case L_SEM:
		if (p->id == 1) {
			H_CHECK(coev_sem_release(&b->sem) == 0, "release");
			return false;
		}
		H_CHECK((r = coev_sem_acquire(&b->sem)) == 0, "sem: %d", r);
		return true;
	case L_BARRIER:
		r = coev_barrier_wait(&b->bar);
		H_CHECK(r == 0 || r == COEV_BARRIER_SERIAL, "barrier: %d", r);
		return --st.lleft[L_BARRIER] == 0;
	case L_ONCE: return life_once(b);
	case L_MUTEX: return life_mutex(p, b);
	case L_COND: return life_cond(p, b);
	default: return life_chan(p);
	}
}

static void life_party(struct life_party *p)
{
	p->doing = life_name[p->kind];
	if (life_call(p, st.lb[p->kind]))
		life_gone(p->kind);
	p->doing = "done";
}

static int life_task(void *arg)
{
	life_party(arg);
	return 0;
}

static void life_actor(void *arg)
{
	life_party(arg);
}

static void life_start(void)
{
	for (unsigned k = 0; k < L_KINDS; k++) {
		if (!(st.life & (1u << k)))
			continue;
		for (unsigned i = 0; i < 2; i++) {
			struct life_party *p = &st.lp[k][i];

			if (p->how & 1)
				H_CHECK(sim_actor_start(&p->actor, "life",
							life_actor, p) == 0,
					"actor start");
			else
				H_CHECK(coev_spawn(life_task, p, &p->task) == 0,
					"spawn");
		}
	}
}

/* Tasks first: an actor may wait for one, and a worker blocked in an
 * actor's join runs no task. */
static void life_join(void)
{
	for (unsigned k = 0; k < L_KINDS; k++)
		for (unsigned i = 0; i < 2; i++)
			if (st.lp[k][i].task)
				H_CHECK(coev_join(st.lp[k][i].task, NULL) == 0,
					"join");
	for (unsigned k = 0; k < L_KINDS; k++)
		for (unsigned i = 0; i < 2; i++)
			if ((st.life & (1u << k)) && (st.lp[k][i].how & 1))
				sim_actor_join(st.lp[k][i].actor);
}

/* On the host, before the runtime starts. */
static void life_init(void)
{
	for (unsigned k = 0; k < L_KINDS; k++) {
		struct life_block *b;

		if (!(st.life & (1u << k)))
			continue;
		b = st.lb[k] = calloc(1, sizeof *b);
		H_CHECK(b != NULL, "calloc");
		H_CHECK(coev_mutex_init(&b->mu, st.lp[k][1].how & 0x80
							? COEV_MUTEX_FAIR
							: 0) == 0,
			"mutex_init");
		st.lleft[k] = 2;
		switch (k) {
		case L_WG: coev_wg_add(&b->wg, 1); break;
		case L_EVENT:
			H_CHECK(coev_event_init(&b->ev) == 0, "init");
			break;
		case L_SEM:
			H_CHECK(coev_sem_init(&b->sem, 0) == 0, "init");
			break;
		case L_COND:
			H_CHECK(coev_cond_init(&b->cv) == 0, "init");
			break;
		case L_BARRIER:
			H_CHECK(coev_barrier_init(&b->bar, 2) == 0, "init");
			break;
		case L_CHAN:
			H_CHECK(coev_chan_new(&st.lch, sizeof(int),
					      (st.lp[k][0].how >> 6) & 1) == 0,
				"chan_new");
			break;
		}
	}
}

/* On the host, once the runtime is gone: every block was given up, and
 * nothing wrote to it since. */
static void life_end(void)
{
	for (unsigned k = 0; k < L_KINDS; k++) {
		const unsigned char *m = (const unsigned char *)st.lb[k];

		if (!(st.life & (1u << k)))
			continue;
		H_CHECK(st.lgone[k], "the %s was never given up", life_name[k]);
#if defined(COEV_ASAN)
		__asan_unpoison_memory_region(m, sizeof *st.lb[k]);
#endif
		for (size_t i = 0; i < sizeof *st.lb[k]; i++)
			H_CHECK(m[i] == LIFE_PATTERN,
				"the %s's byte %zu was written after its last "
				"waiter returned",
				life_name[k], i);
		free(st.lb[k]);
	}
}

static int main_task(void *arg)
{
	coev_task_t *ts[TASKS], *ps[PRODUCERS], *cs[CONSUMERS];
	int r;

	(void)arg;
	life_start();
	for (unsigned i = 0; i < st.ntasks; i++)
		H_CHECK(coev_spawn(task_main, &st.t[i], &ts[i]) == 0, "spawn");
	for (unsigned i = 0; i < st.nprod; i++)
		H_CHECK(coev_spawn(producer, (void *)(uintptr_t)i, &ps[i]) == 0,
			"spawn");
	for (unsigned i = 0; i < st.ncons; i++)
		H_CHECK(coev_spawn(consumer, (void *)(uintptr_t)i, &cs[i]) == 0,
			"spawn");
	for (unsigned i = 0; i < st.cancel_after; i++)
		coev_yield();
	if (st.cancel_task < st.ntasks)
		coev_cancel(ts[st.cancel_task]);
	coev_event_set(&st.ev);
	for (unsigned i = 0; i < st.ntasks; i++) {
		r = coev_join(ts[i], NULL);
		H_CHECK(r == 0, "join task: %d", r);
	}
	for (unsigned i = 0; i < st.nprod; i++)
		H_CHECK(coev_join(ps[i], NULL) == 0, "join producer");
	H_CHECK(coev_chan_close(st.ch) == 0, "close");
	for (unsigned i = 0; i < st.ncons; i++)
		H_CHECK(coev_join(cs[i], NULL) == 0, "join consumer");
	life_join();
	return 0;
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	h_config(&cfg, st.workers);
	H_CHECK(coev_mutex_init(&st.mu, 0) == 0, "mutex_init");
	H_CHECK(coev_sem_init(&st.sem, st.permits) == 0, "sem_init");
	H_CHECK(coev_event_init(&st.ev) == 0, "event_init");
	H_CHECK(coev_chan_new(&st.ch, sizeof(int), st.cap) == 0, "chan_new");
	life_init();
	st.main_ret = coev_run(main_task, NULL, &cfg);
	life_end();
	st.sem_end = coev_sem_value(&st.sem);
	coev_chan_free(st.ch);
	coev_event_destroy(&st.ev);
	coev_sem_destroy(&st.sem);
	coev_mutex_destroy(&st.mu);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.ntasks; i++)
		fprintf(out, "  task %u: %s\n", i,
			st.t[i].doing ? st.t[i].doing : "not started");
	for (unsigned i = 0; i < st.nprod; i++)
		fprintf(out, "  producer %u: %s\n", i,
			st.prod_doing[i] ? st.prod_doing[i] : "not started");
	for (unsigned i = 0; i < st.ncons; i++)
		fprintf(out, "  consumer %u: %s\n", i,
			st.cons_doing[i] ? st.cons_doing[i] : "not started");
	fprintf(out, "  semaphore: %u of %u permits free, %d holders\n",
		coev_sem_value(&st.sem), st.permits, st.in_sem);
	for (unsigned k = 0; k < L_KINDS; k++)
		for (unsigned i = 0; st.life & (1u << k) && i < 2; i++)
			fprintf(out, "  %s party %u (%s): %s\n", life_name[k],
				i, st.lp[k][i].how & 1 ? "actor" : "task",
				st.lp[k][i].doing ? st.lp[k][i].doing
						  : "not started");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.permits = 1 + prog_byte(&g) % 3;
	st.cap = prog_byte(&g) % 3;
	st.nprod = 1 + prog_byte(&g) % PRODUCERS;
	st.ncons = 1 + prog_byte(&g) % CONSUMERS;
	st.items = 1 + prog_byte(&g) % ITEMS;
	st.ntasks = 2 + prog_byte(&g) % (TASKS - 1);
	st.cancel_task = prog_byte(&g) % (st.ntasks + 1);
	st.cancel_after = prog_byte(&g) % 4;
	for (unsigned i = 0; i < st.ntasks; i++) {
		st.t[i].nops = prog_byte(&g) % (OPS + 1);
		for (unsigned j = 0; j < st.t[i].nops; j++)
			st.t[i].op[j] = (uint8_t)prog_byte(&g);
	}
	st.life = prog_byte(&g);
	for (unsigned k = 0; k < L_KINDS; k++) {
		for (unsigned i = 0; st.life & (1u << k) && i < 2; i++) {
			st.lp[k][i].kind = k;
			st.lp[k][i].id = i;
			st.lp[k][i].how = prog_byte(&g);
		}
		/* Never two actors: the simulation's plain threads share
		 * one OS thread, so a mutex or once would take them for
		 * one caller. */
		if (st.lp[k][1].how & 1)
			st.lp[k][0].how &= ~1u;
	}
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	H_CHECK(st.sem_end == st.permits,
		"the semaphore ended with %u of %u permits", st.sem_end,
		st.permits);
	for (unsigned p = 0; p < st.nprod; p++) {
		unsigned total = 0;

		for (unsigned c = 0; c < st.ncons; c++)
			total += st.ngot[c][p];
		H_CHECK(total == st.items,
			"producer %u sent %u messages, %u were received", p,
			st.items, total);
	}
}

const struct harness h_sync = {
	"sync",
	"mutex, semaphore, event and a channel with producers and consumers",
	run,
};
