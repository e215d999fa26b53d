/*
 * sched/debug.c — the monitor thread, debug mode's reports, and task dumps.
 *
 * The monitor (Go's sysmon, in small) is one thread per runtime with two
 * or more workers, or in debug mode. Every period (2 ms while a worker is
 * awake, 20 ms while all sleep) it reads each worker's run_seq, which the
 * worker makes odd when a task starts running and even when it stops:
 *   - a worker whose odd run_seq has not changed since the last look is
 *     stuck in one task. If work is queued behind it (its ring or its LIFO
 *     slot), the monitor wakes a sleeping worker to search (notify_parked),
 *     which takes the ring's half or, after the 3 us grace, the LIFO
 *     entry. Without this, a task spawned or woken into the LIFO slot of a
 *     worker that then runs for seconds without suspending waited for it:
 *     the LIFO slot alone never wakes anyone (tokio has the same hole).
 *     The cost when nothing is stuck: one relaxed store per run start and
 *     end on the worker, and a few loads per period here.
 *   - in debug mode, a run longer than rt->slow_ns is reported once, with
 *     the task's backtrace: the monitor sends the worker SIGURG, and the
 *     worker's handler walks its own frame pointers from the interrupted
 *     registers into a per-worker buffer (struct coev__bt). When the run
 *     ends, how long it took is reported too.
 *   - SIGUSR1 (debug mode, when the program left it at its default) bumps
 *     a counter; the next tick writes a task dump to the log.
 * Rejected: a timer on each worker's own loop (a stuck worker never polls
 * it: the watchdog must be another thread); preempting the stuck task (a
 * stackful coroutine can only be switched where it calls into coev; a
 * signal-driven switch would break every non-reentrant library the task is
 * in); moving the stuck worker's timers and fd waits to others (a libev
 * loop belongs to its thread: the tasks pinned to it wait, and the slow
 * task report says how many).
 *
 * Dumps read other threads' tasks without stopping them. Task blocks stay
 * valid under their home worker's registry lock; every field a dump reads
 * is either set before the task was registered, atomic, or read with
 * process_vm_readv (peek): the saved stack pointer, the stack bounds, the
 * frames of a parked task's stack, a mutex's holder. A task that resumes,
 * ends or frees its stack during the walk gives a truncated or stale
 * backtrace, never a fault, and sanitizers see no racy access. Frames are
 * found by the frame-pointer chain (the build keeps frame pointers); the
 * first one comes from the callee-saved registers the context switch left
 * at the saved stack pointer (sched/ctx_*.S documents the layout).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "sched.h"
#include "symbol.h"

#define BT_MAX 48
#define PERIOD_NS 2000000
#define PERIOD_IDLE_NS 20000000
#define BT_WAIT_NS 50000000

#define N_UNPARKED(s) ((unsigned)((s) >> 32))

coev_time_t coev__coarse_now(void)
{
#if defined(COEV_SIM)
	return coev__plat_now();
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (coev_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

/* --- text ----------------------------------------------------------------- */

/* A growing string; on allocation failure it keeps what fit. */
typedef struct sb {
	char *p;
	size_t n, cap;
} sb_t;

__attribute__((format(printf, 2, 3))) static void
sb_printf(sb_t *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		size_t room = b->cap - b->n;

		va_start(ap, fmt);
		k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if ((size_t)k < room) {
			b->n += (size_t)k;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap - b->n <= (size_t)k)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return;
		b->p = np;
		b->cap = cap;
	}
}

static void fmt_dur(char *buf, size_t len, coev_time_t ns)
{
	if (ns < 0)
		ns = 0;
	if (ns < 10000)
		snprintf(buf, len, "%lld ns", (long long)ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
}

static void write_all(int fd, const char *p, size_t n, int *err)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (err)
				*err = -errno;
			return;
		}
		p += k;
		n -= (size_t)k;
	}
}

void coev__log_stderr(void *arg, const char *text)
{
	(void)arg;
	write_all(2, text, strlen(text), NULL);
}

void coev__logf(struct coev_rt *rt, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	rt->log(rt->log_arg, buf);
}

static const char *task_name(const char *name)
{
	return name[0] ? name : "(unnamed)";
}

/* --- reading other threads' memory ---------------------------------------- */

