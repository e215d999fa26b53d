/* SPDX-License-Identifier: MIT */
/*
 * coev/scope.h — structured concurrency: task scopes (asyncio.TaskGroup,
 * Trio's nursery), wait-any and as-completed order.
 *
 * A scope owns the tasks spawned into it. Closing the scope waits for every
 * one of them, so no child outlives the block of code that opened the scope
 * and every error is seen.
 *
 * Rules:
 *  1. coev_scope_open() is called by a task, the scope's owner; only the
 *     owner closes it, with coev_scope_close() or coev_scope_close_dl(),
 *     exactly once. Scopes one task opens close in reverse order.
 *  2. Any task may spawn into an open scope (a child may spawn siblings),
 *     until the owner's close has returned.
 *  3. Scopes nest: a scope opened by a task that is itself a child of scope
 *     P, or opened while the owner holds scope P open, is P's child scope.
 *     Cancelling P cancels P's tasks and, at once, every scope under P.
 *  4. Cancelling a task that owns a scope cancels the scope's tasks when the
 *     owner reaches its close (the owner's waits return -ECANCELED, so it
 *     gets there promptly unless shielded).
 *  5. With COEV_SCOPE_FAIL_FAST, the first child that returns a negative
 *     result cancels the scope (its siblings and the scopes under it).
 *  6. Close returns the first negative result a child returned (in order of
 *     completion), or 0; children cancelled by the scope itself return
 *     whatever they choose (usually -ECANCELED), which never hides the
 *     failure that caused the cancel.
 */
#ifndef COEV_SCOPE_H
#define COEV_SCOPE_H

#include <stddef.h>

#include "error.h"
#include "runtime.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_scope coev_scope_t;

/* Scope flags. */
#define COEV_SCOPE_FAIL_FAST 1u /* the first failing child cancels the rest */

/*
 * coev_scope_open — open a scope owned by the calling task.
 * flags: 0 or COEV_SCOPE_FAIL_FAST. Stores the scope in *out and returns 0,
 * or -EINVAL (NULL out, unknown flags), -ENOMEM, COEV_ENOTCORO. A scope
 * opened under a cancelled scope starts cancelled. From a task only; never
 * suspends; allocates the scope (freed by its close).
 */
COEV_API int coev_scope_open(unsigned flags, coev_scope_t **out);

/*
 * coev_scope_spawn — start fn(arg) as a task of scope s (name: NULL or a
 * label, as coev_spawn_named). The child has no handle: the scope waits
 * for it and records its result. Returns 0, or -EINVAL (NULL s or fn),
 * -ECANCELED (s is cancelled: nothing was started), -ENOMEM, -ESHUTDOWN.
 * From any task of the scope's runtime; never suspends; allocates the
 * task.
 */
COEV_API int coev_scope_spawn(coev_scope_t *s, const char *name, coev_fn fn,
			      void *arg);

/*
 * coev_scope_cancel — cancel every task in s and every scope under it, now
 * and for tasks spawned into them later (their spawns return -ECANCELED).
 * Returns 0 or -EINVAL for NULL. Any thread, while s is open; never
 * suspends.
 */
COEV_API int coev_scope_cancel(coev_scope_t *s);

/*
 * coev_scope_close_dl — wait until every task of s has finished, then free
 * s. If the deadline passes first, or the owner is cancelled while it
 * waits, s is cancelled and close goes on waiting, shielded, until the last
 * child has finished: a scope never leaves a running child behind.
 * Returns the first negative child result (rule 6) or 0; -ETIMEDOUT or
 * -ECANCELED when the deadline or the owner's cancellation cut the wait
 * short and no child had failed before. Closing from a task other than
 * the owner, or out of order, aborts. From the owner task only; suspends.
 * coev_scope_close — the same without a deadline.
 */
COEV_API int coev_scope_close_dl(coev_scope_t *s, coev_time_t deadline);
COEV_API int coev_scope_close(coev_scope_t *s);

/*
 * coev_scope_live — the number of tasks of s not yet finished (0 for a
 * NULL s). Any thread while s is open.
 */
COEV_API size_t coev_scope_live(coev_scope_t *s);

/*
 * coev_wait_any — asyncio.wait(FIRST_COMPLETED): wait until at least one
 * of the n tasks has finished and return the index of one that has (the
 * lowest such index). NULL entries are skipped. No handle is consumed:
 * join the one returned (it does not wait) and set its entry to NULL to go
 * on, which yields the tasks in the order they complete (as_completed):
 *
 *     while ((i = coev_wait_any(ts, n, dl)) >= 0) {
 *             coev_join(ts[i], &r);
 *             ts[i] = NULL;
 *     }
 *
 * Returns an index, or -ENOENT (every entry is NULL), -ETIMEDOUT,
 * -ECANCELED (the caller was cancelled), -EINVAL (NULL tasks with n > 0,
 * n > INT_MAX, or the same handle twice: found when the call is about to
 * wait, so an array holding a task that has ended returns its index
 * first), -EDEADLK (the caller is among the tasks), -ESHUTDOWN (none has
 * ended and a shutdown gave up on one of them, which will never end:
 * coev/runtime.h rule 3). A handle another caller is joining aborts, as a
 * second join does. From a task, or from a plain thread (which blocks);
 * never allocates.
 */
COEV_API int coev_wait_any(coev_task_t *const *tasks, size_t n,
			   coev_time_t deadline);

#ifdef __cplusplus
}
#endif

#endif
