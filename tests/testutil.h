/* SPDX-License-Identifier: MIT */
/*
 * tests/testutil.h — small helpers shared by the cmocka suites.
 *
 *  - TU_SCALE(plain, asan, tsan): an iteration count sized for the build
 *    (valgrind builds take the tsan count).
 *  - TU_CHECK(cond): an assertion usable inside coev tasks and foreign
 *    threads. cmocka's assert_*() longjmp into the test runner's stack, which
 *    is wrong from a coroutine stack or another thread, so tasks record
 *    failures here and the test thread calls tu_assert_no_failures().
 *  - tu_config(n): the default configuration with n workers.
 *  - tu_run_in_child(fn, arg, &res): fork, run fn(arg) in the child with its
 *    stderr captured through a pipe, and return the child's wait status and
 *    output. The child resets the fatal signals to their default actions
 *    (cmocka catches SIGSEGV in the parent) and disables core dumps.
 *  - tu_spin_ns(ns): busy work for about ns nanoseconds (never asserted on).
 *  - tu_nap_ms(ms): nanosleep for a foreign (non-task) thread.
 *  - tu_fd_count(), tu_fd_dump(): open fds of the process (/proc/self/fd);
 *    TU_FD_TEST(test_x): register a cmocka test that fails when it leaves
 *    more or fewer fds open than it found.
 *  - tu_thread_count(): threads of the process (/proc/self/task).
 *  - tu_raise_nofile(n): make RLIMIT_NOFILE's soft limit at least n,
 *    raising the hard limit too when allowed (root).
 *  - tu_mkdtemp(buf), tu_rmtree(dir): a private temporary directory and
 *    its removal (one level of files).
 *  - tu_thread_wait_at_least(v, n): tu_wait_at_least for a plain thread.
 *  - tu_wait_task_ptr(p): as a task, yield until *p names a task, which
 *    another task publishes there (a peer's handle); returns it.
 *  - tu_wait_parked(rt, t, kind, obj): until task t is parked waiting on
 *    (kind, obj), as coev_rt_tasks() reports it (from a task or a plain
 *    thread); tu_wait_parked_unless(..., flag): or until *flag is set;
 *    tu_task_info(rt, t, &info): t's line of one snapshot;
 *    tu_wait_parked_n(rt, kind, obj, n): until n tasks are parked on
 *    (kind, obj); tu_tasks(rt, &a): one snapshot of all tasks.
 *  - TU_THREAD_AT(&at) in a plain thread just before it waits in a coev
 *    call, and tu_wait_thread_parked(&at) elsewhere: until that thread is
 *    blocked in the wait (a futex wait on a word in its own frames).
 *    Tests line waiters up with these, never with a sleep: a worker
 *    preempted for the length of the sleep swaps two waiters.
 *  - tu_stack_guard_regions(): whether the library guards stacks with
 *    madvise(MADV_GUARD_INSTALL) in this process, or uses its fallback;
 *    tu_rerun_fallback(argv, rc): run the binary again with the fallback
 *    forced (COEV_STACK_GUARD=mprotect), so a suite tests both.
 *  - tu_on_loop(fn, arg), only with TU_LOOP_CALLS defined before this
 *    header (white-box: it includes sched/sched.h): from a task, run
 *    fn(arg) on the task's worker thread in a loop callback, outside any
 *    task, and wait until it has run.
 */
#ifndef COEV_TESTS_TESTUTIL_H
#define COEV_TESTS_TESTUTIL_H

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "coev.h"

/* Valgrind (COEV_VALGRIND builds) runs one thread at a time and is slower
 * still than TSan: it takes TSan's counts. */
#if defined(COEV_TSAN) || defined(COEV_VALGRIND)
#define TU_SCALE(plain, asan, tsan) (tsan)
#elif defined(COEV_ASAN)
#define TU_SCALE(plain, asan, tsan) (asan)
#else
#define TU_SCALE(plain, asan, tsan) (plain)
#endif

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#define TU_NOINLINE __attribute__((noinline))
#else
#define TU_UNUSED
#define TU_NOINLINE
#endif

/* ---- assertions usable off the test thread ---------------------------- */

static atomic_int tu_failures TU_UNUSED;