/* Copy n bytes at src into dst without trusting src: false when any of it
 * is unmapped. Async-signal-safe. */
static bool peek(void *dst, const void *src, size_t n)
{
	struct iovec l = {dst, n}, r = {(void *)(uintptr_t)src, n};

	return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)n;
}

/* Follow the frame-pointer chain from fp while it stays inside [lo, hi)
 * and goes up: each frame holds the caller's frame pointer and then the
 * return address. */
static int walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int n,
		int max)
{
	while (n < max && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
		uintptr_t fr[2];

		if (!peek(fr, (const void *)fp, sizeof fr) || fr[1] == 0)
			break;
		pcs[n++] = fr[1];
		if (fr[0] <= fp)
			break;
		fp = fr[0];
	}
	return n;
}

/* Backtrace of a parked context whose saved stack pointer is sp. */
static int walk_parked(uintptr_t sp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
		       int max)
{
	uintptr_t fr[2];

#if defined(__x86_64__)
	/* +48 rbp, +56 return address (ctx_x86_64.S). */
	if (sp < lo || sp + 64 > hi || !peek(fr, (const void *)(sp + 48), 16))
		return 0;
#elif defined(__aarch64__)
	/* +80 x29 (frame pointer), +88 x30 (ctx_aarch64.S). */
	if (sp < lo || sp + 96 > hi || !peek(fr, (const void *)(sp + 80), 16))
		return 0;
#else
	(void)sp;
	(void)lo;
	(void)hi;
	(void)pcs;
	(void)max;
	(void)fr;
	return 0;
#endif
#if defined(__x86_64__) || defined(__aarch64__)
	pcs[0] = fr[1];
	return walk(fr[0], lo, hi, pcs, 1, max);
#endif
}

/* pcs[0] is a return address too unless exact0 (an interrupted pc). */
static void put_backtrace(sb_t *b, const uintptr_t *pcs, int n, bool exact0)
{
	char sym[256];

	for (int i = 0; i < n; i++) {
		coev__symbolise(pcs[i], i > 0 || !exact0, sym, sizeof sym);
		sb_printf(b, "    #%d %s\n", i, sym);
	}
}

/* --- snapshots of the live tasks ----------------------------------------- */

/* The task w runs now, or NULL: its current, read from outside. */
static const coev_task_t *running_on(struct coev_worker *w)
{
	coev_task_t *cur = NULL;

	if (!(atomic_load_explicit(&w->run_seq, memory_order_acquire) & 1))
		return NULL;
	peek(&cur, &w->current, sizeof cur);
	return cur;
}

struct snap {
	coev_task_info_t info;
	const coev_task_t *t;
	const void *owner; /* WAIT_MUTEX: the holder (a task or not) */
	uintptr_t sp, lo, hi;
};

static void snap_task(struct coev_rt *rt, const coev_task_t *t, struct snap *s,
		      coev_time_t now)
{
	coev_task_t *mt = (coev_task_t *)t;
	unsigned st = atomic_load_explicit(&mt->state, memory_order_acquire);
	struct coev_worker *tw = NULL;
	coev_task_info_t *in = &s->info;
	int wi = -1;

	/* t->worker and each worker's current are their runners' plain
	 * fields: read with peek, a snapshot. */
	peek(&tw, &t->worker, sizeof tw);
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (rt->workers[i] == tw)
			wi = (int)i;

	memset(s, 0, sizeof *s);
	s->t = t;
	in->id = t->id;
	memcpy(in->name, t->name, sizeof in->name);
	in->worker = wi;
	/* Both on the coarse clock, which is monotonic: never negative. */
	in->age =
		now - (rt->started_coarse + (coev_time_t)t->born_ms * 1000000);
	if (in->age < 0)
		in->age = 0;
	in->cancelled =
		atomic_load_explicit(&mt->cancel, memory_order_relaxed) != 0;
	in->wait = COEV_WAIT_NONE;
	if (st & TS_DONE) {
		in->state = COEV_TASK_DONE;
	} else if (st & TS_RUNNING) {
		/* RUNNING also marks a yielded task waiting in a queue. */
		in->state = wi >= 0 && running_on(rt->workers[wi]) == t
				    ? COEV_TASK_RUNNING
				    : COEV_TASK_READY;
	} else if (st & TS_NOTIFIED) {
		in->state = COEV_TASK_READY;
	} else {
		struct coev_stack *stk, hdr;

		in->state = COEV_TASK_WAITING;
		in->wait = atomic_load_explicit(&mt->wait_kind,
						memory_order_relaxed);
		in->obj = atomic_load_explicit(&mt->wait_obj,
					       memory_order_relaxed);
		in->arg = atomic_load_explicit(&mt->wait_arg,
					       memory_order_relaxed);
		if (in->wait == COEV_WAIT_MUTEX && in->obj)
			peek(&s->owner,
			     (const char *)in->obj + coev__mutex_owner_offset,
			     sizeof s->owner);
		if (peek(&stk, &t->stack, sizeof stk) && stk &&
		    peek(&hdr, stk, sizeof hdr) &&
		    peek(&s->sp, &t->ctx.sp, sizeof s->sp)) {
			s->lo = (uintptr_t)hdr.lo;
			s->hi = s->lo + hdr.size;
		}
	}
}

