/*
 * fuzz/sim.c — the deterministic simulation platform (see fuzz/sim.h):
 * the platform seam of sched/platform.h on fibers, a virtual clock and a
 * fake poller, with every choice taken from one decision source.
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

#include "fuzz/sim.h"
#include "sched/sched.h"
#include "sched/switch.h"

#if defined(COEV_TSAN)
#error "the simulation runs every thread on one OS thread: no TSan"
#endif

#define SIM_STACK (512 * 1024)
#define SIM_STEP_NS 100	     /* virtual time per scheduling point */
#define SIM_BUDGET 4000000   /* default step budget */
#define SIM_EPOCH 1000000000 /* the clock starts at 1 s */
#define SIM_THREADS_MAX 64
/* The longest jump of the clock while threads can still run: time passing
 * while they are slow, which is how a deadline beats a completion. Longer
 * ones would let the runtime's own shutdown timeout (seconds) expire under
 * running work: legal, but a run that only shows tasks abandoned. */
#define SIM_JUMP_MAX 1000000

enum sim_state { S_RUN, S_MUTEX, S_COND, S_PARK, S_JOIN, S_DONE };

static const char *const state_name[] = {
	"runnable",
	"waits for a mutex",
	"waits on a condition variable",
	"parked in its loop",
	"joins a thread",
	"ended",
};

static const char *const point_name[COEV__PT_COUNT] = {
	"push", "pop",	"steal",    "park",  "unpark", "wake",	"suspend",
	"lock", "spin", "complete", "await", "cancel", "timer",
};

struct sim_thread {
	coev__ctx_t ctx;
	const void *lo; /* the stack it runs on now (ASan) */
	size_t size;
	void *stack; /* its own stack; NULL for the loop */
	struct coev_worker *tls;
	void *(*fn)(void *);
	void *arg;
	enum sim_state state;
	const void *on;	       /* mutex, cond or thread waited for */
	coev_time_t until;     /* COND: deadline, or COEV_FOREVER */
	bool signalled;	       /* COND */
	bool timedout;	       /* COND */
	struct coev_worker *w; /* PARK */
	unsigned id;
	uint64_t prio; /* PCT */
	char name[32];
};

/* One worker's fake loop. */
struct sim_loop {
	bool ring;	       /* doorbell rung since the last park/poll */
	coev__timer_t *timers; /* armed, unsorted */
	coev__io_t *ios;       /* armed, unsorted */
};

/* A watcher is armed while it is on its loop's list; the list, not a
 * flag in the watcher (whose bytes are the caller's until it is armed),
 * says so. */
struct timer_impl {
	coev__timer_t *next;
	coev_time_t when;
	uint64_t seq;
};

struct io_impl {
	coev__io_t *next;
	int fd;
	unsigned events;
};

_Static_assert(sizeof(struct timer_impl) <= sizeof(((coev__timer_t *)0)->impl),
	       "timer_impl too big");
_Static_assert(sizeof(struct io_impl) <= sizeof(((coev__io_t *)0)->impl),
	       "io_impl too big");

static struct sim {
	bool running;
	struct sim_opts o;
	enum sim_mode mode; /* may fall from SIM_BYTES to SIM_RANDOM */
	size_t pos;	    /* next schedule byte */
	uint64_t rng;
	coev_time_t clock;
	uint64_t steps, budget, seq;
	unsigned keep; /* BYTES: points left before the next decision */
	unsigned pick; /* BYTES: the next pick */
	bool jump;     /* BYTES: advance the clock before the next pick */
	struct sim_thread loop;
	struct sim_thread *cur, *prev, *spinner;
	struct sim_thread *threads[SIM_THREADS_MAX];
	unsigned nthreads, started;
	/* PCT */
	uint64_t change[8];
	unsigned nchange, low;
	void (*describe)(FILE *, void *);
	void *describe_arg;
	enum coev__point last_point;
} sim;

/* --- decisions ------------------------------------------------------- */

static uint64_t next_rand(void)
{
	return sim_splitmix(&sim.rng);
}

