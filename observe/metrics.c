/* SPDX-License-Identifier: MIT */
/*
 * observe/metrics.c — runtime metrics: per-worker counters, totals, and the
 * Prometheus text format.
 *
 * Every counter has one writer, its worker (COEV_STAT_ADD: a relaxed load
 * and store, no locked instruction on the hot paths), so readers get each
 * counter exact and the set not one instant, as tokio's RuntimeMetrics. The
 * gauges (queue depths, armed timers and fds) are read the same way. Busy
 * time is derived, not counted: time since start minus time asleep, with a
 * sleep in progress counted up to now, so no clock is read per task run.
 * The Prometheus text is rendered into the caller's buffer, snprintf-style,
 * so a scrape handler needs no allocation and can retry with the size it
 * was told.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sched/internal.h"

#define LOAD(w, f) atomic_load_explicit(&(w)->st.f, memory_order_relaxed)

static uint64_t idle_now(const struct coev_worker *w, coev_time_t now)
{
	uint64_t idle = LOAD(w, idle_ns);
	coev_time_t since = atomic_load_explicit(
		&((struct coev_worker *)w)->park_start, memory_order_relaxed);

	if (since && now > since)
		idle += (uint64_t)(now - since);
	return idle;
}

int coev_rt_worker_stats(const coev_rt_t *rt, unsigned i,
			 coev_worker_stats_t *st)
{
	struct coev_worker *w;
	coev_time_t now = coev__plat_now();
	uint64_t up;

	if (!rt || !st || i >= rt->nworkers)
		return -EINVAL;
	w = rt->workers[i];
	memset(st, 0, sizeof *st);
	st->polls = LOAD(w, polls);
	st->spawned = LOAD(w, spawned);
	st->finished = LOAD(w, finished);
	st->stolen = LOAD(w, stolen);
	st->steal_ops = LOAD(w, steal_ops);
	st->parks = LOAD(w, parks);
	st->unparks = LOAD(w, unparks);
	st->inject_pops = LOAD(w, inject_pops);
	st->stacks_mapped = LOAD(w, stacks_mapped);
	st->task_chunks = LOAD(w, task_chunks);
	st->stacks_pooled =
		atomic_load_explicit(&w->stack_pool_len, memory_order_relaxed);
	st->stacks_unguarded = LOAD(w, stacks_unguarded);
	st->idle_ns = idle_now(w, now);
	up = (uint64_t)(now - rt->started);
	st->busy_ns = up > st->idle_ns ? up - st->idle_ns : 0;
	coev__worker_depths(w, &st->local_depth, &st->lifo, &st->inbox_depth);
	st->timers = LOAD(w, timers);
	st->fds = LOAD(w, ios);
	st->alive = coev__live_share((struct coev_rt *)rt, i);
	return 0;
}

int coev_rt_stats(const coev_rt_t *rt, coev_rt_stats_t *st)
{
	coev__pool_t *p;

	if (!rt || !st)
		return -EINVAL;
	memset(st, 0, sizeof *st);
	st->workers = rt->nworkers;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		coev_worker_stats_t w;

		coev_rt_worker_stats(rt, i, &w);
		st->spawned += w.spawned;
		st->finished += w.finished;
		st->polls += w.polls;
		st->stolen += w.stolen;
		st->steal_ops += w.steal_ops;
		st->parks += w.parks;
		st->unparks += w.unparks;
		st->inject_pops += w.inject_pops;
		st->local_depth += w.local_depth;
		st->lifo += w.lifo;
		st->inbox_depth += w.inbox_depth;
		st->busy_ns += w.busy_ns;
		st->idle_ns += w.idle_ns;
		st->timers += w.timers;
		st->fds += w.fds;
	}
	/* Spawns from outside the workers count in live_ext only. */
	st->alive = coev__live_count((struct coev_rt *)rt);
	st->inject_depth =
		atomic_load_explicit(&rt->inject.len, memory_order_relaxed);
	st->stuck_kicks = atomic_load_explicit(
		&((struct coev_rt *)rt)->stuck_kicks, memory_order_relaxed);
	p = (coev__pool_t *)&rt->pool;
	pthread_mutex_lock(&p->mu);
	st->blocking_threads = p->threads;
	st->blocking_idle = p->idle;
	st->blocking_queued = coev__pool_queued(p);
	pthread_mutex_unlock(&p->mu);
	st->blocking_run =
		atomic_load_explicit(&p->jobs_run, memory_order_relaxed);
	return 0;
}

/* --- Prometheus ---------------------------------------------------------- */

typedef struct out {
	char *buf;
	size_t len, n; /* n: bytes the whole text needs */
} out_t;

__attribute__((format(printf, 2, 3))) static void emit(out_t *o,
						       const char *fmt, ...)
{
	va_list ap;
	size_t room = o->n < o->len ? o->len - o->n : 0;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->n += (size_t)k;
}

static void head(out_t *o, const char *name, const char *type, const char *help)
{
	emit(o, "# HELP coev_%s %s\n# TYPE coev_%s %s\n", name, help, name,
	     type);
}

