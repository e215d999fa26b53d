/* SPDX-License-Identifier: MIT */
/*
 * coev/debug.h — seeing what a runtime does: debug mode, metrics, task
 * dumps and traces.
 *
 * Debug mode (COEV_DEBUG=1 in the environment, or COEV_DEBUG_CHECKS in
 * coev_config_t.debug) is asyncio's debug mode for coev. A monitor thread
 * samples the workers every millisecond or so and reports, through the
 * runtime's log function (stderr by default):
 *   - a task that has run longer than coev_config_t.slow_task (100 ms by
 *     default) without suspending: its name, id and worker, how long, what
 *     else waits for that worker, and a backtrace of where it is now;
 *     then, once it suspends, how long it ran. A task blocked in a system
 *     call (libc's sleep, poll, a blocking read) is reported with the
 *     call's name and a backtrace read from its stack from outside; a
 *     running one is asked for its backtrace with SIGURG (when the program
 *     has not claimed SIGURG). The report does not change what the task
 *     does: no signal is sent to a worker waiting in the kernel, since it
 *     would end calls such as nanosleep and poll early (EINTR). What
 *     remains: a running task that enters a system call in the
 *     microseconds between the look and the signal may see that one call
 *     end early; the report then says so (at most once per slow run);
 *   - a task that ended with an error (other than -ECANCELED) that nobody
 *     joined: when it ends detached (but not a scope's child: its scope
 *     takes its error), when it is detached after ending, or when the
 *     runtime is freed with its handle never used. This one is reported
 *     outside debug mode too, unless coev_config_t.report_unjoined or
 *     COEV_UNJOINED is 0;
 *   - the tasks still alive when a shutdown begins (they are cancelled
 *     then), and a full dump of those still alive when it gives up;
 *   - a task that used more than 75% of its stack (measured when it ends);
 *   - a task that ended holding a coev mutex.
 * And SIGUSR1 writes a task dump to the log, when the program has not
 * claimed SIGUSR1 itself.
 *
 * Outside debug mode the monitor still runs (when there are 2 or more
 * workers): it notices a worker stuck in one task and wakes an idle worker
 * to take the work queued behind it (see docs/ARCHITECTURE.md, "A stuck
 * worker").
 *
 * Traces: COEV_TRACE=FILE (or coev_config_t.trace) records what every
 * worker runs in a bounded ring per worker and writes it, when the runtime
 * shuts down, as Chrome trace-event JSON (Perfetto, chrome://tracing): a
 * track per worker, a slice per task run, idle slices, and flow arrows
 * from a wake to the run it caused and for steals. examples/
 * coev-trace-svg renders one as an SVG timeline.
 */
#ifndef COEV_DEBUG_H
#define COEV_DEBUG_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* coev_config_t.debug: debug mode (see above). */
#define COEV_DEBUG_CHECKS 2u

/* Task states in a dump. */
enum {
	COEV_TASK_READY = 0,   /* queued to run */
	COEV_TASK_RUNNING = 1, /* on a worker now */
	COEV_TASK_WAITING = 2, /* parked: see wait */
	COEV_TASK_DONE = 3,    /* ended; its handle not yet joined */
};

/* What a waiting task waits on. */
enum {
	COEV_WAIT_NONE = 0,	 /* parked with no note (coev__park) */
	COEV_WAIT_FD = 1,	 /* fd readiness: fd */
	COEV_WAIT_TIMER = 2,	 /* a sleep or a deadline: until */
	COEV_WAIT_MUTEX = 3,	 /* a coev_mutex_t: obj, owner */
	COEV_WAIT_COND = 4,	 /* a coev_cond_t: obj */
	COEV_WAIT_SEM = 5,	 /* a coev_sem_t (or rwlock): obj */
	COEV_WAIT_EVENT = 6,	 /* a coev_event_t (or barrier): obj */
	COEV_WAIT_CHANNEL = 7,	 /* a coev_chan_t send or receive: obj */
	COEV_WAIT_SELECT = 8,	 /* coev_select over several channels */
	COEV_WAIT_FUTURE = 9,	 /* a coev_future_t: obj */
	COEV_WAIT_JOIN = 10,	 /* another task: obj, the task's id in arg */
	COEV_WAIT_BLOCKING = 11, /* a blocking-pool job */
	COEV_WAIT_SCOPE = 12,	 /* a scope's children */
};

/* One task, as a dump sees it (each field read racily but safely: a
 * snapshot of a running system). */
