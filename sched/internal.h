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

/*
 * coev__park_until — park the calling task until woken, the deadline
 * passes, or the task is cancelled (unless shielded). Returns 0 when woken
 * (possibly spuriously: re-check the condition), -ETIMEDOUT, or
 * -ECANCELED; a cancelled task returns -ECANCELED without parking, and a
 * deadline already past gives -ETIMEDOUT without parking. The deadline is
 * also bounded by coev_deadline_push(). From a task only.
 */
int coev__park_until(coev_time_t deadline);

/*
 * coev__wait_fd — coev__park_until, also ended by fd becoming ready for
 * events; then returns the ready events (> 0). The fd is watched on the
 * current worker's loop for this one wait only.
 */
int coev__wait_fd(int fd, unsigned events, coev_time_t deadline);

#endif
