/* SPDX-License-Identifier: MIT */
/*
 * sched/sched.h — what the files of sched/ share and no other layer uses:
 * the encoding of queue entries, tuning constants, and the cross-file
 * functions of the scheduler. Included only by sched/ (and tests/sched/);
 * what other layers may use is in sched/internal.h.
 */
#ifndef COEV_SCHED_SCHED_H
#define COEV_SCHED_SCHED_H

#include "sched/internal.h"

/* Consecutive runs from the LIFO slot before the ring gets a turn. */
#ifndef COEV_LIFO_MAX
#define COEV_LIFO_MAX 3
#endif
/* Every this many ticks a worker looks at the inject queue first and polls
 * its loop, so neither starves behind a busy local queue. */
#define COEV_TICK_GLOBAL 61

/* A searcher that found nothing keeps looking this long (and at most
 * COEV_SPIN_ROUNDS rounds) before it parks, while another worker is awake
 * to make work: a doorbell and a wake of a parked thread on another CPU
 * cost tens of microseconds on a VM, more than a burst's gaps. */
#ifndef COEV_SPIN_NS
#define COEV_SPIN_NS 20000
#endif
#define COEV_SPIN_ROUNDS 256

/* Task blocks kept per worker for reuse (block.c): a list of up to this
 * many, plus one full batch of this many in reserve. */
#ifndef COEV_TASK_CACHE
#define COEV_TASK_CACHE 512
#endif
/* Idle stacks kept per worker for reuse. */
#ifndef COEV_STACK_CACHE
#define COEV_STACK_CACHE 64
#endif

/* Why a task switched back to its worker. */
enum { TY_NONE, TY_YIELD, TY_PARK, TY_EXIT };

/*
 * Queue entries. A queue (ring, LIFO slot, inject queue, inbox) holds
 * entries, not tasks: a tagged task pointer saying which of the task's
 * three links the entry uses. A task has at most one entry of each kind
 * queued at once, so intrusive lists stay sound even when a task is queued
 * twice (see the work-first join in task.c):
 *   ENTRY_RUN    every entry made after the task started; never stale
 *   ENTRY_SPAWN  the entry made by spawn; stale once the task started
 *   ENTRY_BOOST  the entry made by a work-first join; stale once started
 *   ENTRY_RESUME a run entry made for a joiner by the task it joined as
 *                that task ended; does not count against the LIFO cap
 *   ENTRY_YIELD  a run entry made by a yield: the task stays RUNNING while
 *                queued, so neither the yield nor the claim touches its
 *                state word (a wake meanwhile leaves the permit)
 * RUN, RESUME and YIELD share the first link: at most one of them is ever
 * queued for a task. Task blocks are 16-byte aligned, which frees the three
 * low bits of their address for the kind.
 */
enum {
	ENTRY_RUN = 0,
	ENTRY_SPAWN = 1,
	ENTRY_BOOST = 2,
	ENTRY_RESUME = 3,
	ENTRY_YIELD = 4,
};

#define coev__entry(t, kind) ((coev__entry_t *)((uintptr_t)(t) | (kind)))
#define coev__entry_task(e) ((coev_task_t *)((uintptr_t)(e) & ~(uintptr_t)7))
#define coev__entry_kind(e) ((unsigned)((uintptr_t)(e)&7))
#define coev__entry_link(e)                                                  \
	(&coev__entry_task(e)->link[coev__entry_kind(e) == ENTRY_SPAWN	 ? 1 \
				    : coev__entry_kind(e) == ENTRY_BOOST ? 2 \
									 : 0])
#define coev__entry_runs(e)                    \
	(coev__entry_kind(e) != ENTRY_SPAWN && \
	 coev__entry_kind(e) != ENTRY_BOOST)

/* --- cross-file functions of sched/ ----------------------------------- */

/* worker.c, inject.c */
void coev__schedule(coev_task_t *t, bool yielded);
void coev__schedule_entry(coev__entry_t *e, bool yielded);
void coev__wake_resume(coev_task_t *t);
void coev__schedule_lifo(struct coev_worker *w, coev__entry_t *e);
/* A task of w's runtime that yielded on w: coev__schedule_entry(e, true)
 * without the questions the scheduler answered already. */
void coev__schedule_yield(struct coev_worker *w, coev__entry_t *e);
void coev__schedule_inject(struct coev_rt *rt, coev__entry_t *e);
/* The LIFO entry a task parking on w may hand off to, or NULL. */
coev__entry_t *coev__worker_handoff(struct coev_worker *w);
void coev__inject_push(coev__inject_t *q, coev__entry_t *first,
		       coev__entry_t *last, size_t n);
coev__entry_t *coev__inject_pop(coev__inject_t *q);
/* Pop up to max entries as a list; returns the count, *out the first. */
size_t coev__inject_pop_batch(coev__inject_t *q, size_t max,
			      coev__entry_t **out);
/* The monitor: w has stayed in the run it began at seq (odd) for a whole
 * period; hand its batch to other workers (worker.c). */
void coev__worker_batch_rescue(struct coev_worker *w, uint_fast64_t seq);
/* post.c: run every post (run false: the runtime is freed, fail them). */
void coev__worker_run_posts(struct coev_worker *w, bool run);

/* live.c: the live count (see its header). */
void coev__live_wake(struct coev_rt *rt);
void coev__live_ext_drop(struct coev_rt *rt);

/* Count a spawn by a task on w (w NULL: from outside), then load closed:
 * step 1 of the handshake. True when the runtime is closed: the caller
 * refuses the spawn and undoes the count. */
