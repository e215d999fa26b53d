/* SPDX-License-Identifier: MIT */
/*
 * sched/pool.c — the blocking pool (coev_blocking).
 *
 * Model: libuv's threadpool and tokio's blocking pool, sized on demand. A
 * job lives in the frame of the task that waits for it; the pool keeps a
 * FIFO of queued jobs and a set of threads under one mutex:
 *
 *   submit: queue the job; wake an idle thread if there is one, else start
 *           a thread if fewer than max run (a job never waits behind a
 *           running job while the pool may grow);
 *   thread: take the oldest job (QUEUED -> RUNNING under the mutex), run
 *           it unlocked, signal its waiter; with nothing to do, wait
 *           idle_ns for work and end if none came;
 *   cancel: the waiting task, cut short by its deadline or a cancel,
 *           takes the mutex: a job still QUEUED is unlinked and never runs;
 *           a RUNNING one is waited for (coev__waiter_settle), since its
 *           frame holds the job and whatever the job reads and writes.
 *
 * Abandonable jobs (coev__blocking_abandonable, for coev_resolve's
 * getaddrinfo): a call whose deadline must bound it even while its job
 * runs. The job and its argument are on the heap and have two owners, the
 * waiter and the pool thread running it; the mutex decides which one
 * frees them. A waiter that gives up on a RUNNING job marks it abandoned
 * under the mutex and returns at once (it will get no signal, so it drops
 * the task reference held for one); the pool thread, taking the mutex
 * when fn returns, finds the mark and frees the job and its result
 * (release) instead of signalling. Without the mark it sets DONE and
 * signals, and a waiter that gives up after that waits for the signal on
 * its way (settle, microseconds) and takes the result. Rejected: an
 * atomic reference count (both sides take the mutex already, and the
 * mark must be read together with the state); making coev_blocking itself
 * abandonable (its jobs may point into the caller's frame, as its header
 * promises).
 *
 * Threads that end cannot join themselves: each leaves its record on the
 * `ended` list, and the next submit (or fini) joins it, so no thread is
 * ever leaked, and fini waits for every thread, running jobs included.
 * Rejected: detached threads (fini could not know when the last one
 * stopped touching the pool); a fixed-size pool (four sleeping jobs would
 * then block a fifth that only needs a thread).
 *
 * A job may not shut down or free its own runtime: fini would wait for the
 * job's own thread, and a shutdown for the job's task, which waits for the
 * job. Each pool thread notes its pool (coev__tls_pool), and runtime.c
 * refuses both calls there (coev__pool_thread_of).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sched.h"

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct coev__job {
	coev_fn fn;
	void *arg;
	void (*release)(void *arg); /* abandonable jobs: frees arg; else NULL */
	int result;		/* written by the pool thread before signal */
	int state;		/* [pool mu] */
	bool abandoned;		/* [pool mu] the waiter left a RUNNING job */
	coev__waiter_t wt;	/* the waiting task */
	struct coev__job *next; /* [pool mu] */
};

struct coev__pool_thread {
	coev__thread_t th;
	coev__pool_t *pool;
	struct coev__pool_thread *next; /* [pool mu] on `ended` */
};

__thread coev__pool_t *coev__tls_pool;

bool coev__pool_thread_of(struct coev_rt *rt)
{
	return coev__tls_pool == &rt->pool;
}

void coev__pool_init(struct coev_rt *rt, unsigned max, coev_time_t idle)
{
	coev__pool_t *p = &rt->pool;
	pthread_condattr_t ca;

	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->gone, NULL);
	p->max = max;
	p->idle_ns = idle;
}

/* Join the threads that ended. Called with p->mu held; drops it while
 * joining. */
static void reap(coev__pool_t *p)
{
	struct coev__pool_thread *e = p->ended, *next;

	if (!e)
		return;
	p->ended = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; e; e = next) {
		next = e->next;
		coev__plat_thread_join(e->th);
		free(e);
	}
	pthread_mutex_lock(&p->mu);
}

