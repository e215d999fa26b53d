/* SPDX-License-Identifier: MIT */
/*
 * coev/sync.h — synchronisation between tasks (and plain threads): mutex,
 * read-write lock, semaphore, event, condition variable, wait group,
 * barrier and once. Channels are in coev/chan.h.
 *
 * Common rules:
 *  1. Every object lives in caller storage: the types below are opaque
 *     blocks of fixed size. An all-zero object (the COEV_*_INIT macros, or
 *     static storage) is a valid default object for the kinds that say so;
 *     the others need their _init(). Moving or copying an object in use is
 *     a bug. A NULL object: every call that returns an error code returns
 *     -EINVAL; coev_sem_value, coev_event_is_set and coev_once_done abort
 *     with a line naming the call; the calls that return nothing
 *     (destroy, unlock, set, clear, signal, broadcast, coev_wg_add and
 *     coev_wg_done) do not check, and fault, as pthreads' calls do.
 *  2. Waits. Every call that can wait has a form without a deadline (waits
 *     forever) and a _dl form taking an absolute deadline from coev_now();
 *     a deadline at or before coev_now() only tries. A waiting call returns
 *     -ETIMEDOUT when the deadline (or a deadline pushed with
 *     coev_deadline_push) passes first, and -ECANCELED when the calling
 *     task is cancelled (at once if it already was, unless shielded). A
 *     call that needs no wait succeeds, even in a cancelled task (as
 *     asyncio's Lock.acquire on a free lock), and a call whose deadline
 *     has passed never suspends: a loop that retries it must yield.
 *  3. Nothing is lost to a deadline or a cancel. A waiter is either still
 *     queued when it gives up (it withdraws; nobody gave it anything) or it
 *     was already handed what it waited for (a permit, the lock, a wake, a
 *     message), and then the call succeeds even though its deadline passed
 *     or its task was cancelled in the meantime: the caller owns the result
 *     and the cancel shows at its next wait. A waiter that was only told
 *     to try again (an unfair mutex) passes that turn on when it gives up.
 *  4. Who may call. Tasks suspend; plain threads outside the runtime block
 *     (the thread, never a worker). A worker thread outside a task (a loop
 *     callback) may call only what never waits; a call that can wait
 *     returns COEV_ENOTCORO there, even when it would not have to (so the
 *     misuse shows at once, not only under load). Calls that never wait (unlock, release, set,
 *     signal, try forms) work from any thread.
 *  5. Fairness: waiters are served first in, first out, except the default
 *     mutex, which lets a running task take a just-released lock before a
 *     woken waiter does (for throughput), and hands the lock over in order
 *     once a waiter has waited 1 ms (so nobody starves).
 *  6. Destroying an object that still has waiters is a bug and aborts with
 *     a message naming the object. Destroying an idle object again does
 *     nothing; its storage may be initialised anew. None of the calls here
 *     allocate.
 *  7. Lifetime, as POSIX and Go have it: an object may be destroyed, and
 *     its storage freed or reused, as soon as the program knows no call on
 *     it is in flight, where a call that completed another's wait counts
 *     as finished once that wait has returned, even while it is still
 *     returning itself: coev touches the object no more once a waiter can
 *     see the completion. So an object may go
 *       - wait group: when every wait has returned (the last coev_wg_done
 *         may still be returning), so a group in the waiter's frame may go
 *         with the frame;
 *       - event: once set, when every wait has returned, or when
 *         coev_event_is_set has returned 1 (the set may still be
 *         returning);
 *       - once: when a coev_once has returned 0 or coev_once_done 1, and
 *         no other coev_once waits (the call that ran the function may
 *         still be returning);
 *       - mutex, read-write lock: when the caller has unlocked it and no
 *         lock call is in flight, however it got the lock: the previous
 *         holder's unlock may still be returning (POSIX's reference-count
 *         example: lock, drop the last reference, unlock, destroy);
 *       - semaphore: when no acquire is in flight (a release whose permit
 *         was taken may still be returning);
 *       - condition variable: when no wait is in flight (a signal or
 *         broadcast may still be returning);
 *       - barrier: when every party of the last round has returned (the
 *         one that completed the round may still be returning).
 *     Calling _destroy() first is not needed for this: it only checks that
 *     nobody waits. Channels (coev_chan_free once no call is in flight; a
 *     send whose message was received and a close that a receive reported
 *     count as finished) and futures (coev/future.h, rule 1) follow the
 *     same rule.
 */
#ifndef COEV_SYNC_H
#define COEV_SYNC_H

