/* SPDX-License-Identifier: MIT */
/*
 * tests/misuse/test_misuse_args.c — bad arguments: NULL objects given to
 * every public call that takes one, and sizes whose arithmetic would
 * overflow (configuration fields, channel buffers).
 *
 * The NULL table runs each call in a forked child (in a task of a
 * one-worker runtime), so that a call that faults shows as that call's
 * failure and the rest of the table still runs: every call returning an
 * error code must return -EINVAL, every call returning a value must abort
 * with a line naming itself.
 */
#include "tests/misuse/misuse_util.h"

#include <fcntl.h>
#include <sys/socket.h>

#include "coev/ares.h"
#include "coev/curl.h"
#include "coev/redis.h"

/* ---- NULL objects ---------------------------------------------------------- */

static coev_mutex_t a_mutex;
static coev_cond_t a_cond;
static coev_once_t a_once;
static char a_buf[64];
static int an_int;
static coev_worker_stats_t a_wstats;
static coev_rt_stats_t a_stats;
static struct sockaddr_storage an_addr;
static char *a_data;
static size_t a_len;
static coev_task_t *a_task;
static coev_scope_t *a_scope;
static coev_future_t *a_future;
static coev_watch_t *a_watch;
static coev_timer_t *a_timer;
static coev_sockset_t *a_sockset;
static coev_redis_t *a_redis;
static coev_redis_reply_t *a_reply;
static coev_redis_sub_t *a_sub;
static coev_redis_msg_t *a_msg;
static coev_stream_t *a_stream;

static ssize_t no_read(void *ctx, void *buf, size_t n, coev_time_t dl)
{
	(void)ctx, (void)buf, (void)n, (void)dl;
	return 0;
}

static ssize_t no_write(void *ctx, const void *buf, size_t n, coev_time_t dl)
{
	(void)ctx, (void)buf, (void)dl;
	return (ssize_t)n;
}

static const coev_stream_ops_t a_ops = {.read = no_read, .write = no_write};

/* A stream over a transport that moves nothing, made at first use (in
 * the child that makes the call), for calls given a NULL buffer. */
static coev_stream_t *a_stream_ok(void)
{
	if (!a_stream)
		coev_stream_new(&a_ops, NULL, 0, &a_stream);
	return a_stream;
}

static void on_done(coev_future_t *f, void *arg)
{
	(void)f;
	(void)arg;
}

static void on_watch(coev_watch_t *wa, int fd, unsigned ev, void *arg)
{
	(void)wa, (void)fd, (void)ev, (void)arg;
}

static void on_timer(coev_timer_t *tm, void *arg)
{
	(void)tm, (void)arg;
}

static void on_sock(coev_sockset_t *ss, int fd, unsigned ev, void *arg)
{
	(void)ss, (void)fd, (void)ev, (void)arg;
}

#define DL COEV_FOREVER