/* One per-worker series: the field at offset off of coev_worker_stats_t. */
static void per_worker(out_t *o, const coev_worker_stats_t *ws, unsigned n,
		       const char *name, const char *type, const char *help,
		       size_t off, double scale)
{
	head(o, name, type, help);
	for (unsigned i = 0; i < n; i++) {
		const char *p = (const char *)&ws[i] + off;
		double v = off == offsetof(coev_worker_stats_t, alive)
				   ? (double)*(const long *)(const void *)p
				   : (double)*(const uint64_t *)(const void *)p;

		emit(o, "coev_%s{worker=\"%u\"} %.17g\n", name, i, v * scale);
	}
}

/* The per-worker series, from coev_worker_stats_t. */
static const struct series {
	const char *name, *type, *help;
	size_t off;
	double scale;
} series[] = {
#define S(name, type, help, field, scale)                                     \
	{                                                                     \
		name, type, help, offsetof(coev_worker_stats_t, field), scale \
	}
	S("tasks_spawned_total", "counter",
	  "Tasks spawned by tasks on this worker.", spawned, 1),
	S("tasks_finished_total", "counter", "Tasks that ended on this worker.",
	  finished, 1),
	S("polls_total", "counter", "Task runs (resumptions) on this worker.",
	  polls, 1),
	S("steals_total", "counter", "Tasks this worker stole from others.",
	  stolen, 1),
	S("steal_operations_total", "counter",
	  "Successful steal operations by this worker.", steal_ops, 1),
	S("parks_total", "counter", "Times this worker slept in its loop.",
	  parks, 1),
	S("unparks_total", "counter",
	  "Sleeps of this worker ended by another thread's wake.", unparks, 1),
	S("inject_pops_total", "counter",
	  "Tasks this worker took from the inject queue.", inject_pops, 1),
	S("local_queue_depth", "gauge", "Tasks in this worker's ring now.",
	  local_depth, 1),
	S("lifo_slot_depth", "gauge", "1 if this worker's LIFO slot is full.",
	  lifo, 1),
	S("inbox_depth", "gauge", "Tasks pinned to this worker, queued.",
	  inbox_depth, 1),
	S("busy_seconds_total", "counter",
	  "Time this worker was awake since the runtime started.", busy_ns,
	  1e-9),
	S("idle_seconds_total", "counter",
	  "Time this worker slept in its loop.", idle_ns, 1e-9),
	S("timers_armed", "gauge", "Timers armed on this worker's loop.",
	  timers, 1),
	S("fd_waits_armed", "gauge", "Fd waits armed on this worker's loop.",
	  fds, 1),
	S("tasks_alive", "gauge",
	  "Tasks spawned by tasks on this worker and not yet ended, "
	  "wherever they run.",
	  alive, 1),
	S("stacks_mapped_total", "counter",
	  "Stacks this worker created rather than reused.", stacks_mapped, 1),
	S("stacks_pooled", "gauge", "Stacks idle in this worker's pool.",
	  stacks_pooled, 1),
	S("stacks_unguarded_total", "counter",
	  "Stacks this worker created without a guard region.",
	  stacks_unguarded, 1),
#undef S
};

int coev_rt_metrics(const coev_rt_t *rt, char *buf, size_t len)
{
	coev_worker_stats_t ws[64];
	coev_rt_stats_t st;
	out_t o = {buf, len, 0};
	unsigned n;

	if (!rt || (!buf && len))
		return -EINVAL;
	if (buf && len)
		buf[0] = '\0';
	/* Workers beyond the first 64 are in the totals only: a bounded
	 * stack buffer keeps this free of allocation. */
	n = rt->nworkers < 64 ? rt->nworkers : 64;
	for (unsigned i = 0; i < n; i++)
		coev_rt_worker_stats(rt, i, &ws[i]);
	coev_rt_stats(rt, &st);

	for (size_t k = 0; k < sizeof series / sizeof series[0]; k++)
		per_worker(&o, ws, n, series[k].name, series[k].type,
			   series[k].help, series[k].off, series[k].scale);

	head(&o, "workers", "gauge", "Worker threads.");
	emit(&o, "coev_workers %u\n", st.workers);
	head(&o, "runtime_tasks_alive", "gauge",
	     "Tasks spawned and not yet ended.");
	emit(&o, "coev_runtime_tasks_alive %ld\n", st.alive);
	head(&o, "inject_queue_depth", "gauge",
	     "Tasks queued from outside the workers, or overflowed.");
	emit(&o, "coev_inject_queue_depth %llu\n",
	     (unsigned long long)st.inject_depth);
	head(&o, "stuck_worker_wakes_total", "counter",
	     "Idle workers woken to take work queued behind a stuck one.");
	emit(&o, "coev_stuck_worker_wakes_total %llu\n",
	     (unsigned long long)st.stuck_kicks);
	head(&o, "blocking_threads", "gauge", "Blocking-pool threads.");
	emit(&o, "coev_blocking_threads %u\n", st.blocking_threads);
	head(&o, "blocking_threads_idle", "gauge",
	     "Blocking-pool threads waiting for a job.");
	emit(&o, "coev_blocking_threads_idle %u\n", st.blocking_idle);
	head(&o, "blocking_queue_depth", "gauge",
	     "Blocking jobs waiting for a thread.");
	emit(&o, "coev_blocking_queue_depth %llu\n",
	     (unsigned long long)st.blocking_queued);
	head(&o, "blocking_jobs_total", "counter", "Blocking jobs run.");
	emit(&o, "coev_blocking_jobs_total %llu\n",
	     (unsigned long long)st.blocking_run);
	return o.n > INT32_MAX ? INT32_MAX : (int)o.n;
}
