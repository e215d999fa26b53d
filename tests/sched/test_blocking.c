/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_blocking.c — the blocking pool and the file helpers
 * (include/coev/blocking.h): results, workers kept free while jobs block,
 * the bound on pool threads, idle threads ending, queued jobs that time
 * out or are cancelled never running, running jobs waited for, calls from
 * a plain thread, and file I/O in a private temporary directory.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

/* ---- helpers ------------------------------------------------------------ */

#define PROMPT COEV_SEC(5)

static int run_cfg(coev_fn fn, void *arg, unsigned workers, unsigned bmax,
		   coev_time_t idle)
{
	coev_config_t cfg = tu_config(workers);

	if (bmax)
		cfg.blocking_max = bmax;
	if (idle)
		cfg.blocking_idle = idle;
	return coev_run(fn, arg, &cfg);
}

/*
 * A job: counts itself running (and the peak), records where it ran,
 * sleeps usec with usleep (really blocking its thread), or with hold set
 * holds its thread until *hold is set, and returns value.
 */
typedef struct pool_stats {
	atomic_int running, peak, ran;
	atomic_int threads_peak; /* tu_thread_count() seen inside jobs */
} pool_stats_t;

typedef struct job {
	pool_stats_t *ps;
	int usec;
	atomic_int *hold;
	int value;
	atomic_int started, finished;
	pthread_t thread;
	int worker_id;
	int in_task;
} job_t;

static void atomic_max(atomic_int *m, int v)
{
	int cur = atomic_load(m);

	while (v > cur && !atomic_compare_exchange_weak(m, &cur, v)) {
	}
}

static int job_fn(void *arg)
{
	job_t *j = arg;

	j->thread = pthread_self();
	j->worker_id = coev_worker_id();
	j->in_task = coev_self() != NULL;
	atomic_store(&j->started, 1);
	if (j->ps) {
		int now = atomic_fetch_add(&j->ps->running, 1) + 1;
		atomic_max(&j->ps->peak, now);
		atomic_max(&j->ps->threads_peak, tu_thread_count());
	}
	if (j->usec > 0)
		usleep((useconds_t)j->usec);
	if (j->hold)
		tu_thread_wait_at_least(j->hold, 1);
	if (j->ps) {
		atomic_fetch_sub(&j->ps->running, 1);
		atomic_fetch_add(&j->ps->ran, 1);
	}
	atomic_store(&j->finished, 1);
	return j->value;
}

/* A task that runs one job and records the call's result. */
typedef struct caller {
	job_t *job;
	coev_time_t deadline; /* 0: COEV_FOREVER */
	atomic_int calling;
	int rc, ret;
	coev_time_t took, ended;
	int finished_at_return;
	int next_wait_rc;
} caller_t;

static int caller(void *arg)
{
	caller_t *c = arg;

	c->ret = -1;
	atomic_store(&c->calling, 1);
	coev_time_t t0 = coev_now();
	c->rc = coev_blocking(job_fn, c->job,
			      c->deadline ? c->deadline : COEV_FOREVER,
			      &c->ret);
	c->ended = coev_now();
	c->took = c->ended - t0;
	c->finished_at_return = atomic_load(&c->job->finished);
	c->next_wait_rc = coev_sleep(COEV_MSEC(1));
	return c->rc;
}

/* ---- a job's result comes back ------------------------------------------ */

#define MANY_JOBS TU_SCALE(200, 200, 60)

static int result_main(void *arg)
{
	job_t j = {.value = 42};
	int ret = 0;

	(void)arg;
	pthread_t me = pthread_self();
	TU_CHECK_EQ(coev_blocking(job_fn, &j, tu_guard(), &ret), 0);
	TU_CHECK_EQ(ret, 42);
	/* It ran on a pool thread: not this worker, not in a task. */
	TU_CHECK(!pthread_equal(j.thread, me));
	TU_CHECK_EQ(j.worker_id, -1);
	TU_CHECK_EQ(j.in_task, 0);
	/* A negative result is the job's, not the call's. */
	job_t f = {.value = -EIO};
	TU_CHECK_EQ(coev_blocking(job_fn, &f, tu_guard(), &ret), 0);
	TU_CHECK_EQ(ret, -EIO);
	/* ret may be NULL. */
	job_t n = {.value = 5};
	TU_CHECK_EQ(coev_blocking(job_fn, &n, tu_guard(), NULL), 0);
	TU_CHECK_EQ(atomic_load(&n.finished), 1);
	return 0;
}