static int next_byte(void)
{
	if (sim.mode != SIM_BYTES)
		return -1;
	if (sim.pos < sim.o.len)
		return sim.o.bytes[sim.pos++];
	sim.mode = SIM_RANDOM; /* the rng was seeded from the input */
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

	switch (sim.mode) {
	case SIM_BYTES:
		if (sim.keep) {
			sim.keep--;
			return false;
		}
		if ((b = next_byte()) >= 0) {
			sim.keep = (unsigned)b & 0x0f;
			sim.pick = ((unsigned)b >> 4) & 7;
			sim.jump = b & 0x80;
			return true;
		}
		return next_rand() % 8 == 0; /* the bytes ran out */
	case SIM_RANDOM: return next_rand() % 8 == 0;
	case SIM_PCT:
		for (unsigned i = 0; i < sim.nchange; i++)
			if (sim.change[i] == sim.steps)
				sim.cur->prio = sim.low--;
		return true; /* the loop runs the highest priority */
	}
	return false;
}

/* --- threads ----------------------------------------------------------- */

static void sim_dump(FILE *out);

void sim_fail(const char *fmt, ...)
{
	va_list ap;

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
	sim.prev = from;
	sim.cur = to;
	coev__ctx_switch(&from->ctx, &to->ctx);
	/* Back in `from`, switched to by sim.prev. */
#if defined(COEV_ASAN)
	__sanitizer_finish_switch_fiber(fake, &lo, &size);
	sim.prev->lo = lo;
	sim.prev->size = size;
#endif
	coev__tls_worker = from->tls;
}

/* The running simulated thread gives the CPU back to the loop. */
static void to_loop(void)
{
	switch_to(sim.cur, &sim.loop);
}

static void thread_entry(void *arg)
{
	struct sim_thread *th = arg;

#if defined(COEV_ASAN)
	const void *lo;
	size_t size;

	__sanitizer_finish_switch_fiber(NULL, &lo, &size);
	sim.prev->lo = lo;
	sim.prev->size = size;
#endif
	coev__tls_worker = NULL;
	th->fn(th->arg);
	th->state = S_DONE;
	for (unsigned i = 0; i < sim.nthreads; i++) {
		struct sim_thread *j = sim.threads[i];

		if (j->state == S_JOIN && j->on == th)
			j->state = S_RUN;
	}
	to_loop();
	abort(); /* never resumed */
}

static struct sim_thread *thread_new(const char *name, void *(*fn)(void *),
				     void *arg)
{
	struct sim_thread *th;

	if (sim.nthreads == SIM_THREADS_MAX)
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
	th->id = sim.started++;
	snprintf(th->name, sizeof th->name, "%s#%u", name, th->id);
	th->prio = sim.mode == SIM_PCT ? 1000 + next_rand() % 1000000 : 0;
	coev__ctx_init(&th->ctx, th->stack, SIM_STACK, thread_entry, th);
	sim.threads[sim.nthreads++] = th;
	return th;
}