/* Calls that return an error code: each must return -EINVAL. */
#define EINVAL_CALLS(X)                                                      \
	X(mutex_init, coev_mutex_init(NULL, 0))                              \
	X(mutex_lock, coev_mutex_lock(NULL))                                 \
	X(mutex_lock_dl, coev_mutex_lock_dl(NULL, DL))                       \
	X(mutex_trylock, coev_mutex_trylock(NULL))                           \
	X(rwlock_init, coev_rwlock_init(NULL))                               \
	X(rwlock_rdlock, coev_rwlock_rdlock(NULL))                           \
	X(rwlock_rdlock_dl, coev_rwlock_rdlock_dl(NULL, DL))                 \
	X(rwlock_tryrdlock, coev_rwlock_tryrdlock(NULL))                     \
	X(rwlock_wrlock, coev_rwlock_wrlock(NULL))                           \
	X(rwlock_wrlock_dl, coev_rwlock_wrlock_dl(NULL, DL))                 \
	X(rwlock_trywrlock, coev_rwlock_trywrlock(NULL))                     \
	X(sem_init, coev_sem_init(NULL, 1))                                  \
	X(sem_acquire, coev_sem_acquire(NULL))                               \
	X(sem_acquire_dl, coev_sem_acquire_dl(NULL, DL))                     \
	X(sem_tryacquire, coev_sem_tryacquire(NULL))                         \
	X(sem_release, coev_sem_release(NULL))                               \
	X(event_init, coev_event_init(NULL))                                 \
	X(event_wait, coev_event_wait(NULL))                                 \
	X(event_wait_dl, coev_event_wait_dl(NULL, DL))                       \
	X(cond_init, coev_cond_init(NULL))                                   \
	X(cond_wait, coev_cond_wait(NULL, &a_mutex))                         \
	X(cond_wait_dl, coev_cond_wait_dl(NULL, &a_mutex, DL))               \
	X(cond_wait_m, coev_cond_wait(&a_cond, NULL))                        \
	X(cond_wait_dl_m, coev_cond_wait_dl(&a_cond, NULL, DL))              \
	X(wg_init, coev_wg_init(NULL))                                       \
	X(wg_wait, coev_wg_wait(NULL))                                       \
	X(wg_wait_dl, coev_wg_wait_dl(NULL, DL))                             \
	X(barrier_init, coev_barrier_init(NULL, 1))                          \
	X(barrier_wait, coev_barrier_wait(NULL))                             \
	X(barrier_wait_dl, coev_barrier_wait_dl(NULL, DL))                   \
	X(once, coev_once(NULL, return_arg, NULL))                           \
	X(once_dl, coev_once_dl(NULL, return_arg, NULL, DL))                 \
	X(once_fn, coev_once(&a_once, NULL, NULL))                           \
	X(chan_new, coev_chan_new(NULL, 1, 1))                               \
	X(chan_send, coev_chan_send(NULL, a_buf))                            \
	X(chan_send_dl, coev_chan_send_dl(NULL, a_buf, DL))                  \
	X(chan_try_send, coev_chan_try_send(NULL, a_buf))                    \
	X(chan_recv, coev_chan_recv(NULL, a_buf))                            \
	X(chan_recv_dl, coev_chan_recv_dl(NULL, a_buf, DL))                  \
	X(chan_try_recv, coev_chan_try_recv(NULL, a_buf))                    \
	X(chan_close, coev_chan_close(NULL))                                 \
	X(select, coev_select(NULL, 1))                                      \
	X(select_dl, coev_select_dl(NULL, 1, DL))                            \
	X(try_select, coev_try_select(NULL, 1))                              \
	X(future_new, coev_future_new(NULL))                                 \
	X(future_complete, coev_future_complete(NULL, 0, NULL, NULL))        \
	X(future_set, coev_future_set(NULL, 0))                              \
	X(future_cancel, coev_future_cancel(NULL))                           \
	X(future_wait, coev_future_wait(NULL, &an_int))                      \
	X(future_wait_dl, coev_future_wait_dl(NULL, DL, &an_int))            \
	X(future_await, coev_future_await(NULL, &an_int))                    \
	X(future_await_dl, coev_future_await_dl(NULL, DL, &an_int))          \
	X(future_poll, coev_future_poll(NULL, &an_int))                      \
	X(future_on_done, coev_future_on_done(NULL, on_done, NULL))          \
	X(watch_new, coev_watch_new(0, on_watch, NULL, NULL))                \
	X(watch_set, coev_watch_set(NULL, COEV_READ))                        \
	X(timer_new, coev_timer_new(on_timer, NULL, NULL))                   \
	X(timer_set, coev_timer_set(NULL, 0))                                \
	X(sockset_new, coev_sockset_new(on_sock, NULL, NULL))                \
	X(sockset_watch, coev_sockset_watch(NULL, 0, COEV_READ))             \
	X(sockset_timer, coev_sockset_timer(NULL, 0))                        \
	X(submit, coev_submit(coev_rt_current(), 0, NULL, NULL, NULL))       \
	X(submit_to, coev_submit_to(coev_rt_current(), 0, NULL, NULL, NULL)) \
	X(submit_to_dl,                                                      \
	  coev_submit_to_dl(coev_rt_current(), 0, NULL, NULL, NULL, DL))     \
	X(join, coev_join(NULL, &an_int))                                    \
	X(join_dl, coev_join_dl(NULL, DL, &an_int))                          \
	X(detach, coev_detach(NULL))                                         \
	X(cancel, coev_cancel(NULL))                                         \
	X(gather, coev_gather(NULL, 1, &an_int))                             \
	X(gather_dl, coev_gather_dl(NULL, 1, &an_int, DL))                   \
	X(wait_any, coev_wait_any(NULL, 1, DL))                              \
	X(spawn, coev_spawn(NULL, NULL, &a_task))                            \
	X(wait_for, coev_wait_for(NULL, NULL, DL, &an_int))                  \
	X(blocking, coev_blocking(NULL, NULL, DL, &an_int))                  \
	X(scope_open, coev_scope_open(0, NULL))                              \
	X(scope_spawn, coev_scope_spawn(NULL, NULL, return_arg, NULL))       \
	X(scope_cancel, coev_scope_cancel(NULL))                             \
	X(scope_close, coev_scope_close(NULL))                               \
	X(scope_close_dl, coev_scope_close_dl(NULL, DL))                     \
	X(config_init, coev_config_init(NULL))                               \
	X(rt_new, coev_rt_new(NULL, NULL))                                   \
	X(rt_spawn, coev_rt_spawn(NULL, NULL, return_arg, NULL, &a_task))    \
	X(rt_shutdown, coev_rt_shutdown(NULL, 0))                            \
	X(rt_worker_stats, coev_rt_worker_stats(NULL, 0, &a_wstats))         \
	X(rt_worker_stats_st,                                                \
	  coev_rt_worker_stats(coev_rt_current(), 0, NULL))                  \
	X(rt_stats, coev_rt_stats(NULL, &a_stats))                           \
	X(rt_stats_st, coev_rt_stats(coev_rt_current(), NULL))               \
	X(rt_tasks, coev_rt_tasks(NULL, NULL, 0))                            \
	X(rt_tasks_out, coev_rt_tasks(coev_rt_current(), NULL, 4))           \
	X(rt_dump, coev_rt_dump(NULL, 2))                                    \
	X(rt_metrics, coev_rt_metrics(NULL, a_buf, sizeof a_buf))            \
	X(rt_metrics_buf, coev_rt_metrics(coev_rt_current(), NULL, 16))      \
	X(resolve, coev_resolve(NULL, 80, &an_addr, 1, DL))                  \
	X(resolve_addrs, coev_resolve("localhost", 80, NULL, 1, DL))         \
	X(tcp_connect, coev_tcp_connect(NULL, 80, DL))                       \
	X(unix_listen, coev_unix_listen(NULL, 1))                            \
	X(unix_connect, coev_unix_connect(NULL, DL))                         \
	X(file_read_all, coev_file_read_all(NULL, &a_data, &a_len, DL))      \
	X(file_read_all_data, coev_file_read_all("/", NULL, &a_len, DL))     \
	X(file_read_all_len, coev_file_read_all("/", &a_data, NULL, DL))     \
	X(file_write_all, coev_file_write_all(NULL, a_buf, 1, DL))           \
	X(stream_new, coev_stream_new(NULL, NULL, 0, &a_stream))             \
	X(stream_new_out, coev_stream_new(&a_ops, NULL, 0, NULL))            \
	X(stream_fd_out, coev_stream_fd(0, 0, NULL))                         \
	X(stream_read, coev_stream_read(NULL, a_buf, 1, DL))                 \
	X(stream_read_buf, coev_stream_read(a_stream_ok(), NULL, 1, DL))     \
	X(stream_read_exactly,                                               \
	  coev_stream_read_exactly(NULL, a_buf, 1, NULL, DL))                \
	X(stream_read_until,                                                 \
	  coev_stream_read_until(NULL, "\n", 1, a_buf, 8, DL))               \
	X(stream_read_until_buf,                                             \
	  coev_stream_read_until(a_stream_ok(), "\n", 1, NULL, 8, DL))       \
	X(stream_read_line, coev_stream_read_line(NULL, a_buf, 8, DL))       \
	X(stream_peek, coev_stream_peek(NULL, 1, NULL, NULL, DL))            \
	X(stream_consume, coev_stream_consume(NULL, 0))                      \
	X(stream_write, coev_stream_write(NULL, a_buf, 1, NULL, DL))         \
	X(stream_write_buf,                                                  \
	  coev_stream_write(a_stream_ok(), NULL, 1, NULL, DL))               \
	X(stream_flush, coev_stream_flush(NULL, DL))                         \
	X(stream_shutdown, coev_stream_shutdown(NULL, DL))                   \
	X(ares_new, coev_ares_new(NULL, NULL))                               \
	X(ares_resolve,                                                      \
	  coev_ares_resolve(NULL, "x", AF_UNSPEC, 80, &an_addr, 1, DL))      \
	X(ares_resolver, coev_ares_resolver(NULL, "x", 80, &an_addr, 1, DL)) \
	X(curl_new, coev_curl_new(NULL))                                     \
	X(curl_perform, coev_curl_perform(NULL, NULL, DL))                   \
	X(curl_fetch, coev_curl_fetch(NULL, NULL, DL, NULL, NULL, NULL))     \
	X(curl_get, coev_curl_get(NULL, "http://x/", DL, NULL, NULL, NULL))  \
	X(redis_connect, coev_redis_connect("127.0.0.1", 1, DL, NULL))       \
	X(redis_command, coev_redis_command(NULL, DL, &a_reply, "PING"))     \
	X(redis_commandargv,                                                 \
	  coev_redis_commandargv(NULL, DL, &a_reply, 1,                      \
				 (const char *const[]){"PING"}, NULL))       \
	X(redis_close, coev_redis_close(NULL))                               \
	X(redis_close_dl, coev_redis_close_dl(NULL, DL))                     \
	X(ares_free_dl, coev_ares_free_dl(NULL, DL))                         \
	X(curl_free_dl, coev_curl_free_dl(NULL, DL))                         \
	X(redis_owner, coev_redis_owner(NULL))                               \
	X(redis_subscribe, coev_redis_subscribe(NULL, "c", DL, &a_sub))      \
	X(redis_sub_next, coev_redis_sub_next(NULL, DL, &a_msg))             \
	X(redis_sub_close, coev_redis_sub_close(NULL))

