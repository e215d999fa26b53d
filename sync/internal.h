/* SPDX-License-Identifier: MIT */
/*
 * sync/internal.h — the wait queue every primitive of sync/ is built on,
 * and the private layouts behind the opaque types of coev/sync.h and
 * coev/chan.h. Not installed.
 *
 * sync/ builds on sched/'s waiters (sched/internal.h): a wait node holds a
 * waiter, which is a task (parked and woken through the scheduler) or a
 * plain thread (a mutex and a condition variable).
 */
#ifndef COEV_SYNC_INTERNAL_H
#define COEV_SYNC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "coev.h"
#include "sched/internal.h"

/*
 * coev__spin_wait_unlocked — for a call that has seen, without the lock,
 * a state some holder published under it (a wait group's count at zero,
 * an event set, once done): wait until that holder has let go of the
 * lock, its last touch of the object, so the call may return and its
 * caller destroy the object at once (the lifetime rule of coev/sync.h).
 * The state must have been read with acquire. A lock then read free was
 * let go by that holder or a later one: the holder took it before it
 * published (coherence: no earlier value of the lock can be read), so
 * only its own unlock or a later one reads as free. Free, as it nearly
 * always is, the check costs one load of a line the caller just read.
 */
static inline void coev__spin_wait_unlocked(atomic_uint *l)
{
	/* Acquire: pairs with the release in coev__spin_unlock, so the
	 * holder's last touch happens before the caller returns. */
	if (atomic_load_explicit(l, memory_order_acquire)) {
		coev__spin_lock(l);
		coev__spin_unlock(l);
	}
}

/* --- wait nodes and queues ------------------------------------------- */

/*
 * A wait node: one waiter's place in one queue, in the waiter's frame.
 *
 * Protocol (every primitive follows it):
 *   1. The waiter, holding the queue's lock, finds it must wait, fills a
 *      node (coev__wnode_init) and queues it.
 *   2. It releases the lock and waits (coev__wq_wait).
 *   3. A granter, holding the lock, takes the node out of the queue and
 *      hands it what it waited for by setting `status` (coev__wq_grant);
 *      after unlocking it signals the waiter (coev__wq_wake).
 *   4. A waiter whose wait ends by deadline or cancel takes the lock: a
 *      node still queued is withdrawn (nothing was granted: the call
 *      fails); a node no longer queued was granted, so the waiter waits
 *      for the signal already on its way (the node must outlive it) and
 *      the call succeeds with what it was given.
 * So every grant is either received or never made: nothing is lost.
 */
typedef struct coev__wnode {
	struct coev__wnode *prev, *next; /* [lock] */
	coev__waiter_t *wt;		 /* who to signal */
	struct coev__sel *sel;		 /* a select's shared state, or NULL */
	void *buf;			 /* a channel message */
	uintptr_t arg;			 /* the primitive's own datum */
	int status;			 /* [lock] set by the granter */
	int index;			 /* a select case's index */
	bool queued;			 /* [lock] */
} coev__wnode_t;

/* A FIFO of wait nodes, under the spin lock of the object it belongs to
 * (one lock may cover several queues: a channel's senders and receivers). */
typedef struct coev__wq {
	coev__wnode_t *head, *tail;
} coev__wq_t;

/* A list of granted nodes to signal once the lock is released. */
typedef struct coev__wake {
	coev__wnode_t *head;
	int how; /* COEV_SIG_WAKE, or COEV_SIG_SHARED for a granter that goes
		  * on running (unlock, release) */
} coev__wake_t;

/*
 * coev__waiter_begin — prepare wt for the calling task or plain thread,
 * to be signalled at most once (coev__waiter_init_once: the task outlives
 * the signal without a reference). Returns 0 or COEV_ENOTCORO on a worker
 * thread outside a task.
 * coev__waiter_abandon — undo begin for a waiter nobody will signal.
 * A signalled waiter ends with coev__waiter_fini.
 */
int coev__waiter_begin(coev__waiter_t *wt);
void coev__waiter_abandon(coev__waiter_t *wt);

void coev__wnode_init(coev__wnode_t *n, coev__waiter_t *wt);
void coev__wq_push(coev__wq_t *q, coev__wnode_t *n);
void coev__wq_push_front(coev__wq_t *q, coev__wnode_t *n);
void coev__wq_remove(coev__wq_t *q, coev__wnode_t *n);