static void thread_free(struct sim_thread *th)
{
	for (unsigned i = 0; i < sim.nthreads; i++) {
		if (sim.threads[i] == th) {
			sim.threads[i] = sim.threads[--sim.nthreads];
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

	if (!sim.running)
		coev__panic("the simulation build runs only inside sim_run");
	if (fn == coev__worker_main)
		name = "worker";
	if (!(th = thread_new(name, fn, arg)))
		return -EAGAIN;
	t->handle = (uintptr_t)th;
	return 0;
}

void coev__plat_thread_join(coev__thread_t t)
{
	struct sim_thread *th = (struct sim_thread *)t.handle;

	while (th->state != S_DONE) {
		sim.cur->state = S_JOIN;
		sim.cur->on = th;
		to_loop();
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
	sim.describe = fn;
	sim.describe_arg = arg;
}

uint64_t sim_steps(void)
{
	return sim.steps;
}

/* --- points ------------------------------------------------------------ */

void coev__plat_point(enum coev__point p)
{
	if (!sim.running || sim.cur == &sim.loop)
		return;
	sim.steps++;
	sim.clock += SIM_STEP_NS;
	sim.last_point = p;
	if (sim.steps > sim.budget)
		sim_fail("step budget of %llu spent: a hang or a livelock",
			 (unsigned long long)sim.budget);
	if (decide_switch())
		to_loop();
}

int coev__sim_sched_yield(void)
{
	if (!sim.running || sim.cur == &sim.loop)
		return 0;
	/* A spinner: someone else must run (the holder of what it spins
	 * on). */
	sim.steps++;
	sim.clock += SIM_STEP_NS;
	sim.spinner = sim.cur;
	to_loop();
	return 0;
}

/* --- clock, timers, fake poller ---------------------------------------- */

coev_time_t coev__plat_now(void)
{
	return sim.clock;
}

static struct sim_loop *loop_of(struct coev_worker *w)
{
	return w->loop;
}

int coev__plat_loop_init(struct coev_worker *w)
{
	struct sim_loop *l = calloc(1, sizeof *l);

	if (!l)
		return -ENOMEM;
	w->loop = l;
	return 0;
}

void coev__plat_loop_destroy(struct coev_worker *w)
{
	free(w->loop);
	w->loop = NULL;
}

void *coev__plat_native_loop(struct coev_worker *w)
{
	(void)w;
	return NULL;
}

void coev__plat_timer_arm(struct coev_worker *w, coev__timer_t *tm,
			  coev_time_t deadline)
{
	struct sim_loop *l = loop_of(w);
	struct timer_impl *p = (struct timer_impl *)tm->impl;

	COEV__POINT(TIMER);
	for (coev__timer_t *t = l->timers; t;
	     t = ((struct timer_impl *)t->impl)->next)
		if (t == tm)
			sim_fail("a timer armed twice (the platform's "
				 "contract: arm only a disarmed timer)");
	p->when = deadline;
	p->seq = sim.seq++;
	p->next = l->timers;
	l->timers = tm;
}

void coev__plat_timer_disarm(struct coev_worker *w, coev__timer_t *tm)
{
	struct sim_loop *l = loop_of(w);
	struct timer_impl *p = (struct timer_impl *)tm->impl;

	COEV__POINT(TIMER);
	for (coev__timer_t **pp = &l->timers; *pp;
	     pp = &((struct timer_impl *)(*pp)->impl)->next) {
		if (*pp == tm) {
			*pp = p->next;
			break;
		}
	}
}

/* The earliest armed timer of l, or NULL. */
static coev__timer_t *first_timer(struct sim_loop *l)
{
	coev__timer_t *best = NULL, *tm;
	struct timer_impl *b = NULL, *p;

	for (tm = l->timers; tm; tm = p->next) {
		p = (struct timer_impl *)tm->impl;
		if (!b || p->when < b->when ||
		    (p->when == b->when && p->seq < b->seq)) {
			best = tm;
			b = p;
		}
	}
	return best;
}

/* Fake fds: numbers from SIM_FD_BASE, readiness set by the harness. */
#define SIM_FD_BASE 1000000
#define SIM_FDS 64
static unsigned fd_ready[SIM_FDS];
static bool fd_open[SIM_FDS];

int sim_fd_new(void)
{
	for (int i = 0; i < SIM_FDS; i++) {
		if (!fd_open[i]) {
			fd_open[i] = true;
			fd_ready[i] = 0;
			return SIM_FD_BASE + i;
		}
	}
	return -EMFILE;
}

void sim_fd_set(int fd, unsigned events)
{
	fd_ready[fd - SIM_FD_BASE] = events;
}

void sim_fd_close(int fd)
{
	fd_open[fd - SIM_FD_BASE] = false;
}

static unsigned fd_events(int fd)
{
	if (fd < SIM_FD_BASE || fd >= SIM_FD_BASE + SIM_FDS)
		return 0;
	return fd_ready[fd - SIM_FD_BASE];
}

int coev__plat_io_arm(struct coev_worker *w, coev__io_t *io, int fd,
		      unsigned events)
{
	struct sim_loop *l = loop_of(w);
	struct io_impl *p = (struct io_impl *)io->impl, *q;

	if (fd < SIM_FD_BASE || fd >= SIM_FD_BASE + SIM_FDS ||
	    !fd_open[fd - SIM_FD_BASE])
		return -EBADF;
	for (coev__io_t *o = l->ios; o; o = q->next) {
		q = (struct io_impl *)o->impl;
		if (q->fd == fd && (q->events & events))
			return -EBUSY;
	}
	for (coev__io_t *o = l->ios; o; o = ((struct io_impl *)o->impl)->next)
		if (o == io)
			sim_fail("an io armed twice");
	p->fd = fd;
	p->events = events;
	p->next = l->ios;
	l->ios = io;
	return 0;
}

void coev__plat_io_disarm(struct coev_worker *w, coev__io_t *io)
{
	struct sim_loop *l = loop_of(w);
	struct io_impl *p = (struct io_impl *)io->impl;

	for (coev__io_t **pp = &l->ios; *pp;
	     pp = &((struct io_impl *)(*pp)->impl)->next) {
		if (*pp == io) {
			*pp = p->next;
			break;
		}
	}
}

static coev__io_t *ready_io(struct sim_loop *l)
{
	struct io_impl *p;

	for (coev__io_t *io = l->ios; io; io = p->next) {
		p = (struct io_impl *)io->impl;
		if (fd_events(p->fd) & p->events)
			return io;
	}
	return NULL;
}

static bool loop_due(struct sim_loop *l)
{
	coev__timer_t *tm = first_timer(l);

	return l->ring || ready_io(l) ||
	       (tm && ((struct timer_impl *)tm->impl)->when <= sim.clock);
}

/* Run what is due on w's loop: ready fds, then due timers, one at a time
 * (a callback may arm or disarm others). */
static void loop_run(struct coev_worker *w)
{
	struct sim_loop *l = loop_of(w);
	coev__timer_t *tm;
	coev__io_t *io;

	l->ring = false;
	while ((io = ready_io(l)) != NULL) {
		struct io_impl *p = (struct io_impl *)io->impl;
		unsigned got = fd_events(p->fd) & p->events;

		coev__plat_io_disarm(w, io);
		io->fire(io, got);
	}
	while ((tm = first_timer(l)) != NULL &&
	       ((struct timer_impl *)tm->impl)->when <= sim.clock) {
		coev__plat_timer_disarm(w, tm);
		tm->fire(tm);
	}
}

void coev__plat_park(struct coev_worker *w)
{
	struct sim_loop *l = loop_of(w);

	if (!loop_due(l)) {
		sim.cur->state = S_PARK;
		sim.cur->w = w;
		to_loop();
	}
	loop_run(w);
}

void coev__plat_poll(struct coev_worker *w)
{
	loop_run(w);
}

void coev__plat_unpark(struct coev_worker *w)
{
	COEV__POINT(UNPARK);
	loop_of(w)->ring = true;
}

/* --- mutexes and condition variables ----------------------------------- */

/* A simulated mutex keeps its owner in the pthread_mutex_t's storage (a
 * zeroed one, as PTHREAD_MUTEX_INITIALIZER is, is unlocked). */
struct sim_mutex {
	struct sim_thread *owner;
};

_Static_assert(sizeof(struct sim_mutex) <= sizeof(pthread_mutex_t),
	       "sim_mutex too big");

static struct sim_mutex *mx(pthread_mutex_t *m)
{
	return (struct sim_mutex *)(void *)m;
}

int coev__sim_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
	(void)a;
	memset(m, 0, sizeof *m);
	return 0;
}

int coev__sim_mutex_destroy(pthread_mutex_t *m)
{
	if (mx(m)->owner)
		sim_fail("a mutex destroyed while %s holds it",
			 mx(m)->owner->name);
	return 0;
}

int coev__sim_mutex_lock(pthread_mutex_t *m)
{
	struct sim_thread *me = sim.running ? sim.cur : &sim.loop;

	COEV__POINT(LOCK);
	while (mx(m)->owner) {
		if (mx(m)->owner == me)
			sim_fail("%s locks a mutex it holds", me->name);
		if (!sim.running || me == &sim.loop)
			sim_fail("a mutex is held outside the simulation");
		me->state = S_MUTEX;
		me->on = m;
		to_loop();
	}
	mx(m)->owner = me;
	return 0;
}

int coev__sim_mutex_trylock(pthread_mutex_t *m)
{
	if (mx(m)->owner)
		return EBUSY;
	mx(m)->owner = sim.running ? sim.cur : &sim.loop;
	return 0;
}

int coev__sim_mutex_unlock(pthread_mutex_t *m)
{
	struct sim_thread *me = sim.running ? sim.cur : &sim.loop;

	if (mx(m)->owner != me)
		sim_fail("%s unlocks a mutex it does not hold", me->name);
	mx(m)->owner = NULL;
	for (unsigned i = 0; i < sim.nthreads; i++) {
		struct sim_thread *t = sim.threads[i];

		if (t->state == S_MUTEX && t->on == m)
			t->state = S_RUN; /* all retry; one wins */
	}
	return 0;
}

int coev__sim_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
	(void)a;
	memset(c, 0, sizeof *c);
	return 0;
}

int coev__sim_cond_destroy(pthread_cond_t *c)
{
	for (unsigned i = 0; i < sim.nthreads; i++)
		if (sim.threads[i]->state == S_COND && sim.threads[i]->on == c)
			sim_fail("a condition variable destroyed with %s "
				 "waiting",
				 sim.threads[i]->name);
	return 0;
}

static int cond_wait(pthread_cond_t *c, pthread_mutex_t *m, coev_time_t until)
{
	struct sim_thread *me = sim.cur;

	if (!sim.running || me == &sim.loop)
		sim_fail("a condition variable waited on outside the "
			 "simulation");
	me->state = S_COND;
	me->on = c;
	me->until = until;
	me->signalled = me->timedout = false;
	coev__sim_mutex_unlock(m);
	to_loop();
	coev__sim_mutex_lock(m);
	return me->timedout && !me->signalled ? ETIMEDOUT : 0;
}

int coev__sim_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	return cond_wait(c, m, COEV_FOREVER);
}