/* Every task in rt's registries; *out is malloc'd (NULL when none or on
 * allocation failure, with the count of those that fit). */
static size_t snapshot(struct coev_rt *rt, struct snap **out)
{
	struct snap *a = NULL;
	size_t n = 0, cap = 0;
	coev_time_t now = coev__coarse_now();

	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];

		pthread_mutex_lock(&w->reg_mu);
		for (coev_task_t *t = w->reg_head; t; t = t->rnext) {
			/* An ended task is listed while its handle waits for
			 * a join; a joined or detached one is gone, however
			 * long its block lingers for the last reference. */
			coev__waiter_t *j = atomic_load_explicit(
				&t->joiner, memory_order_acquire);
			if (j == JOIN_FREED ||
			    (j == JOIN_DETACHED &&
			     (atomic_load_explicit(&t->state,
						   memory_order_relaxed) &
			      TS_DONE)))
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct snap *na = realloc(a, nc * sizeof *a);
				if (!na)
					break;
				a = na;
				cap = nc;
			}
			snap_task(rt, t, &a[n++], now);
		}
		pthread_mutex_unlock(&w->reg_mu);
	}
	/* Name mutex holders that are tasks of this snapshot. */
	for (size_t i = 0; i < n; i++) {
		if (!a[i].owner)
			continue;
		for (size_t k = 0; k < n; k++)
			if (a[k].t == a[i].owner)
				a[i].info.owner = a[k].info.id;
	}
	*out = a;
	return n;
}

int coev_rt_tasks(coev_rt_t *rt, coev_task_info_t *out, size_t max)
{
	struct snap *a;
	size_t n;

	if (!rt || (!out && max))
		return -EINVAL;
	n = snapshot(rt, &a);
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = a[i].info;
	free(a);
	return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

static const char *wait_what(int kind)
{
	switch (kind) {
	case COEV_WAIT_FD: return "fd";
	case COEV_WAIT_TIMER: return "a timer";
	case COEV_WAIT_MUTEX: return "mutex";
	case COEV_WAIT_COND: return "condition";
	case COEV_WAIT_SEM: return "semaphore";
	case COEV_WAIT_EVENT: return "event";
	case COEV_WAIT_CHANNEL: return "channel";
	case COEV_WAIT_SELECT: return "a select over channels";
	case COEV_WAIT_FUTURE: return "future";
	case COEV_WAIT_JOIN: return "task";
	case COEV_WAIT_BLOCKING: return "a blocking-pool job";
	case COEV_WAIT_SCOPE: return "the children of scope";
	default: return "nothing noted (a bare park)";
	}
}

static const struct snap *find_id(const struct snap *a, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].info.id == id)
			return &a[i];
	return NULL;
}

