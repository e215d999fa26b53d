/* SPDX-License-Identifier: MIT */
/*
 * coev/process.h — subprocesses for tasks (asyncio's
 * create_subprocess_exec, tokio::process): start a program with its
 * standard streams inherited, on /dev/null or on pipes, wait for it with
 * a deadline, and signal it.
 *
 * Rules:
 *  1. A process object belongs to its creator; one task at a time waits
 *     on it, and any thread may signal it until it is freed.
 *  2. The child gets exactly fds 0, 1 and 2: every other fd of the parent
 *     is closed in the child, whether or not it was opened with
 *     O_CLOEXEC (a library's fd opened without it does not leak either).
 *     Its signal mask is empty and every signal has its default action
 *     (the runtime ignores SIGPIPE, rule 5 of coev/io.h; the child must
 *     not inherit that).
 *  3. A program that cannot be started is an error of coev_process_spawn
 *     (-ENOENT, -EACCES, -ENOEXEC, ...), never an exit status of a child.
 *  4. No zombie is left: coev_process_wait reaps the child; a process
 *     freed before its child was reaped has its child killed (SIGKILL)
 *     and reaped by coev_process_free. A program that wants its child to
 *     outlive the object waits for it first (or starts it detached
 *     itself, with a double fork).
 *  5. Pipe ends in the parent are non-blocking and close-on-exec, read
 *     and written with coev's fd calls (coev/io.h) or taken into a
 *     stream (coev/stream.h). Ends not taken are closed by
 *     coev_process_free.
 *  6. Waiting uses a pidfd (Linux 5.3 and later): the wait sleeps until
 *     the kernel says the child ended. On an older kernel (or with
 *     COEV_PIDFD=0 in the environment) the wait looks every few
 *     milliseconds instead, and signals go by pid.
 *  7. Nothing here touches SIGCHLD: a program that sets SIGCHLD to
 *     SIG_IGN has its children reaped by the kernel, and then waits
 *     fail with -ECHILD.
 */
#ifndef COEV_PROCESS_H
#define COEV_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "stream.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_process coev_process_t;

/* What a child's fd 0, 1 or 2 is. */
enum {
	COEV_STDIO_INHERIT = 0, /* the parent's own fd */
	COEV_STDIO_NULL = 1,	/* /dev/null */
	COEV_STDIO_PIPE = 2	/* a pipe whose other end the parent keeps */
};

/* Options of coev_process_spawn; all zero (or a NULL pointer) means: the
 * parent's environment and directory, every stdio inherited. */
typedef struct coev_process_opts {
	char *const *envp; /* the environment, NULL-terminated; NULL: the
			      parent's */
	const char *cwd;   /* the child's working directory; NULL: ours */
	int stdio[3];	   /* COEV_STDIO_* for fds 0, 1 and 2 */
} coev_process_opts_t;

/*
 * coev_process_spawn — start argv[0] (looked up in PATH when it has no
 * '/') with the arguments argv (NULL-terminated) and the options opts
 * (may be NULL), and return the process in *out. Returns 0, or -EINVAL
 * (NULL or empty argv, NULL out, a stdio mode out of range), the errno
 * of the program that could not be started (rule 3), or of a pipe,
 * pidfd or allocation that failed (-EMFILE, -ENOMEM; no child is left
 * running then). Any thread; never suspends (the child is started with
 * vfork semantics, which blocks the caller until the exec); allocates.
 */
COEV_API int coev_process_spawn(char *const argv[],
				const coev_process_opts_t *opts,
				coev_process_t **out);

/* coev_process_pid — the child's pid (valid until it is reaped). */
COEV_API pid_t coev_process_pid(const coev_process_t *p);

/*
 * coev_process_fd — the parent's end of the pipe on the child's fd which
 * (0, 1 or 2), still owned by p; -EBADF when that fd is not a pipe or
 * the end was taken.
 * coev_process_take_fd — the same end, now owned by the caller (close it
 * with close(2) or a stream; closing the end of fd 0 is how a child is
 * sent end of input); -EBADF likewise. Any thread; never waits.
 */
COEV_API int coev_process_fd(const coev_process_t *p, int which);
COEV_API int coev_process_take_fd(coev_process_t *p, int which);

/*
 * coev_process_stream — the parent's end of the pipe on the child's fd
 * which, taken into a new stream (coev/stream.h) with buffers of bufsize
 * bytes (0: the default): read the child's output line by line, write its
 * input. The stream owns the end from then on: coev_stream_close closes
 * it, and coev_stream_shutdown on fd 0's stream sends the child end of
 * input. Returns 0, -EBADF as coev_process_fd, or an error of
 * coev_stream_fd (the end then stays p's). Any thread; never waits;
 * allocates the stream.
 */
COEV_API int coev_process_stream(coev_process_t *p, int which, size_t bufsize,
				 coev_stream_t **out);

/*
 * coev_process_wait — wait until the child ends, reap it, and return 0
 * with its wait status in *status (may be NULL; read with WIFEXITED,
 * WEXITSTATUS, WIFSIGNALED, WTERMSIG). Once reaped, later calls return
 * the same status at once. Errors: -ETIMEDOUT when deadline passes first
 * (COEV_FOREVER waits forever, 0 only looks), -ECANCELED, COEV_ENOTCORO
 * from a plain thread, -EINVAL for a NULL p, -ECHILD (rule 7). Tasks
 * only; suspends; never allocates.
 */
COEV_API int coev_process_wait(coev_process_t *p, int *status,
			       coev_time_t deadline);

/*
 * coev_process_signal — send signal sig to the child. Returns 0, -ESRCH
 * once it has been reaped (a pidfd never reaches a process that reused
 * the pid), -EINVAL for a bad signal or NULL p. Any thread; never waits.
 */
COEV_API int coev_process_signal(coev_process_t *p, int sig);

/*
 * coev_process_free — release p: close the pipe ends it still owns and
 * the pidfd; a child not yet reaped is killed and reaped (rule 4), which
 * blocks the calling thread for as long as the kernel takes to end it.
 * NULL is allowed. Any thread, with no task waiting on p.
 */
COEV_API void coev_process_free(coev_process_t *p);

#ifdef __cplusplus
}
#endif

#endif
