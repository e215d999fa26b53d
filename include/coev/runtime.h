/* SPDX-License-Identifier: MIT */
/*
 * coev/runtime.h — creating, running and stopping a runtime.
 *
 * A runtime is a set of worker threads, each with its own event loop, that
 * run coev tasks and steal work from each other. Programs usually call
 * coev_run() (Python's asyncio.run); services that link coev in create a
 * runtime with coev_rt_new(), spawn into it from their own threads with
 * coev_rt_spawn(), wait with coev_join() from those threads, and stop it
 * with coev_rt_shutdown() and coev_rt_free().
 *
 * Lifetime rules:
 *  1. coev_rt_new() starts every worker before it returns.
 *  2. coev_rt_shutdown() refuses new spawns (-ESHUTDOWN), cancels every
 *     live task, waits for them up to a deadline, stops the workers, and
 *     reports how many tasks were left unfinished. It must be called from
 *     outside the runtime: not from one of its workers, nor from a job of
 *     its blocking pool (coev_blocking).
 *  3. The tasks left unfinished are abandoned: they never run again. Who
 *     waits for the end of one, a plain thread or a task of another
 *     runtime, is released before coev_rt_shutdown() returns: coev_join()
 *     and coev_join_dl() return -ESHUTDOWN, coev_wait_any() returns
 *     -ESHUTDOWN unless one of its tasks had ended, coev_gather() and
 *     coev_gather_dl() return -ESHUTDOWN at the first abandoned task. A
 *     later join of such a handle returns -ESHUTDOWN at once; the handle
 *     stays valid (it may be detached) until coev_rt_free().
 *  4. Nothing else is done in an abandoned task's name: a coev mutex it
 *     holds stays locked, and an event, semaphore, condition variable,
 *     channel or future it would have set, released, signalled, sent on,
 *     closed or completed is left as it is. A plain thread waiting on
 *     such an object without a deadline waits until something else
 *     signals it. Give such waits a deadline, or, when coev_rt_shutdown()
 *     returned a count above 0, signal the objects from outside (close
 *     the channel, cancel the future, set the event): they outlive the
 *     runtime.
 *  5. coev_rt_free() shuts down (deadline now) if that was not done, waits
 *     until the plain threads that shutdown released (or woke, as their
 *     task ended) have left their join, gather or wait_any, then releases
 *     every task, stack, loop and thread the runtime holds. Task handles
 *     into the runtime are invalid afterwards. A task of another runtime
 *     released from a coev_wait_any() or coev_gather() on them is not
 *     waited for: free the runtime once that call has returned.
 */
#ifndef COEV_RUNTIME_H
#define COEV_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_rt coev_rt_t;
typedef struct coev_task coev_task_t;

/*
 * A task's body. It returns its result: a non-negative value for success
 * or a negative error code for failure (by convention a coev or errno
 * code). Results larger than an int travel through arg, which the spawner
 * owns.
 */
typedef int (*coev_fn)(void *arg);

#define COEV_WORKERS_MAX 1024
#define COEV_STACK_MIN ((size_t)16 * 1024)
#define COEV_STACK_MAX ((size_t)1024 * 1024 * 1024)
#define COEV_STACK_DEFAULT ((size_t)256 * 1024)

typedef struct coev_config {
	/* Worker threads: 1..COEV_WORKERS_MAX. */
	unsigned workers;
	/* Debugging aids: COEV_DEBUG_* flags, 0 for none. */
	unsigned debug;
	/* Usable bytes per coroutine stack: COEV_STACK_MIN..COEV_STACK_MAX;
	 * rounded up to whole pages. A 64 KiB guard region is added
	 * below (sched/stack.c). */
	size_t stack_size;
	/* How long coev_run() waits for tasks still alive when main returns. */
	coev_time_t shutdown_timeout;
	/* Blocking pool (coev/blocking.h): at most this many threads
	 * (1..COEV_BLOCKING_MAX), each ending after blocking_idle without
	 * work. */
	unsigned blocking_max;
	coev_time_t blocking_idle;
	/* Debug mode (coev/debug.h): a task running longer than this without
	 * suspending is reported (0: 100 ms). */
	coev_time_t slow_task;
	/* Where the runtime's reports go (debug mode's, and failed tasks
	 * nobody joined: report_unjoined): log(log_arg, text), text one or
	 * more whole lines; called from workers, the monitor thread and the
	 * threads that detach tasks or free the runtime, so it must be
	 * thread-safe. NULL: written to stderr. */
	void (*log)(void *arg, const char *text);
	void *log_arg;
	/* Chrome trace-event JSON written here at shutdown (coev/debug.h),
	 * or NULL; copied. trace_events: ring size per worker, 0 (262,144
	 * events of 72 bytes, 18 MiB) or COEV_TRACE_EVENTS_MIN..
	 * COEV_TRACE_EVENTS_MAX (checked whether or not trace is set). */
	const char *trace;
	size_t trace_events;
	/* A task that failed (a negative result other than -ECANCELED) and
	 * whose result nobody took (it ended detached, was detached after
	 * it ended, or its handle was never used when the runtime was
	 * freed) is reported once to log, as asyncio reports an exception
	 * never retrieved: 1 (the default), or 0 for no report. A scope's
	 * child is not: its scope takes its error (coev/scope.h). Debug
	 * mode reports them whatever this says. */
	int report_unjoined;
} coev_config_t;