static void put_task(sb_t *b, const struct snap *a, size_t n,
		     const struct snap *s)
{
	const coev_task_info_t *in = &s->info;
	static const char *states[] = {"ready", "running", "waiting", "done"};
	char age[32], due[32];

	sb_printf(b, "task #%llu '%s': %s", (unsigned long long)in->id,
		  task_name(in->name), states[in->state & 3]);
	if (in->state == COEV_TASK_WAITING) {
		sb_printf(b, " on %s", wait_what(in->wait));
		switch (in->wait) {
		case COEV_WAIT_FD:
			sb_printf(b, " %lld (%s)", in->arg,
				  (uintptr_t)in->obj == COEV_READ ? "read"
				  : (uintptr_t)in->obj == COEV_WRITE
					  ? "write"
					  : "read/write");
			break;
		case COEV_WAIT_TIMER:
			if (in->arg == COEV_FOREVER) {
				sb_printf(b, " due never (a sleep forever)");
				break;
			}
			fmt_dur(due, sizeof due, in->arg - coev__plat_now());
			sb_printf(b, " due in %s", due);
			break;
		case COEV_WAIT_JOIN:
			if (in->obj)
				sb_printf(b, " #%llu",
					  (unsigned long long)in->arg);
			else
				sb_printf(b, "s (wait-any)");
			break;
		case COEV_WAIT_MUTEX: {
			const struct snap *o = find_id(a, n, in->owner);
			sb_printf(b, " %p", in->obj);
			if (o)
				sb_printf(b, " held by task #%llu '%s'",
					  (unsigned long long)o->info.id,
					  task_name(o->info.name));
			else if (s->owner)
				sb_printf(b, " held by a plain thread");
			break;
		}
		case COEV_WAIT_NONE:
		case COEV_WAIT_SELECT:
		case COEV_WAIT_BLOCKING: break;
		default: sb_printf(b, " %p", in->obj);
		}
	}
	fmt_dur(age, sizeof age, in->age);
	if (in->worker >= 0)
		sb_printf(b, "; worker %d", in->worker);
	else
		sb_printf(b, "; never ran");
	sb_printf(b, "; age %s%s\n", age, in->cancelled ? "; cancelled" : "");
}

/* A cycle of tasks each waiting on a mutex the next one holds. */
static void put_deadlocks(sb_t *b, const struct snap *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct snap *s = &a[i];
		uint64_t start = s->info.id, least = start;
		size_t steps = 0;

		if (s->info.wait != COEV_WAIT_MUTEX || !s->info.owner)
			continue;
		while (steps++ < n && s && s->info.wait == COEV_WAIT_MUTEX &&
		       s->info.state == COEV_TASK_WAITING && s->info.owner &&
		       s->info.owner != start) {
			s = find_id(a, n, s->info.owner);
			if (s && s->info.id < least)
				least = s->info.id;
		}
		if (!s || s->info.owner != start || least != start)
			continue; /* no cycle, or printed from its least id */
		sb_printf(b, "deadlock: task #%llu '%s'",
			  (unsigned long long)start, task_name(a[i].info.name));
		s = &a[i];
		steps = 0;
		do {
			s = find_id(a, n, s->info.owner);
			sb_printf(b, "%s waits for a mutex held by #%llu '%s'",
				  steps++ ? ", which" : "",
				  (unsigned long long)s->info.id,
				  task_name(s->info.name));
		} while (s->info.id != start);
		sb_printf(b, "\n");
	}
}

static void put_worker(sb_t *b, struct coev_rt *rt, struct coev_worker *w,
		       const struct snap *a, size_t n, coev_time_t now)
{
	uint_fast64_t seq =
		atomic_load_explicit(&w->run_seq, memory_order_acquire);
	uint64_t ring, lifo, inbox;
	coev_time_t since;
	char d[32];

	sb_printf(b, "worker %u: ", w->index);
	if (seq & 1) {
		const coev_task_t *cur = running_on(w);
		const struct snap *s = NULL;

		for (size_t i = 0; i < n && !s; i++)
			if (a[i].t == cur)
				s = &a[i];
		if (s)
			sb_printf(b, "running task #%llu '%s'",
				  (unsigned long long)s->info.id,
				  task_name(s->info.name));
		else
			sb_printf(b, "running a task");
		if (COEV__DEBUG(rt) || w->trace) {
			fmt_dur(d, sizeof d,
				now - atomic_load_explicit(
					      &w->run_start,
					      memory_order_relaxed));
			sb_printf(b, " for %s", d);
		}
	} else if ((since = atomic_load_explicit(&w->park_start,
						 memory_order_relaxed)) != 0) {
		fmt_dur(d, sizeof d, now - since);
		sb_printf(b, "asleep for %s", d);
	} else {
		sb_printf(b, "between tasks");
	}
	coev__worker_depths(w, &ring, &lifo, &inbox);
	sb_printf(b,
		  "; queued: %llu in its ring, %llu in its LIFO slot, %llu "
		  "pinned; armed: %llu timers, %llu fd waits\n",
		  (unsigned long long)ring, (unsigned long long)lifo,
		  (unsigned long long)inbox,
		  (unsigned long long)atomic_load_explicit(
			  &w->st.timers, memory_order_relaxed),
		  (unsigned long long)atomic_load_explicit(
			  &w->st.ios, memory_order_relaxed));
}

