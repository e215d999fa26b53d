/* SPDX-License-Identifier: MIT */
/*
 * io/process.c — subprocesses (coev/process.h): posix_spawn with a
 * file-actions list, a pidfd to wait and signal, pipes for the stdio the
 * caller asks for.
 *
 * Starting. posix_spawnp rather than fork+exec: glibc implements it with
 * clone(CLONE_VM | CLONE_VFORK) on a small stack of its own, so starting
 * a child costs no copy of the parent's page tables (a worker's thread
 * with thousands of task stacks mapped would pay for every one of them
 * in a fork), and glibc reports a failed exec as posix_spawn's return
 * value (glibc 2.24 and later), which is rule 3 for free. The file
 * actions, run in the child in order:
 *   1. each fd 0..2 that is a pipe: dup2 of the child's end (dup2 clears
 *      close-on-exec on the copy); each that is /dev/null: an open;
 *   2. closefrom(3) (glibc 2.34's posix_spawn_file_actions_addclosefrom_np,
 *      close_range underneath): every other fd of the parent is closed,
 *      including fds opened without O_CLOEXEC by code coev cannot see;
 *   3. chdir to the requested directory.
 * The attributes empty the signal mask and set every signal to its
 * default action (POSIX_SPAWN_SETSIGMASK, POSIX_SPAWN_SETSIGDEF), so the
 * child does not inherit the runtime's ignored SIGPIPE or a mask the
 * host thread set. Every fd the parent makes is O_CLOEXEC from birth
 * (pipe2, pidfd_open), so a spawn on another thread never catches one.
 *
 * Waiting. pidfd_open on the child right after the spawn (it cannot have
 * been reaped and its pid reused: only we reap it). A pidfd becomes
 * readable when the child ends; a wait is coev_wait_fd on it with the
 * caller's deadline, then waitpid(WNOHANG). Signals go through
 * pidfd_send_signal, which can never hit a process that reused the pid.
 * Without pidfds (ENOSYS: Linux before 5.3; or COEV_PIDFD=0 in the
 * environment, for the tests) a wait looks with waitpid(WNOHANG) at
 * growing intervals (1 to 50 ms) and signals use kill while the child is
 * unreaped.
 *
 * The end. A process freed before its child was reaped kills it and
 * reaps it at once (rule 4 of the header). Rejected: reaping in the
 * background (a thread or a task that outlives the object and waits for
 * a child that may never end), which leaves a process the program no
 * longer names running unseen; tokio's default leaves it running and
 * reaps it when it can, asyncio warns. Killing makes "freed" mean gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coev.h"
#include "coev/process.h"

extern char **environ;

struct coev_process {
	pid_t pid;
	int pidfd;  /* -1 without pidfds (rule 6 of the header) */
	int fd[3];  /* the parent's pipe ends, or -1 */
	int status; /* [waiter] wait status once reaped */
	/* Written by the waiter after status; read by signals from any
	 * thread (release/acquire: a reader that sees it sees status). */
	atomic_bool reaped;
};

/* The pipes of a spawn: for each fd 0..2, the parent's end and the
 * child's end (-1 when that fd is not a pipe). */
struct pipes {
	int parent[3], child[3];
};

static void pipes_close(struct pipes *pp, bool parent_too)
{
	for (int i = 0; i < 3; i++) {
		if (pp->child[i] >= 0)
			close(pp->child[i]);
		if (parent_too && pp->parent[i] >= 0)
			close(pp->parent[i]);
		pp->child[i] = -1;
		if (parent_too)
			pp->parent[i] = -1;
	}
}

/* Make the pipes opts asks for. Returns 0 or a negative errno (none
 * left open then). */
static int pipes_open(struct pipes *pp, const int stdio[3])
{
	for (int i = 0; i < 3; i++)
		pp->parent[i] = pp->child[i] = -1;
	for (int i = 0; i < 3; i++) {
		int fds[2], r;

		if (stdio[i] != COEV_STDIO_PIPE)
			continue;
		if (pipe2(fds, O_CLOEXEC) != 0) {
			r = -errno;
			pipes_close(pp, true);
			return r;
		}
		/* fd 0: the child reads; 1 and 2: the child writes. */
		pp->child[i] = fds[i == 0 ? 0 : 1];
		pp->parent[i] = fds[i == 0 ? 1 : 0];
		if ((r = coev_fd_nonblock(pp->parent[i])) != 0) {
			pipes_close(pp, true);
			return r;
		}
	}
	return 0;
}

/* The child's file actions (steps 1-3 of the design comment). */
static int actions_make(posix_spawn_file_actions_t *fa, const int stdio[3],
			const struct pipes *pp, const char *cwd)
{
	int r = posix_spawn_file_actions_init(fa);

	for (int i = 0; r == 0 && i < 3; i++) {
		if (stdio[i] == COEV_STDIO_PIPE)
			r = posix_spawn_file_actions_adddup2(fa, pp->child[i],
							     i);
		else if (stdio[i] == COEV_STDIO_NULL)
			r = posix_spawn_file_actions_addopen(
				fa, i, "/dev/null",
				i == 0 ? O_RDONLY : O_WRONLY, 0);
	}
	if (r == 0)
		r = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	if (r == 0 && cwd)
		r = posix_spawn_file_actions_addchdir_np(fa, cwd);
	return -r;
}

static int attrs_make(posix_spawnattr_t *at)
{
	sigset_t none, all;
	int r = posix_spawnattr_init(at);

	sigemptyset(&none);
	sigfillset(&all);
	if (r == 0)
		r = posix_spawnattr_setsigmask(at, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(at, &all);
	if (r == 0)
		r = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK |
							 POSIX_SPAWN_SETSIGDEF);
	return -r;
}

