/*
 * sched/internal.h — interfaces shared between the files of sched/ and used
 * by sync/, bridge/, fuzz/ and white-box tests. Not installed.
 */
#ifndef COEV_SCHED_INTERNAL_H
#define COEV_SCHED_INTERNAL_H

#include "coev.h"

/*
 * coev__park — suspend the calling task until coev__wake() is called on it.
 * A wake that arrives before the park (while the task still runs) is kept
 * as a single permit and makes the next park return at once. Parks may
 * return spuriously: callers re-check their condition in a loop.
 * From a task only (aborts otherwise).
 */
void coev__park(void);

/*
 * coev__wake — make t runnable if it is parked, or leave it a permit if it
 * is running. Idempotent; any thread, also foreign threads and libev
 * callbacks; never suspends; never allocates.
 */
void coev__wake(coev_task_t *t);

#endif