int coev__sim_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
			     const struct timespec *ts)
{
	/* The runtime's deadlines are coev__plat_now() values, the virtual
	 * clock, turned into a CLOCK_MONOTONIC timespec. */
	return cond_wait(c, m,
			 (coev_time_t)ts->tv_sec * 1000000000 + ts->tv_nsec);
}

static int cond_wake(pthread_cond_t *c, bool all)
{
	struct sim_thread *waiters[SIM_THREADS_MAX];
	unsigned n = 0;

	for (unsigned i = 0; i < sim.nthreads; i++)
		if (sim.threads[i]->state == S_COND && sim.threads[i]->on == c)
			waiters[n++] = sim.threads[i];
	if (!n)
		return 0;
	if (!all) {
		/* Which waiter a signal wakes is a choice too. */
		waiters[0] = waiters[sim_choose(n)];
		n = 1;
	}
	for (unsigned i = 0; i < n; i++) {
		waiters[i]->signalled = true;
		waiters[i]->state = S_RUN;
	}
	return 0;
}

int coev__sim_cond_signal(pthread_cond_t *c)
{
	return cond_wake(c, false);
}

int coev__sim_cond_broadcast(pthread_cond_t *c)
{
	return cond_wake(c, true);
}

/* --- the loop ---------------------------------------------------------- */