#include <stdint.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Opaque storage for the objects below (the layout is private): 64 bytes
 * aligned to 8, the same in C and C++ (docs/ABI.md). C++ has no _Alignas
 * keyword; its alignas gives the struct the same alignment.
 */
#ifdef __cplusplus
#define COEV__ALIGNAS(n) alignas(n)
#else
#define COEV__ALIGNAS(n) _Alignas(n)
#endif
#define COEV__SYNC_OBJ(name)                           \
	typedef struct name {                          \
		COEV__ALIGNAS(8) unsigned char _p[64]; \
	} name##_t

#define COEV__ZERO        \
	{                 \
		{         \
			0 \
		}         \
	}

/* --- mutex ------------------------------------------------------------ */

/*
 * A mutex is held by a task (or a plain thread), not by a worker thread:
 * the holder may suspend and move to another worker while it holds it.
 * Only the holder may unlock it; an unlock by anyone else, or of a mutex
 * not held, aborts with a message. Not recursive: locking a mutex the
 * caller holds returns -EDEADLK.
 */
COEV__SYNC_OBJ(coev_mutex);
#define COEV_MUTEX_INIT COEV__ZERO /* a default (unfair) mutex */

/* Mutex flags. */
#define COEV_MUTEX_FAIR 1u /* hand the lock to waiters strictly in order */

/*
 * coev_mutex_init — make *m an unlocked mutex. flags: 0 (a woken waiter
 * competes with running tasks; best throughput) or COEV_MUTEX_FAIR (each
 * unlock hands the mutex to the longest waiter). Returns 0 or -EINVAL
 * (NULL m, unknown flags). Any thread.
 * coev_mutex_destroy — end *m's life. It must have no waiters (aborts
 * otherwise); it may still be held. Any thread.
 */
COEV_API int coev_mutex_init(coev_mutex_t *m, unsigned flags);
COEV_API void coev_mutex_destroy(coev_mutex_t *m);

/*
 * coev_mutex_lock — take m, waiting while another holder has it.
 * coev_mutex_lock_dl — the same with a deadline.
 * Returns 0 (the caller holds m), -ETIMEDOUT, -ECANCELED, -EDEADLK (the
 * caller holds m already), COEV_ENOTCORO (a worker thread outside a task).
 * Tasks and plain threads; suspends (blocks a plain thread).
 */
COEV_API int coev_mutex_lock(coev_mutex_t *m);
COEV_API int coev_mutex_lock_dl(coev_mutex_t *m, coev_time_t deadline);

/*
 * coev_mutex_trylock — take m if nobody holds it. Returns 0 or -EBUSY.
 * Any thread; never waits.
 */
COEV_API int coev_mutex_trylock(coev_mutex_t *m);

/*
 * coev_mutex_unlock — release m, held by the caller (aborts otherwise), and
 * let one waiter have it. Any thread that holds it; never waits.
 */
COEV_API void coev_mutex_unlock(coev_mutex_t *m);

/* --- read-write lock -------------------------------------------------- */

/*
 * Many readers or one writer. Waiters are served in order, and a waiting
 * writer holds back readers that come after it, so writers never starve;
 * consecutive readers at the head of the queue enter together. Only the
 * writer may write-unlock; unlocking a lock not held that way aborts.
 */
COEV__SYNC_OBJ(coev_rwlock);
#define COEV_RWLOCK_INIT COEV__ZERO

/* coev_rwlock_init — make *rw unlocked. Returns 0 or -EINVAL. Any thread.
 * coev_rwlock_destroy — end its life; it must have no waiters (aborts). */
COEV_API int coev_rwlock_init(coev_rwlock_t *rw);
COEV_API void coev_rwlock_destroy(coev_rwlock_t *rw);

/*
 * coev_rwlock_rdlock / _rdlock_dl — take rw for reading.
 * coev_rwlock_wrlock / _wrlock_dl — take rw for writing.
 * Return 0, -ETIMEDOUT, -ECANCELED, -EDEADLK (wrlock by its writer),
 * COEV_ENOTCORO. Tasks and plain threads; suspend.
 * coev_rwlock_tryrdlock / _trywrlock — take it only if that needs no wait:
 * 0 or -EBUSY. Any thread.
 * coev_rwlock_rdunlock / _wrunlock — release a read or the write hold.
 * Any thread that holds it; never wait.
 */