/* Many tasks on two workers, each with its own job. */
static int many_main(void *arg)
{
	pool_stats_t *ps = arg;
	job_t *j = calloc(MANY_JOBS, sizeof *j);
	caller_t *c = calloc(MANY_JOBS, sizeof *c);
	coev_task_t **t = calloc(MANY_JOBS, sizeof *t);

	for (int i = 0; i < MANY_JOBS; i++) {
		j[i] = (job_t){.ps = ps, .usec = (i % 5) * 200, .value = i * 3};
		c[i] = (caller_t){.job = &j[i]};
		TU_CHECK_EQ(coev_spawn(caller, &c[i], &t[i]), 0);
	}
	for (int i = 0; i < MANY_JOBS; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(c[i].rc, 0);
		TU_CHECK_EQ(c[i].ret, i * 3);
	}
	free(j);
	free(c);
	free(t);
	return 0;
}

static void test_blocking_job_result_comes_back(void **state)
{
	pool_stats_t ps = {0};

	(void)state;
	assert_int_equal(run_cfg(result_main, NULL, 1, 0, 0), 0);
	assert_int_equal(run_cfg(many_main, &ps, 2, 4, 0), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&ps.ran), MANY_JOBS);
	assert_true(atomic_load(&ps.peak) <= 4);
}

/* ---- blocking jobs do not stop the worker ------------------------------- */

#define SLOW_JOBS 4

typedef struct ticker {
	pool_stats_t *ps;
	atomic_int *done;
	int ticks, ticks_while_blocked;
} ticker_t;

static int ticker(void *arg)
{
	ticker_t *t = arg;

	while (atomic_load(t->done) < SLOW_JOBS) {
		coev_sleep(COEV_MSEC(10));
		t->ticks++;
		if (atomic_load(&t->ps->running) > 0)
			t->ticks_while_blocked++;
	}
	return 0;
}

typedef struct slow_caller {
	job_t job;
	atomic_int *done;
	int rc, ret;
} slow_caller_t;

static int slow_caller(void *arg)
{
	slow_caller_t *s = arg;

	s->rc = coev_blocking(job_fn, &s->job, tu_guard(), &s->ret);
	atomic_fetch_add(s->done, 1);
	return 0;
}

static int not_stopped_main(void *arg)
{
	pool_stats_t *ps = arg;
	atomic_int done = 0;
	slow_caller_t s[SLOW_JOBS];
	coev_task_t *t[SLOW_JOBS], *tk;
	ticker_t tick = {.ps = ps, .done = &done};

	TU_CHECK_EQ(coev_spawn_named("ticker", ticker, &tick, &tk), 0);
	for (int i = 0; i < SLOW_JOBS; i++) {
		s[i] = (slow_caller_t){
			.job = {.ps = ps, .usec = 300000, .value = 10 + i},
			.done = &done};
		TU_CHECK_EQ(coev_spawn_named("slow", slow_caller, &s[i], &t[i]),
			    0);
	}
	for (int i = 0; i < SLOW_JOBS; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(s[i].rc, 0);
		TU_CHECK_EQ(s[i].ret, 10 + i);
	}
	TU_CHECK_EQ(coev_join(tk, NULL), 0);
	/* The one worker kept serving the ticker while four jobs blocked
	 * (about 30 ticks of 10 ms in 300 ms; 5 is a generous floor). */
	TU_CHECK_MSG(tick.ticks_while_blocked >= 5,
		     "%d ticks while jobs ran, %d in all",
		     tick.ticks_while_blocked, tick.ticks);
	return 0;
}

static void test_blocking_jobs_do_not_stop_the_worker(void **state)
{
	pool_stats_t ps = {0};

	(void)state;
	assert_int_equal(run_cfg(not_stopped_main, &ps, 1, 0, 0), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&ps.ran), SLOW_JOBS);
	/* They ran side by side on four pool threads. */
	assert_int_equal(atomic_load(&ps.peak), SLOW_JOBS);
}