#define COEV_BLOCKING_MAX 4096
#define COEV_BLOCKING_DEFAULT 64
#define COEV_TRACE_EVENTS_MIN ((size_t)16)
#define COEV_TRACE_EVENTS_MAX ((size_t)1 << 28)

/*
 * Flags of coev_config_t.debug, for tests; they slow a runtime down.
 * COEV_DEBUG_MIGRATE: a task that resumes after a wake or a yield runs on
 * another worker than the one it last ran on (the next one by index), so
 * that every hand-off between tasks crosses threads where a race detector
 * sees it. Tasks pinned with coev_pin or coev_pin_to, and tasks in a timed
 * wait woken by another event than the wait's own timer or fd, resume
 * where they are pinned; a runtime with one worker never migrates.
 */
#define COEV_DEBUG_MIGRATE 1u
/* COEV_DEBUG_CHECKS (2u): debug mode, see coev/debug.h. */

/*
 * coev_config_init — fill cfg with the defaults: workers from the
 * COEV_WORKERS environment variable or else the number of online CPUs;
 * stack_size from COEV_STACK_SIZE (bytes, with an optional k/m suffix) or
 * else COEV_STACK_DEFAULT; shutdown_timeout 5 s; blocking_max from
 * COEV_BLOCKING_THREADS or else COEV_BLOCKING_DEFAULT; blocking_idle 10 s;
 * debug COEV_DEBUG_MIGRATE when the COEV_DEBUG_MIGRATE environment variable
 * is 1, plus COEV_DEBUG_CHECKS when COEV_DEBUG is 1 (each 0 or 1);
 * slow_task from COEV_SLOW_TASK_MS (milliseconds) or else 100 ms; trace
 * from COEV_TRACE (a file name) and trace_events from COEV_TRACE_EVENTS;
 * log NULL (stderr); report_unjoined from COEV_UNJOINED (0 or 1) or
 * else 1. Not a field: COEV_STACK_GUARD=mprotect, read once per process
 * when stacks are first set up, makes coev guard stacks as on a kernel
 * without MADV_GUARD_INSTALL (a mapping per stack, then unguarded stacks
 * counted in stacks_unguarded; README.md); other values are ignored.
 * Returns 0, or -EINVAL when an environment variable is malformed or out of
 * range (that field then keeps its built-in default; the others are set).
 * Any thread; never suspends; never allocates. cfg is the caller's.
 */
COEV_API int coev_config_init(coev_config_t *cfg);

/*
 * coev_rt_new — create a runtime and start its workers.
 * cfg: NULL for coev_config_init()'s defaults; copied, not kept.
 * On success stores the runtime in *out and returns 0. Errors: -EINVAL for a
 * NULL out, a field out of range (sizes included: workers, stack_size,
 * blocking_max, trace_events) or an unknown debug flag; -ENOMEM; -EAGAIN
 * when a thread could not be started; -EMFILE/-ENFILE when an event loop
 * could not be created. On error nothing is left allocated. Any thread;
 * never suspends.
 */
COEV_API int coev_rt_new(const coev_config_t *cfg, coev_rt_t **out);

/*
 * coev_rt_spawn — start fn(arg) as a task of rt, from any thread.
 * name: NULL or a label for messages (copied; at most 31 bytes are kept).
 * out: NULL to detach the task at once, or where to store its handle; the
 * handle must later be given to coev_join() or coev_detach() exactly once.
 * Returns 0, or -EINVAL (NULL rt or fn), -ENOMEM, -ESHUTDOWN (the runtime is
 * shutting down). Never suspends. From a task of rt it behaves as
 * coev_spawn_named().
 */
