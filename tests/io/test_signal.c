/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_signal.c — awaitable signals (io/signal.c): signals
 * raised by the process itself, by another thread that takes them, and
 * by a child process, each delivered to a waiting task; deliveries
 * counted while nobody waits; every watch sees every delivery; the
 * deadline and cancellation; the old disposition back after the last
 * watch; signals that cannot be watched. Every test checks that it left
 * no fd open (the eventfd is closed with the last watch) and no thread
 * running (the dispatcher is joined).
 */
#include "tests/testutil.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

/* A watch of one signal. */
static int watch1(int s, coev_signal_t **w)
{
	return coev_signal_new(&s, 1, w);
}

static int run(coev_fn fn, void *arg)
{
	return tu_run_main(fn, arg, 2);
}

/* ---- raised by the process ------------------------------------------ */

static int self_main(void *arg)
{
	coev_signal_t *w;
	coev_siginfo_t info;

	(void)arg;
	TU_CHECK_EQ(watch1(SIGUSR1, &w), 0);
	TU_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
	memset(&info, 0, sizeof info);
	TU_CHECK_EQ(coev_signal_wait(w, &info, tu_guard()), SIGUSR1);
	TU_CHECK_EQ(info.signo, SIGUSR1);
	TU_CHECK_EQ(info.code, SI_USER);
	TU_CHECK_EQ(info.pid, getpid());
	TU_CHECK_EQ(info.uid, getuid());
	/* Nothing more: a wait that only looks finds nothing. */
	TU_CHECK_EQ(coev_signal_wait(w, NULL, 0), -ETIMEDOUT);
	coev_signal_free(w);
	return 0;
}

static void test_signal_kill_self(void **state)
{
	(void)state;
	assert_int_equal(run(self_main, NULL), 0);
	tu_assert_no_failures();
}

/* Deliveries while nobody waits are counted, one per wait. raise()
 * delivers to the calling thread before it returns, so two raises are
 * two deliveries (two kill()s could merge while pending). */
static int count_main(void *arg)
{
	static const int sigs[] = {SIGUSR1, SIGUSR2, SIGUSR1};
	coev_signal_t *w;

	(void)arg;
	TU_CHECK_EQ(coev_signal_new(sigs, 3, &w), 0);
	TU_CHECK_EQ(raise(SIGUSR1), 0);
	TU_CHECK_EQ(raise(SIGUSR2), 0);
	TU_CHECK_EQ(raise(SIGUSR1), 0);
	int got1 = 0, got2 = 0;
	for (int i = 0; i < 3; i++) {
		int s = coev_signal_wait(w, NULL, tu_guard());
		got1 += s == SIGUSR1;
		got2 += s == SIGUSR2;
	}
	TU_CHECK_EQ(got1, 2);
	TU_CHECK_EQ(got2, 1);
	TU_CHECK_EQ(coev_signal_wait(w, NULL, 0), -ETIMEDOUT);
	coev_signal_free(w);
	return 0;
}

static void test_signal_deliveries_counted(void **state)
{
	(void)state;
	assert_int_equal(run(count_main, NULL), 0);
	tu_assert_no_failures();
}

/* ---- taken by another thread ------------------------------------------ */

/* A plain thread that only waits to be told to stop: the kernel runs the
 * handler on it when it is the target. */
static atomic_int bystander_stop;

static void *bystander(void *arg)
{
	(void)arg;
	while (!atomic_load(&bystander_stop))
		tu_nap_ms(1);
	return NULL;
}

typedef struct targets {
	pthread_t host, plain;
	atomic_int waiting;
} targets_t;

static int waiter_task(void *arg)
{
	coev_signal_t *w = arg;

	return coev_signal_wait(w, NULL, tu_guard());
}

/* A task waits while the signal goes to one chosen thread: the host
 * thread (in coev_run), a plain thread, a worker. */
static int threads_main(void *arg)
{
	targets_t *tg = arg;
	coev_signal_t *w;
	coev_task_t *t;
	pthread_t self = pthread_self(); /* this worker's thread */
	pthread_t to[3] = {tg->host, tg->plain, self};
	int res;

	TU_CHECK_EQ(watch1(SIGUSR2, &w), 0);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_spawn(waiter_task, w, &t), 0);
		/* Let it park (not needed for correctness: a delivery
		 * before the wait is counted too). */
		coev_sleep(COEV_MSEC(5));
		TU_CHECK_EQ(pthread_kill(to[i], SIGUSR2), 0);
		TU_CHECK_EQ(coev_join(t, &res), 0);
		TU_CHECK_MSG(res == SIGUSR2, "target %d: wait returned %d", i,
			     res);
	}
	coev_signal_free(w);
	return 0;
}

static void test_signal_any_thread_takes_it(void **state)
{
	targets_t tg;

	(void)state;
	tg.host = pthread_self();
	atomic_store(&bystander_stop, 0);
	assert_int_equal(pthread_create(&tg.plain, NULL, bystander, NULL), 0);
	assert_int_equal(run(threads_main, &tg), 0);
	atomic_store(&bystander_stop, 1);
	pthread_join(tg.plain, NULL);
	tu_assert_no_failures();
}

/* ---- from a child ------------------------------------------------------ */

static int child_main(void *arg)
{
	coev_signal_t *w;
	coev_siginfo_t info;
	pid_t pid, parent = getpid();
	int st;

	(void)arg;
	TU_CHECK_EQ(watch1(SIGUSR1, &w), 0);
	pid = fork();
	if (pid == 0) {
		kill(parent, SIGUSR1);
		_exit(0);
	}
	TU_CHECK(pid > 0);
	TU_CHECK_EQ(coev_signal_wait(w, &info, tu_guard()), SIGUSR1);
	TU_CHECK_EQ(info.pid, pid);
	TU_CHECK_EQ(waitpid(pid, &st, 0), pid);
	coev_signal_free(w);
	return 0;
}