/* ---- the pool is bounded ------------------------------------------------ */

#define BOUNDED_JOBS 6

static int bounded_main(void *arg)
{
	pool_stats_t *ps = arg;
	job_t j[BOUNDED_JOBS];
	caller_t c[BOUNDED_JOBS];
	coev_task_t *t[BOUNDED_JOBS];

	for (int i = 0; i < BOUNDED_JOBS; i++) {
		j[i] = (job_t){.ps = ps, .usec = 50000, .value = i};
		c[i] = (caller_t){.job = &j[i]};
		TU_CHECK_EQ(coev_spawn(caller, &c[i], &t[i]), 0);
	}
	for (int i = 0; i < BOUNDED_JOBS; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(c[i].rc, 0);
		TU_CHECK_EQ(c[i].ret, i);
	}
	return 0;
}

static void test_blocking_pool_is_bounded(void **state)
{
	coev_config_t cfg = tu_config(2);
	pool_stats_t ps = {0};
	coev_rt_t *rt;
	coev_task_t *t;
	int r = -1;

	(void)state;
	cfg.blocking_max = 2;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	int base = tu_thread_count();
	assert_int_equal(coev_rt_spawn(rt, "bounded", bounded_main, &ps, &t),
			 0);
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal(r, 0);
	assert_int_equal(atomic_load(&ps.ran), BOUNDED_JOBS);
	/* Never more than two at once, and two did run at once. */
	assert_int_equal(atomic_load(&ps.peak), 2);
	/* No more than two pool threads ever existed. */
	assert_true(atomic_load(&ps.threads_peak) <= base + 2);
}

/* ---- idle threads exit -------------------------------------------------- */

static int idle_jobs(void *arg)
{
	pool_stats_t *ps = arg;
	job_t j[3];
	caller_t c[3];
	coev_task_t *t[3];

	for (int i = 0; i < 3; i++) {
		j[i] = (job_t){.ps = ps, .usec = 100000, .value = i};
		c[i] = (caller_t){.job = &j[i]};
		TU_CHECK_EQ(coev_spawn(caller, &c[i], &t[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(c[i].ret, i);
	}
	return 0;
}

/* Waits (plain thread) until the process has `want` threads; returns the
 * last count seen. */
static int wait_threads(int want, coev_time_t limit)
{
	coev_time_t dl = coev_deadline(limit);
	int n;

	while ((n = tu_thread_count()) != want && coev_now() < dl)
		tu_nap_ms(5);
	return n;
}

static void test_blocking_idle_threads_exit(void **state)
{
	coev_config_t cfg = tu_config(1);
	pool_stats_t ps = {0};
	coev_rt_t *rt;
	coev_task_t *t;

	(void)state;
	cfg.blocking_idle = COEV_MSEC(50);
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	int base = tu_thread_count();
	for (int round = 0; round < 2; round++) {
		atomic_store(&ps.threads_peak, 0);
		assert_int_equal(coev_rt_spawn(rt, "idle", idle_jobs, &ps, &t),
				 0);
		assert_int_equal(coev_join(t, NULL), 0);
		tu_assert_no_failures();
		/* Three jobs at once had three pool threads... */
		int peak = atomic_load(&ps.threads_peak);
		assert_true(peak >= base + 2);
		print_message("round %d: %d threads before, %d at the peak\n",
			      round, base, peak);
		/* ...which end once idle for 50 ms (allowing 5 s). */
		int after = wait_threads(base, COEV_SEC(5));
		assert_int_equal(after, base);
	}
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&ps.ran), 6);
}

/* ---- a queued job that times out or is cancelled never runs ------------- */

static int queued_main(void *arg)
{
	atomic_int release = 0;
	job_t occupy = {.hold = &release, .value = 1};
	job_t timed = {.value = 2}, cancelled = {.value = 3};
	caller_t co = {.job = &occupy}, ct = {.job = &timed},
		 cc = {.job = &cancelled};
	coev_task_t *to, *tt, *tc;

	(void)arg;
	/* blocking_max = 1: the occupant holds the only thread (until
	 * released). */
	TU_CHECK_EQ(coev_spawn_named("occupant", caller, &co, &to), 0);
	TU_CHECK_EQ(tu_wait_at_least(&occupy.started, 1), 0);

	/* Queued behind it with a 30 ms deadline: -ETIMEDOUT. */
	ct.deadline = coev_now() + COEV_MSEC(30);
	TU_CHECK_EQ(coev_spawn_named("timed", caller, &ct, &tt), 0);
	/* Queued, then cancelled: -ECANCELED. */
	TU_CHECK_EQ(coev_spawn_named("cancelled", caller, &cc, &tc), 0);
	TU_CHECK_EQ(tu_wait_at_least(&cc.calling, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, tc, COEV_WAIT_BLOCKING, NULL), 0);
	TU_CHECK_EQ(coev_cancel(tc), 0);
	TU_CHECK_EQ(coev_join(tc, NULL), 0);
	TU_CHECK_EQ(coev_join(tt, NULL), 0);
	TU_CHECK_EQ(ct.rc, -ETIMEDOUT);
	TU_CHECK(ct.ended >= ct.deadline);
	TU_CHECK_MSG(ct.took < PROMPT, "took %lld ns", (long long)ct.took);
	TU_CHECK_EQ(ct.ret, -1);
	TU_CHECK_EQ(cc.rc, -ECANCELED);
	TU_CHECK_EQ(cc.ret, -1);

	/* The file helpers queue the same way. */
	char buf[4];
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_file_pread(0, buf, sizeof buf, 0, t0 + COEV_MSEC(20)),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(20));

	atomic_store(&release, 1);
	TU_CHECK_EQ(coev_join(to, NULL), 0);
	TU_CHECK_EQ(co.rc, 0);
	TU_CHECK_EQ(co.ret, 1);
	/* FIFO: once a later job ran, the dropped ones would have run. */
	job_t later = {.value = 4};
	int ret = 0;
	TU_CHECK_EQ(coev_blocking(job_fn, &later, tu_guard(), &ret), 0);
	TU_CHECK_EQ(ret, 4);
	coev_sleep(COEV_MSEC(50)); /* a negative check: time to run wrongly */
	TU_CHECK_EQ(atomic_load(&timed.started), 0);
	TU_CHECK_EQ(atomic_load(&cancelled.started), 0);
	return 0;
}

