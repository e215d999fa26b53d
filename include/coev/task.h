/* SPDX-License-Identifier: MIT */
/*
 * coev/task.h — tasks: spawn, join, gather, yield, sleep.
 *
 * A task is a stackful coroutine. It gets a stack from its worker's pool when
 * it first runs and gives it back when it ends, so spawning many short tasks
 * costs few stacks. A task may move to another worker whenever it is queued
 * (after a yield or a wake); it never moves while it runs.
 *
 * Handle rules:
 *  1. coev_spawn*() with a non-NULL out gives a handle that must be passed
 *     exactly once to coev_join(), coev_gather() or coev_detach(). Joining
 *     consumes the handle, as pthread_join does; using it again is a bug and
 *     aborts with a message where it can be detected.
 *  2. With out == NULL the task is detached from the start: it frees itself
 *     when it ends and its result is dropped.
 *  3. A task's result is delivered exactly once: to its joiner, or nowhere
 *     if it is detached.
 */
#ifndef COEV_TASK_H
#define COEV_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "runtime.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * coev_spawn — start fn(arg) as a new task of the calling task's runtime.
 * coev_spawn_named — the same with a name used in messages (copied; at most
 * 31 bytes kept).
 * The new task is queued on the calling worker (others may steal it); the
 * caller keeps running. Returns 0, or -EINVAL (NULL fn), -ENOMEM,
 * -ESHUTDOWN, COEV_ENOTCORO (not called from a task: use coev_rt_spawn()).
 * From a task only; never suspends; allocates the task's control block
 * (its stack is taken when it first runs; a task for which no stack can
 * be mapped then never runs, and its result is COEV_ESTACKMAP).
 */
COEV_API int coev_spawn(coev_fn fn, void *arg, coev_task_t **out);
COEV_API int coev_spawn_named(const char *name, coev_fn fn, void *arg,
			      coev_task_t **out);

/*
 * coev_join — wait for task t to finish, store its result in *ret (if ret
 * is not NULL) and release t.
 * coev_join_dl — the same with an absolute deadline.
 * From a task it suspends the task; from a thread outside the runtime it
 * blocks that thread. Returns 0 when t finished (its own success or failure
 * is in *ret), -ETIMEDOUT when the deadline passed first or -ECANCELED when
 * the caller was cancelled (in both cases t stays valid, keeps running, and
 * must still be joined or detached), -EDEADLK when t is the calling task,
 * -EINVAL for NULL t, COEV_ENOTCORO on a worker thread outside a task (a
 * loop callback must not block its worker). -ESHUTDOWN when t's runtime
 * was shut down and gave up on t (coev/runtime.h rule 3): t never ends,
 * *ret is untouched, a join already waiting returns then and a later one
 * at once, and t stays valid (it may be detached) until coev_rt_free(). A
 * handle already joined or detached aborts with a message.
 */
COEV_API int coev_join(coev_task_t *t, int *ret);
COEV_API int coev_join_dl(coev_task_t *t, coev_time_t deadline, int *ret);

/*
 * coev_detach — give up the handle: t frees itself when it ends and its
 * result is dropped. Returns 0 or -EINVAL for NULL. Any thread; never
 * suspends.
 */
COEV_API int coev_detach(coev_task_t *t);

/*
 * coev_gather — asyncio.gather(..., return_exceptions=True): wait for all n
 * tasks and store each one's own result (a value or a negative error) in
 * rets[i]. Every handle is consumed. Returns the number of tasks whose
 * result was negative, or -EINVAL (NULL tasks or rets with n > 0, a NULL
 * entry in coev_gather, n > INT_MAX; nothing consumed), -EDEADLK (one of them is the caller; nothing is
 * consumed).
 * coev_gather_dl — the same with a deadline: on -ETIMEDOUT the tasks that
 * finished are consumed and their entries in tasks[] set to NULL; the rest
 * stay valid and owned by the caller, who may call coev_gather_dl again on
 * the same array (NULL entries are skipped, their rets[] left as they are).
 * Cancellation (or, for coev_gather, a pushed deadline) while waiting:
 * as asyncio.gather, the tasks not yet joined are cancelled and joined,
 * every handle is consumed (rets[] filled), and -ECANCELED (or
 * -ETIMEDOUT) is returned; a task among them that its runtime's shutdown
 * gave up on gets -ESHUTDOWN in rets[] and its handle is given up.
 * -ESHUTDOWN when tasks[i]'s runtime was shut down and gave up on it
 * (coev/runtime.h rule 3): the tasks before it are consumed (their rets[]
 * set; coev_gather_dl sets their entries to NULL), tasks[i] and those
 * after it are not (they stay valid until coev_rt_free()).
 * Same threads as coev_join(); never allocates.
 */
COEV_API int coev_gather(coev_task_t *const *tasks, size_t n, int *rets);
COEV_API int coev_gather_dl(coev_task_t **tasks, size_t n, int *rets,
			    coev_time_t deadline);