static bool runnable(struct sim_thread *t)
{
	switch (t->state) {
	case S_RUN: return true;
	case S_PARK: return loop_due(loop_of(t->w));
	case S_COND: return t->until <= sim.clock;
	default: return false;
	}
}

/* The earliest virtual time at which a waiting thread becomes runnable,
 * or COEV_FOREVER. */
static coev_time_t next_event(void)
{
	coev_time_t best = COEV_FOREVER;

	for (unsigned i = 0; i < sim.nthreads; i++) {
		struct sim_thread *t = sim.threads[i];
		coev__timer_t *tm;

		if (t->state == S_COND && t->until < best)
			best = t->until;
		if (t->state == S_PARK &&
		    (tm = first_timer(loop_of(t->w))) != NULL &&
		    ((struct timer_impl *)tm->impl)->when < best)
			best = ((struct timer_impl *)tm->impl)->when;
	}
	return best;
}

static void sim_dump(FILE *out)
{
	fprintf(out, "sim: step %llu, virtual time %.6f s, %u threads\n",
		(unsigned long long)sim.steps,
		(double)(sim.clock - SIM_EPOCH) / 1e9, sim.nthreads);
	for (unsigned i = 0; i < sim.nthreads; i++) {
		struct sim_thread *t = sim.threads[i];
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
		fprintf(out, "%s\n", t == sim.cur ? "  <- running" : "");
	}
	if (sim.describe)
		sim.describe(out, sim.describe_arg);
}

