/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/common.h — helpers shared by the coev benchmark programs
 * (bench.c, sync_bench.c): the clock that times a workload, error
 * reporting, and the runtime's worker counters summed for the diagnostic
 * keys of a BENCH line.
 */
#ifndef COEV_BENCH_COMMON_H
#define COEV_BENCH_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "coev.h"

/* CLOCK_MONOTONIC in nanoseconds, read directly rather than through
 * coev_now() so that every runtime's workload is timed the same way. */
static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The kernel's counters of the whole process (every thread), read with
 * getrusage(RUSAGE_SELF) before and after a measured section. */
struct kcount {
	long minflt;  /* page faults served without I/O */
	long csw;     /* context switches, voluntary + involuntary */
	int64_t sys;  /* system time, ns */
	int64_t user; /* user time, ns */
};

static inline void kcount_read(struct kcount *k)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	k->minflt = ru.ru_minflt;
	k->csw = ru.ru_nvcsw + ru.ru_nivcsw;
	k->sys = (int64_t)ru.ru_stime.tv_sec * 1000000000 +
		 (int64_t)ru.ru_stime.tv_usec * 1000;
	k->user = (int64_t)ru.ru_utime.tv_sec * 1000000000 +
		  (int64_t)ru.ru_utime.tv_usec * 1000;
}

/* Write the counters' growth from a to b, per op of ops, into buf as the
 * keys every benchmark program prints the same way: minflt_per_op,
 * csw_per_op, sys_ns_per_op and user_ns_per_op (getrusage's times tick
 * in microseconds at best, enough over a million operations). */
static inline void kcount_keys(char *buf, size_t size, const struct kcount *a,
			       const struct kcount *b, long ops)
{
	double n = (double)ops;

	snprintf(buf, size,
		 "minflt_per_op=%.4f csw_per_op=%.4f sys_ns_per_op=%.2f "
		 "user_ns_per_op=%.2f",
		 (double)(b->minflt - a->minflt) / n,
		 (double)(b->csw - a->csw) / n, (double)(b->sys - a->sys) / n,
		 (double)(b->user - a->user) / n);
}

/* Report a failed call or check on stderr, named after the program; returns
 * err if it is an error code, else -1, for the workload to return. */
static inline int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s (%d)\n", program_invocation_short_name,
		what, coev_strerror(err), err);
	return err < 0 ? err : -1;
}

/* The counters of every worker of the calling task's runtime, added up. */
static inline void rt_stats(coev_worker_stats_t *sum)
{
	coev_rt_t *rt = coev_rt_current();
	unsigned n = coev_rt_workers(rt);

	*sum = (coev_worker_stats_t){0};
	for (unsigned i = 0; i < n; i++) {
		coev_worker_stats_t st;

		if (coev_rt_worker_stats(rt, i, &st) < 0)
			continue;
		sum->polls += st.polls;
		sum->spawned += st.spawned;
		sum->finished += st.finished;
		sum->stolen += st.stolen;
		sum->steal_ops += st.steal_ops;
		sum->parks += st.parks;
		sum->inject_pops += st.inject_pops;
		sum->stacks_mapped += st.stacks_mapped;
		sum->stacks_pooled += st.stacks_pooled;
	}
}

/* The configuration of every coev benchmark: coev_config_init() (so COEV_*
 * in the environment applies), then the worker count from the command line
 * (argument `arg` of the program). Returns 0, or 2 for a bad count after
 * saying so on stderr. */
static inline int bench_config(coev_config_t *cfg, const char *arg)
{
	char *end;
	int rc;

	errno = 0;
	long workers = strtol(arg, &end, 10);
	if (errno || end == arg || *end || workers < 1 ||
	    workers > COEV_WORKERS_MAX) {
		fprintf(stderr, "%s: bad worker count %s\n",
			program_invocation_short_name, arg);
		return 2;
	}
	if ((rc = coev_config_init(cfg)) < 0)
		fprintf(stderr, "%s: coev_config_init: %s (ignored)\n",
			program_invocation_short_name, coev_strerror(rc));
	cfg->workers = (unsigned)workers;
	return 0;
}

#endif
