/* SPDX-License-Identifier: MIT */
/*
 * coev/future.h — futures: a result that something else produces, from any
 * thread or callback, for tasks and threads to wait on (asyncio.Future).
 *
 * The bridge to callback libraries: a task creates a future, hands a
 * reference to the library's callback, and waits; the callback completes
 * the future (from a libev callback on a worker, from a library's own
 * thread, from anywhere), and the task resumes with the result.
 *
 *     coev_future_t *f;
 *     coev_future_new(&f);
 *     lib_start(request, on_reply, coev_future_ref(f));   // callback's ref
 *     r = coev_future_await_dl(f, coev_deadline(COEV_SEC), &res);
 *     ... res, coev_future_value(f) ...
 *     coev_future_release(f);
 *
 *     static void on_reply(void *arg, struct reply *rep) {
 *         coev_future_t *f = arg;
 *         coev_future_complete(f, 0, copy(rep), free);  // any thread
 *         coev_future_release(f);
 *     }
 *
 * Rules:
 *  1. A future is heap-allocated and reference-counted. coev_future_new()
 *     returns one reference; coev_future_ref() adds one; each is given back
 *     with coev_future_release(). The memory lives until the last one goes,
 *     so a callback that holds a reference may arrive at any time — after
 *     its waiter timed out or was cancelled, after the runtime shut down —
 *     and is safe. A completion that a wait or a poll has seen is over as
 *     far as the memory goes: the last reference may be released at once,
 *     even while the completing call is still returning and even if the
 *     completer holds no reference of its own (it borrowed one that the
 *     waiter keeps until its wait returns); callbacks hold their own.
 *  2. A future completes exactly once: with a result (a non-negative value
 *     or a negative error code) and an optional value pointer, or by being
 *     cancelled (result -ECANCELED). Every later completion is refused with
 *     an error code and changes nothing: -EALREADY after a completion
 *     (coev_strerror: "already completed or in progress"), -ECANCELED
 *     after a cancel (so a late callback is told that nobody wants its
 *     result). A refused value stays the caller's.
 *  3. The value belongs to the future: waiters borrow it
 *     (coev_future_value) until they release their reference; one of them
 *     may take it over (coev_future_take). A value nobody took is freed
 *     with the value_free function given at completion when the last
 *     reference goes.
 *  4. Waiting. Any number of tasks and plain threads may wait on one
 *     future. Tasks suspend; plain threads block; a worker thread outside a
 *     task (a loop callback) gets COEV_ENOTCORO. Every wait has a deadline
 *     form and honours cancellation as coev/sync.h rule 2 describes.
 *     coev_future_wait leaves the future alone when the wait gives up;
 *     coev_future_await (asyncio's `await fut`) cancels it then, so the
 *     producer learns the result is no longer wanted. A completion that
 *     wins the race against the give-up is delivered (the wait returns 0).
 *     A future belongs to no runtime: when the task that would have
 *     completed it is abandoned by a shutdown (coev/runtime.h rule 4),
 *     nothing completes it, and a plain thread waiting without a deadline
 *     waits until someone completes or cancels it (coev_future_cancel,
 *     from any thread, then releases it with -ECANCELED).
 *  5. Callbacks (coev_future_on_done) run once, after completion, in
 *     registration order, on the thread that completed or cancelled the
 *     future (or at once on the registering thread if it is already
 *     complete and the completing thread is done with the callbacks
 *     registered before); they must not block.
 *  6. Cost: completing wakes each waiting task with no system call when a
 *     worker of its runtime is awake, and at most one (a doorbell) when all
 *     of them sleep.
 */
#ifndef COEV_FUTURE_H
#define COEV_FUTURE_H

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_future coev_future_t;

/* Frees a completed value (free(), or the library's own destructor). */
typedef void (*coev_free_fn)(void *value);

/* A completion callback: f is complete (see coev_future_poll). */
typedef void (*coev_future_cb)(coev_future_t *f, void *arg);

