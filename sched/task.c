/* SPDX-License-Identifier: MIT */
/*
 * sched/task.c — task control blocks, the task state machine, spawn, run,
 * finish, park and wake.
 *
 * The state word (internal.h, TS_*) is changed only by atomic read-modify-
 * writes, so every wake's release sequence reaches whoever next runs the
 * task:
 *
 *   spawn:  -> NOTIFIED (queued)
 *   run:    claim: CAS NOTIFIED -> RUNNING|STARTED by the worker that
 *           popped a queue entry; an entry whose task is not NOTIFIED is
 *           stale (see below) and is dropped
 *   wake:   fetch_or NOTIFIED; only if the task was parked (no NOTIFIED,
 *           RUNNING or DONE bit) does the waker queue it (exactly one
 *           waker wins that)
 *   park:   the task switches to its scheduler FIRST (or, in a hand-off,
 *           to the next task of its worker); the scheduler (or that task)
 *           THEN publishes: CAS RUNNING -> IDLE. If the CAS fails a wake
 *           came while the task ran (RUNNING|NOTIFIED): the permit is
 *           consumed and the task is queued again instead of sleeping.
 *   yield:  no change: queued at the back of the ring with a yield
 *           entry, still RUNNING (a wake meanwhile leaves the permit)
 *   exit:   exchange -> DONE; the result is then published through the
 *           joiner slot (exchange -> JOIN_DONE) and the joiner signalled.
 *
 * Work-first join: a task that joins a child that was spawned but never
 * ran puts a second entry for the child in its worker's LIFO slot, so the
 * child runs next, right here, instead of after everything queued before
 * it. Fork-join code then runs depth-first and keeps about one stack per
 * level of recursion alive, instead of one per pending call (fib(25) went
 * from ~32,000 live stacks to a few dozen). The extra entry holds its own
 * reference; whichever entry is popped first claims the task, and the
 * other, found not NOTIFIED (or NOTIFIED again by a later wake, which is
 * equally fine to run), is dropped with its reference. Every entry holds
 * one reference: the one a queued or parked task holds for its next run.
 *
 * Switch first, publish after: a task's context is completely saved before
 * it becomes visible as IDLE, so a waker on another thread that queues it
 * at once cannot resume a half-saved context. A wake is never lost: it
 * either finds IDLE and queues the task, or finds it running and leaves the
 * permit that makes the next park return. Any resumption consumes the
 * permit, so parks can return spuriously; every wait re-checks its
 * condition in a loop.
 *
 * Lifetime: refs counts the handle (until join or detach), the run (until
 * the task ends) and transient references held by waiters. The block is
 * released when the count reaches zero. Blocks come from per-worker pools
 * carved from large mappings (block.c), and a released block goes back
 * to the pool of the thread that released it. There is no registry of
 * live tasks: a runtime being freed, a dump or a shutdown finds every
 * task by walking the chunks (coev__task_each), taking a reference on
 * each block whose count is above zero, so a block is never reused under
 * them. A spawn publishes its block by storing its count last, after
 * every field is written; spawn and release take no lock.
 *
 * The current worker is read from thread-local storage only through a
 * non-inlined function with a compiler barrier: a coroutine may resume on
 * another thread, and a compiler may keep a TLS address across a call.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "switch.h"

__thread struct coev_worker *coev__tls_worker
	__attribute__((tls_model("initial-exec")));

static atomic_uint_fast64_t next_id = 1;

__attribute__((noinline)) struct coev_worker *coev__worker_self(void)
{
	struct coev_worker *w = coev__tls_worker;
	__asm__ volatile("" ::: "memory");
	return w;
}

coev_task_t *coev__task_self(void)
{
	struct coev_worker *w = coev__worker_self();
	return w ? w->current : NULL;
}

/* --- allocation ---------------------------------------------------------- */

