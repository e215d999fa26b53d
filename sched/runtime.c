/* SPDX-License-Identifier: MIT */
/*
 * sched/runtime.c — configuration, starting and stopping a runtime, and
 * coev_run.
 *
 * Start: every worker is allocated and its loop created before any thread
 * starts, so a failure part-way frees what was made and returns an error
 * with nothing left behind. Stop (coev_rt_shutdown): spawns are refused
 * (closed), the caller waits on live_cv until no task is live or the
 * deadline passes, then stop is set and every doorbell rung; each worker
 * leaves its loop at the top of its next iteration. shutdown_mu makes
 * that one shutdown: a second caller, at once or later, waits for it and
 * returns its count (the workers are joined once). Tasks still queued or
 * parked are not resumed again: whoever waits for their end is released
 * with -ESHUTDOWN (sched/join.c), and coev_rt_free() releases their
 * stacks and blocks through the per-worker registries once the plain
 * threads so released have left their calls.
 */
#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched.h"

/* Parse an unsigned size with an optional k/m/g suffix. */
static int parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case 'k':
		shift = 10;
		end++;
		break;
	case 'm':
		shift = 20;
		end++;
		break;
	case 'g':
		shift = 30;
		end++;
		break;
	default: break;
	}
	if (v > (ULLONG_MAX >> shift))
		return -ERANGE;
	v <<= shift;
	if (*end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* Environment variable name as a number in [lo, hi] into *v: 1 when set
 * and valid, 0 when unset, -EINVAL when malformed or out of range (*v then
 * untouched, so the field keeps its default). */
static int env_size(const char *name, unsigned long long lo,
		    unsigned long long hi, unsigned long long *v)
{
	const char *e = getenv(name);
	unsigned long long x;

	if (!e)
		return 0;
	if (parse_size(e, &x) != 0 || x < lo || x > hi)
		return -EINVAL;
	*v = x;
	return 1;
}

/* Environment variable name as "0" or "1": bit set in *flags for "1";
 * 1 when set (either value), -EINVAL for anything else, 0 when unset. */
static int env_flag(const char *name, unsigned bit, unsigned *flags)
{
	const char *e = getenv(name);

	if (!e)
		return 0;
	if (strcmp(e, "0") != 0 && strcmp(e, "1") != 0)
		return -EINVAL;
	if (*e == '1')
		*flags |= bit;
	return 1;
}

/* Fold one env_size/env_flag answer k into *r: a bad variable makes it
 * -EINVAL, and the others still apply. True when k carries a value. */
static bool env_ok(int *r, int k)
{
	if (k < 0)
		*r = k;
	return k > 0;
}

int coev_config_init(coev_config_t *cfg)
{
	const char *e;
	unsigned long long v;
	unsigned flag = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int r = 0, k;

	if (!cfg)
		return -EINVAL;
	memset(cfg, 0, sizeof *cfg);
	cfg->workers = cpus > 0 ? (unsigned)cpus : 1;
	if (cfg->workers > COEV_WORKERS_MAX)
		cfg->workers = COEV_WORKERS_MAX;
	cfg->stack_size = COEV_STACK_DEFAULT;
	cfg->shutdown_timeout = COEV_SEC(5);
	cfg->blocking_max = COEV_BLOCKING_DEFAULT;
	cfg->blocking_idle = COEV_SEC(10);
	cfg->slow_task = COEV_MSEC(100);
	cfg->report_unjoined = 1;
	k = env_size("COEV_BLOCKING_THREADS", 1, COEV_BLOCKING_MAX, &v);
	if (env_ok(&r, k))
		cfg->blocking_max = (unsigned)v;
	k = env_size("COEV_WORKERS", 1, COEV_WORKERS_MAX, &v);
	if (env_ok(&r, k))
		cfg->workers = (unsigned)v;
	k = env_flag("COEV_DEBUG_MIGRATE", COEV_DEBUG_MIGRATE, &cfg->debug);
	env_ok(&r, k);
	k = env_flag("COEV_DEBUG", COEV_DEBUG_CHECKS, &cfg->debug);
	env_ok(&r, k);
	k = env_size("COEV_SLOW_TASK_MS", 1, 3600000, &v);
	if (env_ok(&r, k))
		cfg->slow_task = COEV_MSEC((coev_time_t)v);
	if ((e = getenv("COEV_TRACE")) != NULL && *e)
		cfg->trace = e;
	k = env_size("COEV_TRACE_EVENTS", COEV_TRACE_EVENTS_MIN,
		     COEV_TRACE_EVENTS_MAX, &v);
	if (env_ok(&r, k))
		cfg->trace_events = (size_t)v;
	k = env_size("COEV_STACK_SIZE", COEV_STACK_MIN, COEV_STACK_MAX, &v);
	if (env_ok(&r, k))
		cfg->stack_size = (size_t)v;
	k = env_flag("COEV_UNJOINED", 1, &flag);
	if (env_ok(&r, k))
		cfg->report_unjoined = (int)flag;
	return r;
}

static void worker_free(struct coev_worker *w)
{
	if (!w)
		return;
	coev__worker_run_posts(w, false);
	coev__stack_pool_free(w);
	coev__stack_altstack_free(w);
	coev__plat_loop_destroy(w);
	pthread_mutex_destroy(&w->inbox.mu);
	free(w->live_ends);
	free(w);
}

static int worker_new(struct coev_rt *rt, unsigned i, struct coev_worker **out)
{
	struct coev_worker *w = aligned_alloc(
		COEV_CACHELINE, (sizeof *w + COEV_CACHELINE - 1) &
					~(size_t)(COEV_CACHELINE - 1));
	int r;

	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof *w);
	ck_ring_init(&w->ring, COEV_RUNQ_SIZE);
	w->rt = rt;
	w->index = i;
	w->debug = COEV__DEBUG(rt);
	w->rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ (uint64_t)coev__plat_now();
	if (!w->rng)
		w->rng = 1;
	pthread_mutex_init(&w->inbox.mu, NULL);
	w->live_ends = calloc(rt->nworkers, sizeof *w->live_ends);
	r = w->live_ends ? coev__plat_loop_init(w) : -ENOMEM;
	if (r == 0)
		r = coev__stack_altstack_new(w);
	if (r < 0) {
		worker_free(w);
		return r;
	}
	*out = w;
	return 0;
}

