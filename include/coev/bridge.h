/* SPDX-License-Identifier: MIT */
/*
 * coev/bridge.h — wrapping callback-based C libraries: loop affinity, and
 * the generic adapters for the shapes such libraries take.
 *
 * Callback libraries come in three shapes, and each has its piece here:
 *   (a) "watch this fd for me" hooks (hiredis' adapter hooks: add/del read,
 *       add/del write, a timer): coev_watch_t and coev_timer_t;
 *   (b) a socket-state callback plus one timer (c-ares' sock_state_cb,
 *       libcurl's CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION):
 *       coev_sockset_t, a set of fd watches keyed by fd and one timer;
 *   (c) callbacks from the library's own threads: complete a future
 *       (coev/future.h) from that thread, or coev_submit() to get onto a
 *       worker.
 * In every shape the library's callback completes a coev_future_t that
 * the calling task waits on.
 *
 * Loop affinity. A library handle (a hiredis context, a c-ares channel, a
 * curl multi handle) belongs to one worker: its watches and timers live on
 * that worker's loop and fire on that worker's thread, and the library must
 * only be called there. Two ways to do that:
 *   - pin: coev_pin_to(i) moves the calling task to worker i and keeps it
 *     there (its waits resume there; it is never stolen) until
 *     coev_unpin(); the task then calls the library directly;
 *   - submit: coev_submit(rt, i, fn, arg, &f) runs fn(arg) on worker i's
 *     thread between tasks and completes f with its result
 *     (coev_submit_to waits for it), like Seastar's submit_to.
 * Watches, timers and socksets belong to the worker that created them;
 * using one from another thread aborts with a message. Their callbacks run
 * on that worker's thread outside any task, as libev callbacks do: they may
 * complete futures, signal sync objects and call the library, and must not
 * block (a waiting coev call returns COEV_ENOTCORO there).
 */
#ifndef COEV_BRIDGE_H
#define COEV_BRIDGE_H

#include "future.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- loop affinity ---------------------------------------------------- */

/*
 * coev_pin — keep the calling task on its current worker until the
 * matching coev_unpin(): it is never stolen, and every wait resumes here.
 * coev_pin_to — the same on worker i of the task's runtime, moving the
 * task there first (it yields once when it is elsewhere).
 * Pins nest; each needs its own coev_unpin(). Returns 0, COEV_ENOTCORO
 * outside a task, -EINVAL (i out of range; coev_unpin without a pin),
 * -EBUSY (coev_pin_to another worker while pinned).
 */
COEV_API int coev_pin(void);
COEV_API int coev_pin_to(unsigned i);
COEV_API int coev_unpin(void);

/*
 * coev_ev_loop — the libev loop (struct ev_loop *) of the calling worker,
 * for libraries that attach to a libev loop themselves; NULL on a thread
 * that is no worker (or on a platform without libev). Only the worker's
 * thread may use it: pin the task while it does. The loop's userdata is
 * coev's; do not change it or run the loop.
 */
struct ev_loop;
COEV_API struct ev_loop *coev_ev_loop(void);

/*
 * coev_submit — run fn(arg) on worker i of rt (NULL: the runtime of the
 * calling task or loop callback) between its tasks, in its thread, as a
 * loop callback (so fn must not block), and complete a future with fn's
 * result. out: NULL to drop the result, or where to store the future (one
 * reference, the caller's). If the future is cancelled before fn starts,
 * fn is skipped (once started, fn runs to its end and its result is
 * refused); if the runtime is freed first, it completes with -ESHUTDOWN.
 * Returns 0, COEV_ENOTRT (rt NULL on a thread that is no worker), -EINVAL
 * (fn NULL, i out of range), -ESHUTDOWN (the runtime is stopping),
 * -ENOMEM. Any thread; never blocks.
 * coev_submit_to_dl — coev_submit, then wait for fn's result and store it
 * in *result. A caller whose deadline passes (or a pushed one), or that is
 * cancelled, before fn starts returns -ETIMEDOUT (-ECANCELED) and fn never
 * runs: the deadline bounds the wait for a worker busy in a long task.
 * Once fn has started the call waits for it (fn is a loop callback, which
 * does not block) and returns 0, so arg may live in the caller's frame.
 * Returns 0 or coev_submit's errors. From a task or a plain thread.
 * coev_submit_to — coev_submit_to_dl with COEV_FOREVER.
 */
