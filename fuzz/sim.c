/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim.c — the deterministic simulation platform (see fuzz/sim.h):
 * the platform seam of sched/platform.h on fibers, a virtual clock and a
 * fake poller, with every choice taken from one decision source. This file
 * holds the decisions, the threads, the scheduling points and the loop
 * that runs them; the clock, timers and fake poller are fuzz/sim_loop.c,
 * the mutexes and condition variables fuzz/sim_sync.c.
 *
 * Structure. The OS thread that calls sim_run runs the simulation loop on
 * its own stack; every simulated thread is a fiber (coev__ctx_switch, the
 * runtime's own switch) that returns to the loop whenever it blocks or a
 * scheduling point decides to switch. The loop then picks the next thread
 * among the runnable ones. A thread is runnable unless it waits:
 *   MUTEX  for a simulated mutex to be unlocked;
 *   COND   for a condition variable's signal (or its virtual deadline);
 *   PARK   a worker in its loop, for its doorbell, a due timer or a ready
 *          fake fd;
 *   JOIN   for another thread to end.
 * When nothing can run the clock jumps to the earliest deadline; when
 * there is none either, every thread waits for something that no one will
 * do: a deadlock or a lost wakeup, reported with a dump.
 *
 * The runtime's task switches run inside these fibers unchanged: a task
 * preempted at a point is simply the current flow of its worker's fiber,
 * saved on the task's stack. ASan is told about every fiber switch; the
 * bounds of the stack a fiber was on when it left are learnt from the
 * next finish_switch_fiber, because its worker may have been running a
 * task. The worker pointer kept in thread-local storage is saved and
 * restored per fiber, since all fibers share the OS thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz/sim_internal.h"

#if defined(COEV_TSAN)
#error "the simulation runs every thread on one OS thread: no TSan"
#endif

#define SIM_STACK (512 * 1024)
#define SIM_STEP_NS 100	   /* virtual time per scheduling point */
#define SIM_BUDGET 4000000 /* default step budget */
/* PCT: threads start at priorities above this; each change point and
 * each spinner's yield takes the next one below it. */
#define SIM_PRIO_BASE 0x40000000u
/* The longest jump of the clock while threads can still run: time passing
 * while they are slow, which is how a deadline beats a completion. Longer
 * ones would let the runtime's own shutdown timeout (seconds) expire under
 * running work: legal, but a run that only shows tasks abandoned. */
#define SIM_JUMP_MAX 1000000

const char *const coev__sim_point_name[COEV__PT_COUNT] = {
	"push",	   "pop",   "steal",  "park", "unpark",	  "wake",
	"suspend", "lock",  "unlock", "spin", "complete", "await",
	"cancel",  "timer", "chan",   "live", "syscall",
};

struct sim coev__sim;

/* --- decisions ------------------------------------------------------- */

static uint64_t next_rand(void)
{
	return sim_splitmix(&coev__sim.rng);
}

static int next_byte(void)
{
	if (coev__sim.mode != SIM_BYTES)
		return -1;
	if (coev__sim.pos < coev__sim.o.len)
		return coev__sim.o.bytes[coev__sim.pos++];
	coev__sim.mode = SIM_RANDOM; /* the rng was seeded from the input */
	return -1;
}

unsigned sim_choose(unsigned n)
{
	int b;

	if (n <= 1)
		return 0;
	if ((b = next_byte()) >= 0)
		return (unsigned)b % n;
	return (unsigned)(next_rand() % n);
}

unsigned coev__plat_choose(struct coev_worker *w, unsigned n)
{
	(void)w;
	return sim_choose(n);
}

/* At a point: should the running thread give the CPU up? */
static bool decide_switch(void)
{
	int b;

	switch (coev__sim.mode) {
	case SIM_BYTES:
		if (coev__sim.keep) {
			coev__sim.keep--;
			return false;
		}
		if ((b = next_byte()) >= 0) {
			coev__sim.keep = (unsigned)b & 0x0f;
			coev__sim.pick = ((unsigned)b >> 4) & 7;
			coev__sim.jump = b & 0x80;
			return true;
		}
		return next_rand() % 8 == 0; /* the bytes ran out */
	case SIM_RANDOM: return next_rand() % 8 == 0;
	case SIM_PCT:
		for (unsigned i = 0; i < coev__sim.nchange; i++)
			if (coev__sim.change[i] == coev__sim.steps)
				coev__sim.cur->prio = coev__sim.low--;
		return true; /* the loop runs the highest priority */
	}
	return false;
}

/* --- threads ----------------------------------------------------------- */

static bool dumped; /* by sim_fail, before its abort */

void sim_abort_dump(void)
{
	if (dumped || !coev__sim.running)
		return;
	dumped = true;
	fprintf(stderr, "\nsim: aborted (a panic or a failed assertion)\n");
	coev__sim_dump(stderr);
}

void sim_fail(const char *fmt, ...)
{
	va_list ap;

	dumped = true;
	fflush(stdout);
	fprintf(stderr, "\nsim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	coev__sim_dump(stderr);
	abort();
}

#if defined(COEV_ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
				    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
				     const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

/* Switch from the running flow (which belongs to `from`) to `to`. */
static void switch_to(struct sim_thread *from, struct sim_thread *to)
{
#if defined(COEV_ASAN)
	void *fake = NULL;
	const void *lo;
	size_t size;

	__sanitizer_start_switch_fiber(from->state == S_DONE ? NULL : &fake,
				       to->lo, to->size);
#endif
	from->tls = coev__tls_worker;
	from->tls_pool = coev__tls_pool;
	coev__sim.prev = from;
	coev__sim.cur = to;
	coev__ctx_switch(&from->ctx, &to->ctx);
	/* Back in `from`, switched to by coev__sim.prev. */
#if defined(COEV_ASAN)
	__sanitizer_finish_switch_fiber(fake, &lo, &size);
	coev__sim.prev->lo = lo;
	coev__sim.prev->size = size;
#endif
	coev__tls_worker = from->tls;
	coev__tls_pool = from->tls_pool;
}

/* The running simulated thread gives the CPU back to the loop. */
void coev__sim_to_loop(void)
{
	switch_to(coev__sim.cur, &coev__sim.loop);
}

static void thread_entry(void *arg)
{
	struct sim_thread *th = arg;

#if defined(COEV_ASAN)
	const void *lo;
	size_t size;

	__sanitizer_finish_switch_fiber(NULL, &lo, &size);
	coev__sim.prev->lo = lo;
	coev__sim.prev->size = size;
#endif
	coev__tls_worker = NULL;
	coev__tls_pool = NULL;
	th->fn(th->arg);
	th->state = S_DONE;
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *j = coev__sim.threads[i];

		if (j->state == S_JOIN && j->on == th)
			j->state = S_RUN;
	}
	coev__sim_to_loop();
	abort(); /* never resumed */
}

static struct sim_thread *thread_new(const char *name, void *(*fn)(void *),
				     void *arg)
{
	struct sim_thread *th;

	if (coev__sim.nthreads == SIM_THREADS_MAX)
		return NULL;
	if (!(th = calloc(1, sizeof *th)))
		return NULL;
	th->stack = mmap(NULL, SIM_STACK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (th->stack == MAP_FAILED) {
		free(th);
		return NULL;
	}
	th->lo = th->stack;
	th->size = SIM_STACK;
	th->fn = fn;
	th->arg = arg;
	th->id = coev__sim.started++;
	snprintf(th->name, sizeof th->name, "%s#%u", name, th->id);
	th->prio = coev__sim.mode == SIM_PCT
			   ? SIM_PRIO_BASE + next_rand() % 1000000
			   : 0;
	coev__ctx_init(&th->ctx, th->stack, SIM_STACK, thread_entry, th);
	coev__sim.threads[coev__sim.nthreads++] = th;
	return th;
}

static void thread_free(struct sim_thread *th)
{
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		if (coev__sim.threads[i] == th) {
			coev__sim.threads[i] =
				coev__sim.threads[--coev__sim.nthreads];
			break;
		}
	}
#if defined(COEV_ASAN)
	/* Frames that ran here left their redzones poisoned; the next
	 * mapping at this address must start clean. */
	__asan_unpoison_memory_region(th->stack, SIM_STACK);
#endif
	munmap(th->stack, SIM_STACK);
	free(th);
}

int coev__plat_thread_start(coev__thread_t *t, void *(*fn)(void *), void *arg)
{
	struct sim_thread *th;
	const char *name = "thread";

	if (!coev__sim.running)
		coev__panic("the simulation build runs only inside sim_run");
	if (fn == coev__worker_main)
		name = "worker";
	if (!(th = thread_new(name, fn, arg)))
		return -EAGAIN;
	if (fn == coev__worker_main)
		th->worker = arg;
	t->handle = (uintptr_t)th;
	return 0;
}

void coev__plat_thread_join(coev__thread_t t)
{
	struct sim_thread *th = (struct sim_thread *)t.handle;

	while (th->state != S_DONE) {
		coev__sim.cur->state = S_JOIN;
		coev__sim.cur->on = th;
		coev__sim_to_loop();
	}
	thread_free(th);
}

struct actor_start {
	void (*fn)(void *);
	void *arg;
};

static void *actor_main(void *arg)
{
	struct actor_start a = *(struct actor_start *)arg;

	free(arg);
	a.fn(a.arg);
	return NULL;
}

int sim_actor_start(sim_actor_t *a, const char *name, void (*fn)(void *),
		    void *arg)
{
	struct actor_start *s = malloc(sizeof *s);
	struct sim_thread *th;

	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->arg = arg;
	if (!(th = thread_new(name, actor_main, s))) {
		free(s);
		return -EAGAIN;
	}
	a->handle = (uintptr_t)th;
	return 0;
}

void sim_actor_join(sim_actor_t a)
{
	coev__thread_t t = {a.handle};

	coev__plat_thread_join(t);
}

void sim_set_describe(void (*fn)(FILE *, void *), void *arg)
{
	coev__sim.describe = fn;
	coev__sim.describe_arg = arg;
}

uint64_t sim_steps(void)
{
	return coev__sim.steps;
}

/* --- fences ------------------------------------------------------------ */

/* Simulated threads share one OS thread and switch only at scheduling
 * points: every interleaving the simulation makes is sequentially
 * consistent, so both halves of the asymmetric fence are compiler
 * barriers (sched/platform.h). */
bool coev__plat_fence_cheap = true;

void coev__plat_fence_init(void)
{
}

void coev__plat_fence_heavy(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

/* --- points ------------------------------------------------------------ */

void coev__plat_point(struct coev__point_site *site)
{
	if (!coev__sim.running || coev__sim.cur == &coev__sim.loop)
		return;
	site->hits++;
	coev__sim.steps++;
	coev__sim.clock += SIM_STEP_NS;
	coev__sim.last_site = site;
	if (coev__sim.steps > coev__sim.budget)
		sim_fail("step budget of %llu spent: a hang or a livelock",
			 (unsigned long long)coev__sim.budget);
	if (decide_switch())
		coev__sim_to_loop();
}

int coev__sim_sched_yield(void)
{
	if (!coev__sim.running || coev__sim.cur == &coev__sim.loop)
		return 0;
	/* A spinner: someone else must run (the holder of what it spins
	 * on). */
	coev__sim.steps++;
	coev__sim.clock += SIM_STEP_NS;
	coev__sim.cur->spinning = true;
	/* Under PCT it also drops to the lowest priority, as at a change
	 * point: the holder may be of lower priority than both the spinner
	 * and a third thread busy with something else, and would never run. */
	if (coev__sim.mode == SIM_PCT)
		coev__sim.cur->prio = coev__sim.low--;
	coev__sim_to_loop();
	return 0;
}

/* --- the loop ---------------------------------------------------------- */

bool coev__sim_runnable(struct sim_thread *t)
{
	switch (t->state) {
	case S_RUN: return true;
	case S_PARK: return coev__sim_loop_due(loop_of(t->w));
	case S_COND: return t->until <= coev__sim.clock;
	default: return false;
	}
}

/* The earliest virtual time at which a waiting thread becomes runnable,
 * or COEV_FOREVER. */
static coev_time_t next_event(void)
{
	coev_time_t best = COEV_FOREVER;

	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *t = coev__sim.threads[i];
		coev__timer_t *tm;

		if (t->state == S_COND && t->until < best)
			best = t->until;
		if (t->state == S_PARK &&
		    (tm = coev__sim_first_timer(loop_of(t->w))) != NULL &&
		    ((struct timer_impl *)tm->impl)->when < best)
			best = ((struct timer_impl *)tm->impl)->when;
	}
	return best;
}

/*
 * Spinners give way to anyone else: one of the others holds what they
 * spin on. Several may spin on one holder, so every spinner stays out
 * until one of the others has run (giving way only to the last spinner
 * let two spinners take turns for ever while, under PCT, a holder of
 * lower priority never ran). When only spinners can run, any may.
 */
static unsigned without_spinners(struct sim_thread **r, unsigned n)
{
	unsigned i, k = 0;

	for (i = 0; i < n; i++)
		if (!r[i]->spinning)
			r[k++] = r[i];
	if (k == 0)
		return n; /* nothing was moved */
	for (i = 0; i < coev__sim.nthreads; i++)
		coev__sim.threads[i]->spinning = false;
	return k;
}

static struct sim_thread *pick(void)
{
	struct sim_thread *r[SIM_THREADS_MAX], *best;
	unsigned n = 0, i;
	coev_time_t t;

	if (coev__sim.jump && (t = next_event()) != COEV_FOREVER &&
	    t > coev__sim.clock && t - coev__sim.clock <= SIM_JUMP_MAX)
		coev__sim.clock = t;
	coev__sim.jump = false;
	coev__sim_check_liveness();
	for (;;) {
		for (i = 0; i < coev__sim.nthreads; i++)
			if (coev__sim_runnable(coev__sim.threads[i]))
				r[n++] = coev__sim.threads[i];
		if (n)
			break;
		if ((t = next_event()) == COEV_FOREVER)
			sim_fail("deadlock: no thread can run and no timer is "
				 "pending (a lost wakeup, or a harness "
				 "program that waits forever)");
		if (coev__sim.o.trace && t - coev__sim.clock > 1000000) {
			fprintf(coev__sim.o.trace, "idle until %.6f s:\n",
				(double)(t - SIM_EPOCH) / 1e9);
			coev__sim_dump(coev__sim.o.trace);
		}
		coev__sim.clock = t;
	}
	n = without_spinners(r, n);
	switch (coev__sim.mode) {
	case SIM_BYTES: return r[coev__sim.pick % n];
	case SIM_RANDOM:
		if (next_rand() % 64 == 0 &&
		    (t = next_event()) != COEV_FOREVER && t > coev__sim.clock &&
		    t - coev__sim.clock <= SIM_JUMP_MAX)
			coev__sim.clock = t; /* a timer comes early */
		return r[next_rand() % n];
	case SIM_PCT:
		best = r[0];
		for (i = 1; i < n; i++)
			if (r[i]->prio > best->prio)
				best = r[i];
		return best;
	}
	return r[0];
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

struct host_start {
	void (*fn)(void *);
	void *arg;
};

static void *host_main(void *arg)
{
	struct host_start *h = arg;

	h->fn(h->arg);
	return NULL;
}

/* PCT's d - 1 change points among the expected steps. */
static void pct_init(const struct sim_opts *o)
{
	unsigned d = o->depth ? o->depth : 1;
	uint64_t k = o->expect ? o->expect : 10000;

	coev__sim.low = SIM_PRIO_BASE - 1;
	for (unsigned i = 0; i + 1 < d && i < 8; i++)
		coev__sim.change[coev__sim.nchange++] = 1 + next_rand() % k;
}

void sim_alloc_begin(unsigned fail_at, bool persist);
void sim_alloc_end(void);

void sim_run(const struct sim_opts *o, void (*fn)(void *), void *arg)
{
	struct host_start h = {fn, arg};
	struct sim_thread *host, *t;

	/* The harness's description survives: it is registered before the
	 * run (or in it) and stays until the next sim_set_describe (the
	 * driver clears it before each run). */
	void (*describe)(FILE *, void *) = coev__sim.describe;
	void *describe_arg = coev__sim.describe_arg;

	memset(&coev__sim, 0, sizeof coev__sim);
	coev__sim.describe = describe;
	coev__sim.describe_arg = describe_arg;
	coev__sim_fd_reset();
	coev__sim.o = *o;
	coev__sim.mode = o->mode;
	coev__sim.budget = o->budget ? o->budget : SIM_BUDGET;
	coev__sim.clock = SIM_EPOCH;
	coev__sim.rng =
		o->mode == SIM_BYTES ? hash_bytes(o->bytes, o->len) : o->seed;
	strcpy(coev__sim.loop.name, "loop");
	if (o->mode == SIM_PCT)
		pct_init(o);
	coev__sim.running = true;
	host = thread_new("host", host_main, &h);
	if (!host)
		sim_fail("cannot start the host thread");
	coev__sim.cur = &coev__sim.loop;
	sim_alloc_begin(o->fail_mem, o->fail_mem_more);
	while (host->state != S_DONE) {
		t = pick();
		coev__sim_record_switch(t);
		if (t->state == S_PARK || t->state == S_COND) {
			if (t->state == S_COND)
				t->timedout = true;
			t->state = S_RUN;
		}
		if (o->trace)
			fprintf(o->trace, "%10llu %9.6f  %-10s -> %s\n",
				(unsigned long long)coev__sim.steps,
				(double)(coev__sim.clock - SIM_EPOCH) / 1e9,
				(coev__sim.prev &&
				 coev__sim.prev != &coev__sim.loop &&
				 coev__sim.last_site)
					? coev__sim_point_name
						  [coev__sim.last_site->p]
					: "",
				t->name);
		switch_to(&coev__sim.loop, t);
	}
	sim_alloc_end();
	if (coev__sim.nthreads != 1)
		sim_fail("the host ended with %u threads still running",
			 coev__sim.nthreads - 1);
	thread_free(host);
	coev__sim.running = false;
	coev__sim.cur = NULL;
}