static void rt_release(struct coev_rt *rt)
{
	/* Pool threads first: a job ending now still wakes its task through
	 * a worker's loop. */
	coev__pool_fini(rt);
	coev__task_free_all(rt);
	coev__trace_free(rt);
	for (unsigned i = 0; i < rt->nworkers; i++)
		worker_free(rt->workers[i]);
	coev__stack_arenas_free(rt);
	pthread_mutex_destroy(&rt->inject.mu);
	pthread_mutex_destroy(&rt->idle_mu);
	pthread_mutex_destroy(&rt->live_mu);
	pthread_mutex_destroy(&rt->shutdown_mu);
	pthread_mutex_destroy(&rt->arena_mu);
	pthread_mutex_destroy(&rt->stack_mu);
	pthread_mutex_destroy(&rt->block_mu);
	pthread_cond_destroy(&rt->live_cv);
	free(rt->workers);
	free(rt->sleepers);
	free(rt->trace_path);
	free(rt);
}

static void stop_workers(struct coev_rt *rt, unsigned started)
{
	coev__monitor_stop(rt);
	/* Release: pairs with the acquire loads of stop in
	 * coev__worker_main and park_worker (worker.c) and in submit_post
	 * (bridge/affinity.c): who sees stop sees what came before it (the
	 * monitor stopped, every task cancelled). The doorbells below wake
	 * the workers that sleep. */
	atomic_store_explicit(&rt->stop, true, memory_order_release);
	for (unsigned i = 0; i < started; i++)
		coev__plat_unpark(rt->workers[i]);
	for (unsigned i = 0; i < started; i++)
		coev__plat_thread_join(rt->workers[i]->thread);
}

static int rt_alloc(const coev_config_t *cfg, struct coev_rt **out)
{
	size_t page = coev__page_size();
	struct coev_rt *rt = calloc(1, sizeof *rt);
	pthread_condattr_t ca;

	if (!rt)
		return -ENOMEM;
	rt->nworkers = cfg->workers;
	rt->debug = cfg->debug;
	rt->started = coev__plat_now();
	rt->started_coarse = coev__plat_coarse_now();
	rt->slow_ns = cfg->slow_task > 0 ? cfg->slow_task : COEV_MSEC(100);
	rt->unjoined = cfg->report_unjoined || (cfg->debug & COEV_DEBUG_CHECKS);
	rt->log = cfg->log ? cfg->log : coev__log_stderr;
	rt->log_arg = cfg->log_arg;
	rt->trace_events = cfg->trace_events ? cfg->trace_events : 262144;
	rt->migrate = (cfg->debug & COEV_DEBUG_MIGRATE) && cfg->workers > 1;
	rt->stack_size = (cfg->stack_size + page - 1) & ~(page - 1);
	rt->shutdown_timeout = cfg->shutdown_timeout;
	rt->shutdown_left = -1;
	pthread_mutex_init(&rt->inject.mu, NULL);
	pthread_mutex_init(&rt->idle_mu, NULL);
	pthread_mutex_init(&rt->live_mu, NULL);
	pthread_mutex_init(&rt->shutdown_mu, NULL);
	pthread_mutex_init(&rt->arena_mu, NULL);
	pthread_mutex_init(&rt->stack_mu, NULL);
	pthread_mutex_init(&rt->block_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->live_cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&rt->idle_state, (uint_fast64_t)cfg->workers << 32);
	coev__pool_init(rt, cfg->blocking_max, cfg->blocking_idle);
	rt->workers = calloc(cfg->workers, sizeof *rt->workers);
	rt->sleepers = calloc(cfg->workers, sizeof *rt->sleepers);
	if (cfg->trace)
		rt->trace_path = strdup(cfg->trace);
	if (!rt->workers || !rt->sleepers || (cfg->trace && !rt->trace_path)) {
		rt->nworkers = 0; /* no worker to release */
		rt_release(rt);
		return -ENOMEM;
	}
	*out = rt;
	return 0;
}