COEV_API int coev_rwlock_rdlock(coev_rwlock_t *rw);
COEV_API int coev_rwlock_rdlock_dl(coev_rwlock_t *rw, coev_time_t deadline);
COEV_API int coev_rwlock_tryrdlock(coev_rwlock_t *rw);
COEV_API void coev_rwlock_rdunlock(coev_rwlock_t *rw);
COEV_API int coev_rwlock_wrlock(coev_rwlock_t *rw);
COEV_API int coev_rwlock_wrlock_dl(coev_rwlock_t *rw, coev_time_t deadline);
COEV_API int coev_rwlock_trywrlock(coev_rwlock_t *rw);
COEV_API void coev_rwlock_wrunlock(coev_rwlock_t *rw);

/* --- semaphore -------------------------------------------------------- */

/*
 * A counting semaphore (asyncio.Semaphore): acquire takes a permit,
 * waiting while there is none; release gives one back, straight to the
 * longest waiter if there is one. The count never exceeds COEV_SEM_MAX.
 */
COEV__SYNC_OBJ(coev_sem);
#define COEV_SEM_MAX 0x7fffffffu

/* coev_sem_init — make *s a semaphore holding count permits. Returns 0 or
 * -EINVAL (NULL s, count > COEV_SEM_MAX). Any thread.
 * coev_sem_destroy — end its life; it must have no waiters (aborts). */
COEV_API int coev_sem_init(coev_sem_t *s, unsigned count);
COEV_API void coev_sem_destroy(coev_sem_t *s);

/*
 * coev_sem_acquire / _acquire_dl — take one permit. Returns 0, -ETIMEDOUT,
 * -ECANCELED, COEV_ENOTCORO. Tasks and plain threads; suspend.
 * coev_sem_tryacquire — take one if there is one (and nobody waits): 0 or
 * -EAGAIN. Any thread.
 * coev_sem_release — give one permit back. Returns 0 or -EOVERFLOW (the
 * count is at COEV_SEM_MAX; nothing changed). Any thread; never waits.
 * coev_sem_value — the permits free now (a snapshot). Any thread.
 */
COEV_API int coev_sem_acquire(coev_sem_t *s);
COEV_API int coev_sem_acquire_dl(coev_sem_t *s, coev_time_t deadline);
COEV_API int coev_sem_tryacquire(coev_sem_t *s);
COEV_API int coev_sem_release(coev_sem_t *s);
COEV_API unsigned coev_sem_value(coev_sem_t *s);

/* --- event ------------------------------------------------------------ */

/*
 * An event (asyncio.Event): a flag that tasks wait to see set. Setting it
 * wakes every waiter; it stays set until cleared.
 */
COEV__SYNC_OBJ(coev_event);
#define COEV_EVENT_INIT COEV__ZERO /* not set */

/* coev_event_init — make *e a clear event. Returns 0 or -EINVAL.
 * coev_event_destroy — end its life; it must have no waiters (aborts). */
COEV_API int coev_event_init(coev_event_t *e);
COEV_API void coev_event_destroy(coev_event_t *e);

/*
 * coev_event_set — set e and wake every waiter. Any thread (plain threads
 * and loop callbacks included); never waits.
 * coev_event_clear — clear e; later waits wait again. Any thread.
 * coev_event_is_set — 1 if set, else 0. Any thread.
 * coev_event_wait / _wait_dl — return 0 as soon as e is set (at once if it
 * is), or -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO. A waiter woken by a set
 * returns 0 even if e was cleared again before it ran. Tasks and plain
 * threads; suspend.
 */
COEV_API void coev_event_set(coev_event_t *e);
COEV_API void coev_event_clear(coev_event_t *e);
COEV_API int coev_event_is_set(coev_event_t *e);
COEV_API int coev_event_wait(coev_event_t *e);
COEV_API int coev_event_wait_dl(coev_event_t *e, coev_time_t deadline);

/* --- condition variable ----------------------------------------------- */

/*
 * A condition variable used with a coev mutex (asyncio.Condition). As with
 * pthreads, a wake means "look again", so wait in a loop on the predicate.
 */
COEV__SYNC_OBJ(coev_cond);
#define COEV_COND_INIT COEV__ZERO

/* coev_cond_init — returns 0 or -EINVAL. coev_cond_destroy — it must have
 * no waiters (aborts). */
COEV_API int coev_cond_init(coev_cond_t *c);
COEV_API void coev_cond_destroy(coev_cond_t *c);