static void test_blocking_queued_job_dropped_never_runs(void **state)
{
	(void)state;
	assert_int_equal(run_cfg(queued_main, NULL, 1, 1, 0), 0);
	tu_assert_no_failures();
}

/* ---- a running job is waited for ---------------------------------------- */

static int running_main(void *arg)
{
	job_t warm = {.value = 0};
	int ret;

	(void)arg;
	/* An idle pool thread, so the next job starts at once. */
	TU_CHECK_EQ(coev_blocking(job_fn, &warm, tu_guard(), &ret), 0);

	/* The deadline passes while the job runs: the call waits for it and
	 * returns its result. (On a machine too loaded to start the job
	 * within 50 ms, the job never starts and the call times out.) */
	job_t j = {.usec = 200000, .value = 42};
	caller_t c = {.job = &j, .deadline = coev_now() + COEV_MSEC(50)};
	TU_CHECK_EQ(caller(&c), c.rc);
	if (c.rc == 0) {
		TU_CHECK_EQ(c.ret, 42);
		TU_CHECK_EQ(c.finished_at_return, 1);
		TU_CHECK(c.took >= COEV_MSEC(190));
	} else {
		TU_CHECK_EQ(c.rc, -ETIMEDOUT);
		print_message("the job did not start within 50 ms\n");
		/* A negative check: time for a wrong start to show itself. */
		coev_sleep(COEV_MSEC(300));
		TU_CHECK_EQ(atomic_load(&j.started), 0);
	}

	/* Cancelled while the job runs: the same, and the cancel stays
	 * pending for the next wait. */
	job_t k = {.usec = 150000, .value = 43};
	caller_t cc = {.job = &k};
	coev_task_t *t;
	TU_CHECK_EQ(coev_spawn_named("running", caller, &cc, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&k.started, 1), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(cc.rc, 0);
	TU_CHECK_EQ(cc.ret, 43);
	TU_CHECK_EQ(cc.finished_at_return, 1);
	TU_CHECK_EQ(cc.next_wait_rc, -ECANCELED);
	return 0;
}

static void test_blocking_running_job_is_waited_for(void **state)
{
	(void)state;
	assert_int_equal(run_cfg(running_main, NULL, 2, 0, 0), 0);
	tu_assert_no_failures();
}

/* ---- from a plain thread ------------------------------------------------ */

static void *plain_thread(void *arg)
{
	job_t *j = arg;
	int ret = 0;

	int rc = coev_blocking(job_fn, j, coev_deadline(COEV_SEC(5)), &ret);
	TU_CHECK_EQ(rc, 0);
	TU_CHECK_EQ(ret, j->value);
	TU_CHECK(pthread_equal(j->thread, pthread_self()));
	return NULL;
}

static void test_blocking_from_plain_thread_runs_inline(void **state)
{
	job_t j = {.value = 17};
	int ret = 0;

	(void)state;
	/* No runtime at all. */
	assert_int_equal(coev_blocking(job_fn, &j, COEV_FOREVER, &ret), 0);
	assert_int_equal(ret, 17);
	assert_true(pthread_equal(j.thread, pthread_self()));
	assert_int_equal(j.worker_id, -1);
	assert_int_equal(j.in_task, 0);

	/* Another thread while a runtime is alive. */
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt;
	pthread_t th;
	job_t k = {.value = 19};
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(pthread_create(&th, NULL, plain_thread, &k), 0);
	pthread_join(th, NULL);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&k.finished), 1);
}