void coev__pool_fini(struct coev_rt *rt)
{
	coev__pool_t *p = &rt->pool;

	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	while (p->threads > 0)
		pthread_cond_wait(&p->gone, &p->mu);
	reap(p);
	pthread_mutex_unlock(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->gone);
	pthread_mutex_destroy(&p->mu);
}

static struct coev__job *job_pop(coev__pool_t *p)
{
	struct coev__job *j = p->head;

	if (j) {
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		j->state = JOB_RUNNING;
	}
	return j;
}

/* Job j has run: signal its waiter, or free it when its waiter abandoned
 * it. Called with p->mu held; drops it meanwhile. */
static void job_done(coev__pool_t *p, struct coev__job *j)
{
	bool abandoned = j->abandoned;

	j->state = JOB_DONE;
	pthread_mutex_unlock(&p->mu);
	if (abandoned) {
		j->release(j->arg);
		free(j);
	} else {
		coev__waiter_signal(&j->wt, COEV_SIG_WAKE);
	}
	pthread_mutex_lock(&p->mu);
}

static void *pool_thread(void *arg)
{
	struct coev__pool_thread *self = arg;
	coev__pool_t *p = self->pool;
	struct coev__job *j;
	struct timespec ts;
	coev_time_t until;

	coev__tls_pool = p;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if ((j = job_pop(p)) != NULL) {
			pthread_mutex_unlock(&p->mu);
			j->result = j->fn(j->arg);
			atomic_fetch_add_explicit(&p->jobs_run, 1,
						  memory_order_relaxed);
			pthread_mutex_lock(&p->mu);
			job_done(p, j);
			continue;
		}
		if (p->stop)
			break;
		/* Saturating: blocking_idle may be COEV_FOREVER. */
		until = coev__plat_now();
		until = p->idle_ns > COEV_FOREVER - until ? COEV_FOREVER
							  : until + p->idle_ns;
		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		p->idle++;
		if (until == COEV_FOREVER)
			pthread_cond_wait(&p->work, &p->mu);
		else
			pthread_cond_timedwait(&p->work, &p->mu, &ts);
		p->idle--;
#if defined(COEV_PLANT_POOL_IDLE_EXIT)
		/* Planted bug: the idle thread ends on its timeout without
		 * looking at the queue again, though a submit that counted
		 * it idle queued a job and woke it instead of starting a
		 * thread. */
		if (!p->stop && coev__plat_now() >= until)
			break;
#else
		if (!p->head && !p->stop && coev__plat_now() >= until)
			break; /* idle for idle_ns: end */
#endif
	}
	p->threads--;
	self->next = p->ended;
	p->ended = self;
	if (p->threads == 0)
		pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Take queued job j out of the queue. Called with p->mu held. */