/* A write to a closed socket or pipe should fail with EPIPE, not kill the
 * process: ignore SIGPIPE unless the program chose a disposition itself
 * (Rust's and Go's runtimes do the same). */
static void ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
	    !(sa.sa_flags & SA_SIGINFO)) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

int coev_rt_new(const coev_config_t *cfg, coev_rt_t **out)
{
	coev_config_t def;
	struct coev_rt *rt;
	unsigned i;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg) {
		coev_config_init(&def);
		cfg = &def;
	}
	if (cfg->workers < 1 || cfg->workers > COEV_WORKERS_MAX ||
	    cfg->stack_size < COEV_STACK_MIN ||
	    cfg->stack_size > COEV_STACK_MAX || cfg->shutdown_timeout < 0 ||
	    cfg->blocking_max < 1 || cfg->blocking_max > COEV_BLOCKING_MAX ||
	    cfg->blocking_idle < 0 || cfg->slow_task < 0 ||
	    (cfg->trace_events &&
	     (cfg->trace_events < COEV_TRACE_EVENTS_MIN ||
	      cfg->trace_events > COEV_TRACE_EVENTS_MAX)) ||
	    (cfg->debug & ~(COEV_DEBUG_MIGRATE | COEV_DEBUG_CHECKS)))
		return -EINVAL;
	ignore_sigpipe();
	/* Before any worker starts: they read coev__plat_fence_cheap. */
	coev__plat_fence_init();
	if ((r = rt_alloc(cfg, &rt)) < 0)
		return r;
	for (i = 0; i < rt->nworkers; i++) {
		if ((r = worker_new(rt, i, &rt->workers[i])) < 0) {
			rt->nworkers = i; /* only these were made */
			rt_release(rt);
			return r;
		}
	}
	/* Both before the workers start: they read w->trace and w->bt. */
	if ((r = coev__trace_init(rt)) < 0 ||
	    (r = coev__monitor_start(rt)) < 0) {
		rt_release(rt);
		return r;
	}
	for (i = 0; i < rt->nworkers; i++) {
		r = coev__plat_thread_start(&rt->workers[i]->thread,
					    coev__worker_main, rt->workers[i]);
		if (r < 0) {
			stop_workers(rt, i);
			rt_release(rt);
			return r;
		}
	}
	*out = rt;
	return 0;
}

static bool on_worker_of(const struct coev_rt *rt)
{
	struct coev_worker *w = coev__worker_self();
	return w && w->rt == rt;
}

/* Wait until no task of rt is live or the deadline passes; returns the
 * count that ended the wait. A 0 is exact (see coev__live_count), where a
 * count read later could hold a refused spawn's brief +1. */
static long wait_live(struct coev_rt *rt, coev_time_t deadline)
{
	struct timespec ts;
	long n;

	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	pthread_mutex_lock(&rt->live_mu);
	/* The increment of live_waiters before the loads of the counts in
	 * coev__live_count, against a task's end (or the undo of a refused
	 * spawn's count) storing its count before it loads live_waiters
	 * (sched.h: coev__live_end): either we count the end or it sees us waiting
	 * and broadcasts under live_mu, which we hold until the wait
	 * releases it. The heavy fence is our half of that store-load order
	 * (the workers' half is a light fence: sched/platform.h); seq_cst
	 * RMWs are the half of the non-workers' count, live_ext. */
	atomic_fetch_add_explicit(&rt->live_waiters, 1, memory_order_seq_cst);
	coev__plat_fence_heavy();
	while ((n = coev__live_count(rt)) > 0 && coev__plat_now() < deadline) {
		if (deadline == COEV_FOREVER)
			pthread_cond_wait(&rt->live_cv, &rt->live_mu);
		else
			pthread_cond_timedwait(&rt->live_cv, &rt->live_mu, &ts);
	}
	/* seq_cst, like the increment; no store-load order rests on it: an
	 * end that still sees us waiting only takes live_mu and broadcasts
	 * to nobody. */
	atomic_fetch_sub_explicit(&rt->live_waiters, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&rt->live_mu);
	return n;
}