/* ---- file helpers ------------------------------------------------------- */

#define FILE_BIG ((size_t)1024 * 1024 + 333)

typedef struct files {
	char dir[64];
} files_t;

static int files_main(void *arg)
{
	files_t *f = arg;
	char path[128], path2[128], missing[160];
	coev_time_t dl = tu_guard();
	size_t n = FILE_BIG;
	unsigned char *src = malloc(n);

	snprintf(path, sizeof path, "%s/data", f->dir);
	snprintf(path2, sizeof path2, "%s/rw", f->dir);
	snprintf(missing, sizeof missing, "%s/no/such/file", f->dir);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 7 + (i >> 9));

	/* write_all then read_all round-trips the bytes. */
	TU_CHECK_EQ(coev_file_write_all(path, src, n, dl), 0);
	char *data = NULL;
	size_t len = 0;
	TU_CHECK_EQ(coev_file_read_all(path, &data, &len, dl), 0);
	TU_CHECK_EQ(len, n);
	TU_CHECK(data && memcmp(data, src, n) == 0);
	TU_CHECK(data && data[len] == '\0');
	free(data);
	struct stat st;
	mode_t mask = umask(022);
	umask(mask);
	TU_CHECK_EQ(stat(path, &st), 0);
	TU_CHECK_EQ(st.st_mode & 0777, 0644 & ~mask);
	/* An existing file is truncated. */
	TU_CHECK_EQ(coev_file_write_all(path, "short", 5, dl), 0);
	TU_CHECK_EQ(coev_file_read_all(path, &data, &len, dl), 0);
	TU_CHECK_EQ(len, 5);
	TU_CHECK(data && memcmp(data, "short", 6) == 0);
	free(data);
	/* An empty file. */
	TU_CHECK_EQ(coev_file_write_all(path, "", 0, dl), 0);
	data = NULL;
	TU_CHECK_EQ(coev_file_read_all(path, &data, &len, dl), 0);
	TU_CHECK_EQ(len, 0);
	TU_CHECK(data && data[0] == '\0');
	free(data);

	/* pread / pwrite at offsets. */
	int fd = coev_file_open(path2, O_RDWR | O_CREAT | O_TRUNC, 0600, dl);
	TU_CHECK_MSG(fd >= 0, "open: %s", coev_strerror(fd));
	TU_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	TU_CHECK_EQ(coev_file_pwrite(fd, "abc", 3, 100, dl), 3);
	TU_CHECK_EQ(coev_file_pwrite(fd, "xyz", 3, 0, dl), 3);
	char buf[16];
	memset(buf, '#', sizeof buf);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 3, 100, dl), 3);
	TU_CHECK(memcmp(buf, "abc", 3) == 0);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 10, 1, dl), 10);
	TU_CHECK(memcmp(buf, "yz\0\0\0\0\0\0\0\0", 10) == 0);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 10, 98, dl), 5);
	TU_CHECK(memcmp(buf, "\0\0abc", 5) == 0);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 10, 200, dl), 0);
	TU_CHECK_EQ(fstat(fd, &st), 0);
	TU_CHECK_EQ(st.st_size, 103);
	/* off < 0: at the file position, which pread/pwrite left at 0. */
	TU_CHECK_EQ(coev_file_pwrite(fd, "123", 3, -1, dl), 3);
	TU_CHECK_EQ(coev_file_pwrite(fd, "45", 2, -1, dl), 2);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 5, 0, dl), 5);
	TU_CHECK(memcmp(buf, "12345", 5) == 0);
	TU_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 3, -1, dl), 3);
	TU_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8);
	TU_CHECK_EQ(coev_file_fsync(fd, dl), 0);
	TU_CHECK_EQ(coev_file_close(fd, dl), 0);
	TU_CHECK_EQ(coev_file_close(fd, dl), -EBADF);
	TU_CHECK_EQ(coev_file_pread(fd, buf, 1, 0, dl), -EBADF);

	/* Errors come back as negative errno values. */
	TU_CHECK_EQ(coev_file_open(missing, O_RDONLY, 0, dl), -ENOENT);
	char sentinel;
	data = &sentinel;
	len = 77;
	TU_CHECK_EQ(coev_file_read_all(missing, &data, &len, dl), -ENOENT);
	TU_CHECK(data == &sentinel);
	TU_CHECK_EQ(coev_file_write_all(missing, "x", 1, dl), -ENOENT);
	TU_CHECK_EQ(coev_file_open(f->dir, O_WRONLY, 0, dl), -EISDIR);
	TU_CHECK_EQ(coev_file_read_all(f->dir, &data, &len, dl), -EISDIR);
	TU_CHECK(data == &sentinel);
	free(src);
	return 0;
}

