/* SPDX-License-Identifier: MIT */
/*
 * observe/dump.c — task dumps: coev_rt_tasks() and coev_rt_dump().
 *
 * A snapshot visits every live task with coev__task_each, which holds a
 * reference on each task block while it is read, so the block is not
 * reused meanwhile. Every field a snapshot reads is set before the task
 * was published (its spawn's store of refs), atomic, or read with coev__peek (a runner's plain fields,
 * the saved stack pointer, a mutex's holder): a task that moves on
 * meanwhile gives a stale line, never a fault. What a parked task waits
 * on is the note its wait left (coev__wait_note): the kind, the object and
 * an argument; for a mutex the argument is where the mutex keeps its
 * holder, so the dump names the holder without knowing sync/'s layout,
 * and prints a "deadlock:" line for each cycle of tasks waiting on each
 * other's mutexes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "observe.h"

/* The task w runs now, or NULL: its current, read from outside. */
const coev_task_t *coev__running_on(struct coev_worker *w)
{
	coev_task_t *cur = NULL;

	/* Acquire: pairs with the release stores of run_seq in run_begin
	 * and run_end (sched/task.c). current is stored after run_begin's
	 * store, so the peek may still read NULL for a run that has just
	 * begun, never the task of an earlier run: a snapshot. */
	if (!(atomic_load_explicit(&w->run_seq, memory_order_acquire) & 1))
		return NULL;
	coev__peek(&cur, &w->current, sizeof cur);
	return cur;
}

/* What the parked task t waits on, from the note its wait left, and where
 * its stack and saved stack pointer are (for its backtrace). */
static void snap_wait(const coev_task_t *t, coev__snap_t *s)
{
	coev_task_t *mt = (coev_task_t *)t;
	coev_task_info_t *in = &s->info;
	struct coev_stack *stk, hdr;

	in->state = COEV_TASK_WAITING;
	in->wait = atomic_load_explicit(&mt->wait_kind, memory_order_relaxed);
	in->obj = atomic_load_explicit(&mt->wait_obj, memory_order_relaxed);
	in->arg = atomic_load_explicit(&mt->wait_arg, memory_order_relaxed);
	/* A wait on an object with a holder notes where the holder is kept
	 * (sched/internal.h, coev__wait_note): read it through that, and
	 * give users no address. */
	if (in->wait == COEV_WAIT_MUTEX && in->arg) {
		coev__peek(&s->owner, (const void *)(uintptr_t)in->arg,
			   sizeof s->owner);
		in->arg = 0;
	}
	if (coev__peek(&stk, &t->stack, sizeof stk) && stk &&
	    coev__peek(&hdr, stk, sizeof hdr) &&
	    coev__peek(&s->sp, &t->ctx.sp, sizeof s->sp)) {
		s->lo = (uintptr_t)hdr.lo;
		s->hi = s->lo + hdr.size;
	}
}

static void snap_task(struct coev_rt *rt, const coev_task_t *t, coev__snap_t *s,
		      coev_time_t now)
{
	coev_task_t *mt = (coev_task_t *)t;
	/* Acquire: pairs with the acq_rel RMWs of the state word in
	 * sched/task.c (publish_park, notify, claim, task_finish): a task
	 * seen parked shows the wait note it stored before it parked. */
	unsigned st = atomic_load_explicit(&mt->state, memory_order_acquire);
	struct coev_worker *tw = NULL;
	coev_task_info_t *in = &s->info;
	int wi = -1;

	/* t->worker and each worker's current are their runners' plain
	 * fields: read with peek, a snapshot. */
	coev__peek(&tw, &t->worker, sizeof tw);
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
		in->state = wi >= 0 && coev__running_on(rt->workers[wi]) == t
				    ? COEV_TASK_RUNNING
				    : COEV_TASK_READY;
	} else if (st & TS_NOTIFIED) {
		in->state = COEV_TASK_READY;
	} else {
		snap_wait(t, s);
	}
}

struct snap_walk {
	struct coev_rt *rt;
	coev__snap_t *a;
	size_t n, cap;
	coev_time_t now;
	bool full; /* an allocation failed: keep what fits */
};