typedef struct coev_task_info {
	uint64_t id;
	char name[32];
	int state;	 /* COEV_TASK_* */
	int wait;	 /* COEV_WAIT_* when WAITING, else COEV_WAIT_NONE */
	const void *obj; /* the object waited on, or NULL */
	long long arg;	 /* fd, deadline (coev_now clock) or task id */
	uint64_t owner;	 /* WAIT_MUTEX: id of the holding task, or 0 */
	int worker;	 /* worker running it or that last did; -1 never ran */
	coev_time_t age; /* since spawn, coarse (a few ms) */
	int cancelled;	 /* coev_cancel was called on it */
} coev_task_info_t;

/*
 * coev_rt_tasks — fill out[0..max) with the live tasks of rt (spawned and
 * not yet released: running, ready, waiting, or ended and not joined).
 * Returns the number of such tasks (which may exceed max: call again with
 * more room), or -EINVAL for a NULL rt or a NULL out with max > 0. Any
 * thread; never suspends; holds a reference on each task while it reads it
 * (its cost follows the most tasks rt ever had alive at once: it walks
 * every chunk of task blocks rt has mapped).
 */
COEV_API int coev_rt_tasks(coev_rt_t *rt, coev_task_info_t *out, size_t max);

/*
 * coev_rt_dump — write a readable dump of rt to fd: each worker (what it
 * runs, how long, its queue depths and armed timers and fds), then every
 * live task with its id, name, state, what it waits on (a mutex's holder
 * named), worker and age, and for each parked task the symbolised
 * backtrace of its stack. How: a parked task's context switch left its
 * callee-saved registers on its stack; the frame-pointer chain is walked
 * from the saved frame pointer (the library and examples are built with
 * -fno-omit-frame-pointer; frames of code built without it are skipped),
 * reading the stack with process_vm_readv, so a task that resumes or ends
 * during the walk yields a truncated backtrace, never a fault. Addresses
 * are named from the ELF symbol tables (static functions included).
 * Returns 0, -EINVAL (NULL rt, fd < 0) or a negative errno of write(2).
 * Any thread, including a task of rt (it then shows itself as running);
 * never suspends; allocates.
 */
COEV_API int coev_rt_dump(coev_rt_t *rt, int fd);

/* Totals over a runtime, read without stopping it. */
typedef struct coev_rt_stats {
	unsigned workers;
	uint64_t spawned, finished; /* tasks, since start */
	long alive;		    /* tasks spawned and not yet ended (a
				     * task leaves the count just after its
				     * joiner was woken) */
	uint64_t polls;		    /* task resumptions */
	uint64_t stolen, steal_ops; /* tasks taken by thieves, operations */
	uint64_t parks, unparks;    /* sleeps; wakes by another thread */
	uint64_t inject_pops;	    /* tasks taken from the inject queue */
	uint64_t local_depth;	    /* tasks queued in the workers' rings */
	uint64_t lifo;		    /* LIFO slots holding a task */
	uint64_t inbox_depth;	    /* tasks queued on pinned inboxes */
	uint64_t inject_depth;	    /* tasks queued on the inject queue */
	uint64_t busy_ns, idle_ns;  /* summed over workers since start */
	uint64_t timers, fds;	    /* armed on the workers' loops */
	unsigned blocking_threads;  /* blocking pool: threads now */
	unsigned blocking_idle;	    /* of which idle */
	uint64_t blocking_queued;   /* jobs waiting for a thread */
	uint64_t blocking_run;	    /* jobs run since start */
	uint64_t stuck_kicks;	    /* idle workers woken by the monitor to
				     * take work queued behind a stuck one */
} coev_rt_stats_t;

/*
 * coev_rt_stats — fill *st with rt's totals (each counter exact, the set
 * not one instant). Per-worker figures: coev_rt_worker_stats(). Returns 0
 * or -EINVAL. Any thread; never suspends; takes the pool's lock briefly.
 */
COEV_API int coev_rt_stats(const coev_rt_t *rt, coev_rt_stats_t *st);

/*
 * coev_rt_metrics — render rt's metrics in the Prometheus text exposition
 * format (version 0.0.4): per-worker series labelled worker="N" and
 * runtime-wide gauges, each with HELP and TYPE lines, names prefixed
 * coev_. Writes at most len bytes including a NUL (buf may be NULL when
 * len is 0) and returns the length the whole text needs (excluding the
 * NUL), as snprintf does; -EINVAL for a NULL rt, or a NULL buf with len
 * above 0. Any thread; never suspends; never allocates.
 */
COEV_API int coev_rt_metrics(const coev_rt_t *rt, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