TU_UNUSED static void tu_fail_at(const char *file, int line, const char *what,
				 const char *fmt, ...)
{
	char msg[256] = "";

	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
	}
	/* One write so that lines from several threads do not interleave. */
	char line_buf[512];
	int n = snprintf(line_buf, sizeof line_buf,
			 "%s:%d: check failed: %s%s%s\n", file, line, what,
			 *msg ? " -- " : "", msg);
	if (n > 0) {
		ssize_t w = write(2, line_buf,
				  (size_t)n < sizeof line_buf
					  ? (size_t)n
					  : sizeof line_buf - 1);
		(void)w;
	}
	atomic_fetch_add(&tu_failures, 1);
}

#define TU_CHECK(cond)                                               \
	do {                                                         \
		if (!(cond))                                         \
			tu_fail_at(__FILE__, __LINE__, #cond, NULL); \
	} while (0)

#define TU_CHECK_MSG(cond, ...)                                             \
	do {                                                                \
		if (!(cond))                                                \
			tu_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

/* Equality of two integers, printing both on failure. */
#define TU_CHECK_EQ(a, b)                                                 \
	do {                                                              \
		long long tu_a_ = (long long)(a), tu_b_ = (long long)(b); \
		if (tu_a_ != tu_b_)                                       \
			tu_fail_at(__FILE__, __LINE__, #a " == " #b,      \
				   "%lld != %lld", tu_a_, tu_b_);         \
	} while (0)

/* On the test thread: fail the cmocka test if any TU_CHECK failed, and reset
 * the counter for the next test. */
#define tu_assert_no_failures()                                            \
	do {                                                               \
		int tu_n_ = atomic_exchange(&tu_failures, 0);              \
		if (tu_n_ != 0)                                            \
			fail_msg("%d check(s) failed in tasks or threads " \
				 "(see stderr)",                           \
				 tu_n_);                                   \
	} while (0)

/* ---- configuration ---------------------------------------------------- */

/* The defaults with n workers. Environment variables are those of the test
 * process; tests that set them unset them again. */
TU_UNUSED static coev_config_t tu_config(unsigned workers)
{
	coev_config_t cfg;

	memset(&cfg, 0, sizeof cfg);
	int rc = coev_config_init(&cfg);
	assert_int_equal(rc, 0);
	cfg.workers = workers;
	return cfg;
}

/* ---- runtimes ---------------------------------------------------------- */

/* A generous deadline for waits that must not time out: a broken runtime
 * then fails a check instead of hanging the binary. */
#define TU_GUARD_S TU_SCALE(30, 40, 50)

TU_UNUSED static coev_time_t tu_guard(void)
{
	return coev_deadline(COEV_SEC(TU_GUARD_S));
}

/* Runs fn(arg) as the main task of a runtime with `workers` workers (0: the
 * defaults, cfg NULL) and returns main's result. */
TU_UNUSED static int tu_run_main(coev_fn fn, void *arg, unsigned workers)
{
	if (workers == 0)
		return coev_run(fn, arg, NULL);
	coev_config_t cfg = tu_config(workers);
	return coev_run(fn, arg, &cfg);
}

/* A started runtime with `workers` workers (asserted). */
TU_UNUSED static coev_rt_t *tu_new_rt(unsigned workers)
{
	coev_config_t cfg = tu_config(workers);
	coev_rt_t *rt = NULL;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_non_null(rt);
	assert_int_equal(coev_rt_workers(rt), workers);
	return rt;
}

/* As a task: sleep until *v >= n (0), or -ETIMEDOUT after the guard. */
TU_UNUSED static int tu_wait_at_least(atomic_int *v, int n)
{
	coev_time_t dl = tu_guard();

	while (atomic_load(v) < n) {
		if (coev_now() > dl)
			return -ETIMEDOUT;
		coev_sleep(COEV_MSEC(1));
	}
	return 0;
}

/* As a task: yield until *p is set, and return it (the handle of a peer
 * spawned after this task). */
TU_UNUSED static coev_task_t *tu_wait_task_ptr(_Atomic(coev_task_t *) *p)
{
	coev_task_t *t;

	while ((t = atomic_load(p)) == NULL)
		coev_yield();
	return t;
}

/* As a plain thread: nap until *v >= n (0), or -ETIMEDOUT after the
 * guard. */
TU_UNUSED static int tu_thread_wait_at_least(atomic_int *v, int n)
{
	coev_time_t dl = tu_guard();

	while (atomic_load(v) < n) {
		if (coev_now() > dl)
			return -ETIMEDOUT;
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* ---- waiting on the runtime's own state --------------------------------- */

/* One snapshot of rt's tasks (coev_rt_tasks; rt NULL: the calling task's
 * runtime) in *out (malloc'd; the caller frees it). Returns the number of
 * tasks, or a negative errno. */
TU_UNUSED static int tu_tasks(coev_rt_t *rt, coev_task_info_t **out)
{
	coev_task_info_t *a = NULL;
	size_t cap = 16;
	int n;

	*out = NULL;
	if (!rt)
		rt = coev_rt_current();
	for (;;) {
		free(a);
		a = malloc(cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		n = coev_rt_tasks(rt, a, cap);
		if (n < 0 || (size_t)n <= cap)
			break;
		cap = (size_t)n * 2;
	}
	if (n < 0) {
		free(a);
		a = NULL;
	}
	*out = a;
	return n;
}

/* t's line in one snapshot of rt's tasks (rt NULL: the calling task's
 * runtime). Returns 1 when listed, 0 when not (released), or a negative
 * errno. */
TU_UNUSED static int tu_task_info(coev_rt_t *rt, const coev_task_t *t,
				  coev_task_info_t *out)
{
	uint64_t id = coev_task_id(t);
	coev_task_info_t *a = NULL;
	int found = 0;
	int n = tu_tasks(rt, &a);

	for (int i = 0; i < n; i++)
		if (a[i].id == id) {
			*out = a[i];
			found = 1;
			break;
		}
	free(a);
	return n < 0 ? n : found;
}

/* Between two looks of a bounded poll: a task yields for its first 64
 * looks, then sleeps 1 ms; a plain thread naps 50 us, then 1 ms. */
TU_UNUSED static void tu_look_pause(int look)
{
	if (coev_self()) {
		if (look < 64)
			coev_yield();
		else
			coev_sleep(COEV_MSEC(1));
	} else {
		struct timespec ts = {0, look < 64 ? 50000L : 1000000L};
		nanosleep(&ts, NULL);
	}
}

/*
 * Until task t (a handle not yet joined) is parked waiting on (kind, obj),
 * COEV_WAIT_*, obj NULL for any object of that kind. The layer that queues
 * a waiter notes what it waits on after queueing it (sync/: in the
 * object's wait queue, sched/internal.h's coev__wait_note), and the task
 * shows as parked only once it has switched out; so a task seen parked on
 * a semaphore is in that semaphore's queue, behind every task seen there
 * before it. Returns 0; -ESRCH when t ended (or was released) first;
 * -ETIMEDOUT after the guard. From a task of rt (rt may be NULL; it yields,
 * then naps 1 ms, between looks) or from a plain thread (rt needed).
 * tu_wait_parked_unless: the same, but returns 1 as soon as *flag is set
 * (say, t got what it asked for without waiting).
 */
TU_UNUSED static int tu_wait_parked_unless(coev_rt_t *rt, const coev_task_t *t,
					   int kind, const void *obj,
					   atomic_int *flag)
{
	coev_time_t dl = tu_guard();
	coev_task_info_t in;

	for (int look = 0;; look++) {
		int r = tu_task_info(rt, t, &in);
		if (r < 0)
			return r;
		if (r == 1 && in.state == COEV_TASK_WAITING &&
		    in.wait == kind && (!obj || in.obj == obj))
			return 0;
		if (flag && atomic_load(flag))
			return 1;
		if (r == 0 || in.state == COEV_TASK_DONE)
			return -ESRCH;
		if (coev_now() > dl)
			return -ETIMEDOUT;
		tu_look_pause(look);
	}
}

TU_UNUSED static int tu_wait_parked(coev_rt_t *rt, const coev_task_t *t,
				    int kind, const void *obj)
{
	return tu_wait_parked_unless(rt, t, kind, obj, NULL);
}

/* Until at least n tasks of rt are parked waiting on (kind, obj) (obj NULL:
 * any object of that kind), as tu_wait_parked sees one. Returns 0, or
 * -ETIMEDOUT after the guard. From a task (rt may be NULL) or a plain
 * thread (rt needed). One snapshot per look: for many waiters at once. */
TU_UNUSED static int tu_wait_parked_n(coev_rt_t *rt, int kind, const void *obj,
				      int n)
{
	coev_time_t dl = tu_guard();

	for (int look = 0;; look++) {
		coev_task_info_t *a = NULL;
		int m = tu_tasks(rt, &a), c = 0;
		if (m < 0)
			return m;
		for (int i = 0; i < m; i++)
			c += a[i].state == COEV_TASK_WAITING &&
			     a[i].wait == kind && (!obj || a[i].obj == obj);
		free(a);
		if (c >= n)
			return 0;
		if (coev_now() > dl)
			return -ETIMEDOUT;
		tu_look_pause(look);
	}
}

/* Where a plain thread waits: its id, and the frame of the function that
 * makes the coev call (every frame of the wait lies below it). */
typedef struct tu_thread_at {
	pid_t tid;
	uintptr_t frame;
} tu_thread_at_t;

/* In a plain thread, in the function that then calls the coev wait, before
 * it publishes that it is about to wait. */
#define TU_THREAD_AT(at)                                             \
	do {                                                         \
		(at)->tid = (pid_t)syscall(SYS_gettid);              \
		(at)->frame = (uintptr_t)__builtin_frame_address(0); \
	} while (0)

/* 1 when the thread is blocked in a futex wait on a word within 1 MiB
 * below at->frame, 0 when not, -1 when its state cannot be read. */
TU_UNUSED static int tu_thread_in_wait(const tu_thread_at_t *at)
{
	char path[64], buf[256];
	long nr;
	unsigned long uaddr;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)at->tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof buf, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	if (sscanf(buf, "%ld 0x%lx", &nr, &uaddr) != 2)
		return 0; /* "running" */
	return nr == SYS_futex && uaddr < at->frame &&
	       uaddr > at->frame - (1u << 20);
}

/*
 * Until the plain thread marked by TU_THREAD_AT(at) is blocked in its coev
 * wait: a waiting thread sleeps on the condition variable of its waiter
 * (sched/internal.h, coev__waiter_t), which lives in the waiting call's
 * frame and is queued before the thread sleeps; before it is queued the
 * thread makes no futex wait on its own stack. Returns 0, or -ETIMEDOUT
 * after the guard (-EIO when /proc cannot say). From a task or a thread.
 */
TU_UNUSED static int tu_wait_thread_parked(const tu_thread_at_t *at)
{
	coev_time_t dl = tu_guard();

	for (;;) {
		int r = tu_thread_in_wait(at);
		if (r < 0)
			return -EIO;
		if (r)
			return 0;
		if (coev_now() > dl)
			return -ETIMEDOUT;
		if (coev_self()) {
			coev_sleep(COEV_MSEC(1));
		} else {
			struct timespec ts = {0, 1000000L};
			nanosleep(&ts, NULL);
		}
	}
}

/* ---- time helpers (never used for upper-bound assertions) ------------- */

TU_UNUSED static void tu_spin_ns(coev_time_t ns)
{
	coev_time_t end = coev_now() + ns;
	volatile unsigned sink = 0;

	while (coev_now() < end) {
		for (int i = 0; i < 64; i++)
			sink += (unsigned)i;
	}
	(void)sink;
}

TU_UNUSED static void tu_nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ---- fds, threads, temporary directories ------------------------------ */

/* Entries of a /proc/self directory (not counting the fd reading it), or
 * -1 when it cannot be read. */
TU_UNUSED static int tu_proc_entries(const char *dir, int skip_own_fd)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	int own = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (skip_own_fd && atoi(e->d_name) == own)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

/* Open fds of the process. */
TU_UNUSED static int tu_fd_count(void)
{
	return tu_proc_entries("/proc/self/fd", 1);
}

/* Threads of the process. */
TU_UNUSED static int tu_thread_count(void)
{
	return tu_proc_entries("/proc/self/task", 0);
}

/* Prints every open fd and what it refers to (for leak reports). */
TU_UNUSED static void tu_fd_dump(const char *why)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	fprintf(stderr, "---- open fds (%s) ----\n", why);
	if (!d)
		return;
	int own = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], target[256];
		if (e->d_name[0] == '.' || atoi(e->d_name) == own)
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof target - 1);
		target[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "  %s -> %s\n", e->d_name, target);
	}
	closedir(d);
}