/* Calls that return a value: each must abort naming itself. */
#define ABORT_CALLS(X)                                      \
	X(coev_sem_value, coev_sem_value(NULL))             \
	X(coev_event_is_set, coev_event_is_set(NULL))       \
	X(coev_once_done, coev_once_done(NULL))             \
	X(coev_chan_len, coev_chan_len(NULL))               \
	X(coev_chan_cap, coev_chan_cap(NULL))               \
	X(coev_chan_closed, coev_chan_closed(NULL))         \
	X(coev_stream_buffered, coev_stream_buffered(NULL)) \
	X(coev_stream_fileno, coev_stream_fileno(NULL))     \
	X(coev_curl_worker, coev_curl_worker(NULL))

typedef struct null_call {
	const char *name, *call;
	long (*fn)(void);
} null_call_t;

#define DEFINE_CALL(id, expr)        \
	static long call_##id(void)  \
	{                            \
		return (long)(expr); \
	}
EINVAL_CALLS(DEFINE_CALL)
ABORT_CALLS(DEFINE_CALL)
#undef DEFINE_CALL

#define CALL_ROW(id, expr) {#id, #expr, call_##id},
static const null_call_t einval_calls[] = {EINVAL_CALLS(CALL_ROW)};
static const null_call_t abort_calls[] = {ABORT_CALLS(CALL_ROW)};
#undef CALL_ROW

