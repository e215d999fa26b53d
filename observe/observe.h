/* SPDX-License-Identifier: MIT */
/*
 * observe/observe.h — what the files of observe/ share; private to observe/
 * (and its tests in tests/observe/).
 *
 * observe/ reads the scheduler through sched/internal.h and never the
 * reverse: the scheduler calls only the hooks that sched/internal.h
 * declares (traces, debug mode's reports), which observe/ implements.
 */
#ifndef COEV_OBSERVE_OBSERVE_H
#define COEV_OBSERVE_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "sched/internal.h"

/* Frames kept of one backtrace. */
#define COEV__BT_MAX 48

/* --- text.c: building reports ----------------------------------------- */

/* A growing string; on allocation failure it keeps what fit. */
typedef struct coev__sb {
	char *p;
	size_t n, cap;
} coev__sb_t;

void coev__sb_printf(coev__sb_t *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand b's text to rt's log (when any fit) and free it. */
void coev__sb_log(struct coev_rt *rt, coev__sb_t *b);
/* ns as "12 ns", "3.4 us", "5.6 ms" or "7.89 s" (negative as 0). */
void coev__fmt_dur(char *buf, size_t len, coev_time_t ns);
/* A task's name for reports: "(unnamed)" for the empty one. */
const char *coev__task_label(const char *name);

/* --- backtrace.c: frames of parked and running tasks ------------------ */

/* Copy n bytes at src into dst without trusting src: false when any of it
 * is unmapped. Async-signal-safe. */
bool coev__peek(void *dst, const void *src, size_t n);
/* Backtrace of a parked context whose saved stack pointer is sp, on the
 * stack [lo, hi): at most max frames into pcs; returns the count. */
int coev__walk_parked(uintptr_t sp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
		      int max);
/* Symbolised frames, one line each; pcs[0] is a return address too
 * unless exact0 (an interrupted pc). */
void coev__put_backtrace(coev__sb_t *b, const uintptr_t *pcs, int n,
			 bool exact0);
/* Debug mode: the per-worker reply buffers of SIGURG, and the handler. */
int coev__bt_alloc(struct coev_rt *rt);
void coev__bt_free(struct coev_rt *rt);
void coev__bt_handler(int sig, siginfo_t *si, void *uc);
/* Ask worker w for its backtrace during its run seq: the frame count, 0
 * without an answer, -1 when the run had ended by then; *cut says that
 * the signal ended a system call early (EINTR). Only for a worker that
 * coev__bt_where found running. */
int coev__bt_ask(struct coev_worker *w, uint_fast64_t seq, uintptr_t *pcs,
		 bool *cut);
/* Where worker w's thread is, as the kernel says
 * (/proc/self/task/TID/syscall): running (or runnable), waiting in system
 * call nr, waiting elsewhere (a page fault), or unknown. sp and pc are
 * the user registers at the call's entry. Returns k->how. */
enum {
	COEV__WHERE_UNKNOWN,
	COEV__WHERE_RUNNING,
	COEV__WHERE_SYSCALL,
	COEV__WHERE_BLOCKED
};
typedef struct coev__where {
	int how;
	long nr;
	uintptr_t sp, pc;
} coev__where_t;
int coev__bt_where(struct coev_worker *w, coev__where_t *k);
/* The backtrace of task t, running on a thread blocked in the kernel with
 * user registers sp and pc, read from outside: pc, the return addresses
 * found above sp, then the frame chain. The monitor thread only. */
int coev__walk_blocked(const coev_task_t *t, uintptr_t sp, uintptr_t pc,
		       uintptr_t *pcs, int max);
/* A system call's name ("clock_nanosleep"), or "a system call". */
const char *coev__syscall_name(long nr);

/* --- dump.c: snapshots of the live tasks ------------------------------ */

/* One task as a dump sees it. */
typedef struct coev__snap {
	coev_task_info_t info;
	const coev_task_t *t;
	const void *owner; /* WAIT_MUTEX: the holder (a task or not) */
	uintptr_t sp, lo, hi;
} coev__snap_t;

/* The task w runs now, or NULL: its current, read from outside. */
const coev_task_t *coev__running_on(struct coev_worker *w);
/* Every task in rt's registries; *out is malloc'd (NULL when none or on
 * allocation failure, with the count of those that fit). */
size_t coev__snapshot(struct coev_rt *rt, coev__snap_t **out);
/* One line for s (of the n tasks in a). */
void coev__put_task(coev__sb_t *b, const coev__snap_t *a, size_t n,
		    const coev__snap_t *s);
/* The whole dump; backtraces of parked tasks when bt; ended tasks left
 * out when only_live. */
void coev__put_dump(coev__sb_t *b, struct coev_rt *rt, bool bt, bool only_live);

#endif