static void job_unlink(coev__pool_t *p, struct coev__job *j)
{
	struct coev__job **pp = &p->head, *prev = NULL;

	while (*pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = j->next;
	if (p->tail == j)
		p->tail = prev;
}

/* Queue j and make sure a thread will take it. Called with p->mu held. */
static int submit(coev__pool_t *p, struct coev__job *j)
{
	struct coev__pool_thread *th;
	unsigned queued = 0;
	int r;

	if (p->stop)
		return -ESHUTDOWN;
	j->state = JOB_QUEUED;
	j->next = NULL;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	for (struct coev__job *q = p->head; q && queued <= p->idle; q = q->next)
		queued++;
	if (queued <= p->idle) {
		pthread_cond_signal(&p->work);
		return 0;
	}
	if (p->threads >= p->max)
		return 0; /* it waits its turn */
	if ((th = malloc(sizeof *th)) != NULL) {
		th->pool = p;
		r = coev__plat_thread_start(&th->th, pool_thread, th);
	} else {
		r = -ENOMEM;
	}
	if (r == 0) {
		p->threads++;
		return 0;
	}
	free(th);
	if (p->threads > 0)
		return 0; /* a running thread will take it later */
	/* Nobody will ever take it: take it back. */
	job_unlink(p, j);
	return r == -ENOMEM ? -ENOMEM : -EAGAIN;
}

/* j's waiter gave up (r: why). A QUEUED job is unlinked: it never runs.
 * A RUNNING abandonable job is left to the pool thread (*kept). Otherwise
 * j's signal is on its way (a frame job running, or any job done): wait
 * for it, and j has run (0). */
static int job_give_up(coev__pool_t *p, struct coev__job *j, coev_task_t *self,
		       int r, bool *kept)
{
	pthread_mutex_lock(&p->mu);
	if (j->state == JOB_QUEUED || (j->state == JOB_RUNNING && j->release)) {
		if (j->state == JOB_QUEUED)
			job_unlink(p, j);
		else
			*kept = j->abandoned = true;
		pthread_mutex_unlock(&p->mu);
		coev__task_release(self); /* no signal will come */
		return r;
	}
	pthread_mutex_unlock(&p->mu);
	coev__waiter_settle(&j->wt, 1);
	return 0;
}

/* Queue j for self and wait for it until deadline: 0 once it has run
 * (j->result), or why not. *kept: the pool thread now owns j. */
static int job_wait(coev_task_t *self, struct coev__job *j,
		    coev_time_t deadline, bool *kept)
{
	coev__pool_t *p = &self->rt->pool;
	int r;

	*kept = false;
	j->abandoned = false;
	coev__waiter_init(&j->wt, self);
	coev__task_ref(self); /* held for the pool thread's signal */
	pthread_mutex_lock(&p->mu);
	reap(p);
	r = submit(p, j);
	pthread_mutex_unlock(&p->mu);
	if (r < 0) {
		coev__task_release(self);
		return r;
	}
	r = coev__waiter_wait_on(&j->wt, deadline, COEV_WAIT_BLOCKING, j->fn,
				 0);
	return r < 0 ? job_give_up(p, j, self, r, kept) : 0;
}

/* The calling task, or the reason a pool call cannot wait: 1 on a plain
 * thread (run fn there), COEV_ENOTCORO in a loop callback, or its
 * cancellation. */
static int pool_caller(coev_task_t **self)
{
	struct coev_worker *w = coev__worker_self();

	*self = w ? w->current : NULL;
	if (!w)
		return 1;
	if (!*self)
		return COEV_ENOTCORO;
	return coev__cancel_check(*self);
}

int coev_blocking(coev_fn fn, void *arg, coev_time_t deadline, int *ret)
{
	coev_task_t *self;
	struct coev__job j;
	bool kept;
	int r;

	if (!fn)
		return -EINVAL;
	if ((r = pool_caller(&self)) == 1) { /* a plain thread may block */
		r = fn(arg);
		if (ret)
			*ret = r;
		return 0;
	}
	if (r != 0)
		return r;
	j.fn = fn;
	j.arg = arg;
	j.release = NULL;
	if ((r = job_wait(self, &j, deadline, &kept)) < 0)
		return r;
	if (ret)
		*ret = j.result;
	return 0;
}

int coev__blocking_abandonable(coev_fn fn, void *arg,
			       void (*release)(void *arg), coev_time_t deadline,
			       int *ret)
{
	coev_task_t *self;
	struct coev__job *j = NULL;
	bool kept = false;
	int r;

	if ((r = pool_caller(&self)) == 1) {
		r = fn(arg);
		if (ret)
			*ret = r;
		return 0;
	}
	if (r == 0 && !(j = malloc(sizeof *j)))
		r = -ENOMEM;
	if (r == 0) {
		j->fn = fn;
		j->arg = arg;
		j->release = release;
		r = job_wait(self, j, deadline, &kept);
	}
	if (r == 0 && ret)
		*ret = j->result;
	if (!kept)
		free(j);
	if (r < 0 && !kept)
		release(arg);
	return r;
}

size_t coev__pool_queued(const coev__pool_t *p)
{
	size_t n = 0;

	for (const struct coev__job *j = p->head; j; j = j->next)
		n++;
	return n;
}
