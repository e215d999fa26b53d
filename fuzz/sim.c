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
#define SIM_STEP_NS 100	     /* virtual time per scheduling point */
#define SIM_BUDGET 4000000   /* default step budget */
#define SIM_EPOCH 1000000000 /* the clock starts at 1 s */
/* PCT: threads start at priorities above this; each change point and
 * each spinner's yield takes the next one below it. */
#define SIM_PRIO_BASE 0x40000000u
/* The longest jump of the clock while threads can still run: time passing
 * while they are slow, which is how a deadline beats a completion. Longer
 * ones would let the runtime's own shutdown timeout (seconds) expire under
 * running work: legal, but a run that only shows tasks abandoned. */
#define SIM_JUMP_MAX 1000000

static const char *const state_name[] = {
	"runnable",
	"waits for a mutex",
	"waits on a condition variable",
	"parked in its loop",
	"joins a thread",
	"ended",
};

static const char *const point_name[COEV__PT_COUNT] = {
	"push",	   "pop",   "steal",  "park", "unpark",	  "wake",
	"suspend", "lock",  "unlock", "spin", "complete", "await",
	"cancel",  "timer", "chan",   "live",
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

static void sim_dump(FILE *out);

static bool dumped; /* by sim_fail, before its abort */

void sim_abort_dump(void)
{
	if (dumped || !coev__sim.running)
		return;
	dumped = true;
	fprintf(stderr, "\nsim: aborted (a panic or a failed assertion)\n");
	sim_dump(stderr);
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
	sim_dump(stderr);
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

static bool runnable(struct sim_thread *t)
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

static const char *const wait_name[] = {
	"nothing noted (a bare park)",
	"fd",
	"a timer",
	"mutex",
	"condition",
	"semaphore",
	"event",
	"channel",
	"a select",
	"future",
	"task",
	"a blocking-pool job",
	"the children of a scope",
};

/* Each runtime once: the runtime of the first live worker thread of it. */
static bool first_of_rt(unsigned i)
{
	struct coev_rt *rt = coev__sim.threads[i]->worker->rt;

	for (unsigned k = 0; k < i; k++)
		if (coev__sim.threads[k]->worker &&
		    coev__sim.threads[k]->worker->rt == rt)
			return false;
	return true;
}

static void dump_task(coev_task_t *t, void *arg)
{
	FILE *out = arg;
	unsigned st = atomic_load(&t->state);
	coev__waiter_t *j = atomic_load(&t->joiner);
	unsigned kind;

	/* As coev_rt_tasks: a joined or detached task that ended is gone. */
	if (j == JOIN_FREED || (j == JOIN_DETACHED && (st & TS_DONE)))
		return;
	fprintf(out, "    task #%llu '%s':", (unsigned long long)t->id,
		t->name[0] ? t->name : "?");
	if (st & TS_DONE) {
		fprintf(out, " ended, not yet joined (result %d)", t->result);
	} else if (st & TS_RUNNING) {
		fprintf(out, " running or yielded, on worker %d",
			t->worker ? (int)t->worker->index : -1);
	} else if (st & TS_NOTIFIED) {
		fprintf(out, " queued%s", st & TS_STARTED ? "" : ", never ran");
	} else {
		kind = atomic_load(&t->wait_kind);
		fprintf(out, " waits on %s %p (arg %lld)",
			kind < sizeof wait_name / sizeof wait_name[0]
				? wait_name[kind]
				: "?",
			atomic_load(&t->wait_obj), atomic_load(&t->wait_arg));
	}
	fprintf(out, "%s\n", atomic_load(&t->cancel) ? ", cancelled" : "");
}

static void sim_dump(FILE *out)
{
	fprintf(out, "sim: step %llu, virtual time %.6f s, %u threads\n",
		(unsigned long long)coev__sim.steps,
		(double)(coev__sim.clock - SIM_EPOCH) / 1e9,
		coev__sim.nthreads);
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *t = coev__sim.threads[i];
		unsigned timers = 0, ios = 0;

		fprintf(out, "  %-12s %s", t->name, state_name[t->state]);
		if (t->state == S_PARK) {
			struct sim_loop *l = loop_of(t->w);
			struct timer_impl *p;
			struct io_impl *q;

			for (coev__timer_t *tm = l->timers; tm; tm = p->next) {
				p = (struct timer_impl *)tm->impl;
				timers++;
			}
			for (coev__io_t *io = l->ios; io; io = q->next) {
				q = (struct io_impl *)io->impl;
				ios++;
			}
			fprintf(out,
				" (worker %u: %u timers, %u fds armed; "
				"queued: lifo %d, ring %u, inbox %zu, "
				"inject %zu)",
				t->w->index, timers, ios,
				atomic_load(&t->w->lifo) != NULL,
				ck_ring_size(&t->w->ring),
				(size_t)atomic_load(&t->w->inbox.len),
				(size_t)atomic_load(&t->w->rt->inject.len));
		} else if (t->state == S_COND && t->until != COEV_FOREVER) {
			fprintf(out, " (until %.6f s)",
				(double)(t->until - SIM_EPOCH) / 1e9);
		} else if (t->state == S_JOIN) {
			fprintf(out, " (%s)",
				((const struct sim_thread *)t->on)->name);
		}
		fprintf(out, "%s\n", t == coev__sim.cur ? "  <- running" : "");
	}
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct coev_rt *rt;

		if (!coev__sim.threads[i]->worker || !first_of_rt(i))
			continue;
		rt = coev__sim.threads[i]->worker->rt;
		fprintf(out, "  runtime %p: %ld entries queued; its tasks:\n",
			(void *)rt, coev__sim_queued_work(rt));
		coev__sim_task_each(rt, dump_task, out);
	}
	if (coev__sim.describe) {
		fprintf(out, "the harness says:\n");
		coev__sim.describe(out, coev__sim.describe_arg);
	}
	fprintf(out, "the last switches (step, virtual time, where the "
		     "running thread stopped, from -> to):\n");
	for (uint64_t k = coev__sim.nswitch > SIM_RING
				  ? coev__sim.nswitch - SIM_RING
				  : 0;
	     k < coev__sim.nswitch; k++) {
		const struct sim_switch *sw = &coev__sim.ring[k % SIM_RING];

		fprintf(out, "  %8llu %9.6f  %-8s %s:%d  %s -> %s\n",
			(unsigned long long)sw->step,
			(double)(sw->clock - SIM_EPOCH) / 1e9,
			sw->site ? point_name[sw->site->p] : "(blocked)",
			sw->site ? sw->site->file : "",
			sw->site ? sw->site->line : 0, sw->from, sw->to);
	}
	if (coev__sim.running && coev__sim.cur != &coev__sim.loop &&
	    coev__sim.last_site)
		fprintf(out,
			"  then %s ran to step %llu, last point %s %s:%d\n",
			coev__sim.cur->name,
			(unsigned long long)coev__sim.steps,
			point_name[coev__sim.last_site->p],
			coev__sim.last_site->file, coev__sim.last_site->line);
}