static inline bool coev__wq_empty(const coev__wq_t *q)
{
	return q->head == NULL;
}

/* Take n out of its queue, set its status and add it to the wake list. */
void coev__wq_grant(coev__wq_t *q, coev__wnode_t *n, int status,
		    coev__wake_t *wk);
/* Grant every queued node (status for all). */
void coev__wq_grant_all(coev__wq_t *q, int status, coev__wake_t *wk);
/* Signal every node of the list; the lock must be released. */
void coev__wq_wake(coev__wake_t *wk);

/*
 * coev__wq_wait — steps 2 and 4 above for node n of q, queued by the
 * caller under lk, which the caller has released. Returns n->status when
 * granted; otherwise withdraws n and returns the wait's error, after
 * calling withdrawn(obj, wk) (if not NULL) under lk, so the primitive can
 * pass on what the withdrawal freed. Ends n's waiter either way. A task
 * waiting is noted as waiting on (kind, what, arg 0) for dumps
 * (COEV_WAIT_*).
 * coev__wq_wait_arg — the same with the note's arg given: for
 * COEV_WAIT_MUTEX, the address of the word where the mutex keeps its
 * holder.
 */
typedef void (*coev__withdrawn_fn)(void *obj, coev__wake_t *wk);
int coev__wq_wait_arg(atomic_uint *lk, coev__wq_t *q, coev__wnode_t *n,
		      coev_time_t deadline, coev__withdrawn_fn withdrawn,
		      void *obj, unsigned kind, const void *what,
		      long long arg);

static inline int coev__wq_wait(atomic_uint *lk, coev__wq_t *q,
				coev__wnode_t *n, coev_time_t deadline,
				coev__withdrawn_fn withdrawn, void *obj,
				unsigned kind, const void *what)
{
	return coev__wq_wait_arg(lk, q, n, deadline, withdrawn, obj, kind, what,
				 0);
}

/*
 * The objects that make tasks wait until something has happened: the
 * event (event.c), the wait group (wg.c), the barrier (barrier.c) and once
 * (once.c). Each keeps its condition under its spin lock, next to its wait
 * queue, and wakes every waiter when the condition becomes true
 * (grant_all), so a waiter that gives up late still returns success: it
 * was granted. The event, the wait group and once also publish their
 * condition in an atomic word, so a wait on a condition already true
 * takes no lock; having seen it, the wait still waits for the lock to be
 * free (coev__spin_wait_unlocked), since the granter publishes before it
 * unlocks and the waiter's caller may destroy the object on return.
 *
 * coev__wq_wait_until — queue the caller on q under lk, unless ready(obj)
 * says the condition already holds (checked under lk). Returns 0 at once
 * when it holds, else the wait's result (the granter's status, or an
 * error). A task waiting is noted as waiting on (COEV_WAIT_EVENT, obj).
 */
int coev__wq_wait_until(atomic_uint *lk, coev__wq_t *q, bool (*ready)(void *),
			void *obj, coev_time_t deadline);

/*
 * coev__sync_check_idle — abort, naming the object (what, at p), when q
 * (under lk) still has waiters: destroying it would leave them waiting on
 * freed memory.
 */
void coev__sync_check_idle(atomic_uint *lk, coev__wq_t *q, const char *what,
			   const void *p);

/* The identity of the calling task, or of the calling thread outside any
 * task: the owner recorded by mutexes. One call (coev__worker_self, which
 * is never cached across a switch); a thread outside any task never
 * switches, so its token's address may be. Initial-exec, as
 * coev__tls_worker: its address is the thread pointer plus a constant,
 * with no __tls_get_addr call on the mutex's fast paths. */
extern __thread char coev__sync_token
	__attribute__((tls_model("initial-exec")));

/* COEV_ENOTCORO on a worker thread outside a task (a loop callback), where
 * a blocking call must not be made even when it would not block; else 0. */
static inline int coev__sync_may_block(void)
{
	struct coev_worker *w = coev__worker_self();

	return w && !w->current ? COEV_ENOTCORO : 0;
}

static inline const void *coev__sync_self(void)
{
	struct coev_worker *w = coev__worker_self();

	if (w && w->current)
		return w->current;
	return &coev__sync_token;
}

