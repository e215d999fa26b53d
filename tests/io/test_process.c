/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_process.c — subprocesses (io/process.c): output read
 * from a pipe (/bin/echo), a round trip through two pipes (/bin/cat,
 * more bytes than a pipe holds, written and read by two tasks), exit
 * statuses, a child killed by a signal, programs that cannot be started
 * (an error of the spawn, not a status), the wait's deadline and
 * cancellation, the working directory and environment, /dev/null, the
 * child's signal state, no fd of the parent in the child (it lists
 * /proc/self/fd), and no zombie left (waitpid(-1, WNOHANG) finds no
 * child) even when the object is freed before its child ends; the same
 * without pidfds (COEV_PIDFD=0). Every test checks that it left no fd
 * open in the parent.
 */
#include "tests/testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#define BIG (256 * 1024) /* bytes through cat: four pipe buffers */

static int run(coev_fn fn)
{
	return tu_run_main(fn, NULL, 2);
}

/* No child of this process is left, reaped or not. */
static void assert_no_child(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Everything the fd gives until end of file, into buf (cap bytes, kept
 * NUL-terminated). Returns the count or a negative code. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = coev_read(fd, buf + n, cap - 1 - n, tu_guard());
		if (r < 0)
			return r;
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* Spawn argv with stdout on a pipe, read all of it and wait: returns the
 * wait status, the output in out. */
static int output_of(char *const argv[], coev_process_opts_t *opts, char *out,
		     size_t cap)
{
	coev_process_opts_t o = {0};
	coev_process_t *p;
	int st = -1;

	if (!opts)
		opts = &o;
	opts->stdio[1] = COEV_STDIO_PIPE;
	TU_CHECK_EQ(coev_process_spawn(argv, opts, &p), 0);
	TU_CHECK(read_all(coev_process_fd(p, 1), out, cap) >= 0);
	TU_CHECK_EQ(coev_process_wait(p, &st, tu_guard()), 0);
	coev_process_free(p);
	return st;
}

/* ---- output, round trip, statuses -------------------------------------- */

static int echo_main(void *arg)
{
	char *argv[] = {"/bin/echo", "hello", "world", NULL};
	char out[256];
	int st;

	(void)arg;
	st = output_of(argv, NULL, out, sizeof out);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	TU_CHECK_MSG(strcmp(out, "hello world\n") == 0, "got '%s'", out);
	return 0;
}

static void test_process_echo(void **state)
{
	(void)state;
	assert_int_equal(run(echo_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

static int feeder(void *arg)
{
	coev_process_t *p = arg;
	int fd = coev_process_take_fd(p, 0);
	char *buf = malloc(BIG);
	size_t done = 0;
	ssize_t r;

	for (size_t i = 0; i < BIG; i++)
		buf[i] = (char)('a' + i % 23);
	r = coev_write_all(fd, buf, BIG, &done, tu_guard());
	TU_CHECK_EQ(r, BIG);
	close(fd); /* cat's end of input */
	free(buf);
	return 0;
}

static int cat_main(void *arg)
{
	char *argv[] = {"cat", NULL}; /* found through PATH */
	coev_process_opts_t o = {.stdio = {COEV_STDIO_PIPE, COEV_STDIO_PIPE,
					   COEV_STDIO_INHERIT}};
	coev_process_t *p;
	coev_task_t *t;
	char *out = malloc(BIG + 2);
	int st, res;

	(void)arg;
	TU_CHECK_EQ(coev_process_spawn(argv, &o, &p), 0);
	TU_CHECK(coev_process_pid(p) > 0);
	TU_CHECK_EQ(coev_spawn(feeder, p, &t), 0);
	TU_CHECK_EQ(read_all(coev_process_fd(p, 1), out, BIG + 2), BIG);
	for (size_t i = 0; i < BIG; i++)
		if (out[i] != (char)('a' + i % 23)) {
			TU_CHECK_MSG(0, "byte %zu differs", i);
			break;
		}
	TU_CHECK_EQ(coev_join(t, &res), 0);
	TU_CHECK_EQ(coev_process_wait(p, &st, tu_guard()), 0);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Taken ends are no longer the process's. */
	TU_CHECK_EQ(coev_process_fd(p, 0), -EBADF);
	TU_CHECK_EQ(coev_process_fd(p, 2), -EBADF);
	coev_process_free(p);
	free(out);
	return 0;
}

static void test_process_cat_round_trip(void **state)
{
	(void)state;
	assert_int_equal(run(cat_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

static int status_main(void *arg)
{
	char *argv[] = {"sh", "-c", "exit 3", NULL};
	coev_process_t *p;
	int st = 0, st2 = 0;

	(void)arg;
	TU_CHECK_EQ(coev_process_spawn(argv, NULL, &p), 0);
	TU_CHECK_EQ(coev_process_wait(p, &st, tu_guard()), 0);
	TU_CHECK(WIFEXITED(st));
	TU_CHECK_EQ(WEXITSTATUS(st), 3);
	/* Reaped once; asked again, the same status at once. */
	TU_CHECK_EQ(coev_process_wait(p, &st2, 0), 0);
	TU_CHECK_EQ(st2, st);
	TU_CHECK_EQ(coev_process_signal(p, SIGTERM), -ESRCH);
	coev_process_free(p);
	return 0;
}

static void test_process_exit_status(void **state)
{
	(void)state;
	assert_int_equal(run(status_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

static int killed_main(void *arg)
{
	char *argv[] = {"sleep", "30", NULL};
	coev_process_t *p;
	coev_time_t t0;
	int st;

	(void)arg;
	TU_CHECK_EQ(coev_process_spawn(argv, NULL, &p), 0);
	/* The deadline: the child sleeps on. */
	t0 = coev_now();
	TU_CHECK_EQ(coev_process_wait(p, &st, coev_deadline(COEV_MSEC(50))),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(50));
	TU_CHECK_EQ(coev_process_wait(p, &st, 0), -ETIMEDOUT);
	TU_CHECK_EQ(coev_process_signal(p, SIGTERM), 0);
	TU_CHECK_EQ(coev_process_wait(p, &st, tu_guard()), 0);
	TU_CHECK(WIFSIGNALED(st));
	TU_CHECK_EQ(WTERMSIG(st), SIGTERM);
	TU_CHECK(coev_now() - t0 < COEV_SEC(10));
	coev_process_free(p);
	return 0;
}

static void test_process_killed_and_deadline(void **state)
{
	(void)state;
	assert_int_equal(run(killed_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

/* Lines in through one stream, out through another: sh reads each line
 * of its input and answers it, and the end of input comes from the
 * input stream's shutdown. */
static int streams_main(void *arg)
{
	char *argv[] = {"sh", "-c",
			"while read -r l; do echo \"got $l\"; done; echo end",
			NULL};
	coev_process_opts_t o = {.stdio = {COEV_STDIO_PIPE, COEV_STDIO_PIPE,
					   COEV_STDIO_INHERIT}};
	coev_process_t *p;
	coev_stream_t *in, *out;
	char line[64], want[64];
	int st;

	(void)arg;
	TU_CHECK_EQ(coev_process_spawn(argv, &o, &p), 0);
	TU_CHECK_EQ(coev_process_stream(p, 0, 0, &in), 0);
	TU_CHECK_EQ(coev_process_stream(p, 1, 0, &out), 0);
	TU_CHECK_EQ(coev_process_stream(p, 1, 0, &out), -EBADF);
	TU_CHECK_EQ(coev_process_stream(p, 2, 0, &out), -EBADF);
	for (int i = 0; i < 100; i++) {
		int n = snprintf(line, sizeof line, "line %d\n", i);
		TU_CHECK_EQ(coev_stream_write(in, line, (size_t)n, NULL,
					      tu_guard()),
			    n);
		TU_CHECK_EQ(coev_stream_flush(in, tu_guard()), 0);
		n = snprintf(want, sizeof want, "got line %d\n", i);
		TU_CHECK_EQ(coev_stream_read_line(out, line, sizeof line,
						  tu_guard()),
			    n);
		TU_CHECK(memcmp(line, want, (size_t)n) == 0);
	}
	TU_CHECK_EQ(coev_stream_shutdown(in, tu_guard()), 0);
	TU_CHECK_EQ(coev_stream_read_line(out, line, sizeof line, tu_guard()),
		    4);
	TU_CHECK(memcmp(line, "end\n", 4) == 0);
	TU_CHECK_EQ(coev_stream_read_line(out, line, sizeof line, tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(coev_process_wait(p, &st, tu_guard()), 0);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	coev_stream_close(in);
	coev_stream_close(out);
	coev_process_free(p);
	return 0;
}

static void test_process_streams(void **state)
{
	(void)state;
	assert_int_equal(run(streams_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

/* ---- programs that cannot start ---------------------------------------- */

static int missing_main(void *arg)
{
	char *abs[] = {"/nonexistent/coev-no-such-program", NULL};
	char *path[] = {"coev-no-such-program", NULL};
	char dir[128], noexec_path[160], garbage_path[160];
	char *noexec[] = {noexec_path, NULL};
	char *garbage[] = {garbage_path, NULL};
	char *empty[] = {NULL};
	coev_process_opts_t bad_cwd = {.cwd = "/nonexistent/dir"};
	coev_process_opts_t bad_mode = {.stdio = {0, 7, 0}};
	char *ok[] = {"true", NULL};
	coev_process_t *p = NULL;

	(void)arg;
	/* A file without execute permission, and one with it that is no
	 * program. */
	TU_CHECK_EQ(tu_mkdtemp(dir, sizeof dir), 0);
	snprintf(noexec_path, sizeof noexec_path, "%s/text", dir);
	snprintf(garbage_path, sizeof garbage_path, "%s/garbage", dir);
	for (int i = 0; i < 2; i++) {
		int fd = open(i ? garbage_path : noexec_path,
			      O_WRONLY | O_CREAT | O_CLOEXEC, i ? 0700 : 0600);
		TU_CHECK(fd >= 0);
		TU_CHECK_EQ(write(fd,
				  "\x7f"
				  "ELF garbage",
				  12),
			    12);
		close(fd);
	}
	TU_CHECK_EQ(coev_process_spawn(noexec, NULL, &p), -EACCES);
	TU_CHECK_EQ(coev_process_spawn(garbage, NULL, &p), -ENOEXEC);
	tu_rmtree(dir);
	TU_CHECK_EQ(coev_process_spawn(abs, NULL, &p), -ENOENT);
	TU_CHECK_EQ(coev_process_spawn(path, NULL, &p), -ENOENT);
	TU_CHECK_EQ(coev_process_spawn(ok, &bad_cwd, &p), -ENOENT);
	TU_CHECK_EQ(coev_process_spawn(empty, NULL, &p), -EINVAL);
	TU_CHECK_EQ(coev_process_spawn(NULL, NULL, &p), -EINVAL);
	TU_CHECK_EQ(coev_process_spawn(ok, &bad_mode, &p), -EINVAL);
	TU_CHECK_EQ(coev_process_spawn(ok, NULL, NULL), -EINVAL);
	TU_CHECK(p == NULL);
	TU_CHECK_EQ(coev_process_wait(NULL, NULL, 0), -EINVAL);
	TU_CHECK_EQ(coev_process_signal(NULL, SIGTERM), -EINVAL);
	coev_process_free(NULL);
	return 0;
}

static void test_process_cannot_start_is_an_error(void **state)
{
	(void)state;
	assert_int_equal(run(missing_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

/* ---- options --------------------------------------------------------------- */

static int opts_main(void *arg)
{
	char *argv[] = {"sh", "-c", "pwd; echo \"$COEV_T\"; cat", NULL};
	char *envp[] = {"COEV_T=from-envp", "PATH=/usr/bin:/bin", NULL};
	coev_process_opts_t o = {
		.envp = envp, .cwd = "/", .stdio = {COEV_STDIO_NULL}};
	char out[256];
	int st;

	(void)arg;
	st = output_of(argv, &o, out, sizeof out);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* cat read /dev/null: nothing after the two lines. */
	TU_CHECK_MSG(strcmp(out, "/\nfrom-envp\n") == 0, "got '%s'", out);
	return 0;
}

static void test_process_cwd_env_devnull(void **state)
{
	(void)state;
	assert_int_equal(run(opts_main), 0);
	tu_assert_no_failures();
}

/* The child gets fds 0-2 only: not the fd opened here without
 * O_CLOEXEC, nor the fds the test runner left open. ls lists the fds
 * it has, its own directory fd (3) included. Nor does it inherit the
 * runtime's ignored SIGPIPE or a blocked signal. */
static int fds_main(void *arg)
{
	char *ls[] = {"ls", "-1", "/proc/self/fd", NULL};
	char *sig[] = {"sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status",
		       NULL};
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
	sigset_t usr2, was;
	char out[512];
	int st;

	(void)arg;
	TU_CHECK(leak >= 0);
	st = output_of(ls, NULL, out, sizeof out);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	TU_CHECK_MSG(strcmp(out, "0\n1\n2\n3\n") == 0, "the child has: %s",
		     out);
	close(leak);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &was);
	st = output_of(sig, NULL, out, sizeof out);
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	TU_CHECK_MSG(strstr(out, "SigBlk:\t0000000000000000\n"),
		     "the child has: %s", out);
	/* glibc keeps its two internal signals (32, 33) as they are; the
	 * check is on SIGPIPE, which the runtime ignores here. */
	const char *ign = strstr(out, "SigIgn:\t");
	struct sigaction here;
	TU_CHECK_EQ(sigaction(SIGPIPE, NULL, &here), 0);
	TU_CHECK(here.sa_handler == SIG_IGN);
	TU_CHECK(ign != NULL);
	if (ign) {
		unsigned long long mask = strtoull(ign + 8, NULL, 16);
		TU_CHECK_MSG(!(mask & (1ull << (SIGPIPE - 1))),
			     "the child ignores SIGPIPE: %s", out);
	}
	return 0;
}

static void test_process_no_fd_or_signal_state_leaks(void **state)
{
	(void)state;
	assert_int_equal(run(fds_main), 0);
	tu_assert_no_failures();
}

/* ---- no zombie ------------------------------------------------------------- */

static int waiter(void *arg)
{
	return coev_process_wait(arg, NULL, COEV_FOREVER);
}

static int zombie_main(void *arg)
{
	char *argv[] = {"sleep", "30", NULL};
	coev_process_opts_t o = {
		.stdio = {COEV_STDIO_PIPE, COEV_STDIO_PIPE, COEV_STDIO_PIPE}};
	coev_process_t *p;
	coev_task_t *t;
	char proc[64];
	int res;

	(void)arg;
	/* Freed while it runs, its pipes still open: killed and reaped. */
	TU_CHECK_EQ(coev_process_spawn(argv, &o, &p), 0);
	snprintf(proc, sizeof proc, "/proc/%d", (int)coev_process_pid(p));
	TU_CHECK(access(proc, F_OK) == 0);
	coev_process_free(p);
	TU_CHECK(access(proc, F_OK) != 0);
	/* A cancelled wait leaves the child; the free ends it. */
	TU_CHECK_EQ(coev_process_spawn(argv, NULL, &p), 0);
	TU_CHECK_EQ(coev_spawn(waiter, p, &t), 0);
	coev_sleep(COEV_MSEC(5));
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &res), 0);
	TU_CHECK_EQ(res, -ECANCELED);
	coev_process_free(p);
	return 0;
}

static void test_process_no_zombie_after_free(void **state)
{
	(void)state;
	assert_int_equal(run(zombie_main), 0);
	tu_assert_no_failures();
	assert_no_child();
}

static void test_process_wait_needs_a_task(void **state)
{
	char *argv[] = {"true", NULL};
	coev_process_t *p;

	(void)state;
	assert_int_equal(coev_process_spawn(argv, NULL, &p), 0);
	assert_int_equal(coev_process_wait(p, NULL, 0), COEV_ENOTCORO);
	coev_process_free(p);
	assert_no_child();
}

/* Without pidfds (COEV_PIDFD=0, the path of kernels before 5.3): the
 * same statuses, deadline and signals, with waits that look at
 * intervals. */
static void test_process_without_pidfd(void **state)
{
	(void)state;
	setenv("COEV_PIDFD", "0", 1);
	assert_int_equal(run(status_main), 0);
	assert_int_equal(run(killed_main), 0);
	assert_int_equal(run(cat_main), 0);
	assert_int_equal(run(zombie_main), 0);
	unsetenv("COEV_PIDFD");
	tu_assert_no_failures();
	assert_no_child();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_process_echo),
		TU_FD_TEST(test_process_cat_round_trip),
		TU_FD_TEST(test_process_streams),
		TU_FD_TEST(test_process_exit_status),
		TU_FD_TEST(test_process_killed_and_deadline),
		TU_FD_TEST(test_process_cannot_start_is_an_error),
		TU_FD_TEST(test_process_cwd_env_devnull),
		TU_FD_TEST(test_process_no_fd_or_signal_state_leaks),
		TU_FD_TEST(test_process_no_zombie_after_free),
		TU_FD_TEST(test_process_wait_needs_a_task),
		TU_FD_TEST(test_process_without_pidfd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
