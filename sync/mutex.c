/* SPDX-License-Identifier: MIT */
/*
 * sync/mutex.c — the mutex.
 *
 * Mutex state word (atomic; the wait queue is under the spin lock lk):
 *   LOCKED   someone holds the mutex
 *   WAITERS  the queue is not empty; set and cleared only under lk
 * The uncontended lock is one compare-and-swap 0 -> LOCKED and the
 * uncontended unlock one compare-and-swap LOCKED -> 0; both fail while
 * WAITERS is set, which sends them to the slow paths under lk. Since
 * WAITERS is set under lk before a waiter parks, and an unlock that sees
 * it takes lk, no wake is lost.
 *
 * Two hand-over policies:
 *   unfair (default)  an unlock with waiters clears LOCKED and wakes the
 *                     head waiter, which then competes for the lock with
 *                     running tasks (a running task takes it at once: no
 *                     switch per lock while tasks contend, as Go's normal
 *                     mode). A woken waiter that loses goes back to the
 *                     front of the queue; once it has waited STARVE_NS it
 *                     is marked starving and the next unlock hands the
 *                     lock to it directly.
 *   fair              every unlock with waiters hands the lock to the
 *                     head waiter: LOCKED stays set, so nobody can barge.
 *                     Hence under the fair policy "unlocked" implies "no
 *                     waiters".
 * A woken (not handed) waiter whose deadline passed or that was cancelled
 * simply tries once more: it either takes a free lock or finds it held,
 * and then the holder's unlock wakes the next waiter: the turn it was
 * given is never lost.
 *
 * Before queueing, a locker spins briefly (SPIN_ROUNDS): a holder on
 * another worker usually lets go within a few hundred nanoseconds, far
 * less than a park and a wake cost.
 *
 * When tasks on two workers lock at once, each pair moves m's cache line
 * between the cores: 4 lockers started on each of 2 workers pay 11-13 ns
 * a pair against 5 on one worker. Rejected, measured on that load: a
 * "home" worker (the last holder's) whose mutex lockers elsewhere join
 * the queue instead of barging, for the tasks to gather where m is: the
 * woken lockers, queued on the holder's worker, were stolen back by the
 * idle one and barged again, and pairs stayed at 11-13 ns.
 *
 * The fast paths are one atomic operation each plus the owner word:
 * measured on the 2-vCPU EPYC VM of the benchmarks, a task's lock/unlock
 * pair costs 4.6 ns against 4.4 ns for a bare C loop doing one CAS to
 * lock and one RMW to unlock (a plain store to unlock: 2.2 ns). The
 * cheaper store-then-look unlock is rejected: its look at WAITERS after
 * the store would touch m when m may already belong to someone else (see
 * lifetime below), and looking before the store loses a waiter that
 * queues in between. So the unlock stays one CAS, which, unlike a
 * fetch-and-sub, also leaves m locked when it fails, so that the slow
 * unlock still owns m (and, when fair, nobody barges meanwhile).
 *
 * Lifetime (coev/sync.h): whoever takes m next may unlock it and destroy
 * it at once (POSIX's reference-count example), so an unlock touches m
 * no more once m can be taken. The fast unlock's CAS is its last touch. A
 * slow unlock that finds the queue emptied lets go of lk before freeing m
 * by a CAS; one that grants a waiter does so under lk while that waiter's
 * lock call is still in flight (m cannot be destroyed before it returns),
 * and after unlocking touches only the waiter's node.
 */
#include "internal.h"

enum { M_LOCKED = 1u, M_WAITERS = 2u };
enum { GRANT_LOCK = 1, GRANT_TRY = 2 }; /* wait node statuses */

#define STARVE_NS 1000000
#define SPIN_ROUNDS 4
#define SPIN_PAUSES 30

struct mutex {
	atomic_uint state;	     /* [any] M_* */
	atomic_uint lk;		     /* guards q */
	coev__wq_t q;		     /* [lk] */
	unsigned flags;		     /* [init] */
	_Atomic(const void *) owner; /* [holder] see coev__sync_self */
};
COEV__SYNC_LAYOUT(coev_mutex_t, struct mutex);

static inline struct mutex *M(coev_mutex_t *m)
{
	return (struct mutex *)(void *)m;
}

/* The holder is a task (counted in its locks_held, for debug mode's "ended
 * holding a mutex") or a plain thread (the token). */
static inline void set_owner(struct mutex *m, const void *self)
{
	atomic_store_explicit(&m->owner, self, memory_order_relaxed);
	if (self != &coev__sync_token) {
		coev_task_t *t = (coev_task_t *)self;

		t->locks_held++;
	}
}

int coev_mutex_init(coev_mutex_t *pub, unsigned flags)
{
	struct mutex *m = M(pub);

	if (!pub || (flags & ~COEV_MUTEX_FAIR))
		return -EINVAL;
	atomic_init(&m->state, 0);
	atomic_init(&m->lk, 0);
	m->q.head = m->q.tail = NULL;
	m->flags = flags;
	atomic_init(&m->owner, NULL);
	return 0;
}