static void snap_one(coev_task_t *t, void *arg)
{
	struct snap_walk *s = arg;
	/* An ended task is listed while its handle waits for a join; a
	 * joined or detached one is gone, however long its block lingers
	 * for the last reference. Acquire: pairs with task_finish's acq_rel
	 * exchange of JOIN_DONE (sched/task.c) and coev_detach's exchange
	 * (sched/join.c); only the sentinel is used. */
	coev__waiter_t *j =
		atomic_load_explicit(&t->joiner, memory_order_acquire);

	if (s->full || j == JOIN_FREED ||
	    (j == JOIN_DETACHED &&
	     (atomic_load_explicit(&t->state, memory_order_relaxed) & TS_DONE)))
		return;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		coev__snap_t *na = realloc(s->a, nc * sizeof *na);

		if (!na) {
			s->full = true;
			return;
		}
		s->a = na;
		s->cap = nc;
	}
	snap_task(s->rt, t, &s->a[s->n++], s->now);
}

/* Every live task of rt; *out is malloc'd (NULL when none or on
 * allocation failure, with the count of those that fit). */
size_t coev__snapshot(struct coev_rt *rt, coev__snap_t **out)
{
	struct snap_walk s = {rt, NULL, 0, 0, coev__plat_coarse_now(), false};
	coev__snap_t *a;
	size_t n;

	coev__task_each(rt, snap_one, &s);
	a = s.a;
	n = s.n;
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
	coev__snap_t *a;
	size_t n;

	if (!rt || (!out && max))
		return -EINVAL;
	n = coev__snapshot(rt, &a);
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

static const coev__snap_t *find_id(const coev__snap_t *a, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].info.id == id)
			return &a[i];
	return NULL;
}

/* What a waiting task waits on, after " on <kind>". */
static void put_wait(coev__sb_t *b, const coev__snap_t *a, size_t n,
		     const coev__snap_t *s)
{
	const coev_task_info_t *in = &s->info;
	char due[32];

	switch (in->wait) {
	case COEV_WAIT_FD:
		coev__sb_printf(b, " %lld (%s)", in->arg,
				(uintptr_t)in->obj == COEV_READ ? "read"
				: (uintptr_t)in->obj == COEV_WRITE
					? "write"
					: "read/write");
		break;
	case COEV_WAIT_TIMER:
		if (in->arg == COEV_FOREVER) {
			coev__sb_printf(b, " due never (a sleep forever)");
			break;
		}
		coev__fmt_dur(due, sizeof due, in->arg - coev__plat_now());
		coev__sb_printf(b, " due in %s", due);
		break;
	case COEV_WAIT_JOIN:
		if (in->obj)
			coev__sb_printf(b, " #%llu",
					(unsigned long long)in->arg);
		else
			coev__sb_printf(b, "s (wait-any)");
		break;
	case COEV_WAIT_MUTEX: {
		const coev__snap_t *o = find_id(a, n, in->owner);
		coev__sb_printf(b, " %p", in->obj);
		if (o)
			coev__sb_printf(b, " held by task #%llu '%s'",
					(unsigned long long)o->info.id,
					coev__task_label(o->info.name));
		else if (s->owner)
			coev__sb_printf(b, " held by a plain thread");
		break;
	}
	case COEV_WAIT_NONE:
	case COEV_WAIT_SELECT:
	case COEV_WAIT_BLOCKING: break;
	default: coev__sb_printf(b, " %p", in->obj);
	}
}

void coev__put_task(coev__sb_t *b, const coev__snap_t *a, size_t n,
		    const coev__snap_t *s)
{
	const coev_task_info_t *in = &s->info;
	static const char *states[] = {"ready", "running", "waiting", "done"};
	char age[32];

	coev__sb_printf(b, "task #%llu '%s': %s", (unsigned long long)in->id,
			coev__task_label(in->name), states[in->state & 3]);
	if (in->state == COEV_TASK_WAITING) {
		coev__sb_printf(b, " on %s", wait_what(in->wait));
		put_wait(b, a, n, s);
	}
	coev__fmt_dur(age, sizeof age, in->age);
	if (in->worker >= 0)
		coev__sb_printf(b, "; worker %d", in->worker);
	else
		coev__sb_printf(b, "; never ran");
	coev__sb_printf(b, "; age %s%s\n", age,
			in->cancelled ? "; cancelled" : "");
}