static int null_call_main(void *arg)
{
	const null_call_t *c = arg;

	(void)a_task, (void)a_scope, (void)a_future, (void)a_watch;
	(void)a_timer, (void)a_sockset, (void)a_redis;
	long r = c->fn();
	TU_CHECK_MSG(r == -EINVAL, "%s returned %ld, not -EINVAL", c->call, r);
	return 0;
}

/* In a child: the call, in a task of a one-worker runtime. */
static void null_call_child(void *arg)
{
	coev_config_t cfg;

	alarm(CHILD_ALARM_S);
	if (coev_config_init(&cfg) != 0)
		_exit(90);
	cfg.workers = 1;
	TU_CHECK_EQ(coev_mutex_init(&a_mutex, 0), 0);
	TU_CHECK_EQ(coev_cond_init(&a_cond), 0);
	TU_CHECK_EQ(coev_run(null_call_main, arg, &cfg), 0);
	_exit(atomic_load(&tu_failures) ? 1 : 0);
}

/* Proves: every public call that returns an error code and takes an
 * object (or an out pointer) returns -EINVAL for NULL, called from a
 * task, instead of faulting; each call runs in a child of its own, and
 * every one that fails is listed. */
static void test_misuse_args_null_objects_return_einval(void **state)
{
	size_t n = sizeof einval_calls / sizeof einval_calls[0], bad = 0;
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	for (size_t i = 0; i < n; i++) {
		const null_call_t *c = &einval_calls[i];

		assert_int_equal(
			tu_run_in_child(null_call_child, (void *)c, res), 0);
		if (WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0 &&
		    !strstr(res->out, "Sanitizer") &&
		    !strstr(res->out, "runtime error"))
			continue;
		bad++;
		if (WIFSIGNALED(res->status))
			fprintf(stderr, "%s: killed by signal %d (%s)\n",
				c->call, WTERMSIG(res->status),
				strsignal(WTERMSIG(res->status)));
		else
			fprintf(stderr, "%s: %s", c->call, res->out);
	}
	free(res);
	fprintf(stderr, "%zu of %zu calls returned -EINVAL for NULL\n", n - bad,
		n);
	assert_int_equal(bad, 0);
}

