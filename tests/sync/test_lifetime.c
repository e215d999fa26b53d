/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_lifetime.c — the lifetime rule of coev/sync.h: an
 * object may be destroyed and its memory reused as soon as its last
 * waiter has returned and no other call on it is in flight, the call that
 * completed the wait counting as finished (a wait group's last done, an
 * event's set, an unlock, once's run). For every kind (wait group, event,
 * once, semaphore, mutex, condition variable, read-write lock, barrier,
 * channel), a waker thread completes objects one after another while a
 * waiter thread polls them in order and gives each up the moment its wait
 * returns: it fills the object with a pattern (and poisons it under ASan)
 * and checks the pattern when the slot is reused, so a write by a waker
 * that is still inside its call shows.
 *
 * Both threads run on one CPU, and a timer interrupts the waker every few
 * microseconds with a signal whose handler gives the CPU up: the waiter
 * then runs while the waker is stopped at an arbitrary instruction of its
 * calls, often between making the completion visible and its last touch
 * of the object (a wait group's count at zero, its spin lock still held).
 * The waiter's polls take a deadline in the past (they only try), and a
 * poll that finds nothing yields the CPU back; nothing sleeps.
 */
#include "tests/testutil.h"
#include "tests/nudge.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#if defined(COEV_ASAN)
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

/* Objects handed to the waker ahead of the waiter. */
#define RING 4096
#define OBJECTS TU_SCALE(400000, 100000, 40000)
#define PATTERN 0xa5
/* The waker's interruptions. */

typedef struct obj {
	coev_mutex_t mu; /* mutex, condition variable */
	union {
		coev_wg_t wg;
		coev_event_t ev;
		coev_once_t once;
		coev_sem_t sem;
		coev_cond_t cv;
		coev_rwlock_t rw;
		coev_barrier_t bar;
	};
	coev_chan_t *ch;
	int refs; /* under mu or rw: parties still to come */
	int flag; /* the condition variable's predicate */
} obj_t;

/* What the waiter keeps about a slot outside the object. */
typedef struct side {
	atomic_int returned; /* the waker's call returned (barrier) */
	int arrived;	     /* the waiter's call returned (barrier) */
} side_t;

typedef struct kind {
	const char *name;
	void (*init)(obj_t *o);
	void (*wake)(obj_t *o, side_t *s); /* the waker's calls */
	/* The waiter's poll: 1 once its wait has returned and the object is
	 * the program's to destroy, else 0. */
	int (*poll)(obj_t *o, side_t *s);
	int div; /* OBJECTS / div of this kind (the slow ones) */
} kind_t;

typedef struct chase {
	const kind_t *k;
	_Atomic(obj_t *) slot[RING];
	side_t side[RING];
	atomic_long published; /* objects the waker may complete */
	long total;
	int cpu; /* both threads' CPU, or -1 */
} chase_t;

/* ---- pinning and giving up ----------------------------------------------- */

static void gone(obj_t *o)
{
	memset(o, PATTERN, sizeof *o);
#if defined(COEV_ASAN)
	__asan_poison_memory_region(o, sizeof *o);
#endif
}

/* The object was given up: nothing may have written to it since. */
static void check_and_free(const chase_t *c, obj_t *o)
{
	const unsigned char *m = (const unsigned char *)o;
	size_t i;

#if defined(COEV_ASAN)
	__asan_unpoison_memory_region(o, sizeof *o);
#endif
	for (i = 0; i < sizeof *o && m[i] == PATTERN; i++)
		;
	TU_CHECK_MSG(i == sizeof *o,
		     "%s: byte %zu written after the last waiter returned",
		     c->k->name, i);
	free(o);
}

/* ---- the two threads ------------------------------------------------------ */

static void *waker_main(void *arg)
{
	chase_t *c = arg;
	timer_t t;
	int nudging;

	pin(c->cpu);
	nudging = nudge_start(&t) == 0;
	for (long i = 0; i < c->total; i++) {
		/* Acquire: pairs with the waiter's release of published. */
		while (atomic_load_explicit(&c->published,
					    memory_order_acquire) <= i)
			sched_yield();
		c->k->wake(atomic_load_explicit(&c->slot[i % RING],
						memory_order_relaxed),
			   &c->side[i % RING]);
	}
	if (nudging)
		timer_delete(t);
	return NULL;
}

/* Fill the slots the waiter has given up with new objects. */
static long refill(chase_t *c, long made, long next)
{
	obj_t *o, *old;

	while (made < c->total && made - next < RING) {
		old = atomic_load_explicit(&c->slot[made % RING],
					   memory_order_relaxed);
		if (old)
			check_and_free(c, old);
		o = calloc(1, sizeof *o);
		TU_CHECK(o != NULL);
		c->k->init(o);
		atomic_init(&c->side[made % RING].returned, 0);
		c->side[made % RING].arrived = 0;
		atomic_store_explicit(&c->slot[made % RING], o,
				      memory_order_relaxed);
		made++;
	}
	/* Release: the objects and their sides, to the waker. */
	atomic_store_explicit(&c->published, made, memory_order_release);
	return made;
}

static void chase(const kind_t *k)
{
	chase_t *c = calloc(1, sizeof *c);
	long made = 0, next = 0;
	pthread_t th;

	assert_non_null(c);
	c->k = k;
	c->total = OBJECTS / k->div;
	c->cpu = one_cpu();
	pin(c->cpu);
	assert_int_equal(pthread_create(&th, NULL, waker_main, c), 0);
	while (next < c->total) {
		if (made - next < RING / 2)
			made = refill(c, made, next);
		obj_t *o = atomic_load_explicit(&c->slot[next % RING],
						memory_order_relaxed);
		if (k->poll(o, &c->side[next % RING])) {
			gone(o);
			next++;
		} else {
			sched_yield();
		}
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	for (long i = 0; i < RING; i++) {
		obj_t *o =
			atomic_load_explicit(&c->slot[i], memory_order_relaxed);
		if (o)
			check_and_free(c, o);
	}
	free(c);
	tu_assert_no_failures();
}

/* ---- the kinds ------------------------------------------------------------ */

static void wg_init(obj_t *o)
{
	coev_wg_init(&o->wg);
	coev_wg_add(&o->wg, 1);
}

static void wg_wake(obj_t *o, side_t *s)
{
	(void)s;
	coev_wg_done(&o->wg);
}

static int wg_poll(obj_t *o, side_t *s)
{
	(void)s;
	return coev_wg_wait_dl(&o->wg, 0) == 0;
}

static void event_init(obj_t *o)
{
	coev_event_init(&o->ev);
}

static void event_wake(obj_t *o, side_t *s)
{
	(void)s;
	coev_event_set(&o->ev);
}

static int event_poll(obj_t *o, side_t *s)
{
	(void)s;
	return coev_event_wait_dl(&o->ev, 0) == 0;
}

static void plain_init(obj_t *o)
{
	(void)o; /* all zero: a new once */
}

static int once_fn(void *arg)
{
	(void)arg;
	return 0;
}

static int once_never(void *arg)
{
	(void)arg;
	TU_CHECK_MSG(0, "once ran its function twice");
	return 0;
}

static void once_wake(obj_t *o, side_t *s)
{
	(void)s;
	TU_CHECK_EQ(coev_once(&o->once, once_fn, NULL), 0);
}

/* The waiter only looks until the waker's run is done, then calls once
 * (which must not run the function again). */
static int once_poll(obj_t *o, side_t *s)
{
	(void)s;
	if (!coev_once_done(&o->once))
		return 0;
	TU_CHECK_EQ(coev_once_dl(&o->once, once_never, NULL, 0), 0);
	return 1;
}

static void sem_init(obj_t *o)
{
	coev_sem_init(&o->sem, 0);
}

static void sem_wake(obj_t *o, side_t *s)
{
	(void)s;
	TU_CHECK_EQ(coev_sem_release(&o->sem), 0);
}

static int sem_poll(obj_t *o, side_t *s)
{
	(void)s;
	return coev_sem_acquire_dl(&o->sem, 0) == 0;
}

/* Mutex: a count of parties under it; the waiter, having seen the waker
 * done, destroys it after its own unlock (POSIX's reference-count
 * example). Its tries with a past deadline queue and withdraw, so the
 * waker's unlock often takes the slow path. */
static void mutex_init(obj_t *o)
{
	coev_mutex_init(&o->mu, 0);
	o->refs = 2;
}

static void mutex_wake(obj_t *o, side_t *s)
{
	(void)s;
	TU_CHECK_EQ(coev_mutex_lock(&o->mu), 0);
	o->refs--;
	coev_mutex_unlock(&o->mu);
}

static int mutex_poll(obj_t *o, side_t *s)
{
	int last;

	(void)s;
	if (coev_mutex_lock_dl(&o->mu, 0) != 0)
		return 0;
	last = o->refs == 1;
	if (last)
		o->refs--;
	coev_mutex_unlock(&o->mu);
	return last;
}

static void cond_init(obj_t *o)
{
	coev_mutex_init(&o->mu, 0);
	coev_cond_init(&o->cv);
}

static void cond_wake(obj_t *o, side_t *s)
{
	(void)s;
	TU_CHECK_EQ(coev_mutex_lock(&o->mu), 0);
	o->flag = 1;
	coev_cond_signal(&o->cv);
	coev_mutex_unlock(&o->mu);
}

static int cond_poll(obj_t *o, side_t *s)
{
	int set;

	(void)s;
	if (coev_mutex_trylock(&o->mu) != 0)
		return 0;
	if (!o->flag)
		(void)coev_cond_wait_dl(&o->cv, &o->mu, 0);
	set = o->flag;
	coev_mutex_unlock(&o->mu);
	return set;
}

static void rw_init(obj_t *o)
{
	coev_rwlock_init(&o->rw);
	o->refs = 2;
}

static void rw_wake(obj_t *o, side_t *s)
{
	(void)s;
	TU_CHECK_EQ(coev_rwlock_wrlock(&o->rw), 0);
	o->refs--;
	coev_rwlock_wrunlock(&o->rw);
}

static int rw_poll(obj_t *o, side_t *s)
{
	int last;

	(void)s;
	if (coev_rwlock_rdlock_dl(&o->rw, 0) != 0)
		return 0;
	last = o->refs == 1;
	coev_rwlock_rdunlock(&o->rw);
	return last;
}

static void barrier_init(obj_t *o)
{
	coev_barrier_init(&o->bar, 2);
}

static void barrier_wake(obj_t *o, side_t *s)
{
	int r = coev_barrier_wait(&o->bar);

	TU_CHECK(r == 0 || r == COEV_BARRIER_SERIAL);
	/* Release: the waiter may give the barrier up once it sees this. */
	atomic_store_explicit(&s->returned, 1, memory_order_release);
}

/* The waiter arrives with a past deadline until it meets the waker. If
 * the waker completed the round, its call counts as finished; if the
 * waiter did, the waker still has to return from its wait. */
static int barrier_poll(obj_t *o, side_t *s)
{
	int r;

	if (!s->arrived) {
		r = coev_barrier_wait_dl(&o->bar, 0);
		if (r == -ETIMEDOUT)
			return 0;
		TU_CHECK(r == 0 || r == COEV_BARRIER_SERIAL);
		s->arrived = 1;
		if (r == 0)
			return 1;
	}
	/* Acquire: pairs with the waker's release. */
	return atomic_load_explicit(&s->returned, memory_order_acquire);
}

static void chan_init(obj_t *o)
{
	assert_int_equal(coev_chan_new(&o->ch, sizeof(int), 1), 0);
}

static void chan_wake(obj_t *o, side_t *s)
{
	int v = 7;

	(void)s;
	TU_CHECK_EQ(coev_chan_send(o->ch, &v), 0);
	TU_CHECK_EQ(coev_chan_close(o->ch), 0);
}

/* The receiver frees the channel once it reads it closed. */
static int chan_poll(obj_t *o, side_t *s)
{
	int v, r;

	(void)s;
	while ((r = coev_chan_recv_dl(o->ch, &v, 0)) == 0)
		TU_CHECK_EQ(v, 7);
	if (r != COEV_ECLOSED)
		return 0;
	coev_chan_free(o->ch);
	return 1;
}

/* ---- tests ---------------------------------------------------------------- */

#define KIND(n, i, w, p, d) static const kind_t n = {#n, i, w, p, d}

KIND(wait_group, wg_init, wg_wake, wg_poll, 1);
KIND(event, event_init, event_wake, event_poll, 1);
KIND(once, plain_init, once_wake, once_poll, 1);
KIND(semaphore, sem_init, sem_wake, sem_poll, 1);
KIND(mutex, mutex_init, mutex_wake, mutex_poll, 1);
KIND(condition, cond_init, cond_wake, cond_poll, 1);
KIND(rwlock, rw_init, rw_wake, rw_poll, 1);
/* A round of the barrier blocks the waker: a round trip per object. */
KIND(barrier, barrier_init, barrier_wake, barrier_poll, 8);
KIND(channel, chan_init, chan_wake, chan_poll, 1);

static void test_lifetime_wg_freed_after_wait(void **state)
{
	(void)state;
	chase(&wait_group);
}

static void test_lifetime_event_freed_after_wait(void **state)
{
	(void)state;
	chase(&event);
}

static void test_lifetime_once_freed_after_done(void **state)
{
	(void)state;
	chase(&once);
}

static void test_lifetime_sem_freed_after_acquire(void **state)
{
	(void)state;
	chase(&semaphore);
}

static void test_lifetime_mutex_freed_after_unlock(void **state)
{
	(void)state;
	chase(&mutex);
}

static void test_lifetime_cond_freed_after_wait(void **state)
{
	(void)state;
	chase(&condition);
}

static void test_lifetime_rwlock_freed_after_unlock(void **state)
{
	(void)state;
	chase(&rwlock);
}

static void test_lifetime_barrier_freed_after_round(void **state)
{
	(void)state;
	chase(&barrier);
}

static void test_lifetime_chan_freed_after_close(void **state)
{
	(void)state;
	chase(&channel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifetime_wg_freed_after_wait),
		cmocka_unit_test(test_lifetime_event_freed_after_wait),
		cmocka_unit_test(test_lifetime_once_freed_after_done),
		cmocka_unit_test(test_lifetime_sem_freed_after_acquire),
		cmocka_unit_test(test_lifetime_mutex_freed_after_unlock),
		cmocka_unit_test(test_lifetime_cond_freed_after_wait),
		cmocka_unit_test(test_lifetime_rwlock_freed_after_unlock),
		cmocka_unit_test(test_lifetime_barrier_freed_after_round),
		cmocka_unit_test(test_lifetime_chan_freed_after_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