/* A cycle of tasks each waiting on a mutex the next one holds. */
static void put_deadlocks(coev__sb_t *b, const coev__snap_t *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const coev__snap_t *s = &a[i];
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
		coev__sb_printf(b, "deadlock: task #%llu '%s'",
				(unsigned long long)start,
				coev__task_label(a[i].info.name));
		s = &a[i];
		steps = 0;
		do {
			s = find_id(a, n, s->info.owner);
			coev__sb_printf(
				b, "%s waits for a mutex held by #%llu '%s'",
				steps++ ? ", which" : "",
				(unsigned long long)s->info.id,
				coev__task_label(s->info.name));
		} while (s->info.id != start);
		coev__sb_printf(b, "\n");
	}
}

static void put_worker(coev__sb_t *b, struct coev_rt *rt, struct coev_worker *w,
		       const coev__snap_t *a, size_t n, coev_time_t now)
{
	/* Acquire: pairs with the release stores of run_seq in run_begin
	 * and run_end (sched/task.c): run_start, read below, is at least
	 * this run's. */
	uint_fast64_t seq =
		atomic_load_explicit(&w->run_seq, memory_order_acquire);
	uint64_t ring, lifo, inbox;
	coev_time_t since;
	char d[32];

	coev__sb_printf(b, "worker %u: ", w->index);
	if (seq & 1) {
		const coev_task_t *cur = coev__running_on(w);
		const coev__snap_t *s = NULL;

		for (size_t i = 0; i < n && !s; i++)
			if (a[i].t == cur)
				s = &a[i];
		if (s)
			coev__sb_printf(b, "running task #%llu '%s'",
					(unsigned long long)s->info.id,
					coev__task_label(s->info.name));
		else
			coev__sb_printf(b, "running a task");
		if (COEV__DEBUG(rt) || w->trace) {
			coev__fmt_dur(d, sizeof d,
				      now - atomic_load_explicit(
						    &w->run_start,
						    memory_order_relaxed));
			coev__sb_printf(b, " for %s", d);
		}
	} else if ((since = atomic_load_explicit(&w->park_start,
						 memory_order_relaxed)) != 0) {
		coev__fmt_dur(d, sizeof d, now - since);
		coev__sb_printf(b, "asleep for %s", d);
	} else {
		coev__sb_printf(b, "between tasks");
	}
	coev__worker_depths(w, &ring, &lifo, &inbox);
	coev__sb_printf(
		b,
		"; queued: %llu in its ring, %llu in its LIFO slot, %llu "
		"pinned; armed: %llu timers, %llu fd waits\n",
		(unsigned long long)ring, (unsigned long long)lifo,
		(unsigned long long)inbox,
		(unsigned long long)atomic_load_explicit(&w->st.timers,
							 memory_order_relaxed),
		(unsigned long long)atomic_load_explicit(&w->st.ios,
							 memory_order_relaxed));
}

/* The whole dump; backtraces for parked tasks when bt. */
void coev__put_dump(coev__sb_t *b, struct coev_rt *rt, bool bt, bool only_live)
{
	coev__snap_t *a;
	size_t n = coev__snapshot(rt, &a);
	coev_time_t now = coev__plat_now();
	uintptr_t pcs[COEV__BT_MAX];

	coev__sb_printf(
		b,
		"coev: dump of runtime %p: %u workers, %zu tasks, %.3f s "
		"after it started\n",
		(void *)rt, rt->nworkers, n, (double)(now - rt->started) / 1e9);
	for (unsigned i = 0; i < rt->nworkers; i++)
		put_worker(b, rt, rt->workers[i], a, n, now);
	for (size_t i = 0; i < n; i++) {
		if (only_live && a[i].info.state == COEV_TASK_DONE)
			continue;
		coev__put_task(b, a, n, &a[i]);
		if (bt && a[i].info.state == COEV_TASK_WAITING && a[i].sp)
			coev__put_backtrace(b, pcs,
					    coev__walk_parked(a[i].sp, a[i].lo,
							      a[i].hi, pcs,
							      COEV__BT_MAX),
					    false);
	}
	put_deadlocks(b, a, n);
	free(a);
}

int coev_rt_dump(coev_rt_t *rt, int fd)
{
	coev__sb_t b = {0};
	int err = 0;

	if (!rt || fd < 0)
		return -EINVAL;
	coev__put_dump(&b, rt, true, false);
	if (!b.p)
		return -ENOMEM;
	coev__write_all(fd, b.p, b.n, &err);
	free(b.p);
	return err;
}