static void test_blocking_file_helpers(void **state)
{
	files_t f;

	(void)state;
	assert_int_equal(tu_mkdtemp(f.dir, sizeof f.dir), 0);
	int rc = run_cfg(files_main, &f, 2, 0, 0);
	tu_rmtree(f.dir);
	tu_assert_no_failures();
	assert_int_equal(rc, 0);
}

/* The same helpers from a plain thread do the calls themselves. */
static void test_blocking_file_helpers_from_plain_thread(void **state)
{
	char dir[64], path[128], *data = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/plain", dir);
	assert_int_equal(coev_file_write_all(path, "plain", 5, COEV_FOREVER),
			 0);
	assert_int_equal(coev_file_read_all(path, &data, &len, COEV_FOREVER),
			 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "plain", 5);
	free(data);
	int fd = coev_file_open(path, O_RDWR, 0, COEV_FOREVER);
	assert_true(fd >= 0);
	assert_int_equal(coev_file_pwrite(fd, "P", 1, 0, COEV_FOREVER), 1);
	char c = 0;
	assert_int_equal(coev_file_pread(fd, &c, 1, 0, COEV_FOREVER), 1);
	assert_int_equal(c, 'P');
	assert_int_equal(coev_file_fsync(fd, COEV_FOREVER), 0);
	assert_int_equal(coev_file_close(fd, COEV_FOREVER), 0);
	assert_int_equal(coev_file_open(dir, O_WRONLY, 0, COEV_FOREVER),
			 -EISDIR);
	assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_blocking_job_result_comes_back),
		TU_FD_TEST(test_blocking_jobs_do_not_stop_the_worker),
		TU_FD_TEST(test_blocking_pool_is_bounded),
		TU_FD_TEST(test_blocking_idle_threads_exit),
		TU_FD_TEST(test_blocking_queued_job_dropped_never_runs),
		TU_FD_TEST(test_blocking_running_job_is_waited_for),
		TU_FD_TEST(test_blocking_from_plain_thread_runs_inline),
		TU_FD_TEST(test_blocking_file_helpers),
		TU_FD_TEST(test_blocking_file_helpers_from_plain_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
