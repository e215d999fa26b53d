/* SPDX-License-Identifier: MIT */
/*
 * coev/blocking.h — the blocking pool (asyncio's run_in_executor and
 * to_thread, tokio's spawn_blocking) and file I/O built on it.
 *
 * A blocking call (a file read, a library that blocks, a long computation)
 * would stop its worker and every task queued behind it. coev_blocking()
 * runs it on a separate thread of the runtime's blocking pool while the
 * calling task waits without holding its worker.
 *
 * Rules:
 *  1. The pool starts empty and starts a thread when a job finds no idle
 *     one, up to coev_config_t.blocking_max threads; further jobs queue
 *     (FIFO). A thread idle for blocking_idle ends.
 *  2. A job that has not started when its caller's deadline passes or the
 *     caller is cancelled is removed from the queue and never runs (the
 *     call returns -ETIMEDOUT or -ECANCELED). A job that has started cannot
 *     be interrupted: the caller waits for it to end and gets its result
 *     (0 and *ret set); the cancellation stays pending for the caller's
 *     next wait. So memory a job uses stays valid while it runs.
 *  3. coev_rt_free() waits for running jobs to end. So a job must not free
 *     its own runtime (that aborts, naming the call) nor shut it down
 *     (coev_rt_shutdown returns COEV_ENOTRT there): the shutdown would wait
 *     for the job's task, which waits for the job.
 */
#ifndef COEV_BLOCKING_H
#define COEV_BLOCKING_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "runtime.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * coev_blocking — run fn(arg) on the blocking pool and wait for it. Stores
 * fn's result in *ret (when ret is not NULL) and returns 0 once fn has run;
 * or returns -ETIMEDOUT / -ECANCELED (fn never ran, rule 2), -EAGAIN or
 * -ENOMEM (no pool thread could be started and none exists; fn never
 * ran), -ESHUTDOWN. Called from a plain thread outside the runtime it
 * simply calls fn. From a worker thread outside a task: COEV_ENOTCORO.
 * Suspends; may start a thread, and allocates only that thread's record
 * (the job lives in the caller's frame).
 */
COEV_API int coev_blocking(coev_fn fn, void *arg, coev_time_t deadline,
			   int *ret);

/*
 * File I/O on the blocking pool. Each returns what the system call of the
 * same name returns, as a count or fd (>= 0) or a negative errno, or
 * -ETIMEDOUT / -ECANCELED when the job never started (rule 2). buf belongs
 * to the runtime until the call returns.
 *   coev_file_open   open(2) with O_CLOEXEC added
 *   coev_file_pread  pread(2); off < 0 reads at the file position (read(2))
 *   coev_file_pwrite pwrite(2); off < 0 writes at the file position
 *   coev_file_fsync  fsync(2)
 *   coev_file_close  close(2)
 * From a task (or a plain thread, which does the call itself).
 */
COEV_API int coev_file_open(const char *path, int flags, mode_t mode,
			    coev_time_t deadline);
COEV_API ssize_t coev_file_pread(int fd, void *buf, size_t n, off_t off,
				 coev_time_t deadline);
COEV_API ssize_t coev_file_pwrite(int fd, const void *buf, size_t n, off_t off,
				  coev_time_t deadline);
COEV_API int coev_file_fsync(int fd, coev_time_t deadline);
COEV_API int coev_file_close(int fd, coev_time_t deadline);

/*
 * coev_file_read_all — read the whole file at path into a new buffer
 * (malloc'd, NUL-terminated for convenience; free() it) and store it in
 * *data and its length in *len. coev_file_write_all — create or truncate
 * path (mode 0644 for a new file) and write n bytes of data to it. Both run
 * as one job. Return 0 or a negative code (-ENOMEM also for a file larger
 * than one allocation can hold); on error nothing is allocated and *data
 * is left alone.
 */
COEV_API int coev_file_read_all(const char *path, char **data, size_t *len,
				coev_time_t deadline);
COEV_API int coev_file_write_all(const char *path, const void *data, size_t n,
				 coev_time_t deadline);

#ifdef __cplusplus
}
#endif

#endif