/* The whole dump; backtraces for parked tasks when bt. */
static void put_dump(sb_t *b, struct coev_rt *rt, bool bt, bool only_live)
{
	struct snap *a;
	size_t n = snapshot(rt, &a);
	coev_time_t now = coev__plat_now();
	uintptr_t pcs[BT_MAX];

	sb_printf(b,
		  "coev: dump of runtime %p: %u workers, %zu tasks, %.3f s "
		  "after it started\n",
		  (void *)rt, rt->nworkers, n,
		  (double)(now - rt->started) / 1e9);
	for (unsigned i = 0; i < rt->nworkers; i++)
		put_worker(b, rt, rt->workers[i], a, n, now);
	for (size_t i = 0; i < n; i++) {
		if (only_live && a[i].info.state == COEV_TASK_DONE)
			continue;
		put_task(b, a, n, &a[i]);
		if (bt && a[i].info.state == COEV_TASK_WAITING && a[i].sp)
			put_backtrace(b, pcs,
				      walk_parked(a[i].sp, a[i].lo, a[i].hi,
						  pcs, BT_MAX),
				      false);
	}
	put_deadlocks(b, a, n);
	free(a);
}

int coev_rt_dump(coev_rt_t *rt, int fd)
{
	sb_t b = {0};
	int err = 0;

	if (!rt || fd < 0)
		return -EINVAL;
	put_dump(&b, rt, true, false);
	if (!b.p)
		return -ENOMEM;
	write_all(fd, b.p, b.n, &err);
	free(b.p);
	return err;
}

static void log_sb(struct coev_rt *rt, sb_t *b)
{
	if (b->p)
		rt->log(rt->log_arg, b->p);
	free(b->p);
}

/* --- debug mode's reports ------------------------------------------------ */

void coev__debug_task_end(struct coev_worker *w, coev_task_t *t)
{
	struct coev_rt *rt = w->rt;

	if (t->locks_held)
		coev__logf(rt,
			   "coev: task #%llu '%s' ended holding %u coev "
			   "mutex%s; no other task can take %s\n",
			   (unsigned long long)t->id, task_name(t->name),
			   (unsigned)t->locks_held,
			   t->locks_held == 1 ? "" : "es",
			   t->locks_held == 1 ? "it" : "them");
	if (t->stack) {
		size_t used = coev__stack_used(t->stack), size = t->stack->size;

		if (used > size / 4 * 3)
			coev__logf(rt,
				   "coev: task #%llu '%s' used %zu KiB of its "
				   "%zu KiB stack (%zu%%); raise "
				   "coev_config_t.stack_size or "
				   "COEV_STACK_SIZE before it overflows\n",
				   (unsigned long long)t->id,
				   task_name(t->name), (used + 512) / 1024,
				   (size + 512) / 1024, used * 100 / size);
		coev__stack_forget(t->stack);
	}
}

void coev__debug_unjoined(coev_task_t *t, const char *when)
{
	if (t->result >= 0 || t->result == -ECANCELED)
		return;
	coev__logf(t->rt,
		   "coev: task #%llu '%s' failed with %d (%s) and nobody "
		   "joined it: %s\n",
		   (unsigned long long)t->id, task_name(t->name), t->result,
		   coev_strerror(t->result), when);
}

void coev__debug_shutdown_begin(struct coev_rt *rt)
{
	struct snap *a;
	size_t n = snapshot(rt, &a), live = 0;
	sb_t b = {0};

	for (size_t i = 0; i < n; i++)
		live += a[i].info.state != COEV_TASK_DONE;
	if (live) {
		sb_printf(&b,
			  "coev: shutdown: %zu task%s still alive, now "
			  "cancelled:\n",
			  live, live == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++)
			if (a[i].info.state != COEV_TASK_DONE) {
				sb_printf(&b, "  ");
				put_task(&b, a, n, &a[i]);
			}
	}
	free(a);
	log_sb(rt, &b);
}