/*
 * coev_yield — let other ready tasks run; the caller goes to the back of its
 * worker's queue and may resume on another worker. Returns 0 or
 * COEV_ENOTCORO. From a task only.
 */
COEV_API int coev_yield(void);

/*
 * coev_sleep — suspend the calling task for at least ns nanoseconds.
 * coev_sleep_until — until coev_now() >= deadline.
 * Returns 0, -ECANCELED (the task was cancelled; it may have slept less),
 * -ETIMEDOUT (a deadline pushed with coev_deadline_push came first) or
 * COEV_ENOTCORO. The worker runs other tasks meanwhile. From a task only;
 * never allocates.
 */
COEV_API int coev_sleep(coev_time_t ns);
COEV_API int coev_sleep_until(coev_time_t deadline);

/*
 * Cancellation (asyncio's task.cancel(), Trio's cancel scopes).
 *
 * Cancelling a task is a request, seen at its waits: from then on every
 * call of the task that can wait (join, sleep, I/O, blocking-pool calls,
 * scope close, and the sync and bridge waits) returns -ECANCELED, the one
 * waiting now at once, until the task returns. I/O, sleep and blocking-pool
 * calls check on entry, even when they could complete at once; a join (or
 * gather, wait_any, wait_for) of a task that has already finished needs no
 * wait and returns its result. The task decides what to
 * do with it; the convention is to clean up and return -ECANCELED. A task
 * cancelled before it first runs never runs: its result is -ECANCELED.
 * coev_yield() is not a wait and ignores cancellation.
 *
 * Cancellation racing normal completion has one outcome: the task's result
 * is whatever its function returned. If it returned before it reached a
 * wait, the cancel had no effect and coev_cancel still returned 0.
 *
 * A shield (coev_shield_begin/end) hides the cancellation from the waits
 * inside it, for clean-up that must finish (closing a connection politely,
 * committing a log); deadlines still apply there.
 */

/*
 * coev_cancel — ask task t to stop (see above). t is a handle the caller
 * holds (not yet joined or detached), or the calling task itself. A wait
 * in progress on another worker's loop is ended by that worker: the task
 * resumes there and takes down its own watchers. Cancelling a task that
 * already finished, or cancelling twice, is harmless. Returns 0, or -EINVAL
 * for NULL. Any thread, including plain threads and loop callbacks; never
 * suspends; never allocates.
 */
COEV_API int coev_cancel(coev_task_t *t);

/*
 * coev_cancelled — 1 if the calling task has been cancelled (shielded or
 * not), 0 if not, COEV_ENOTCORO outside a task.
 */
COEV_API int coev_cancelled(void);

/*
 * coev_shield_begin — hide the calling task's cancellation from its waits
 * until the matching coev_shield_end(); shields nest. Returns 0 or
 * COEV_ENOTCORO. coev_shield_end without a matching begin aborts.
 */
COEV_API int coev_shield_begin(void);
COEV_API int coev_shield_end(void);

/*
 * coev_deadline_push — asyncio.timeout(): until the matching
 * coev_deadline_pop(), every wait of the calling task ends by deadline at
 * the latest, returning -ETIMEDOUT; pushes nest and the earliest deadline
 * applies. Returns a token (>= 0) for coev_deadline_pop, or COEV_ENOTCORO
 * outside a task. Pops must match pushes in reverse order.
 */
COEV_API coev_time_t coev_deadline_push(coev_time_t deadline);
COEV_API void coev_deadline_pop(coev_time_t token);

/*
 * coev_wait_for — asyncio.wait_for(): run fn(arg) as a new task and wait
 * for it until deadline. If it finishes in time, stores its result in *ret
 * (when ret is not NULL) and returns 0. When the deadline passes first, the
 * task is cancelled and waited for (its waits return -ECANCELED), its
 * result is stored in *ret, and the call returns -ETIMEDOUT. If the caller
 * is cancelled while waiting, the task is cancelled and waited for in the
 * same way and the call returns -ECANCELED. Other errors: those of
 * coev_spawn (then fn did not run). From a task only; suspends; allocates
 * the task.
 */
COEV_API int coev_wait_for(coev_fn fn, void *arg, coev_time_t deadline,
			   int *ret);

/* coev_self — the calling task, or NULL outside a task. Any thread. */
COEV_API coev_task_t *coev_self(void);

/* coev_worker_id — index of the worker running the caller, or -1 when the
 * caller is not on a worker thread. The value may change after any call
 * that suspends. */
COEV_API int coev_worker_id(void);

/* coev_task_name — t's name, or "" when it has none (NULL t: the caller's).
 * coev_task_id — t's unique id within the process (0 for NULL). */
COEV_API const char *coev_task_name(const coev_task_t *t);
COEV_API uint64_t coev_task_id(const coev_task_t *t);

#ifdef __cplusplus
}
#endif

#endif