static int check_args(char *const argv[], const coev_process_opts_t *opts,
		      coev_process_t **out)
{
	if (!argv || !argv[0] || !argv[0][0] || !out)
		return -EINVAL;
	for (int i = 0; opts && i < 3; i++)
		if (opts->stdio[i] < COEV_STDIO_INHERIT ||
		    opts->stdio[i] > COEV_STDIO_PIPE)
			return -EINVAL;
	return 0;
}

/* Whether to open pidfds: COEV_PIDFD=0 forces the path of kernels
 * without them (as COEV_STACK_GUARD=mprotect forces the stacks'
 * fallback), so that the tests run it on any kernel. */
static bool use_pidfd(void)
{
	const char *v = getenv("COEV_PIDFD");

	return !v || strcmp(v, "0") != 0;
}

/* Kill and reap a child (rule 4; also a spawn whose pidfd failed). */
static int kill_reap(pid_t pid, int pidfd)
{
	int st = 0;

	if (pidfd >= 0)
		pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	else
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

int coev_process_spawn(char *const argv[], const coev_process_opts_t *opts,
		       coev_process_t **out)
{
	static const int inherit[3] = {0, 0, 0};
	const int *stdio = opts ? opts->stdio : inherit;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	struct coev_process *p;
	struct pipes pp;
	int r;

	if ((r = check_args(argv, opts, out)) != 0)
		return r;
	if (!(p = calloc(1, sizeof *p)))
		return -ENOMEM;
	if ((r = pipes_open(&pp, stdio)) != 0)
		goto fail;
	if ((r = actions_make(&fa, stdio, &pp, opts ? opts->cwd : NULL)) == 0) {
		if ((r = attrs_make(&at)) == 0) {
			r = -posix_spawnp(&p->pid, argv[0], &fa, &at, argv,
					  opts && opts->envp ? opts->envp
							     : environ);
			posix_spawnattr_destroy(&at);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	pipes_close(&pp, r != 0);
	if (r != 0)
		goto fail;
	p->pidfd = use_pidfd() ? pidfd_open(p->pid, 0) : -1;
	if (p->pidfd < 0 && use_pidfd() && errno != ENOSYS) {
		r = -errno;
		kill_reap(p->pid, -1);
		for (int i = 0; i < 3; i++)
			if (pp.parent[i] >= 0)
				close(pp.parent[i]);
		goto fail;
	}
	memcpy(p->fd, pp.parent, sizeof p->fd);
	*out = p;
	return 0;
fail:
	free(p);
	return r;
}

pid_t coev_process_pid(const coev_process_t *p)
{
	return p ? p->pid : -1;
}

int coev_process_fd(const coev_process_t *p, int which)
{
	if (!p || which < 0 || which > 2 || p->fd[which] < 0)
		return -EBADF;
	return p->fd[which];
}

int coev_process_take_fd(coev_process_t *p, int which)
{
	int fd = coev_process_fd(p, which);

	if (fd >= 0)
		p->fd[which] = -1;
	return fd;
}

int coev_process_stream(coev_process_t *p, int which, size_t bufsize,
			coev_stream_t **out)
{
	int fd = coev_process_fd(p, which), r;

	if (fd < 0)
		return fd;
	if ((r = coev_stream_fd(fd, bufsize, out)) != 0)
		return r;
	p->fd[which] = -1;
	return 0;
}

/* One look: reap the child if it has ended. 1 when reaped, 0 when it
 * runs, or a negative errno. */
static int try_reap(struct coev_process *p)
{
	pid_t r;
	int st;

	do
		r = waitpid(p->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	p->status = st;
	atomic_store_explicit(&p->reaped, true, memory_order_release);
	return 1;
}

/* Without a pidfd: sleep a growing interval, bounded by the deadline. */
static int nap(coev_time_t *step, coev_time_t deadline)
{
	coev_time_t now = coev_now(), until;

	if (deadline != COEV_FOREVER && now >= deadline)
		return -ETIMEDOUT;
	until = now + *step;
	if (deadline != COEV_FOREVER && until > deadline)
		until = deadline;
	if (*step < COEV_MSEC(50))
		*step *= 2;
	return coev_sleep_until(until);
}

int coev_process_wait(coev_process_t *p, int *status, coev_time_t deadline)
{
	coev_time_t step = COEV_MSEC(1);
	int r;

	if (!p)
		return -EINVAL;
	if (!coev_self())
		return COEV_ENOTCORO;
	while (!atomic_load_explicit(&p->reaped, memory_order_acquire)) {
		if ((r = try_reap(p)) < 0)
			return r;
		if (r > 0)
			break;
		r = p->pidfd >= 0 ? coev_wait_fd(p->pidfd, COEV_READ, deadline)
				  : nap(&step, deadline);
		if (r < 0)
			return r;
	}
	if (status)
		*status = p->status;
	return 0;
}

int coev_process_signal(coev_process_t *p, int sig)
{
	if (!p || sig < 0 || sig >= NSIG)
		return -EINVAL;
	if (atomic_load_explicit(&p->reaped, memory_order_acquire))
		return -ESRCH;
	if (p->pidfd >= 0)
		return pidfd_send_signal(p->pidfd, sig, NULL, 0) == 0 ? 0
								      : -errno;
	return kill(p->pid, sig) == 0 ? 0 : -errno;
}

void coev_process_free(coev_process_t *p)
{
	if (!p)
		return;
	for (int i = 0; i < 3; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	if (!atomic_load_explicit(&p->reaped, memory_order_acquire))
		kill_reap(p->pid, p->pidfd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
}