COEV_API int coev_submit(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
			 coev_future_t **out);
COEV_API int coev_submit_to_dl(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
			       int *result, coev_time_t deadline);
COEV_API int coev_submit_to(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
			    int *result);

/* --- (a) fd watches and timers on the calling worker's loop ----------- */

typedef struct coev_watch coev_watch_t;
typedef void (*coev_watch_fn)(coev_watch_t *wa, int fd, unsigned events,
			      void *arg);

/*
 * coev_watch_new — a watch of fd on the calling worker's loop, wanting no
 * events yet. fn(wa, fd, events, arg) is called on this worker's thread
 * while fd is ready for any of the wanted events (level-triggered), with
 * the ready ones (COEV_READ, COEV_WRITE). Returns 0, COEV_ENOTRT (not on
 * a worker thread), -EINVAL (fd < 0, NULL fn or out), -ENOMEM.
 * coev_watch_set — want events (COEV_READ | COEV_WRITE, 0 for none);
 * takes effect at once, also from inside fn. Returns 0, -EBUSY (another
 * watch of this worker wants the same event on fd), -EPERM (fd cannot be
 * polled: a regular file), -EBADF, -ENOMEM (the worker's table of waits
 * could not grow, see coev_wait_fd; the watch stays unarmed).
 * coev_watch_free — stop and free; may be called from inside fn. The fd
 * is the caller's (close it after). NULL is ignored.
 */
COEV_API int coev_watch_new(int fd, coev_watch_fn fn, void *arg,
			    coev_watch_t **out);
COEV_API int coev_watch_set(coev_watch_t *wa, unsigned events);
COEV_API void coev_watch_free(coev_watch_t *wa);

typedef struct coev_timer coev_timer_t;
typedef void (*coev_timer_fn)(coev_timer_t *tm, void *arg);

/*
 * coev_timer_new — a timer on the calling worker's loop, not armed.
 * Returns 0, COEV_ENOTRT, -EINVAL, -ENOMEM.
 * coev_timer_set — fire fn(tm, arg) once at the absolute deadline (a past
 * one fires at the loop's next turn); replaces an earlier setting;
 * COEV_FOREVER disarms. Returns 0 or -EINVAL.
 * coev_timer_free — disarm and free; may be called from inside fn.
 */
COEV_API int coev_timer_new(coev_timer_fn fn, void *arg, coev_timer_t **out);
COEV_API int coev_timer_set(coev_timer_t *tm, coev_time_t deadline);
COEV_API void coev_timer_free(coev_timer_t *tm);

/* --- (b) a socket set and one timer ----------------------------------- */

typedef struct coev_sockset coev_sockset_t;
/* fd ready with events, or fd == COEV_SOCKSET_TIMER when the timer fired. */
typedef void (*coev_sockset_fn)(coev_sockset_t *ss, int fd, unsigned events,
				void *arg);
#define COEV_SOCKSET_TIMER (-1)

/*
 * coev_sockset_new — an empty set on the calling worker's loop; fn is
 * called for every ready fd and when the timer fires. Returns 0,
 * COEV_ENOTRT, -EINVAL, -ENOMEM.
 * coev_sockset_watch — want events on fd (0 forgets fd): what the
 * library's socket callback says. Returns 0 or coev_watch_set's errors,
 * -ENOMEM.
 * coev_sockset_timer — the library's one timer: fire at the absolute
 * deadline, COEV_FOREVER to stop. Returns 0 or -EINVAL.
 * coev_sockset_free — forget every fd and the timer; may be called from
 * inside fn.
 */
COEV_API int coev_sockset_new(coev_sockset_fn fn, void *arg,
			      coev_sockset_t **out);
COEV_API int coev_sockset_watch(coev_sockset_t *ss, int fd, unsigned events);
COEV_API int coev_sockset_timer(coev_sockset_t *ss, coev_time_t deadline);
COEV_API void coev_sockset_free(coev_sockset_t *ss);

#ifdef __cplusplus
}
#endif

#endif