static void test_signal_from_child(void **state)
{
	(void)state;
	assert_int_equal(run(child_main, NULL), 0);
	tu_assert_no_failures();
}

/* ---- deadline and cancellation ----------------------------------------- */

static int deadline_main(void *arg)
{
	coev_signal_t *w;
	coev_time_t t0;

	(void)arg;
	TU_CHECK_EQ(watch1(SIGUSR1, &w), 0);
	t0 = coev_now();
	TU_CHECK_EQ(coev_signal_wait(w, NULL, coev_deadline(COEV_MSEC(50))),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(50));
	/* A delivery after a failed wait is still returned. */
	TU_CHECK_EQ(raise(SIGUSR1), 0);
	TU_CHECK_EQ(coev_signal_wait(w, NULL, tu_guard()), SIGUSR1);
	coev_signal_free(w);
	return 0;
}

static void test_signal_deadline(void **state)
{
	(void)state;
	assert_int_equal(run(deadline_main, NULL), 0);
	tu_assert_no_failures();
}

static int cancel_main(void *arg)
{
	coev_signal_t *w;
	coev_task_t *t;
	int res;

	(void)arg;
	TU_CHECK_EQ(watch1(SIGUSR1, &w), 0);
	TU_CHECK_EQ(coev_spawn(waiter_task, w, &t), 0);
	coev_sleep(COEV_MSEC(5));
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &res), 0);
	TU_CHECK_EQ(res, -ECANCELED);
	coev_signal_free(w);
	return 0;
}

static void test_signal_cancel(void **state)
{
	(void)state;
	assert_int_equal(run(cancel_main, NULL), 0);
	tu_assert_no_failures();
}

/* ---- two watches -------------------------------------------------------- */

static int two_main(void *arg)
{
	coev_signal_t *w[2];
	coev_task_t *t[2];
	int res[2];

	(void)arg;
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(watch1(SIGUSR1, &w[i]), 0);
		TU_CHECK_EQ(coev_spawn(waiter_task, w[i], &t[i]), 0);
	}
	coev_sleep(COEV_MSEC(5));
	TU_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
	TU_CHECK_EQ(coev_gather(t, 2, res), 0);
	TU_CHECK_EQ(res[0], SIGUSR1);
	TU_CHECK_EQ(res[1], SIGUSR1);
	/* The first free keeps the handler: the other watch still counts. */
	coev_signal_free(w[0]);
	TU_CHECK_EQ(raise(SIGUSR1), 0);
	TU_CHECK_EQ(coev_signal_wait(w[1], NULL, tu_guard()), SIGUSR1);
	coev_signal_free(w[1]);
	return 0;
}

static void test_signal_two_watches_both_woken(void **state)
{
	(void)state;
	assert_int_equal(run(two_main, NULL), 0);
	tu_assert_no_failures();
}

/* ---- dispositions and bad sets ------------------------------------------ */

static atomic_int old_handler_ran;

static void old_handler(int s)
{
	(void)s;
	atomic_fetch_add(&old_handler_ran, 1);
}

static void test_signal_old_disposition_back(void **state)
{
	struct sigaction sa, now;
	coev_signal_t *w;

	(void)state;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = old_handler;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	atomic_store(&old_handler_ran, 0);
	/* A plain thread may make and free watches (and wait: it blocks). */
	assert_int_equal(watch1(SIGUSR1, &w), 0);
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(atomic_load(&old_handler_ran), 0);
	assert_int_equal(coev_signal_wait(w, NULL, tu_guard()), SIGUSR1);
	coev_signal_free(w);
	assert_int_equal(sigaction(SIGUSR1, NULL, &now), 0);
	assert_ptr_equal(now.sa_handler, old_handler);
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(atomic_load(&old_handler_ran), 1);
	sa.sa_handler = SIG_DFL;
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
}

static void test_signal_bad_sets(void **state)
{
	static const int bad[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,
				  SIGFPE,  0,	    -1,	     NSIG};
	int sigs[2] = {SIGUSR1, 0};
	coev_signal_t *w = NULL;

	(void)state;
	assert_int_equal(coev_signal_new(sigs, 0, &w), -EINVAL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sigs[1] = bad[i];
		assert_int_equal(coev_signal_new(sigs, 2, &w), -EINVAL);
	}
	assert_null(w);
	assert_int_equal(coev_signal_new(NULL, 1, &w), -EINVAL);
	assert_int_equal(coev_signal_new(sigs, 1, NULL), -EINVAL);
	assert_int_equal(coev_signal_wait(NULL, NULL, 0), -EINVAL);
	coev_signal_free(NULL);
}

/* The dispatcher thread ends with the last watch. */
static void test_signal_no_thread_left(void **state)
{
	coev_signal_t *w;
	int before = tu_thread_count();

	(void)state;
	assert_int_equal(watch1(SIGUSR1, &w), 0);
	assert_int_equal(tu_thread_count(), before + 1);
	coev_signal_free(w);
	assert_int_equal(tu_thread_count(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_signal_kill_self),
		TU_FD_TEST(test_signal_deliveries_counted),
		TU_FD_TEST(test_signal_any_thread_takes_it),
		TU_FD_TEST(test_signal_from_child),
		TU_FD_TEST(test_signal_deadline),
		TU_FD_TEST(test_signal_cancel),
		TU_FD_TEST(test_signal_two_watches_both_woken),
		TU_FD_TEST(test_signal_old_disposition_back),
		TU_FD_TEST(test_signal_bad_sets),
		TU_FD_TEST(test_signal_no_thread_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