/*
 * Fd leak checking: register a test with TU_FD_TEST(test_x) instead of
 * cmocka_unit_test(test_x). The wrapper counts the open fds before and
 * after test_x and fails the test (as a cmocka failure, with the list of
 * open fds on stderr) when the counts differ. test_x's *state is NULL.
 */
typedef struct tu_fd_test {
	void (*fn)(void **state);
} tu_fd_test_t;

TU_UNUSED static void tu_fd_checked(void **state)
{
	const tu_fd_test_t *t = *state;
	void *inner = NULL;
	int before = tu_fd_count();

	assert_true(before >= 0);
	t->fn(&inner);
	int after = tu_fd_count();
	if (after != before) {
		tu_fd_dump("after the test");
		fail_msg("fd leak check: %d fds open before the test, %d after",
			 before, after);
	}
}

/* (clang-format would spread the initializer over seven lines.) */
/* clang-format off */
#define TU_FD_TEST(f) \
	{#f, tu_fd_checked, NULL, NULL, (void *)&(tu_fd_test_t){f}}
/* clang-format on */

/* Makes the soft RLIMIT_NOFILE at least want, raising the hard limit when
 * it is lower (needs CAP_SYS_RESOURCE). Returns 0 or a negative errno;
 * *old (may be NULL) receives the limits found, for restoring. */
TU_UNUSED static int tu_raise_nofile(rlim_t want, struct rlimit *old)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	if (old)
		*old = rl;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		rl.rlim_max = want;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	return 0;
}