static void abort_call_child(void *arg)
{
	const null_call_t *c = arg;

	alarm(CHILD_ALARM_S);
	long r = c->fn();
	fprintf(stderr, "%s returned %ld: no abort\n", c->call, r);
}

/* Proves: the calls that return a value (a count, a flag, an index)
 * abort on NULL with a "coev: fatal" line naming the call and the NULL
 * argument, instead of faulting; every one that does not is listed. */
static void test_misuse_args_null_objects_of_value_calls_abort(void **state)
{
	size_t n = sizeof abort_calls / sizeof abort_calls[0], bad = 0;
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	for (size_t i = 0; i < n; i++) {
		const null_call_t *c = &abort_calls[i];

		assert_int_equal(
			tu_run_in_child(abort_call_child, (void *)c, res), 0);
		if (tu_child_signaled(res, SIGABRT) &&
		    strstr(res->out, "coev: fatal") &&
		    strstr(res->out, c->name) && strstr(res->out, "NULL"))
			continue;
		bad++;
		if (WIFSIGNALED(res->status))
			fprintf(stderr, "%s: killed by signal %d (%s)\n",
				c->call, WTERMSIG(res->status),
				strsignal(WTERMSIG(res->status)));
		tu_child_dump(res);
	}
	free(res);
	fprintf(stderr, "%zu of %zu calls aborted naming themselves\n", n - bad,
		n);
	assert_int_equal(bad, 0);
}

/* ---- sizes ----------------------------------------------------------------- */

/* A traced runtime with trace_events n: coev_rt_new's result (the runtime,
 * if one was made, runs one task and is freed). */
static int traced_rt_new(const char *path, size_t n)
{
	coev_config_t cfg;
	coev_rt_t *rt = (coev_rt_t *)&rt;
	coev_task_t *t;
	int r, ret = -1;

	if (coev_config_init(&cfg) != 0)
		_exit(90);
	cfg.workers = 2;
	cfg.trace = path;
	cfg.trace_events = n;
	r = coev_rt_new(&cfg, &rt);
	if (r != 0) {
		TU_CHECK(rt == NULL);
		return r;
	}
	TU_CHECK_EQ(coev_rt_spawn(rt, NULL, return_arg, (void *)7, &t), 0);
	TU_CHECK_EQ(coev_join(t, &ret), 0);
	TU_CHECK_EQ(ret, 7);
	coev_rt_free(rt);
	return 0;
}

static void trace_sizes_body(void *arg)
{
	static const size_t bad[] = {
		SIZE_MAX / 72 + 2, /* n * 72 wraps to 16 bytes */
		SIZE_MAX / 72 + 1, SIZE_MAX, ((size_t)1 << 28) + 1, 15, 1,
	};
	char path[128];

	snprintf(path, sizeof path, "%s/trace.json", (const char *)arg);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		TU_CHECK_MSG(traced_rt_new(path, bad[i]) == -EINVAL,
			     "trace_events %zu not refused", bad[i]);
	/* The limits of the range and the default are taken. */
	TU_CHECK_EQ(traced_rt_new(path, COEV_TRACE_EVENTS_MIN), 0);
	TU_CHECK_EQ(traced_rt_new(path, 0), 0);
	/* Without a trace file the field is still checked. */
	TU_CHECK_EQ(traced_rt_new(NULL, SIZE_MAX / 72 + 2), -EINVAL);
}

/* Proves: a trace_events outside 16..2^28 (0 meaning the default) makes
 * coev_rt_new return -EINVAL and store NULL, whether or not a trace file
 * is set; in particular one whose ring size in bytes wraps (SIZE_MAX/72
 * + 2 records of 72 bytes is 16 bytes) is refused instead of giving a
 * runtime that writes past its ring. In a child: the broken runtime would
 * fault. */
