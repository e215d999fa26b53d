/* SPDX-License-Identifier: MIT */
/*
 * coev/signal.h — waiting for signals in a task (asyncio's
 * loop.add_signal_handler, tokio::signal): a program asks for a set of
 * signals, and a task waits for the next one with a deadline, so a
 * server stops cleanly on SIGINT or SIGTERM.
 *
 * Rules:
 *  1. A watch (coev_signal_new) counts every delivery of its signals from
 *     the moment it is made: a signal that arrives while no task waits is
 *     returned by the next coev_signal_wait, and n deliveries are
 *     returned by n waits (as far as the kernel delivers them: a standard
 *     signal raised again while still pending in the kernel is one
 *     delivery, as it is for any handler).
 *  2. Every watch sees every delivery: two tasks with a watch each for
 *     SIGTERM are both woken by one SIGTERM (a broadcast, as tokio's).
 *  3. While any watch of a signal exists, coev has its handler installed
 *     for it (the signal no longer kills the process or runs the handler
 *     it had); when the last watch of the signal is freed, the disposition
 *     it had before the first watch is put back.
 *  4. Whatever thread the kernel picks to take the signal (a worker, the
 *     host thread, a library's thread), the watches see it. coev_signal_new
 *     also unblocks its signals in the calling thread, so that signals
 *     blocked
 *     in every thread (a mask inherited from the host thread) still has a
 *     thread to be delivered to.
 *  5. One task (or plain thread) waits on a watch at a time; different
 *     tasks use different watches. A watch may be freed from any thread, with no task waiting
 *     on it.
 *  6. SIGKILL, SIGSTOP and the signals of faults (SIGSEGV, SIGBUS,
 *     SIGILL, SIGFPE, SIGTRAP, SIGSYS) cannot be watched (-EINVAL): the
 *     first two cannot be caught, and a fault must be handled on the
 *     thread that took it, not later in a task.
 *  7. A child started by fork or coev_process_spawn does not inherit the
 *     watches: exec puts caught signals back to their default.
 */
#ifndef COEV_SIGNAL_H
#define COEV_SIGNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "sync.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_signal coev_signal_t;

/* What is known of a delivery: the signal, and the sender and si_code of
 * the latest delivery of that signal (which may be later than the one a
 * wait counted, if it was delivered more than once). */
typedef struct coev_siginfo {
	int signo;
	int code;  /* si_code: SI_USER for kill(2), SI_QUEUE, SI_KERNEL, ... */
	pid_t pid; /* sender, for SI_USER and SI_QUEUE; else 0 */
	uid_t uid; /* sender's real uid, likewise */
} coev_siginfo_t;

/*
 * coev_signal_new — start counting deliveries of the n signals numbered in
 * signals (SIGINT, SIGTERM, ...; a number given twice counts once) and
 * return the watch in *out. Returns 0, or -EINVAL (NULL arguments, n of
 * 0, a number that is no signal, a signal rule 6 excludes), -ENOMEM, or
 * the errno of a failed
 * eventfd, sigaction or thread start (nothing changed then). Any thread;
 * never suspends (may take a process-wide lock briefly); allocates the
 * watch, and with the first watch of the process an eventfd and a thread
 * that passes deliveries on to the waiting tasks.
 */
COEV_API int coev_signal_new(const int *signals, size_t n, coev_signal_t **out);

/*
 * coev_signal_wait — the next delivery the watch has not returned yet:
 * returns its signal number (> 0) and fills *info (may be NULL), or
 * -ETIMEDOUT when deadline passes first (COEV_FOREVER waits forever, 0
 * only looks), -ECANCELED when the task is cancelled, -EINVAL for a NULL
 * watch. A delivery counted before a wait that failed is kept for the
 * next wait. Tasks suspend; a plain thread (the host thread, say) blocks.
 * Never allocates.
 */
COEV_API int coev_signal_wait(coev_signal_t *w, coev_siginfo_t *info,
			      coev_time_t deadline);

/*
 * coev_signal_event — the event the watch's dispatcher sets when a
 * delivery comes, for waiting on a watch among other things
 * (coev_select_any's signal case): a set event means "call
 * coev_signal_wait with a past deadline"; that call clears it. NULL for
 * a NULL w. Any thread.
 */
COEV_API coev_event_t *coev_signal_event(coev_signal_t *w);

/*
 * coev_signal_free — stop the watch and free it; the last watch of a
 * signal puts back its old disposition (rule 3), and the last watch of the
 * process stops the thread and closes the eventfd. NULL is allowed. Any
 * thread, with no task waiting on w; never suspends (blocks the calling
 * thread while that thread ends).
 */
COEV_API void coev_signal_free(coev_signal_t *w);

#ifdef __cplusplus
}
#endif

#endif