/* Creates a private directory under $TMPDIR (or /tmp) and stores its path
 * in buf (at least 64 bytes). Returns 0 or -1. */
TU_UNUSED static int tu_mkdtemp(char *buf, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	int n = snprintf(buf, size, "%s/coev-test-XXXXXX", tmp);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(buf) ? 0 : -1;
}

/* Removes dir and the files directly in it. Returns 0 or -1. */
TU_UNUSED static int tu_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(dir);
}

/* ---- death tests ------------------------------------------------------ */

#define TU_CHILD_OUT_MAX (64 * 1024)

typedef struct tu_child {
	int status;		    /* from waitpid() */
	int timed_out;		    /* 1 when the child had to be killed */
	size_t len;		    /* bytes in out, without the NUL */
	char out[TU_CHILD_OUT_MAX]; /* the child's stderr, NUL-terminated */
} tu_child_t;

/* Seconds before a child that never ends is killed. */
#define TU_CHILD_LIMIT_S TU_SCALE(60, 120, 170)

/*
 * Runs fn(arg) in a forked child whose stderr goes into res->out. When fn
 * returns the child exits with status 0. The parent waits for the child,
 * killing it after TU_CHILD_LIMIT_S seconds. Returns 0, or -1 when fork or
 * pipe failed. Call it from the test thread while no runtime is alive, so
 * that the child is the child of a single-threaded process.
 */