void coev__debug_shutdown_left(struct coev_rt *rt, int left)
{
	sb_t b = {0};

	sb_printf(&b,
		  "coev: shutdown: %d task%s did not end by the deadline and "
		  "will not run again:\n",
		  left, left == 1 ? "" : "s");
	put_dump(&b, rt, true, true);
	log_sb(rt, &b);
}

/* --- the monitor ------------------------------------------------------- */

#if !defined(COEV_SIM)

/* A worker's reply to SIGURG: its backtrace at the moment. */
struct coev__bt {
	atomic_uint_fast64_t want, done; /* request numbers */
	uint_fast64_t seq;		 /* the worker's run_seq then */
	int n;
	uintptr_t pcs[BT_MAX];
};

struct mon_worker {
	uint_fast64_t seen;   /* run_seq at the last tick */
	uint_fast64_t warned; /* run_seq of the run reported slow, or 0 */
	coev_time_t warned_start;
};

struct coev__monitor {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* [mu] */
	unsigned usr1_seen;
	uint64_t req;
	struct mon_worker w[];
};

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static int sig_users;			   /* [sig_mu] debug runtimes */
static bool own_urg, own_usr1;		   /* [sig_mu] our handlers are in */
static struct sigaction old_urg, old_usr1; /* [sig_mu] */
static atomic_uint usr1_gen;
static atomic_bool urg_ours;

static void urg_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved = errno;
	struct coev_worker *w = coev__tls_worker;
	struct coev__bt *b = w ? w->bt : NULL;
	ucontext_t *uc = ucv;
	uintptr_t pc = 0, fp = 0, lo = 0, hi = 0;
	uint_fast64_t want;

	(void)sig;
	(void)si;
	if (!b)
		return;
	want = atomic_load_explicit(&b->want, memory_order_acquire);
#if defined(__x86_64__)
	pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
	pc = (uintptr_t)uc->uc_mcontext.pc;
	fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
	(void)uc;
#endif
	if (w->current && w->current->stack) {
		lo = (uintptr_t)w->current->stack->lo;
		hi = lo + w->current->stack->size;
	}
	b->pcs[0] = pc;
	b->n = walk(fp, lo, hi, b->pcs, 1, BT_MAX);
	b->seq = atomic_load_explicit(&w->run_seq, memory_order_relaxed);
	atomic_store_explicit(&b->done, want, memory_order_release);
	errno = saved;
}

static void usr1_handler(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&usr1_gen, 1, memory_order_relaxed);
}

/* Take a signal for ourselves only when the program left it alone. */
static bool claim(int sig, struct sigaction *old, struct sigaction *sa)
{
	if (sigaction(sig, NULL, old) != 0 || (old->sa_flags & SA_SIGINFO) ||
	    old->sa_handler != SIG_DFL)
		return false;
	return sigaction(sig, sa, NULL) == 0;
}

static void signals_take(void)
{
	struct sigaction sa;

	pthread_mutex_lock(&sig_mu);
	if (sig_users++ == 0) {
		memset(&sa, 0, sizeof sa);
		sigemptyset(&sa.sa_mask);
		sa.sa_sigaction = urg_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
		own_urg = claim(SIGURG, &old_urg, &sa);
		atomic_store_explicit(&urg_ours, own_urg, memory_order_relaxed);
		memset(&sa, 0, sizeof sa);
		sigemptyset(&sa.sa_mask);
		sa.sa_handler = usr1_handler;
		sa.sa_flags = SA_RESTART;
		own_usr1 = claim(SIGUSR1, &old_usr1, &sa);
	}
	pthread_mutex_unlock(&sig_mu);
}

static void signals_give(void)
{
	pthread_mutex_lock(&sig_mu);
	if (--sig_users == 0) {
		if (own_urg)
			sigaction(SIGURG, &old_urg, NULL);
		if (own_usr1)
			sigaction(SIGUSR1, &old_usr1, NULL);
		own_urg = own_usr1 = false;
		atomic_store_explicit(&urg_ours, false, memory_order_relaxed);
	}
	pthread_mutex_unlock(&sig_mu);
}