void coev__task_release(coev_task_t *t)
{
	struct coev_worker *w;

	/* acq_rel: pairs with every other holder's decrement here. Each
	 * release publishes that holder's writes to the block; the last one
	 * (the count reaching zero) acquires them all before it reuses or
	 * frees the block. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	atomic_store_explicit(&t->joiner, JOIN_FREED, memory_order_relaxed);
	w = coev__worker_self();
	coev__block_put(t->rt, w, t);
}

/* Tasks kept by coev__task_free_all, process-wide: reachable, so that
 * the retained memory is on record (and not reported as lost) rather than
 * dropped on the floor. */
static pthread_mutex_t abandoned_mu = PTHREAD_MUTEX_INITIALIZER;
static coev_task_t *abandoned;

/*
 * Release what a task block holds, whatever its state (runtime teardown).
 * A task that started and never ended (it outlived the shutdown deadline)
 * may still have a wait node, in its frame, queued in an object that
 * outlives the runtime: a future a library thread completes later, a
 * channel. Its block and stack are kept (a deliberate, bounded leak that
 * coev_rt_shutdown reported), and it is marked done so that a later
 * signal finds a task that never runs again, rather than freed memory.
 */
static void free_one(coev_task_t *t, void *arg)
{
	struct coev_rt *rt = arg;
	/* Acquire: pairs with the last acq_rel RMW of the state word by a
	 * worker (publish_park, task_finish); the workers are joined by now,
	 * so the join already orders them and this adds nothing needed. */
	unsigned st = atomic_load_explicit(&t->state, memory_order_acquire);

	if ((st & TS_STARTED) && !(st & TS_DONE)) {
		/* acq_rel: against notify's acq_rel fetch_or of a signal from
		 * outside the runtime that comes later (a library thread
		 * completing a future): one RMW chain on the state word, so
		 * that signal finds DONE and queues nothing. */
		atomic_fetch_or_explicit(&t->state, TS_DONE,
					 memory_order_acq_rel);
		coev__task_ref(t); /* never freed */
		coev__block_keep(rt, t);
		rt->keep_arenas = true;
		pthread_mutex_lock(&abandoned_mu);
		t->next = abandoned;
		abandoned = t;
		pthread_mutex_unlock(&abandoned_mu);
		return;
	}
	if (t->result < 0 && rt->unjoined &&
	    atomic_load_explicit(&t->joiner, memory_order_relaxed) == JOIN_DONE)
		coev__report_unjoined(t, "never joined; its runtime was freed");
	if (t->stack)
		coev__stack_put(t->home, t->stack);
#if defined(COEV_TSAN)
	if (t->san_fiber)
		__tsan_destroy_fiber(t->san_fiber);
#endif
	coev__block_drop(t);
}

void coev__task_free_all(struct coev_rt *rt)
{
	coev__block_each_unref(rt, free_one, rt);
	coev__block_fini(rt);
}

/* --- spawn ----------------------------------------------------------------- */

/* Ids come from one process-wide counter, in blocks of 1024 per worker so
 * that spawning does not make the workers share a cache line. */
static uint64_t take_id(struct coev_worker *w)
{
	if (!w)
		return atomic_fetch_add_explicit(&next_id, 1,
						 memory_order_relaxed);
	if (w->id_next == w->id_end) {
		w->id_next = atomic_fetch_add_explicit(&next_id, 1024,
						       memory_order_relaxed);
		w->id_end = w->id_next + 1024;
	}
	return w->id_next++;
}

/* Fill a new task block (spawn). */
static inline __attribute__((always_inline)) void
task_init(coev_task_t *t, struct coev_rt *rt, struct coev_worker *w, bool ext,
	  const char *name, coev_fn fn, void *arg, bool handle)
{
	/* Not refs (zero in a free block): walkers read it at any time, and
	 * the spawn stores it last (publish). Not state: only atomics. */
	memset((char *)t + offsetof(coev_task_t, joiner), 0,
	       sizeof *t - offsetof(coev_task_t, joiner));
	atomic_store_explicit(&t->state, TS_NOTIFIED, memory_order_relaxed);
	atomic_init(&t->joiner, handle ? NULL : JOIN_DETACHED);
	t->rt = rt;
	t->fn = fn;
	t->arg = arg;
	t->dl_limit = COEV_FOREVER;
	t->id = take_id(w);
	/* A worker's cached clock, refreshed at its loop polls and parks:
	 * a clock read per spawn cost fib 3%. */
	t->born_ms =
		w ? w->now_ms
		  : (uint32_t)((coev__plat_coarse_now() - rt->started_coarse) /
			       1000000);
	t->ext = ext;
	t->home = w ? w : rt->workers[t->id % rt->nworkers];
	t->name[0] = '\0';
	if (name) {
		strncpy(t->name, name, sizeof t->name - 1);
		t->name[sizeof t->name - 1] = '\0';
	}
}

/* Publish a spawned block: walkers (coev__task_each) take references on
 * it from now on. Release: the fields written before are read whole by a
 * walker's acquiring CAS (block.c: try_ref). A worker's spawn needs no
 * more: coev__join_abandon_all runs after the workers are joined
 * (runtime.c), so its walk sees every block they published. */
static inline void publish(struct coev_rt *rt, struct coev_worker *w,
			   coev_task_t *t, bool handle)
{
	if (w) {
		atomic_store_explicit(&t->refs, handle ? 2 : 1,
				      memory_order_release);
		return;
	}
	/* seq_cst: the store half of a store-load order, before the load of
	 * abandoned below, against coev__join_abandon_all's store of
	 * abandoned before its walk's CAS: the walk finds the block or we
	 * see abandoned. */
	atomic_store_explicit(&t->refs, handle ? 2 : 1, memory_order_seq_cst);
	/* Let in before a shutdown that has given up on the tasks since: its
	 * walk may have missed this one (join.c). */
	if (__builtin_expect(
		    atomic_load_explicit(&rt->abandoned, memory_order_seq_cst),
		    0))
		coev__join_abandon(t);
}

/* coev__task_spawn, inlined into coev_spawn and coev_spawn_named (a call
 * level and a prologue less on every spawn from a task). */
static inline __attribute__((always_inline)) int
spawn(struct coev_rt *rt, struct coev_worker *w, struct coev_scope *scope,
      const char *name, coev_fn fn, void *arg, coev_task_t **out)
{
	coev_task_t *t;
	int r;

	if (!rt || !fn)
		return -EINVAL;
	if (w && w->rt != rt)
		w = NULL;
	/* Step 1 of the live count's handshake (live.c). */
	if (coev__live_add(rt, w)) {
		r = -ESHUTDOWN;
		goto undo;
	}
	t = coev__block_get(rt, w);
	if (!t) {
		r = -ENOMEM;
		goto undo;
	}
	task_init(t, rt, w, w == NULL, name, fn, arg, out != NULL);
	/* Joined to its scope before it can run, and so before it can end. */
	if (scope && (r = coev__scope_adopt(scope, t)) != 0) {
		coev__block_put(rt, w, t);
		goto undo;
	}
	publish(rt, w, t, out != NULL);
	if (out)
		*out = t;
	if (w) {
		if (COEV__TRACING(w))
			coev__trace_spawn(w, t);
		coev__schedule_lifo(w, coev__entry(t, ENTRY_SPAWN));
	} else {
		coev__schedule_inject(rt, coev__entry(t, ENTRY_SPAWN));
	}
	return 0;
undo:
	if (w)
		coev__live_undo(rt, w);
	else
		coev__live_ext_drop(rt);
	return r;
}

int coev__task_spawn(struct coev_rt *rt, struct coev_worker *w,
		     struct coev_scope *scope, const char *name, coev_fn fn,
		     void *arg, coev_task_t **out)
{
	return spawn(rt, w, scope, name, fn, arg, out);
}

int coev_spawn_named(const char *name, coev_fn fn, void *arg, coev_task_t **out)
{
	struct coev_worker *w = coev__worker_self();

	if (!w || !w->current)
		return COEV_ENOTCORO;
	return spawn(w->rt, w, NULL, name, fn, arg, out);
}

int coev_spawn(coev_fn fn, void *arg, coev_task_t **out)
{
	struct coev_worker *w = coev__worker_self();

	if (!w || !w->current)
		return COEV_ENOTCORO;
	return spawn(w->rt, w, NULL, NULL, fn, arg, out);
}

int coev_rt_spawn(coev_rt_t *rt, const char *name, coev_fn fn, void *arg,
		  coev_task_t **out)
{
	return coev__task_spawn(rt, coev__worker_self(), NULL, name, fn, arg,
				out);
}

/* --- running ----------------------------------------------------------------- */

/* Run the task's function with its task-local table (local.c) in this
 * frame. A function of its own that returns before the task's last
 * switch: the table's address is taken, so ASan puts redzones around it,
 * and only a frame that returns takes them off again (task_entry never
 * returns; its stack is reused by the next task). */
static __attribute__((noinline)) void task_body(coev_task_t *t)
{
	struct coev__locals locals;

	locals.n = 0;
	locals.cap = COEV__LOCAL_INLINE;
	locals.slots = locals.inl;
	t->locals = &locals;
	t->result = t->fn(t->arg);
	coev__locals_end(t);
}

static void task_entry(void *arg)
{
	coev_task_t *t = arg;

	coev__switch_task_started(t);
	task_body(t);
	if (t->scope_top)
		coev__panic("task %llu '%s' returned with a scope still open "
			    "(close every scope it opens before it returns)",
			    (unsigned long long)t->id, t->name);
	if (t->shield)
		coev__panic("task %llu '%s' returned inside a shield "
			    "(coev_shield_begin without coev_shield_end)",
			    (unsigned long long)t->id, t->name);
	t->yield = TY_EXIT;
	coev__switch_to_sched(t);
	coev__panic("task %llu resumed after it ended",
		    (unsigned long long)t->id);
}

static void task_finish(struct coev_worker *w, coev_task_t *t)
{
	struct coev_rt *rt = t->rt;
	bool scoped = t->scope != NULL;
	coev__waiter_t *j;

	if (COEV__DEBUG(rt))
		coev__debug_task_end(w, t);
	if (t->stack) {
		if (!t->stack->guarded) /* its canary (overflow.c) */
			coev__stack_check(t);
		coev__stack_put(w, t->stack);
		t->stack = NULL;
	}
	COEV_STAT_ADD(w, finished, 1);
	/* acq_rel: the last change of the state word. A later wake's
	 * acq_rel fetch_or in notify finds DONE and queues nothing;
	 * coev_cancel's load (cancel.c), snap_task's acquire load
	 * (observe/dump.c) and coev__task_free_all see the task ended. The
	 * acquire half pairs with the fetch_or of a wake that came during
	 * the last run. */
	atomic_exchange_explicit(&t->state, TS_DONE | TS_STARTED,
				 memory_order_acq_rel);
	if (t->scope)
		coev__scope_child_done(t);
	/* acq_rel: release publishes t->result to the joiner's acquire of
	 * JOIN_DONE (join.c: coev_join_dl's load, join_wait's and
	 * any_install's failed CAS, first_done's load; coev_detach's
	 * exchange); acquire pairs with the acq_rel CAS that installed a
	 * waiter (join_wait, any_install in join.c), so we signal an
	 * initialised waiter. */
	j = atomic_exchange_explicit(&t->joiner, JOIN_DONE,
				     memory_order_acq_rel);
	if (j != NULL && j != JOIN_DETACHED)
		coev__waiter_signal(j, COEV_SIG_RESUME);
	else if (j == JOIN_DETACHED && t->result < 0 && !scoped &&
		 rt->unjoined) /* a scope's child: its scope has the error */
		coev__report_unjoined(t, "ended detached");
	/* Counted on this worker, against the spawner's (t->home) share:
	 * no line of another worker is written. */
	coev__live_end(w, t);
	coev__task_release(t);
}

/* Claim the task of a queue entry. A spawn or boost entry claims only a
 * task that never ran and is otherwise stale (false); a run entry is never
 * stale. */
static bool claim(coev__entry_t *e)
{
	coev_task_t *t = coev__entry_task(e);
	unsigned s = TS_NOTIFIED;

	/* acq_rel: against the CAS of the task's other entry here (spawn
	 * against boost): exactly one claims it. The acquire pairs with
	 * notify's acq_rel fetch_or of a wake (a cancel) that came before
	 * the first run, whose flag first_run then reads. Nothing reads
	 * through the release half. */
	if (!coev__entry_runs(e))
		return atomic_compare_exchange_strong_explicit(
			&t->state, &s, TS_RUNNING | TS_STARTED,
			memory_order_acq_rel, memory_order_relaxed);
	if (coev__entry_kind(e) == ENTRY_YIELD)
		return true; /* still RUNNING: nothing to claim */
	/* acq_rel: the acquire reads the end of the RMW chain that
	 * publish_park's release CAS or exchange heads (the task's context
	 * is completely saved) and that the queuing waker's fetch_or in
	 * notify continues (what the waker wrote before waking). Nothing
	 * reads through the release half. */
	s = atomic_exchange_explicit(&t->state, TS_RUNNING | TS_STARTED,
				     memory_order_acq_rel);
	if (s != (TS_NOTIFIED | TS_STARTED))
		coev__panic("task %llu queued in state %#x",
			    (unsigned long long)t->id, s);
	return true;
}

/* For the monitor (monitor.c): run_seq odd while t runs; the start time
 * only when someone looks at it (debug mode, tracing). Which task runs is
 * w->current, which dumps read from outside with process_vm_readv: a
 * store of the task's id or worker here cost 2 ns per run (yield). */
static inline void run_begin(struct coev_worker *w)
{
	uint_fast64_t seq =
		atomic_load_explicit(&w->run_seq, memory_order_relaxed);

	if (__builtin_expect(w->debug, 0) || COEV__TRACING(w))
		atomic_store_explicit(&w->run_start, coev__plat_now(),
				      memory_order_relaxed);
	/* Release: publishes run_start (and the previous run's end) to the
	 * acquire loads of run_seq in rescue (monitor.c), check_slow
	 * (observe/report.c), coev__running_on and put_worker
	 * (observe/dump.c). w->current is stored after this, so they may
	 * still see it NULL: a snapshot. */
	atomic_store_explicit(&w->run_seq, seq + 1, memory_order_release);
}

static inline void run_end(struct coev_worker *w, coev_task_t *t)
{
	uint_fast64_t seq =
		atomic_load_explicit(&w->run_seq, memory_order_relaxed);

	/* Release: publishes the run's end (w->current back to NULL) to the
	 * same acquire loads of run_seq as run_begin's store. */
	atomic_store_explicit(&w->run_seq, seq + 1, memory_order_release);
	if (COEV__TRACING(w))
		coev__trace_run(w, t,
				atomic_load_explicit(&w->run_start,
						     memory_order_relaxed),
				t->yield);
}

/* A task's first run: it gets a stack, or ends without running when it
 * was cancelled first or no stack can be had. False when it ended. */
static bool first_run(struct coev_worker *w, coev_task_t *t)
{
	/* Cancelled before it first ran, by coev_cancel or by the runtime's
	 * shutdown: it never runs. Relaxed: the claim's acquire on the
	 * state word ordered the cancel's store before us. */
	if (atomic_load_explicit(&t->cancel, memory_order_relaxed) ||
	    atomic_load_explicit(&t->rt->closed, memory_order_relaxed)) {
		t->result = -ECANCELED;
		task_finish(w, t);
		return false;
	}
	t->stack = coev__stack_get(w);
	if (!t->stack) {
		t->result = COEV_ESTACKMAP;
		task_finish(w, t);
		return false;
	}
	coev__ctx_init(&t->ctx, t->stack->lo, t->stack->size, task_entry, t);
	return true;
}

/* A task switched back to park: publish it parked, unless a wake came
 * while it ran, whose permit turns the park into a yield. */
static inline void publish_park(coev_task_t *t)
{
	unsigned expect = TS_RUNNING | TS_STARTED;

#if defined(COEV_PLANT_LOST_WAKEUP)
	/* Planted bug: the park is published without looking for a wake
	 * that came while the task was running. Release, as the CAS below:
	 * pairs with notify's fetch_or; the bug is the plain store, not the
	 * order. */
	atomic_store_explicit(&t->state, TS_STARTED, memory_order_release);
	return;
#endif
	/* acq_rel: releases the task's run to the waker that next sets
	 * NOTIFIED (its acq_rel fetch_or in notify); acquire on failure
	 * pairs with that waker's fetch_or when it came first. */
	if (atomic_compare_exchange_strong_explicit(
		    &t->state, &expect, TS_STARTED, memory_order_acq_rel,
		    memory_order_acquire))
		return;
	/* acq_rel: pairs with the waker's fetch_or, as above, and releases
	 * the saved context to claim's exchange on the worker that pops the
	 * entry queued below. */
	atomic_exchange_explicit(&t->state, TS_NOTIFIED | TS_STARTED,
				 memory_order_acq_rel);
	coev__schedule(t, true);
}

/* Run the task of a queue entry on w until it switches back, then act on
 * why it did. Returns false when the entry was stale. */
bool coev__task_run(struct coev_worker *w, coev__entry_t *e)
{
	coev_task_t *t = coev__entry_task(e);

	if (!claim(e)) {
		coev__task_release(t);
		return false;
	}
	t->worker = w;
	if (!t->stack && !first_run(w, t))
		return true;
	COEV_STAT_ADD(w, polls, 1);
	run_begin(w);
	w->current = t;
	t->yield = TY_NONE;
	/* The task that comes back is t's last hand-off when t parked by
	 * switching to a peer (see the hand-off below). */
	t = coev__switch_to_task(w, t);
	w->current = NULL;
	run_end(w, t);

	switch (t->yield) {
	case TY_YIELD:
		coev__schedule_yield(w, coev__entry(t, ENTRY_YIELD));
		break;
	case TY_PARK:
		COEV__POINT(SUSPEND);
		publish_park(t);
		break;
	case TY_EXIT: task_finish(w, t); break;
	default:
		coev__panic("task %llu switched to its scheduler without a "
			    "reason",
			    (unsigned long long)t->id);
	}
	return true;
}

/* --- park and wake ------------------------------------------------------------ */

/* First thing in a task resumed on w by a hand-off: publish the task that
 * handed off parked, now that its context is saved. */
static inline void handoff_land(struct coev_worker *w)
{
	coev_task_t *from = w->handoff_from;

	if (__builtin_expect(from != NULL, 0)) {
		w->handoff_from = NULL;
		COEV__POINT(SUSPEND);
		publish_park(from);
	}
}

static void suspend(coev_task_t *t, uint8_t why)
{
	COEV__POINT(SUSPEND);
	t->yield = why;
	coev__switch_to_sched(t);
	handoff_land(t->worker);
}

/*
 * The hand-off: t parks by switching straight to the task of e, which w's
 * scheduler would have run next (coev__worker_handoff), instead of
 * through the scheduler (a switch to it, publish_park, next_local, claim,
 * a switch back out). That is the common end of a wake followed by a
 * wait: a channel send to a waiting receiver and then a receive, an
 * unlock and then a wait, a future completed and then awaited (Go's
 * runnext with its direct switch). Everything task_run does around a run
 * happens here in the same order: the run of t ends, the next is claimed
 * and begins, and t is published parked only once its context is saved,
 * by the next task right after the switch (handoff_land): a wake of t
 * meanwhile finds it RUNNING and leaves the permit that publish_park
 * turns into a requeue, as for any park. Only tasks that already run on a
 * stack qualify (a wake or a joiner's resume, never a first run), so the
 * switch needs no set-up.
 *
 * The bound (coev__worker_handoff): a hand-off is next_local's LIFO step
 * without the trip through the scheduler, taken only when next_local
 * would take it. It counts a tick and gives way to the fairness tick
 * (loop poll, inject queue), to posts and to the inbox, and a wake counts
 * against COEV_LIFO_MAX, past which the ring gets its turn if it holds
 * anything. Two tasks that hand off to each other forever so let the
 * ring run every COEV_LIFO_MAX runs and the loop every COEV_TICK_GLOBAL
 * (Go bounds runnext by the time slice instead), thieves see the ring as
 * before, and run_seq changes at every run for the monitor.
 */
static void handoff(struct coev_worker *w, coev_task_t *t, coev__entry_t *e)
{
	coev_task_t *next = coev__entry_task(e);

	t->yield = TY_PARK;
	run_end(w, t);
	claim(e);
	next->worker = w;
	COEV_STAT_ADD(w, polls, 1);
	run_begin(w);
	w->current = next;
	next->yield = TY_NONE;
	w->handoff_from = t;
	coev__switch_to_peer(t, next);
	handoff_land(t->worker);
}

void coev__park(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		coev__panic("coev__park called outside a task");
	coev__park_task(t);
}

void coev__park_task(coev_task_t *t)
{
	struct coev_worker *w;
	coev__entry_t *e;

	COEV__POINT(SUSPEND);
	w = t->worker;
	if ((e = coev__worker_handoff(w)) != NULL) {
		handoff(w, t, e);
		return;
	}
	t->yield = TY_PARK;
	coev__switch_to_sched(t);
	handoff_land(t->worker);
}

/* Set NOTIFIED; true when t was parked, and the caller must queue it
 * (exactly one waker gets true). */
static bool notify(coev_task_t *t)
{
	unsigned old;

	COEV__POINT(WAKE);
	/* acq_rel: the acquire pairs with publish_park's release CAS to
	 * IDLE (a parked task's context is saved before we queue it); the
	 * release publishes what the waker wrote before the wake (a
	 * waiter's done, a cancel flag, a watcher's fired) to claim's
	 * exchange on the worker that runs the task, or, when the task is
	 * still running, to publish_park's failed CAS (acquire). */
	old = atomic_fetch_or_explicit(&t->state, TS_NOTIFIED,
				       memory_order_acq_rel);
#if defined(COEV_PLANT_WAKE_TWICE)
	/* Planted bug: a wake of a task that still runs queues it, and the
	 * permit it leaves makes the task's own park queue it again (two
	 * hand-offs of one wake). */
	return (old & (TS_NOTIFIED | TS_DONE)) == 0;
#endif
	return (old & (TS_NOTIFIED | TS_RUNNING | TS_DONE)) == 0;
}

/* The waker that queues t draws the trace's wake arrow. */
static inline void traced_wake(coev_task_t *t)
{
#if defined(COEV_NO_TRACE)
	(void)t;
#else
	struct coev_worker *w;

	if (__builtin_expect(atomic_load_explicit(&coev__trace_any,
						  memory_order_relaxed),
			     0) &&
	    (w = coev__worker_self()) != NULL && COEV__TRACING(w) &&
	    w->rt == t->rt)
		coev__trace_wake(w, t);
#endif
}

static void wake(coev_task_t *t, unsigned kind)
{
	if (notify(t)) {
		traced_wake(t);
		coev__schedule_entry(coev__entry(t, kind), false);
	}
}

void coev__wake(coev_task_t *t)
{
	wake(t, ENTRY_RUN);
}

/* Wake t from a watcher of the wait it is pinned for, on the worker it is
 * pinned to (wait.c). Whoever sets NOTIFIED on a parked task queues it: if
 * that is us, the watchers are already down, so the task is unpinned and
 * queued here like any woken task; if someone else did, it went to the
 * inbox and resumes here, pinned. */
void coev__wake_unpin(coev_task_t *t)
{
	if (!notify(t))
		return;
	/* pin_depth is the parked task's own field: it set it before the
	 * park that our notify ends. */
	if (!t->pin_depth)
		t->pin = NULL;
	traced_wake(t);
	coev__schedule_entry(coev__entry(t, ENTRY_RUN), false);
}

/* Wake t onto the ring rather than the LIFO slot: for a waker that goes on
 * running (an unlock, a release), whose LIFO slot would hold t until it
 * next suspends while other workers sleep. The ring push notifies an idle
 * worker, which takes t at once. */
void coev__wake_shared(coev_task_t *t)
{
	if (notify(t)) {
		traced_wake(t);
		coev__schedule_entry(coev__entry(t, ENTRY_RUN), true);
	}
}

/* Wake a joiner on behalf of the task it joined, which just ended. */
void coev__wake_resume(coev_task_t *t)
{
	wake(t, ENTRY_RESUME);
}

int coev_yield(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	suspend(t, TY_YIELD);
	return 0;
}

/* --- introspection --------------------------------------------------------------- */

coev_task_t *coev_self(void)
{
	return coev__task_self();
}

int coev_worker_id(void)
{
	struct coev_worker *w = coev__worker_self();
	return w ? (int)w->index : -1;
}

const char *coev_task_name(const coev_task_t *t)
{
	if (!t)
		t = coev__task_self();
	return t ? t->name : "";
}

uint64_t coev_task_id(const coev_task_t *t)
{
	return t ? t->id : 0;
}

coev_rt_t *coev_rt_current(void)
{
	struct coev_worker *w = coev__worker_self();
	return w ? w->rt : NULL;
}
