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
 * Oracles: mutual exclusion (one holder in the mutex section, at most
 * `permits` in the semaphore's); every message received exactly once, and
 * each consumer sees each producer's messages in the order they were sent
 * (the channel's sequential model); the semaphore ends with all its
 * permits (none lost to a cancellation or a timeout); no wait is left
 * hanging (the simulation's deadlock detector); nothing leaked.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

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

static int main_task(void *arg)
{
	coev_task_t *ts[TASKS], *ps[PRODUCERS], *cs[CONSUMERS];
	int r;

	(void)arg;
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
	st.main_ret = coev_run(main_task, NULL, &cfg);
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