static struct sim_thread *pick(void)
{
	struct sim_thread *r[SIM_THREADS_MAX], *best;
	unsigned n = 0, i;
	coev_time_t t;

	if (sim.jump && (t = next_event()) != COEV_FOREVER && t > sim.clock &&
	    t - sim.clock <= SIM_JUMP_MAX)
		sim.clock = t;
	sim.jump = false;
	for (;;) {
		for (i = 0; i < sim.nthreads; i++)
			if (runnable(sim.threads[i]))
				r[n++] = sim.threads[i];
		if (n)
			break;
		if ((t = next_event()) == COEV_FOREVER)
			sim_fail("deadlock: no thread can run and no timer is "
				 "pending (a lost wakeup, or a harness "
				 "program that waits forever)");
		if (sim.o.trace && t - sim.clock > 1000000) {
			fprintf(sim.o.trace, "idle until %.6f s:\n",
				(double)(t - SIM_EPOCH) / 1e9);
			sim_dump(sim.o.trace);
		}
		sim.clock = t;
	}
	/* A spinner gives way to anyone else. */
	if (sim.spinner && n > 1) {
		for (i = 0; i < n; i++)
			if (r[i] == sim.spinner)
				r[i] = r[--n];
	}
	sim.spinner = NULL;
	switch (sim.mode) {
	case SIM_BYTES: return r[sim.pick % n];
	case SIM_RANDOM:
		if (next_rand() % 64 == 0 &&
		    (t = next_event()) != COEV_FOREVER && t > sim.clock &&
		    t - sim.clock <= SIM_JUMP_MAX)
			sim.clock = t; /* a timer comes early */
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

void sim_alloc_begin(unsigned fail_at, bool persist);
void sim_alloc_end(void);

void sim_run(const struct sim_opts *o, void (*fn)(void *), void *arg)
{
	struct host_start h = {fn, arg};
	struct sim_thread *host, *t;

	memset(&sim, 0, sizeof sim);
	memset(fd_open, 0, sizeof fd_open);
	sim.o = *o;
	sim.mode = o->mode;
	sim.budget = o->budget ? o->budget : SIM_BUDGET;
	sim.clock = SIM_EPOCH;
	sim.rng = o->mode == SIM_BYTES ? hash_bytes(o->bytes, o->len) : o->seed;
	strcpy(sim.loop.name, "loop");
	if (o->mode == SIM_PCT) {
		unsigned d = o->depth ? o->depth : 1;
		uint64_t k = o->expect ? o->expect : 10000;

		sim.low = 999;
		for (unsigned i = 0; i + 1 < d && i < 8; i++)
			sim.change[sim.nchange++] = 1 + next_rand() % k;
	}
	sim.running = true;
	host = thread_new("host", host_main, &h);
	if (!host)
		sim_fail("cannot start the host thread");
	sim.cur = &sim.loop;
	sim_alloc_begin(o->fail_mem, o->fail_mem_more);
	while (host->state != S_DONE) {
		t = pick();
		if (t->state == S_PARK || t->state == S_COND) {
			if (t->state == S_COND)
				t->timedout = true;
			t->state = S_RUN;
		}
		if (o->trace)
			fprintf(o->trace, "%10llu %9.6f  %-10s -> %s\n",
				(unsigned long long)sim.steps,
				(double)(sim.clock - SIM_EPOCH) / 1e9,
				sim.prev && sim.prev != &sim.loop
					? point_name[sim.last_point]
					: "",
				t->name);
		switch_to(&sim.loop, t);
	}
	sim_alloc_end();
	if (sim.nthreads != 1)
		sim_fail("the host ended with %u threads still running",
			 sim.nthreads - 1);
	thread_free(host);
	sim.running = false;
	sim.cur = NULL;
}