/*
 * coev_future_new — a pending future with one reference, stored in *out.
 * Returns 0, -EINVAL (NULL out) or -ENOMEM. Any thread.
 */
COEV_API int coev_future_new(coev_future_t **out);

/* coev_future_ref — one more reference to f; returns f. Any thread. */
COEV_API coev_future_t *coev_future_ref(coev_future_t *f);

/*
 * coev_future_release — give back one reference; the last one frees f and
 * its value (if not taken). NULL is ignored. Releasing more references
 * than were held, or the last one while someone still waits (impossible
 * without releasing a reference one did not hold), aborts. Any thread.
 */
COEV_API void coev_future_release(coev_future_t *f);

/*
 * coev_future_complete — complete f with result and value (may be NULL;
 * value_free may be NULL when nothing needs freeing) and wake its waiters,
 * then run its callbacks. Returns 0, -EALREADY (already completed),
 * -ECANCELED (cancelled: the result is not wanted), -EINVAL (NULL f). On
 * an error the value stays the caller's. Any thread; never blocks.
 * coev_future_set — the same without a value.
 */
COEV_API int coev_future_complete(coev_future_t *f, int result, void *value,
				  coev_free_fn value_free);
COEV_API int coev_future_set(coev_future_t *f, int result);

/*
 * coev_future_cancel — complete f with -ECANCELED and mark it cancelled, so
 * a late completion is refused with -ECANCELED. Returns 0, -EALREADY when
 * f was already complete (its result stands), -EINVAL. Any thread.
 */
COEV_API int coev_future_cancel(coev_future_t *f);

/*
 * coev_future_wait — wait until f is complete, then store its result in
 * *result (if not NULL) and return 0. Returns -ETIMEDOUT (deadline) or
 * -ECANCELED (the caller was cancelled) with f left pending, COEV_ENOTCORO
 * (a worker thread outside a task), -EINVAL (NULL f).
 * coev_future_wait_dl — the same with an absolute deadline.
 * coev_future_await, coev_future_await_dl — the same, except that a wait
 * that gives up also cancels f (unless a completion came first: then the
 * call returns 0 with that result).
 */
COEV_API int coev_future_wait(coev_future_t *f, int *result);
COEV_API int coev_future_wait_dl(coev_future_t *f, coev_time_t deadline,
				 int *result);
COEV_API int coev_future_await(coev_future_t *f, int *result);
COEV_API int coev_future_await_dl(coev_future_t *f, coev_time_t deadline,
				  int *result);

/*
 * coev_future_poll — 0 and the result in *result (if not NULL) when f is
 * complete, -EAGAIN while it is pending, -EINVAL for NULL. Never waits.
 * coev_future_cancelled — 1 if f was cancelled, else 0.
 */
COEV_API int coev_future_poll(coev_future_t *f, int *result);
COEV_API int coev_future_cancelled(coev_future_t *f);

/*
 * coev_future_value — the completed value, borrowed (valid while the
 * caller holds a reference and nobody takes it), or NULL.
 * coev_future_take — the completed value, now the caller's (freed by the
 * caller, not by the future); NULL when pending, already taken or none.
 */
COEV_API void *coev_future_value(coev_future_t *f);
COEV_API void *coev_future_take(coev_future_t *f);

/*
 * coev_future_on_done — call cb(f, arg) once f is complete: at once on the
 * calling thread if it already is, else on the completing thread after the
 * waiters are woken. Callbacks run in registration order: one registered
 * while the completing thread still runs earlier ones runs after them, on
 * that thread. The callback holds a reference on f until it has run.
 * Returns 0, -EINVAL (NULL f or cb), -ENOMEM. Any thread.
 */
COEV_API int coev_future_on_done(coev_future_t *f, coev_future_cb cb,
				 void *arg);

#ifdef __cplusplus
}
#endif

#endif