COEV_API int coev_rt_spawn(coev_rt_t *rt, const char *name, coev_fn fn,
			   void *arg, coev_task_t **out);

/*
 * coev_rt_shutdown — stop accepting spawns, cancel every live task (see
 * coev_cancel), wait until every task has finished or the deadline passes,
 * then stop the workers.
 * Returns the number of tasks still unfinished (0 when all finished), or
 * COEV_ENOTRT when called from a worker (of rt or of another runtime) or
 * from a job of rt's blocking pool, or -EINVAL for NULL. Unfinished tasks
 * are not resumed again: whoever waits for their end is released with
 * -ESHUTDOWN (rule 3), and coev_rt_free() releases them. Calling it again
 * returns the same count without waiting; threads that call it while
 * another shuts rt down wait for that shutdown and return its count.
 * Blocks the calling thread (never a worker); never allocates.
 */
COEV_API int coev_rt_shutdown(coev_rt_t *rt, coev_time_t deadline);

/*
 * coev_rt_free — shut down if needed (deadline: now), wait for the plain
 * threads that shutdown released to leave their calls (rule 5), and
 * release rt and everything it owns. rt may be NULL. Outside the runtime
 * only; aborts with a message if called from a worker thread (of any
 * runtime) or from a job of rt's blocking pool, whose teardown would wait
 * for that job.
 */
COEV_API void coev_rt_free(coev_rt_t *rt);

/*
 * coev_run — asyncio.run: create a runtime from cfg (NULL for defaults),
 * run main(arg) as its first task, and when main returns cancel the
 * remaining tasks, wait for them up to cfg->shutdown_timeout, report on
 * stderr how many were left, and free the runtime.
 * Returns main's result, or a negative error from coev_rt_new() (then main
 * did not run), or COEV_ENOTRT when called from inside a runtime.
 */
COEV_API int coev_run(coev_fn main, void *arg, const coev_config_t *cfg);

/* Counters of one worker, read without stopping it (each one exact, the set
 * not a snapshot). */
typedef struct coev_worker_stats {
	uint64_t polls;		/* task resumptions on this worker */
	uint64_t unparks;	/* sleeps ended by another thread's wake */
	uint64_t busy_ns;	/* time awake since the runtime started */
	uint64_t idle_ns;	/* time asleep in its loop */
	uint64_t local_depth;	/* tasks in its ring now */
	uint64_t lifo;		/* 1 if its LIFO slot holds a task */
	uint64_t inbox_depth;	/* tasks pinned here, queued */
	uint64_t timers;	/* timers armed on its loop now */
	uint64_t fds;		/* fd waits armed on its loop now */
	long alive;		/* tasks spawned here by tasks and not yet
				 * ended, wherever they run or end (never
				 * negative); the shares plus the tasks
				 * spawned from outside and alive make
				 * coev_rt_stats().alive */
	uint64_t spawned;	/* tasks spawned by tasks on this worker (a
				 * spawn a shutdown refuses counts for an
				 * instant: it is the live count's) */
	uint64_t finished;	/* tasks that ended on this worker */
	uint64_t stolen;	/* tasks this worker took from others */
	uint64_t steal_ops;	/* successful steal operations */
	uint64_t parks;		/* times the worker slept in its event loop */
	uint64_t inject_pops;	/* tasks taken from the inject queue */
	uint64_t stacks_mapped; /* stacks this worker created (not reused) */
	uint64_t stacks_pooled; /* stacks now idle in this worker's pool */
	uint64_t stacks_unguarded; /* stacks this worker created without a
				    * guard region (sched/stack.c: only on
				    * kernels before 6.13, past the map-count
				    * budget); 0 means every stack of this
				    * worker is guarded */
	uint64_t task_chunks;	   /* chunks of task blocks this worker mapped
				 * (2 MiB each; freed blocks are reused) */
} coev_worker_stats_t;

/*
 * coev_rt_workers — the number of workers of rt (0 for NULL).
 * coev_rt_worker_stats — copy worker i's counters to *st; returns 0 or
 * -EINVAL for a bad rt, index or st. Any thread; never suspends.
 */
COEV_API unsigned coev_rt_workers(const coev_rt_t *rt);
COEV_API int coev_rt_worker_stats(const coev_rt_t *rt, unsigned i,
				  coev_worker_stats_t *st);

/* coev_rt_current — the runtime of the calling task, or NULL outside one. */
COEV_API coev_rt_t *coev_rt_current(void);

#ifdef __cplusplus
}
#endif

#endif