/*
 * The liveness oracle: every worker of a runtime parked in its loop with
 * nothing due (no doorbell, no ready fd, no due timer) while entries are
 * queued in the runtime is a lost wakeup, even if a later timer or a
 * thread's later call would repair it. Judged only when no other
 * simulated thread can act now (none runnable or waiting for a mutex):
 * a producer between its push and its doorbell is such a thread, and its
 * ring is on its way. Armed timers that are not due do not excuse it: no
 * part of the runtime leaves queued work to a timer.
 */
static void check_liveness(void)
{
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *t = coev__sim.threads[i];
		bool parked = t->state == S_PARK && !runnable(t);

		if (!t->worker && (runnable(t) || t->state == S_MUTEX))
			return;
		if (t->worker && !parked)
			return; /* of its runtime's workers, one can act */
	}
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct coev_rt *rt;
		long n;

		if (!coev__sim.threads[i]->worker || !first_of_rt(i))
			continue;
		rt = coev__sim.threads[i]->worker->rt;
		if (atomic_load(&rt->stop))
			continue;
		if ((n = coev__sim_queued_work(rt)) > 0)
			sim_fail("liveness: every worker of runtime %p is "
				 "parked with nothing due, and no other "
				 "thread can act, while %ld entries are "
				 "queued (a lost wakeup)",
				 (void *)rt, n);
	}
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
	check_liveness();
	for (;;) {
		for (i = 0; i < coev__sim.nthreads; i++)
			if (runnable(coev__sim.threads[i]))
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
			sim_dump(coev__sim.o.trace);
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

/* Keep the switch to t in the ring of the last ones. The thread that ran
 * last stopped at last_site if it is still runnable; otherwise it
 * blocked (or ended). */
static void record_switch(struct sim_thread *t)
{
	struct sim_thread *from = coev__sim.prev;
	struct sim_switch *sw;

	if (from == t && t->state == S_RUN)
		return; /* it keeps the CPU: no switch */
	sw = &coev__sim.ring[coev__sim.nswitch++ % SIM_RING];

	sw->step = coev__sim.steps;
	sw->clock = coev__sim.clock;
	sw->site = NULL;
	sw->from[0] = 0;
	if (from && from != &coev__sim.loop) {
		bool alive = false;

		for (unsigned i = 0; i < coev__sim.nthreads && !alive; i++)
			alive = coev__sim.threads[i] == from;
		if (alive) {
			memcpy(sw->from, from->name, sizeof sw->from);
			if (from->state == S_RUN)
				sw->site = coev__sim.last_site;
		} else {
			strcpy(sw->from, "(ended)");
		}
	}
	memcpy(sw->to, t->name, sizeof sw->to);
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
	if (o->mode == SIM_PCT) {
		unsigned d = o->depth ? o->depth : 1;
		uint64_t k = o->expect ? o->expect : 10000;

		coev__sim.low = SIM_PRIO_BASE - 1;
		for (unsigned i = 0; i + 1 < d && i < 8; i++)
			coev__sim.change[coev__sim.nchange++] =
				1 + next_rand() % k;
	}
	coev__sim.running = true;
	host = thread_new("host", host_main, &h);
	if (!host)
		sim_fail("cannot start the host thread");
	coev__sim.cur = &coev__sim.loop;
	sim_alloc_begin(o->fail_mem, o->fail_mem_more);
	while (host->state != S_DONE) {
		t = pick();
		record_switch(t);
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
					? point_name[coev__sim.last_site->p]
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