/* For the condition variable (sync/cond.c), from sync/mutex.c:
 * coev__mutex_held — whether the caller holds m.
 * coev__mutex_unlock_checked — release m, held by the caller (aborts
 * otherwise); fn names the public call for the message. */
bool coev__mutex_held(coev_mutex_t *m);
void coev__mutex_unlock_checked(coev_mutex_t *m, const char *fn);

/* --- select's channel cases (sync/select.c) ---------------------------- */

/* A waiting select's state, shared by its wait nodes (wnode.sel). */
struct coev__sel {
	atomic_int winner; /* -1 open, -2 withdrawn, else the case index */
};

/*
 * The channel cases of a select, for coev_select (sync/select.c) and for
 * the select over mixed sources (bridge/select_any.c), which waits on them
 * beside futures, tasks, fds and deadlines. In the caller's frame.
 */
struct coev__chsel {
	coev_sel_t *cases;
	size_t n;
	coev_chan_t *locks[COEV_SELECT_MAX]; /* distinct, address order */
	size_t nlocks;
	unsigned char order[COEV_SELECT_MAX]; /* cases, shuffled */
	coev__wnode_t nodes[COEV_SELECT_MAX]; /* one per case, while armed */
	struct coev__sel sel;
};

/*
 * coev__chsel_prepare — check cases[0..n) (coev_select's -EINVAL rules)
 * and sort their channels for locking; shuffle the order the attempts
 * take. 0 or -EINVAL.
 * coev__chsel_try — under every lock, perform the first case that can
 * proceed (in the shuffled order): its index (its result in the case), or
 * -EAGAIN. Never waits; any thread.
 * coev__chsel_try_one — the same for case i alone, under its channel's
 * lock: i or -EAGAIN.
 * coev__chsel_arm — the attempt of a select about to wait: under every
 * lock, mark each case's side as waited on and try the cases; when none
 * can proceed, queue one node per case, every node signalling wt and
 * sharing s->sel, and return -EAGAIN; else the index performed (nothing
 * queued). A partner that serves one node claims s->sel for its case and
 * signals wt once: at most one signal per arm.
 * coev__chsel_disarm — after an arm that queued: claim s->sel for the
 * select itself (withdraw) and unlink every node still queued. Returns
 * -1 when withdrawn (no case performed, no signal coming), else the
 * index of the case a partner performed (its result in the case), whose
 * signal to wt has come or is on its way.
 */
int coev__chsel_prepare(struct coev__chsel *s, coev_sel_t *cases, size_t n);
int coev__chsel_try(struct coev__chsel *s);
int coev__chsel_try_one(struct coev__chsel *s, size_t i);
int coev__chsel_arm(struct coev__chsel *s, coev__waiter_t *wt);
int coev__chsel_disarm(struct coev__chsel *s);

/*
 * Broadcast and latest-value receivers as sources of the select over
 * mixed sources (sync/broadcast.c, sync/latest.c). arm queues n (its
 * waiter set) as a notification: the next send or the close grants it
 * without handing it a value or moving the receiver on, so the value
 * stays for the receiver's next receive; returns 1 instead (nothing
 * queued) when a receive would not wait now. disarm takes n back: 0 when
 * it was still queued, 1 when it was granted (its signal has come or is
 * on its way).
 */
int coev__bcast_arm(coev_bcast_rx_t *rx, coev__wnode_t *n);
int coev__bcast_disarm(coev_bcast_rx_t *rx, coev__wnode_t *n);
int coev__latest_arm(coev_latest_rx_t *rx, coev__wnode_t *n);
int coev__latest_disarm(coev_latest_rx_t *rx, coev__wnode_t *n);
/* The same for an event (sync/event.c): arm queues n to be granted by
 * the next set, or returns 1 when the event is set. */
int coev__event_arm(coev_event_t *e, coev__wnode_t *n);
int coev__event_disarm(coev_event_t *e, coev__wnode_t *n);

/* A small per-thread random number (select's fair choice). */
uint32_t coev__sync_rand(void);

/* The private layout behind an opaque public type. */
#define COEV__SYNC_LAYOUT(pub, priv)                                \
	_Static_assert(sizeof(priv) <= sizeof(pub), #priv " fits"); \
	_Static_assert(_Alignof(priv) <= _Alignof(pub), #priv " aligns")

#endif