void coev_mutex_destroy(coev_mutex_t *pub)
{
	struct mutex *m = M(pub);

	coev__sync_check_idle(&m->lk, &m->q, "mutex", m);
}

/* One attempt to take m. */
static bool try_take(struct mutex *m)
{
	unsigned s = 0;

	/* Acquire (both CASes): pairs with the release that freed m, the CAS
	 * in coev__mutex_unlock_checked or a store in unlock_slow. */
	if (atomic_compare_exchange_strong_explicit(&m->state, &s, M_LOCKED,
						    memory_order_acquire,
						    memory_order_relaxed))
		return true;
	/* Barge past queued waiters (never possible when fair: see top). */
	while (!(s & M_LOCKED))
		if (atomic_compare_exchange_weak_explicit(
			    &m->state, &s, s | M_LOCKED, memory_order_acquire,
			    memory_order_relaxed))
			return true;
	return false;
}

/* Under lk: take m, or else mark it WAITERS; true when taken. */
static bool take_or_mark(struct mutex *m)
{
	unsigned s = atomic_load_explicit(&m->state, memory_order_relaxed);

	for (;;) {
		if (!(s & M_LOCKED)) {
			/* Acquire: as in try_take. */
			if (atomic_compare_exchange_weak_explicit(
				    &m->state, &s, s | M_LOCKED,
				    memory_order_acquire, memory_order_relaxed))
				return true;
		} else if ((s & M_WAITERS) ||
			   atomic_compare_exchange_weak_explicit(
				   &m->state, &s, s | M_WAITERS,
				   memory_order_relaxed,
				   memory_order_relaxed)) {
			return false;
		}
	}
}

/* A waiter withdrew (under lk): the queue may have emptied. */
static void mutex_withdrawn(void *obj, coev__wake_t *wk)
{
	struct mutex *m = obj;

	(void)wk;
	if (coev__wq_empty(&m->q))
		atomic_fetch_and_explicit(&m->state, ~(unsigned)M_WAITERS,
					  memory_order_relaxed);
}

static bool spin_for(struct mutex *m)
{
	coev_task_t *t = coev__task_self();

	/* One worker: the holder cannot run while we spin. */
	if (t && t->rt->nworkers < 2)
		return false;
	for (int i = 0; i < SPIN_ROUNDS; i++) {
		for (int j = 0; j < SPIN_PAUSES; j++)
			coev__cpu_pause();
		if (atomic_load_explicit(&m->state, memory_order_relaxed) &
		    M_WAITERS)
			return false;
		if (try_take(m))
			return true;
	}
	return false;
}

static int lock_slow(struct mutex *m, const void *self, coev_time_t deadline)
{
	coev__waiter_t wt;
	coev__wnode_t n;
	coev_time_t since = 0;
	bool front = false;
	int r;

	if (spin_for(m))
		goto taken;
	for (;;) {
		if ((r = coev__waiter_begin(&wt)) < 0)
			return r;
		coev__wnode_init(&n, &wt);
		n.arg = front && coev__plat_now() - since > STARVE_NS;
		coev__spin_lock(&m->lk);
		if (take_or_mark(m)) {
			coev__spin_unlock(&m->lk);
			coev__waiter_abandon(&wt);
			goto taken;
		}
		if (front)
			coev__wq_push_front(&m->q, &n);
		else
			coev__wq_push(&m->q, &n);
		coev__spin_unlock(&m->lk);
		if (!front)
			since = coev__plat_now();
		/* The note's arg: where a dump reads the holder from. */
		r = coev__wq_wait_arg(&m->lk, &m->q, &n, deadline,
				      mutex_withdrawn, m, COEV_WAIT_MUTEX, m,
				      (long long)(uintptr_t)&m->owner);
		if (r == GRANT_LOCK)
			goto taken;
		if (r < 0)
			return r;
		/* GRANT_TRY: compete; if we lose, wait at the front. */
		if (try_take(m))
			goto taken;
		front = true;
	}
taken:
	set_owner(m, self);
	return 0;
}

/* The lock after its first compare-and-swap failed: barge, or detect a
 * relock by the holder, or wait. Out of line, so the fast path keeps a
 * small frame. */
static __attribute__((noinline)) int
lock_contended(struct mutex *m, const void *self, coev_time_t deadline)
{
	if (try_take(m)) {
		set_owner(m, self);
		return 0;
	}
	if (atomic_load_explicit(&m->owner, memory_order_relaxed) == self)
		return -EDEADLK;
	return lock_slow(m, self, deadline);
}

/*
 * The calling thread's worker, read inline (one load at a fixed offset
 * from the thread pointer) rather than through coev__worker_self: the
 * fast paths below never switch coroutines between this read and their
 * last use of it, so no TLS address computed here can outlive a move to
 * another thread (the hazard task.c's out-of-line reader guards against).
 */
static inline struct coev_worker *worker_here(void)
{
	return coev__tls_worker;
}