/* Ask worker w for its backtrace during the run seq; n frames, 0 without
 * an answer, -1 when the run had ended by then. */
static int ask_backtrace(struct coev__monitor *m, struct coev_worker *w,
			 uint_fast64_t seq, uintptr_t *pcs)
{
	struct coev__bt *b = w->bt;
	uint_fast64_t want = ++m->req;
	struct timespec nap = {0, 200000};
	int n;

	if (!b || !atomic_load_explicit(&urg_ours, memory_order_relaxed))
		return 0;
	atomic_store_explicit(&b->want, want, memory_order_release);
	if (pthread_kill((pthread_t)w->thread.handle, SIGURG) != 0)
		return 0;
	for (coev_time_t waited = 0; waited < BT_WAIT_NS;
	     waited += nap.tv_nsec) {
		if (atomic_load_explicit(&b->done, memory_order_acquire) ==
		    want) {
			if (b->seq != seq)
				return -1;
			n = b->n;
			memcpy(pcs, b->pcs, (size_t)n * sizeof *pcs);
			return n;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}

/* Name the task with this id, from the registries. */
static void name_of(struct coev_rt *rt, uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "(ended)");
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];

		pthread_mutex_lock(&w->reg_mu);
		for (coev_task_t *t = w->reg_head; t; t = t->rnext)
			if (t->id == id)
				snprintf(buf, len, "%s", task_name(t->name));
		pthread_mutex_unlock(&w->reg_mu);
	}
}

static void report_slow(struct coev_rt *rt, struct coev__monitor *m,
			struct coev_worker *w, uint_fast64_t seq,
			coev_time_t ran)
{
	const coev_task_t *cur = running_on(w);
	uint64_t id = 0, ring, lifo, inbox;
	uintptr_t pcs[BT_MAX];
	char name[32], d[32], lim[32];
	sb_t b = {0};
	int n;

	/* The block is live while registered: name_of finds it there. */
	if (cur)
		peek(&id, &cur->id, sizeof id);
	name_of(rt, id, name, sizeof name);
	fmt_dur(d, sizeof d, ran);
	fmt_dur(lim, sizeof lim, rt->slow_ns);
	coev__worker_depths(w, &ring, &lifo, &inbox);
	sb_printf(&b,
		  "coev: slow task: task #%llu '%s' has run for %s on worker "
		  "%u without suspending (debug mode's limit: %s)\n",
		  (unsigned long long)id, name, d, w->index, lim);
	sb_printf(&b,
		  "  waiting for worker %u: %llu queued task%s (other "
		  "workers take them), %llu task%s pinned to it, %llu "
		  "timer%s and %llu fd wait%s on its loop (they fire late)\n",
		  w->index, (unsigned long long)(ring + lifo),
		  ring + lifo == 1 ? "" : "s", (unsigned long long)inbox,
		  inbox == 1 ? "" : "s",
		  (unsigned long long)atomic_load_explicit(
			  &w->st.timers, memory_order_relaxed),
		  atomic_load_explicit(&w->st.timers, memory_order_relaxed) == 1
			  ? ""
			  : "s",
		  (unsigned long long)atomic_load_explicit(
			  &w->st.ios, memory_order_relaxed),
		  atomic_load_explicit(&w->st.ios, memory_order_relaxed) == 1
			  ? ""
			  : "s");
	n = ask_backtrace(m, w, seq, pcs);
	if (n > 0) {
		sb_printf(&b, "  where it is now:\n");
		put_backtrace(&b, pcs, n, true);
	} else {
		sb_printf(
			&b, "  (no backtrace: %s)\n",
			n < 0 ? "it suspended before the worker answered"
			: atomic_load_explicit(&urg_ours, memory_order_relaxed)
				? "the worker did not answer SIGURG"
				: "the program handles SIGURG itself");
	}
	log_sb(rt, &b);
}