int coev_rt_shutdown(coev_rt_t *rt, coev_time_t deadline)
{
	int left;

	if (!rt)
		return -EINVAL;
	/* A worker must not block, and a job of rt's blocking pool would
	 * wait for its own task, which waits for the job. */
	if (on_worker_of(rt) || coev__worker_self() || coev__pool_thread_of(rt))
		return COEV_ENOTRT;
	/* One shutdown: a caller that comes while another thread shuts
	 * down waits for it (its workers must be stopped and joined once)
	 * and returns the same count. */
	pthread_mutex_lock(&rt->shutdown_mu);
	if (rt->shutdown_left >= 0) {
		left = rt->shutdown_left;
		pthread_mutex_unlock(&rt->shutdown_mu);
		return left;
	}
	/* The store of closed before the loads of the counts in
	 * coev__live_count (wait_live) and before cancel_all's walk, against
	 * coev__task_spawn's count of a spawn before its load of closed
	 * (task.c): one of them sees the other, so no spawn slips past the
	 * count, and a spawn that does not see closed was counted and
	 * published before the walk (or its first run sees closed). seq_cst
	 * and the heavy fence: the store half of that order against the
	 * workers' light fence (sched/platform.h) and the non-workers'
	 * seq_cst RMW of live_ext. */
	atomic_store_explicit(&rt->closed, true, memory_order_seq_cst);
	coev__plat_fence_heavy();
	if (COEV__DEBUG(rt))
		coev__debug_shutdown_begin(rt);
	/* Every live task now is cancelled; one whose spawn raced with the
	 * store above and was published after this walk has not
	 * run yet, and its first run sees closed and cancels it (task.c). */
	coev__cancel_all(rt);
	left = rt->shutdown_left = (int)wait_live(rt, deadline);
	if (left > 0 && COEV__DEBUG(rt))
		coev__debug_shutdown_left(rt, left);
	stop_workers(rt, rt->nworkers);
	/* The count at the deadline may hold tasks that ended before their
	 * workers stopped, and a refused spawn's brief +1 (wait_live): count
	 * again now that the workers' counters are final, so the answer is
	 * the tasks abandoned. */
	if (left > 0)
		left = rt->shutdown_left = (int)coev__live_count(rt);
	/* No task runs again: whoever waits for the end of one that has not
	 * ended is released (join.c). */
	if (left > 0)
		coev__join_abandon_all(rt);
	coev__trace_flush(rt);
	pthread_mutex_unlock(&rt->shutdown_mu);
	return left;
}

void coev_rt_free(coev_rt_t *rt)
{
	if (!rt)
		return;
	if (coev__worker_self())
		coev__panic("coev_rt_free called from a worker thread; free a "
			    "runtime from outside every runtime");
	if (coev__pool_thread_of(rt))
		coev__panic("coev_rt_free called from a coev_blocking job of "
			    "that runtime (its blocking pool waits for every "
			    "job to end); free a runtime from outside it");
	coev_rt_shutdown(rt, coev__plat_now()); /* at once if done before */
	/* Plain threads the shutdown released, or woke as their task ended,
	 * may still be on their way out of a join. */
	coev__join_drain(rt);
	rt_release(rt);
}

int coev_run(coev_fn main, void *arg, const coev_config_t *cfg)
{
	coev_rt_t *rt;
	coev_task_t *t;
	int r, ret = 0, left;

	if (!main)
		return -EINVAL;
	if (coev__worker_self())
		return COEV_ENOTRT;
	if ((r = coev_rt_new(cfg, &rt)) < 0)
		return r;
	r = coev_rt_spawn(rt, "main", main, arg, &t);
	if (r == 0)
		r = coev_join(t, &ret);
	left = coev_rt_shutdown(rt, coev_deadline(rt->shutdown_timeout));
	if (left > 0)
		fprintf(stderr,
			"coev_run: %d task%s still unfinished %.1f s after "
			"main returned and they were cancelled; abandoned\n",
			left, left == 1 ? "" : "s",
			(double)rt->shutdown_timeout / 1e9);
	coev_rt_free(rt);
	return r < 0 ? r : ret;
}

unsigned coev_rt_workers(const coev_rt_t *rt)
{
	return rt ? rt->nworkers : 0;
}