static inline bool coev__live_add(struct coev_rt *rt, struct coev_worker *w)
{
	if (w) {
		COEV_STAT_ADD(w, spawned, 1);
		COEV__POINT(LIVE);
		coev__fence_light(); /* against coev_rt_shutdown's heavy one */
		return atomic_load_explicit(&rt->closed, memory_order_relaxed);
	}
	/* seq_cst: the RMW before the load is this side's fence. */
	atomic_fetch_add_explicit(&rt->live_ext, 1, memory_order_seq_cst);
	return atomic_load_explicit(&rt->closed, memory_order_seq_cst);
}

/* After a worker's count went down (an end, an undone spawn): step 2. */
static inline void coev__live_check(struct coev_rt *rt)
{
	COEV__POINT(LIVE);
	coev__fence_light(); /* store-load: against wait_live's heavy fence */
	if (__builtin_expect(atomic_load_explicit(&rt->live_waiters,
						  memory_order_relaxed),
			     0))
		coev__live_wake(rt);
}

/* Undo a worker's count of a spawn that was refused. */
static inline void coev__live_undo(struct coev_rt *rt, struct coev_worker *w)
{
	atomic_store_explicit(
		&w->st.spawned,
		atomic_load_explicit(&w->st.spawned, memory_order_relaxed) - 1,
		memory_order_relaxed);
	coev__live_check(rt);
}

/* Count the end of t on w. */
static inline void coev__live_end(struct coev_worker *w, coev_task_t *t)
{
	atomic_uint_fast64_t *c;

	if (t->ext) {
		coev__live_ext_drop(t->rt);
		return;
	}
	c = &w->live_ends[t->home->index];
	/* Release: pairs with the acquire loads in coev__live_count and
	 * coev__live_share, which then read the spawn's count too. */
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_release);
	coev__live_check(t->rt);
}

/* task.c */
/* coev__park for t, the calling task. */
void coev__park_task(coev_task_t *t);
bool coev__task_run(struct coev_worker *w, coev__entry_t *e);
/* True when e can no longer claim its task: a spawn or boost entry whose
 * task has started (a state that never returns to plain NOTIFIED).
 * Inline: every pop and every entry an overflow moves asks it. */
static inline bool coev__entry_stale(coev__entry_t *e)
{
	return !coev__entry_runs(e) &&
	       atomic_load_explicit(&coev__entry_task(e)->state,
				    memory_order_relaxed) != TS_NOTIFIED;
}
void coev__task_free_all(struct coev_rt *rt);
int coev__task_spawn(struct coev_rt *rt, struct coev_worker *w,
		     struct coev_scope *scope, const char *name, coev_fn fn,
		     void *arg, coev_task_t **out);

/* block.c: task blocks. get and put take the calling thread's worker
 * (NULL, or a worker of another runtime, for a plain thread). */
coev_task_t *coev__block_get(struct coev_rt *rt, struct coev_worker *w);
void coev__block_put(struct coev_rt *rt, struct coev_worker *w, coev_task_t *t);
void coev__block_drop(coev_task_t *t);
void coev__block_keep(struct coev_rt *rt, coev_task_t *t);
void coev__block_fini(struct coev_rt *rt);
unsigned coev__block_chunks(struct coev_rt *rt);
/* coev__task_each without references: teardown only (task.c). */
void coev__block_each_unref(struct coev_rt *rt,
			    void (*fn)(coev_task_t *t, void *arg), void *arg);
size_t coev__block_mapped(void);

/* join.c: releasing the waiters of tasks a shutdown gave up on. */
void coev__join_abandon_all(struct coev_rt *rt);
void coev__join_abandon(coev_task_t *t);
void coev__join_drain(struct coev_rt *rt);

/* scope.c */
int coev__scope_adopt(struct coev_scope *s, coev_task_t *t);
void coev__scope_child_done(coev_task_t *t);
void coev__cancel_all(struct coev_rt *rt);

/* pool.c */
void coev__pool_init(struct coev_rt *rt, unsigned max, coev_time_t idle);
void coev__pool_fini(struct coev_rt *rt);
/* The calling thread is one of rt's pool threads (running a job). */
bool coev__pool_thread_of(struct coev_rt *rt);

/* stack.c */
struct coev_stack *coev__stack_get(struct coev_worker *w);
void coev__stack_put(struct coev_worker *w, struct coev_stack *s);
void coev__stack_pool_free(struct coev_worker *w);
void coev__stack_trim(struct coev_worker *w);
void coev__stack_arenas_free(struct coev_rt *rt);
size_t coev__page_size(void);
/* The guard region below every guarded stack, and the bytes at the bottom
 * of an unguarded stack that must stay zero (stack.c, overflow.c). */
#define COEV__GUARD_BYTES ((size_t)64 * 1024)
#define COEV__CANARY_BYTES 64

/* overflow.c: naming a stack overflow. */
void coev__overflow_install(void); /* once, from stack.c's set-up */
int coev__stack_altstack_new(struct coev_worker *w);
void coev__stack_altstack_free(struct coev_worker *w);
void coev__stack_thread_init(struct coev_worker *w);
void coev__stack_thread_fini(struct coev_worker *w);
void coev__stack_check(coev_task_t *t);

/* local.c: task-local values. The table lives in task_body's frame
 * (task.c) and t->locals points at it while the task runs its function. */
#define COEV__LOCAL_INLINE 4
struct coev__local_slot {
	const coev_local_t *key;
	void *value;
};
struct coev__locals {
	unsigned n, cap;		/* slots used, slots there are */
	struct coev__local_slot *slots; /* inl, or a heap array */
	struct coev__local_slot inl[COEV__LOCAL_INLINE];
};
/* Destroy the task's values (its end, in the task) and free the table. */
void coev__locals_end(coev_task_t *t);

/* monitor.c: the thread that rescues work queued behind a stuck worker. */
int coev__monitor_start(struct coev_rt *rt);
void coev__monitor_stop(struct coev_rt *rt);

#endif