static void test_misuse_args_trace_events_out_of_range(void **state)
{
	char dir[128];

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	expect_clean_child(trace_sizes_body, dir);
	tu_rmtree(dir);
}

/* Proves: a channel whose buffer (capacity x elem_size) overflows size_t
 * is refused with -ENOMEM, *out untouched, nothing allocated (the fd and
 * leak checks of the ASan build see the rest). */
static void test_misuse_args_channel_buffer_overflows(void **state)
{
	static const struct {
		size_t esize, cap;
	} bad[] = {
		{2, SIZE_MAX / 2 + 1},
		{65536, SIZE_MAX - 1},
		{3, SIZE_MAX / 3 + 1},
		{65536, ((size_t)1 << 48) + 1},
	};
	coev_chan_t *ch;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ch = (coev_chan_t *)&ch;
		assert_int_equal(coev_chan_new(&ch, bad[i].esize, bad[i].cap),
				 -ENOMEM);
		assert_ptr_equal(ch, (coev_chan_t *)&ch);
	}
}

/* A sparse file of size INT64_MAX, in tmpfs when there is one. */
static int huge_file(char *path, size_t size)
{
	int fd;

	snprintf(path, size, "/dev/shm/coev-test-huge-%d", (int)getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, INT64_MAX) != 0) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

static int read_huge_main(void *arg)
{
	char *data = (char *)&data;
	size_t len = 77;

	TU_CHECK_EQ(coev_file_read_all(arg, &data, &len, tu_guard()), -ENOMEM);
	TU_CHECK(data == (char *)&data && len == 77);
	return 0;
}

/* Proves: coev_file_read_all of a file whose size and NUL do not fit in
 * one allocation (a sparse file of INT64_MAX bytes) returns -ENOMEM
 * before asking malloc (ASan's malloc aborts on such a size), leaving
 * *data and *len alone and no fd open. Skipped without a tmpfs that takes
 * such a size. */
static void test_misuse_args_read_all_of_a_file_too_big(void **state)
{
	char path[128];
	int fds;

	(void)state;
	if (huge_file(path, sizeof path) != 0) {
		fprintf(stderr, "no file system takes a sparse INT64_MAX "
				"file: skipped\n");
		skip();
	}
	fds = tu_fd_count();
	assert_int_equal(tu_run_main(read_huge_main, path, 2), 0);
	unlink(path);
	tu_assert_no_failures();
	assert_int_equal(tu_fd_count(), fds);
}

static int wait_any_huge_main(void *arg)
{
	coev_task_t *ts[1];
	int rets[1];

	(void)arg;
	TU_CHECK_EQ(coev_spawn(return_arg, NULL, &ts[0]), 0);
	/* A count whose indexes an int cannot hold: refused before the
	 * array is read (only its first entry exists). */
	TU_CHECK_EQ(coev_wait_any(ts, (size_t)INT_MAX + 1, COEV_FOREVER),
		    -EINVAL);
	TU_CHECK_EQ(coev_gather(ts, (size_t)INT_MAX + 1, rets), -EINVAL);
	TU_CHECK_EQ(coev_gather_dl(ts, SIZE_MAX, rets, COEV_FOREVER), -EINVAL);
	/* Nothing was consumed. */
	TU_CHECK_EQ(coev_gather(ts, 1, rets), 0);
	return 0;
}

/* Proves: coev_wait_any, coev_gather and coev_gather_dl refuse a count
 * above INT_MAX (their results are an index or a count of failures in an
 * int) with -EINVAL, before reading the array and consuming nothing. */