/*
 * coev_cond_wait / _wait_dl — release m (held by the caller; aborts
 * otherwise), wait for a signal, and take m again before returning, in
 * every case: errors included, cancelled or not (the re-lock waits as
 * long as it must). Returns 0 (signalled), -ETIMEDOUT, -ECANCELED or
 * COEV_ENOTCORO (then m was not released). Tasks and plain threads.
 * coev_cond_signal — wake the longest waiter, if any. Any thread.
 * coev_cond_broadcast — wake every waiter. Any thread.
 */
COEV_API int coev_cond_wait(coev_cond_t *c, coev_mutex_t *m);
COEV_API int coev_cond_wait_dl(coev_cond_t *c, coev_mutex_t *m,
			       coev_time_t deadline);
COEV_API void coev_cond_signal(coev_cond_t *c);
COEV_API void coev_cond_broadcast(coev_cond_t *c);

/* --- wait group ------------------------------------------------------- */

/*
 * A wait group (Go's sync.WaitGroup): a counter of outstanding work;
 * waiters wait until it is zero.
 */
COEV__SYNC_OBJ(coev_wg);
#define COEV_WG_INIT COEV__ZERO /* count 0 */

/* coev_wg_init — count 0; returns 0 or -EINVAL. coev_wg_destroy — it must
 * have no waiters (aborts). */
COEV_API int coev_wg_init(coev_wg_t *wg);
COEV_API void coev_wg_destroy(coev_wg_t *wg);

/*
 * coev_wg_add — add n (may be negative) to the count; reaching zero wakes
 * every waiter. A count below zero, or one past LONG_MAX, is a bug and
 * aborts (the count is unchanged then). Any thread.
 * coev_wg_done — coev_wg_add(wg, -1).
 * coev_wg_wait / _wait_dl — wait until the count is zero: 0, -ETIMEDOUT,
 * -ECANCELED, COEV_ENOTCORO. Tasks and plain threads.
 */
COEV_API void coev_wg_add(coev_wg_t *wg, long n);
COEV_API void coev_wg_done(coev_wg_t *wg);
COEV_API int coev_wg_wait(coev_wg_t *wg);
COEV_API int coev_wg_wait_dl(coev_wg_t *wg, coev_time_t deadline);

/* --- barrier ---------------------------------------------------------- */

/*
 * A reusable barrier for n parties: each waits until all n have arrived,
 * then all go on and the barrier is ready for the next round.
 */
COEV__SYNC_OBJ(coev_barrier);
#define COEV_BARRIER_SERIAL 1 /* returned to the last to arrive */

/* coev_barrier_init — a barrier for n parties; returns 0 or -EINVAL (NULL
 * b, n == 0). coev_barrier_destroy — it must have no waiters (aborts). */
COEV_API int coev_barrier_init(coev_barrier_t *b, unsigned n);
COEV_API void coev_barrier_destroy(coev_barrier_t *b);

/*
 * coev_barrier_wait / _wait_dl — arrive and wait for the rest. Returns
 * COEV_BARRIER_SERIAL to the party that completed the round, 0 to the
 * others, or -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO: a party that gives up
 * takes its arrival back, so the round then needs another party. Tasks
 * and plain threads.
 */
COEV_API int coev_barrier_wait(coev_barrier_t *b);
COEV_API int coev_barrier_wait_dl(coev_barrier_t *b, coev_time_t deadline);

/* --- once ------------------------------------------------------------- */

/*
 * Run an initialisation exactly once, however many tasks ask at the same
 * time; the others wait until it is done.
 */
COEV__SYNC_OBJ(coev_once);
#define COEV_ONCE_INIT COEV__ZERO

typedef int (*coev_once_cb)(void *arg);

/*
 * coev_once — if o is not done, run fn(arg) in the calling task; if fn
 * returns >= 0, o is done. Callers that arrive while fn runs wait for it;
 * if it fails, one of them runs fn again (as Rust's OnceCell
 * get_or_try_init). Returns 0 (o is done), fn's negative result (this
 * caller ran fn and it failed), -ETIMEDOUT, -ECANCELED or COEV_ENOTCORO
 * (waiting was needed), -EDEADLK (called from fn on its own o: the caller
 * would wait for itself). coev_once_dl — the same with a deadline on the
 * wait. Tasks and plain threads.
 * coev_once_done — 1 once o is done, else 0. Any thread.
 */
COEV_API int coev_once(coev_once_t *o, coev_once_cb fn, void *arg);
COEV_API int coev_once_dl(coev_once_t *o, coev_once_cb fn, void *arg,
			  coev_time_t deadline);
COEV_API int coev_once_done(coev_once_t *o);

#ifdef __cplusplus
}
#endif

#endif