TU_UNUSED static int tu_run_in_child(void (*fn)(void *), void *arg,
				     tu_child_t *res)
{
	int fds[2];

	memset(res, 0, sizeof *res);
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		static const int sigs[] = {SIGSEGV, SIGBUS,  SIGILL,
					   SIGFPE,  SIGABRT, SIGSYS};
		struct rlimit no_core = {0, 0};
		sigset_t none;

		close(fds[0]);
		dup2(fds[1], 2);
		close(fds[1]);
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
			signal(sigs[i], SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setrlimit(RLIMIT_CORE, &no_core);
		fn(arg);
		fflush(stdout);
		fflush(stderr);
		_exit(0);
	}
	close(fds[1]);

	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long waited_ms = (now.tv_sec - start.tv_sec) * 1000L +
				 (now.tv_nsec - start.tv_nsec) / 1000000L;
		long left_ms = (long)TU_CHILD_LIMIT_S * 1000L - waited_ms;
		if (left_ms <= 0) {
			res->timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		int pr = poll(&p, 1, (int)(left_ms > 1000 ? 1000 : left_ms));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		char buf[4096];
		ssize_t n = read(fds[0], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EOF: every copy of the write end is closed */
		size_t room = sizeof res->out - 1 - res->len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(res->out + res->len, buf, take);
		res->len += take;
	}
	close(fds[0]);
	res->out[res->len] = '\0';
	while (waitpid(pid, &res->status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Prints the child's captured stderr, indented, to the test's stderr. */
TU_UNUSED static void tu_child_dump(const tu_child_t *res)
{
	fprintf(stderr,
		"---- child stderr (%zu bytes)%s ----\n%s\n---- end ----\n",
		res->len, res->timed_out ? ", killed after the time limit" : "",
		res->out);
}

/* True when the child was killed by signal sig. */
TU_UNUSED static int tu_child_signaled(const tu_child_t *res, int sig)
{
	return WIFSIGNALED(res->status) && WTERMSIG(res->status) == sig;
}

/* ---- stack guards: regions or the fallback ------------------------------- */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/*
 * Whether sched/stack.c guards this process's stacks with guard regions:
 * the library's own decision, made the same way: not when
 * COEV_STACK_GUARD=mprotect forces the fallback, else by trying
 * MADV_GUARD_INSTALL on a scratch page (EINVAL: a kernel without them).
 */
TU_UNUSED static int tu_stack_guard_regions(void)
{
	const char *v = getenv("COEV_STACK_GUARD");
	long page = sysconf(_SC_PAGESIZE);
	void *m;
	int ok;

	if (v && strcmp(v, "mprotect") == 0)
		return 0;
	m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return 1; /* the library's answer too */
	ok = madvise(m, (size_t)page, MADV_GUARD_INSTALL) == 0 ||
	     errno != EINVAL;
	munmap(m, 2 * (size_t)page);
	return ok;
}

/*
 * Called at the end of main with the suite's result rc: unless
 * COEV_STACK_GUARD is set, runs this binary again (argv) with
 * COEV_STACK_GUARD=mprotect, writing where this one writes, so that its
 * cmocka summary is counted with this one's, and returns rc, or 1 when
 * the second run failed. The library reads the variable once per
 * process, hence a new process; under valgrind the second run is not
 * traced (run it there with the variable set).
 */
TU_UNUSED static int tu_rerun_fallback(char **argv, int rc)
{
	pid_t pid;
	int st;

	if (getenv("COEV_STACK_GUARD"))
		return rc;
	printf("---- again with COEV_STACK_GUARD=mprotect ----\n");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		setenv("COEV_STACK_GUARD", "mprotect", 1);
		execv(argv[0], argv);
		perror("execv");
		_exit(127);
	}
	if (pid < 0)
		return 1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 1;
	return rc;
}

/* ---- loop callbacks (white-box) ----------------------------------------- */

#ifdef TU_LOOP_CALLS
#include "sched/internal.h"

typedef struct tu_loop_call {
	coev__timer_t tm;
	void (*fn)(void *arg);
	void *arg;
	atomic_int done;
} tu_loop_call_t;

TU_UNUSED static void tu_loop_fire(coev__timer_t *tm)
{
	tu_loop_call_t *c = tm->data;

	/* A loop callback: on a worker thread, outside any task. */
	TU_CHECK(coev_worker_id() >= 0);
	TU_CHECK(coev_self() == NULL);
	c->fn(c->arg);
	atomic_store(&c->done, 1);
}

/* As a task: runs fn(arg) from a timer callback of the calling worker's
 * loop (due at once) and sleeps until it has run. Returns 0, or
 * -ETIMEDOUT after the guard (the record is then leaked: the timer may
 * still fire). */
TU_UNUSED static int tu_on_loop(void (*fn)(void *arg), void *arg)
{
	tu_loop_call_t *c = calloc(1, sizeof *c);

	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->tm.fire = tu_loop_fire;
	c->tm.data = c;
	/* No switch between reading the worker and arming its timer: the
	 * task is on that worker's thread. */
	coev__plat_timer_arm(coev__worker_self(), &c->tm, coev_now());
	int rc = tu_wait_at_least(&c->done, 1);
	if (rc == 0)
		free(c);
	return rc;
}
#endif

#endif