static inline int lock_fast(coev_mutex_t *pub, coev_time_t deadline)
{
	struct mutex *m = M(pub);
	struct coev_worker *w = worker_here();
	const void *self;
	unsigned s = 0;

	if (!pub)
		return -EINVAL;
	if (w && !w->current)
		return COEV_ENOTCORO; /* a loop callback must not block */
	self = w ? (const void *)w->current : (const void *)&coev__sync_token;
	/* Acquire: as in try_take. */
	if (__builtin_expect(atomic_compare_exchange_strong_explicit(
				     &m->state, &s, M_LOCKED,
				     memory_order_acquire,
				     memory_order_relaxed),
			     1)) {
		set_owner(m, self);
		return 0;
	}
	return lock_contended(m, self, deadline);
}

int coev_mutex_lock_dl(coev_mutex_t *m, coev_time_t deadline)
{
	return lock_fast(m, deadline);
}

int coev_mutex_lock(coev_mutex_t *m)
{
	return lock_fast(m, COEV_FOREVER);
}

int coev_mutex_trylock(coev_mutex_t *pub)
{
	struct mutex *m = M(pub);

	if (!pub)
		return -EINVAL;
	if (!try_take(m))
		return -EBUSY;
	set_owner(m, coev__sync_self());
	return 0;
}

static __attribute__((noinline)) void unlock_slow(struct mutex *m)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	coev__wnode_t *n;
	unsigned s;

	for (;;) {
		coev__spin_lock(&m->lk);
		if ((n = m->q.head) != NULL)
			break;
		/* The waiters withdrew since the unlock looked, so the state
		 * is LOCKED alone (WAITERS changes with the queue, under lk).
		 * Let go of lk first: once m is free, a locker may take it,
		 * unlock it and destroy it at once. Release: as in
		 * coev__mutex_unlock_checked. */
		coev__spin_unlock(&m->lk);
		s = M_LOCKED;
		if (atomic_compare_exchange_strong_explicit(
			    &m->state, &s, 0, memory_order_release,
			    memory_order_relaxed))
			return;
		/* A locker queued meanwhile: serve it. */
	}
	/* LOCKED is set, so no CAS outside lk can change the state: plain
	 * stores suffice. */
	if ((m->flags & COEV_MUTEX_FAIR) || n->arg) {
		coev__wq_grant(&m->q, n, GRANT_LOCK, &wk);
		/* Release, though no acquire reads this value (LOCKED stays
		 * set): the handed-to waiter is ordered after us by its
		 * signal (coev__wq_wake). */
		atomic_store_explicit(
			&m->state,
			M_LOCKED | (coev__wq_empty(&m->q) ? 0 : M_WAITERS),
			memory_order_release);
#if defined(COEV_PLANT_FAIR_TWICE)
		/* Planted bug: the hand-off also frees the word, as the
		 * unfair path does, so a running locker takes the mutex
		 * the waiter was handed. */
		if (m->flags & COEV_MUTEX_FAIR)
			atomic_store_explicit(&m->state,
					      coev__wq_empty(&m->q) ? 0
								    : M_WAITERS,
					      memory_order_release);
#endif
	} else {
		coev__wq_grant(&m->q, n, GRANT_TRY, &wk);
		/* Release: pairs with the acquire CAS of whoever takes m next
		 * (the woken waiter's try_take, or a barger's). */
		atomic_store_explicit(&m->state,
				      coev__wq_empty(&m->q) ? 0 : M_WAITERS,
				      memory_order_release);
	}
	coev__spin_unlock(&m->lk);
	coev__wq_wake(&wk);
}

bool coev__mutex_held(coev_mutex_t *pub)
{
	return atomic_load_explicit(&M(pub)->owner, memory_order_relaxed) ==
	       coev__sync_self();
}

static __attribute__((noinline, cold)) void
unlock_misuse(struct mutex *m, const void *owner, const char *fn)
{
	coev__panic("%s: mutex %p is %s", fn, (void *)m,
		    owner ? "held by another task or thread" : "not locked");
}

void coev__mutex_unlock_checked(coev_mutex_t *pub, const char *fn)
{
	struct mutex *m = M(pub);
	struct coev_worker *w = worker_here();
	coev_task_t *t = w ? w->current : NULL;
	unsigned s = M_LOCKED;
	const void *owner =
		atomic_load_explicit(&m->owner, memory_order_relaxed);

	if (owner != (t ? (const void *)t : (const void *)&coev__sync_token))
		unlock_misuse(m, owner, fn);
	if (t)
		t->locks_held--;
	atomic_store_explicit(&m->owner, NULL, memory_order_relaxed);
	/* Release: pairs with the acquire CAS of the next try_take or
	 * take_or_mark. */
	if (atomic_compare_exchange_strong_explicit(&m->state, &s, 0,
						    memory_order_release,
						    memory_order_relaxed))
		return;
	unlock_slow(m);
}

void coev_mutex_unlock(coev_mutex_t *pub)
{
	coev__mutex_unlock_checked(pub, "coev_mutex_unlock");
}