static void test_misuse_args_task_counts_beyond_int(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(wait_any_huge_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- the same handle twice -------------------------------------------------- */

static int wait_any_twice_main(void *arg)
{
	coev_task_t *t, *done;
	int r = -1;

	(void)arg;
	atomic_store(&gate_open, 0);
	if (coev_spawn(wait_gate, NULL, &t) != 0 ||
	    coev_spawn(return_arg, (void *)5, &done) != 0)
		return -1;
	coev_task_t *twice[] = {t, t};
	coev_task_t *spaced[] = {NULL, t, NULL, t};
	TU_CHECK_EQ(coev_wait_any(twice, 2, COEV_FOREVER), -EINVAL);
	TU_CHECK_EQ(coev_wait_any(spaced, 4, COEV_FOREVER), -EINVAL);
	/* Nothing was left installed: t can be waited on and joined. */
	TU_CHECK_EQ(coev_wait_any(&t, 1, coev_deadline(COEV_MSEC(10))),
		    -ETIMEDOUT);
	/* A task that has ended is returned before anything is installed,
	 * duplicates or not. */
	TU_CHECK_EQ(coev_join(done, NULL), 0);
	TU_CHECK_EQ(coev_spawn(return_arg, (void *)5, &done), 0);
	TU_CHECK_EQ(coev_wait_any(&done, 1, COEV_FOREVER), 0);
	coev_task_t *ended[] = {done, done};
	TU_CHECK_EQ(coev_wait_any(ended, 2, COEV_FOREVER), 0);
	TU_CHECK_EQ(coev_join(done, &r), 0);
	TU_CHECK_EQ(r, 5);
	atomic_store(&gate_open, 1);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 0);
	return 0;
}

static void wait_any_twice_body(void *arg)
{
	coev_rt_t *rt = child_rt(2);
	coev_task_t *t;
	int r = -1;

	(void)arg;
	TU_CHECK_EQ(coev_rt_spawn(rt, NULL, wait_any_twice_main, NULL, &t), 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 0);
	coev_rt_free(rt);
}

/* Proves: coev_wait_any given the same handle twice returns -EINVAL
 * (it used to abort, blaming "someone else" for joining it) and leaves
 * nothing installed: the handle is waited on and joined afterwards. A
 * task that has already ended is returned, as for any array. In a child:
 * the old behaviour aborts. */
static void test_misuse_args_wait_any_same_handle_twice(void **state)
{
	(void)state;
	expect_clean_child(wait_any_twice_body, NULL);
}

/* ---- a wait group's count ---------------------------------------------------- */

static void wg_overflow_child(void *arg)
{
	coev_wg_t wg;

	(void)arg;
	if (coev_wg_init(&wg) != 0)
		_exit(91);
	coev_wg_add(&wg, LONG_MAX);
	coev_wg_add(&wg, 1);
	fprintf(stderr, "coev_wg_add past LONG_MAX returned: no abort\n");
}

static void wg_at_the_limits_body(void *arg)
{
	coev_wg_t wg;

	(void)arg;
	TU_CHECK_EQ(coev_wg_init(&wg), 0);
	coev_wg_add(&wg, LONG_MAX);
	coev_wg_add(&wg, -LONG_MAX);
	TU_CHECK_EQ(coev_wg_wait_dl(&wg, 0), 0);
	coev_wg_add(&wg, LONG_MAX - 1);
	coev_wg_add(&wg, 1);
	TU_CHECK_EQ(coev_wg_wait_dl(&wg, 0), -ETIMEDOUT);
	coev_wg_add(&wg, LONG_MIN + 1);
	TU_CHECK_EQ(coev_wg_wait_dl(&wg, 0), 0);
	coev_wg_destroy(&wg);
}

/* Proves: a wait group's count driven past LONG_MAX aborts naming
 * coev_wg_add and the overflow (it used to overflow a long, undefined
 * behaviour, and then blame a count "below zero"); counts up to LONG_MAX
 * and back to zero work. */
static void test_misuse_args_wait_group_count_overflow_aborts(void **state)
{
	static const char *const words[] = {"coev_wg_add", "overflow", NULL};

	(void)state;
	expect_abort(wg_overflow_child, NULL, words);
	expect_clean_child(wg_at_the_limits_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Children first, while the process has one thread. */
		cmocka_unit_test(test_misuse_args_null_objects_return_einval),
		cmocka_unit_test(
			test_misuse_args_null_objects_of_value_calls_abort),
		cmocka_unit_test(test_misuse_args_trace_events_out_of_range),
		cmocka_unit_test(test_misuse_args_wait_any_same_handle_twice),
		cmocka_unit_test(
			test_misuse_args_wait_group_count_overflow_aborts),
		TU_FD_TEST(test_misuse_args_channel_buffer_overflows),
		TU_FD_TEST(test_misuse_args_read_all_of_a_file_too_big),
		TU_FD_TEST(test_misuse_args_task_counts_beyond_int),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