static void tick(struct coev_rt *rt, struct coev__monitor *m)
{
	coev_time_t now = coev__plat_now();
	unsigned g;

	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];
		struct mon_worker *mw = &m->w[i];
		uint_fast64_t seq =
			atomic_load_explicit(&w->run_seq, memory_order_acquire);
		uint64_t ring, lifo, inbox;

		if (mw->warned && seq != mw->warned) {
			char d[32];

			/* The reported run ended (within a period). */
			fmt_dur(d, sizeof d, now - mw->warned_start);
			coev__logf(rt,
				   "coev: slow task: the task reported on "
				   "worker %u suspended after about %s\n",
				   w->index, d);
			mw->warned = 0;
		}
		if ((seq & 1) && seq == mw->seen) {
			/* Stuck in one run for a period at least. */
			coev__worker_depths(w, &ring, &lifo, &inbox);
			if (ring || lifo) {
				atomic_fetch_add_explicit(&rt->stuck_kicks, 1,
							  memory_order_relaxed);
				coev__notify_parked(rt, true);
			}
			if (COEV__DEBUG(rt) && !mw->warned) {
				coev_time_t start = atomic_load_explicit(
					&w->run_start, memory_order_relaxed);

				if (start && now - start >= rt->slow_ns) {
					report_slow(rt, m, w, seq, now - start);
					mw->warned = seq;
					mw->warned_start = start;
				}
			}
		}
		mw->seen = seq;
	}
	g = atomic_load_explicit(&usr1_gen, memory_order_relaxed);
	if (COEV__DEBUG(rt) && g != m->usr1_seen) {
		sb_t b = {0};

		m->usr1_seen = g;
		sb_printf(&b, "coev: SIGUSR1: ");
		put_dump(&b, rt, true, false);
		log_sb(rt, &b);
	}
}

static void *monitor_main(void *arg)
{
	struct coev_rt *rt = arg;
	struct coev__monitor *m = rt->mon;
	coev_time_t period = PERIOD_NS;
	struct timespec ts;
	sigset_t all;

	/* Process-directed signals go to the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (COEV__DEBUG(rt) && rt->slow_ns / 4 < period)
		period = rt->slow_ns / 4 > 100000 ? rt->slow_ns / 4 : 100000;
	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		uint_fast64_t s = atomic_load_explicit(&rt->idle_state,
						       memory_order_relaxed);
		coev_time_t until =
			coev__plat_now() + (N_UNPARKED(s) || COEV__DEBUG(rt)
						    ? period
						    : PERIOD_IDLE_NS);

		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
		if (m->stop)
			break;
		pthread_mutex_unlock(&m->mu);
		tick(rt, m);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

static void coev__monitor_free_parts(struct coev_rt *rt,
				     struct coev__monitor *m)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		free(rt->workers[i]->bt);
		rt->workers[i]->bt = NULL;
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

int coev__monitor_start(struct coev_rt *rt)
{
	struct coev__monitor *m;
	pthread_condattr_t ca;
	int r;

	if (rt->nworkers < 2 && !COEV__DEBUG(rt))
		return 0;
	m = calloc(1, sizeof *m + rt->nworkers * sizeof m->w[0]);
	if (!m)
		return -ENOMEM;
	if (COEV__DEBUG(rt)) {
		for (unsigned i = 0; i < rt->nworkers; i++) {
			rt->workers[i]->bt = calloc(1, sizeof(struct coev__bt));
			if (!rt->workers[i]->bt) {
				for (unsigned k = 0; k < i; k++) {
					free(rt->workers[k]->bt);
					rt->workers[k]->bt = NULL;
				}
				free(m);
				return -ENOMEM;
			}
		}
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cv, &ca);
	pthread_condattr_destroy(&ca);
	m->usr1_seen = atomic_load_explicit(&usr1_gen, memory_order_relaxed);
	rt->mon = m;
	if (COEV__DEBUG(rt))
		signals_take();
	if ((r = pthread_create(&m->th, NULL, monitor_main, rt)) != 0) {
		if (COEV__DEBUG(rt))
			signals_give();
		rt->mon = NULL;
		coev__monitor_free_parts(rt, m);
		return -r;
	}
	return 0;
}

void coev__monitor_stop(struct coev_rt *rt)
{
	struct coev__monitor *m = rt->mon;

	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->stop = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->th, NULL);
	if (COEV__DEBUG(rt))
		signals_give();
	rt->mon = NULL;
	coev__monitor_free_parts(rt, m);
}

#else /* COEV_SIM: no monitor; the simulation schedules every thread. */

int coev__monitor_start(struct coev_rt *rt)
{
	(void)rt;
	return 0;
}

void coev__monitor_stop(struct coev_rt *rt)
{
	(void)rt;
}

#endif
