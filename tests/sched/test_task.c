/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_task.c — tasks: spawn, join, gather, detach, names and
 * ids, self, sleep, yield (include/coev/task.h).
 *
 * Task bodies never call cmocka's assert_*(): they record failures with
 * TU_CHECK and the test thread checks tu_assert_no_failures() at the end.
 */
#include "tests/testutil.h"

#include <pthread.h>

/* ---- helpers ------------------------------------------------------------ */

/* Waits (as a task) until *flag is non-zero, sleeping 1 ms at a time. */
static void wait_flag(atomic_int *flag)
{
	while (!atomic_load(flag))
		coev_sleep(COEV_MSEC(1));
}

/* ---- a million tasks ---------------------------------------------------- */

#define MILLION TU_SCALE(1000000, 1000000, 300000)

static uint64_t million_arg(size_t i)
{
	return (uint64_t)i * 7919u + 13u;
}

static int million_expect(size_t i)
{
	return (int)(million_arg(i) % 1000003u);
}

static int return_arg_mod(void *arg)
{
	return (int)((uint64_t)(uintptr_t)arg % 1000003u);
}

static int million_main(void *arg)
{
	size_t n = MILLION, spawned = 0, ok = 0, bad = 0;
	coev_task_t **h = calloc(n, sizeof *h);

	(void)arg;
	TU_CHECK(h != NULL);
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int rc = coev_spawn(return_arg_mod,
				    (void *)(uintptr_t)million_arg(i), &h[i]);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "spawn %zu: %s", i,
				     coev_strerror(rc));
			break;
		}
		spawned++;
	}
	for (size_t i = 0; i < spawned; i++) {
		int r = -1;
		int rc = coev_join(h[i], &r);
		if (rc == 0 && r == million_expect(i)) {
			ok++;
		} else if (bad++ < 5) {
			TU_CHECK_MSG(0, "task %zu: join %d result %d, want %d",
				     i, rc, r, million_expect(i));
		}
	}
	free(h);
	return (int)ok;
}

static void test_task_million_spawned_and_joined(void **state)
{
	(void)state;
	/* Default configuration: every online CPU a worker. */
	int ok = tu_run_main(million_main, NULL, 0);
	tu_assert_no_failures();
	assert_int_equal(ok, MILLION);
}

/* ---- fork/join trees ---------------------------------------------------- */

static int fib_task(void *arg)
{
	int n = (int)(intptr_t)arg;
	coev_task_t *t;
	int a = 0;

	if (n < 2)
		return n;
	int rc = coev_spawn(fib_task, (void *)(intptr_t)(n - 1), &t);
	if (rc != 0)
		return rc;
	int b = fib_task((void *)(intptr_t)(n - 2));
	rc = coev_join(t, &a);
	if (rc != 0)
		return rc;
	if (a < 0 || b < 0)
		return a < 0 ? a : b;
	return a + b;
}

static void test_task_nested_spawn_tree(void **state)
{
	(void)state;
	/* fib(20) = 6765 over about 10,000 tasks that each spawn and join. */
	assert_int_equal(tu_run_main(fib_task, (void *)(intptr_t)20, 2), 6765);
	assert_int_equal(tu_run_main(fib_task, (void *)(intptr_t)16, 1), 987);
}

/* ---- join publishes the task's writes ----------------------------------- */

#define PUBLISH_N 4096

typedef struct publish {
	uint64_t big;		   /* a result too large for an int */
	uint32_t words[PUBLISH_N]; /* plain, non-atomic writes */
} publish_t;

static int publish_task(void *arg)
{
	publish_t *p = arg;

	coev_yield(); /* may resume on another worker */
	for (uint32_t i = 0; i < PUBLISH_N; i++)
		p->words[i] = i * 2654435761u;
	p->big = 0x123456789abcdefULL;
	return 5;
}

static int publish_main(void *arg)
{
	enum { N = 16 };
	publish_t *p = calloc(N, sizeof *p);
	coev_task_t *t[N];
	int rets[N];

	(void)arg;
	for (int i = 0; i < N; i++)
		TU_CHECK_EQ(coev_spawn(publish_task, &p[i], &t[i]), 0);
	/* Half joined one by one, half gathered. */
	for (int i = 0; i < N / 2; i++) {
		TU_CHECK_EQ(coev_join(t[i], &rets[i]), 0);
		TU_CHECK_EQ(rets[i], 5);
	}
	TU_CHECK_EQ(coev_gather(&t[N / 2], N / 2, &rets[N / 2]), 0);
	for (int i = 0; i < N; i++) {
		TU_CHECK_EQ(rets[i], 5);
		TU_CHECK(p[i].big == 0x123456789abcdefULL);
		for (uint32_t k = 0; k < PUBLISH_N; k++) {
			if (p[i].words[k] != k * 2654435761u) {
				TU_CHECK_MSG(0, "task %d word %u", i, k);
				break;
			}
		}
	}
	free(p);
	return 0;
}

static void test_task_join_publishes_task_writes(void **state)
{
	(void)state;
	/* Under TSan a join that does not synchronise is a reported race. */
	assert_int_equal(tu_run_main(publish_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- gather ------------------------------------------------------------- */

#define GATHER_N 64

static int gather_expect(int i)
{
	return i % 3 == 0 ? -(1000 + i) : i * 10;
}

static int gather_child(void *arg)
{
	int i = (int)(intptr_t)arg;

	/* Finish in a mixed order: some at once, some after a yield or a
	 * short sleep. */
	if (i % 4 == 1)
		coev_yield();
	else if (i % 4 == 2)
		coev_sleep(COEV_MSEC(1 + i % 5));
	return gather_expect(i);
}

static int gather_main(void *arg)
{
	coev_task_t *t[GATHER_N];
	int rets[GATHER_N];
	int failed = 0;

	(void)arg;
	for (int i = 0; i < GATHER_N; i++) {
		TU_CHECK_EQ(
			coev_spawn(gather_child, (void *)(intptr_t)i, &t[i]),
			0);
		rets[i] = 0x7eadbeef;
		if (gather_expect(i) < 0)
			failed++;
	}
	int rc = coev_gather(t, GATHER_N, rets);
	TU_CHECK_EQ(rc, failed);
	for (int i = 0; i < GATHER_N; i++)
		TU_CHECK_EQ(rets[i], gather_expect(i));
	return rc;
}

static void test_task_gather_counts_failures(void **state)
{
	(void)state;
	int rc = tu_run_main(gather_main, NULL, 2);
	tu_assert_no_failures();
	assert_int_equal(rc, (GATHER_N + 2) / 3); /* i = 0, 3, ..., 63 */
}

static int return_seven(void *arg)
{
	(void)arg;
	return 7;
}

static int gather_edge_main(void *arg)
{
	coev_task_t *t[3];
	int rets[3];

	(void)arg;
	/* Nothing to wait for. */
	TU_CHECK_EQ(coev_gather(NULL, 0, NULL), 0);
	/* NULL arrays and a NULL entry. */
	TU_CHECK_EQ(coev_gather(NULL, 1, rets), -EINVAL);
	coev_task_t *nul[1] = {NULL};
	TU_CHECK_EQ(coev_gather(nul, 1, rets), -EINVAL);
	/* One of them is the caller: -EDEADLK, nothing consumed. */
	TU_CHECK_EQ(coev_spawn(return_seven, NULL, &t[0]), 0);
	t[1] = coev_self();
	TU_CHECK_EQ(coev_spawn(return_seven, NULL, &t[2]), 0);
	TU_CHECK_EQ(coev_gather(t, 3, rets), -EDEADLK);
	t[1] = t[2];
	rets[0] = rets[1] = -1;
	TU_CHECK_EQ(coev_gather(t, 2, rets), 0);
	TU_CHECK_EQ(rets[0], 7);
	TU_CHECK_EQ(rets[1], 7);
	return 0;
}

static void test_task_gather_bad_input(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(gather_edge_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* gather_dl: on -ETIMEDOUT the finished tasks are consumed (NULL in
 * tasks[]) and the others stay valid. */
typedef struct gdl {
	atomic_int release; /* lets the slow tasks finish */
	atomic_int quick_done;
} gdl_t;

static int gdl_quick(void *arg)
{
	gdl_t *g = arg;

	atomic_fetch_add(&g->quick_done, 1);
	return 11;
}

static int gdl_slow(void *arg)
{
	gdl_t *g = arg;

	wait_flag(&g->release);
	return 22;
}

static int gather_dl_main(void *arg)
{
	enum { N = 6 };
	gdl_t g = {0};
	coev_task_t *t[N];
	int rets[N] = {0};

	(void)arg;
	/* Even indices quick, odd slow. */
	for (int i = 0; i < N; i++)
		TU_CHECK_EQ(coev_spawn(i % 2 ? gdl_slow : gdl_quick, &g, &t[i]),
			    0);
	/* The quick ones have ended (a wait_any consumes nothing). */
	for (int i = 0; i < N; i += 2)
		TU_CHECK_EQ(coev_wait_any(&t[i], 1, tu_guard()), 0);
	TU_CHECK_EQ(atomic_load(&g.quick_done), N / 2);

	coev_time_t dl = coev_deadline(COEV_MSEC(20));
	TU_CHECK_EQ(coev_gather_dl(t, N, rets, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	for (int i = 0; i < N; i++) {
		if (i % 2 == 0) {
			TU_CHECK_MSG(t[i] == NULL, "quick task %d not consumed",
				     i);
			TU_CHECK_EQ(rets[i], 11);
		} else {
			TU_CHECK_MSG(t[i] != NULL, "slow task %d consumed", i);
		}
	}
	coev_task_t *rest[N / 2];
	int rest_rets[N / 2];
	int k = 0;
	for (int i = 0; i < N; i++)
		if (t[i] && k < N / 2)
			rest[k++] = t[i];
	TU_CHECK_EQ(k, N / 2);
	if (k != N / 2) {
		atomic_store(&g.release, 1);
		return -1;
	}
	/* A deadline already past only tries; nothing more finished. */
	TU_CHECK_EQ(coev_gather_dl(rest, (size_t)k, rest_rets,
				   coev_now() - COEV_SEC(1)),
		    -ETIMEDOUT);
	for (int i = 0; i < k; i++)
		TU_CHECK(rest[i] != NULL);

	atomic_store(&g.release, 1);
	TU_CHECK_EQ(coev_gather_dl(rest, (size_t)k, rest_rets,
				   coev_deadline(COEV_SEC(60))),
		    0);
	for (int i = 0; i < k; i++)
		TU_CHECK_EQ(rest_rets[i], 22);
	return 0;
}

static void test_task_gather_dl_times_out_and_keeps_unfinished(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(gather_dl_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- join with a deadline ----------------------------------------------- */

typedef struct flagged {
	atomic_int go;
	atomic_int done;
	int value;
} flagged_t;

static int wait_go_then_return(void *arg)
{
	flagged_t *f = arg;

	wait_flag(&f->go);
	atomic_store(&f->done, 1);
	return f->value;
}

static int join_dl_main(void *arg)
{
	flagged_t f = {.value = 77};
	coev_task_t *t;
	int r = -1;

	(void)arg;
	TU_CHECK_EQ(coev_spawn(wait_go_then_return, &f, &t), 0);

	coev_time_t dl = coev_deadline(COEV_MSEC(30));
	TU_CHECK_EQ(coev_join_dl(t, dl, &r), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl); /* waited at least until the deadline */
	TU_CHECK_EQ(r, -1);	    /* no result stored on timeout */
	/* A deadline in the past only tries. */
	TU_CHECK_EQ(coev_join_dl(t, coev_now() - COEV_MSEC(5), &r), -ETIMEDOUT);
	TU_CHECK_EQ(coev_join_dl(t, 0, &r), -ETIMEDOUT);

	/* The handle is still valid: let the task finish and join it. */
	atomic_store(&f.go, 1);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 77);
	TU_CHECK_EQ(atomic_load(&f.done), 1);

	/* Polling with past deadlines finds a finished task. */
	flagged_t g = {.value = 78};
	atomic_store(&g.go, 1);
	TU_CHECK_EQ(coev_spawn(wait_go_then_return, &g, &t), 0);
	int rc = -ETIMEDOUT;
	for (int i = 0; i < 100000 && rc == -ETIMEDOUT; i++) {
		rc = coev_join_dl(t, coev_now(), &r);
		if (rc == -ETIMEDOUT)
			coev_sleep(COEV_USEC(200));
	}
	TU_CHECK_EQ(rc, 0);
	TU_CHECK_EQ(r, 78);

	/* A far deadline on a task that finishes soon: 0, not a timeout. */
	flagged_t h = {.value = 79};
	atomic_store(&h.go, 1);
	TU_CHECK_EQ(coev_spawn(wait_go_then_return, &h, &t), 0);
	TU_CHECK_EQ(coev_join_dl(t, coev_deadline(COEV_SEC(60)), &r), 0);
	TU_CHECK_EQ(r, 79);

	/* ret may be NULL. */
	TU_CHECK_EQ(coev_spawn(return_seven, NULL, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	return 0;
}

static void test_task_join_deadline_times_out_then_joins(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(join_dl_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int join_null_main(void *arg)
{
	(void)arg;
	int r = 0;
	TU_CHECK_EQ(coev_join(NULL, &r), -EINVAL);
	TU_CHECK_EQ(coev_join_dl(NULL, COEV_FOREVER, &r), -EINVAL);
	TU_CHECK_EQ(coev_detach(NULL), -EINVAL);
	/* Joining oneself would wait forever. */
	TU_CHECK_EQ(coev_join(coev_self(), &r), -EDEADLK);
	TU_CHECK_EQ(coev_join_dl(coev_self(), coev_deadline(COEV_SEC(1)), &r),
		    -EDEADLK);
	return 0;
}

static void test_task_join_bad_handles(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(join_null_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- detach and detached spawns ----------------------------------------- */

typedef struct detach_state {
	atomic_int ran;
	atomic_int go;
} detach_state_t;

static int detached_body(void *arg)
{
	detach_state_t *d = arg;

	coev_yield();
	wait_flag(&d->go);
	atomic_fetch_add(&d->ran, 1);
	return -1; /* dropped */
}

static int count_up(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

#define DETACHED_N TU_SCALE(10000, 10000, 10000)

static int detach_main(void *arg)
{
	detach_state_t d = {0};
	coev_task_t *t;

	(void)arg;
	/* Detached while it still runs. */
	TU_CHECK_EQ(coev_spawn(detached_body, &d, &t), 0);
	/* Started, and waiting for go (1 ms sleeps). */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_TIMER, NULL), 0);
	TU_CHECK_EQ(coev_detach(t), 0);
	atomic_store(&d.go, 1);
	while (atomic_load(&d.ran) < 1)
		coev_sleep(COEV_MSEC(1));

	/* Detached after it finished. */
	atomic_int n = 0;
	TU_CHECK_EQ(coev_spawn(count_up, &n, &t), 0);
	TU_CHECK_EQ(coev_wait_any(&t, 1, tu_guard()), 0);
	TU_CHECK_EQ(atomic_load(&n), 1);
	TU_CHECK_EQ(coev_detach(t), 0);

	/* Detached from the start: out == NULL. */
	atomic_store(&n, 0);
	for (int i = 0; i < DETACHED_N; i++)
		TU_CHECK_EQ(coev_spawn(count_up, &n, NULL), 0);
	TU_CHECK_EQ(coev_spawn_named("detached-named", count_up, &n, NULL), 0);
	while (atomic_load(&n) < DETACHED_N + 1)
		coev_sleep(COEV_MSEC(1));
	TU_CHECK_EQ(atomic_load(&n), DETACHED_N + 1);
	/* Wait for the detached tasks' blocks to be released before main
	 * returns: coev_run waits for live tasks anyway. */
	return 0;
}

static void test_task_detach_and_spawn_without_handle(void **state)
{
	coev_config_t cfg = tu_config(2);

	(void)state;
	/* Its failed task is detached on purpose: no report of it. */
	cfg.report_unjoined = 0;
	/* Leaks of detached tasks are ASan's to find at exit. */
	assert_int_equal(coev_run(detach_main, NULL, &cfg), 0);
	tu_assert_no_failures();
}

/* ---- names and ids ------------------------------------------------------ */

typedef struct name_probe {
	char seen_null[64]; /* coev_task_name(NULL) inside */
	char seen_self[64]; /* coev_task_name(coev_self()) inside */
	uint64_t id_self;   /* coev_task_id(coev_self()) inside */
} name_probe_t;

static int probe_name(void *arg)
{
	name_probe_t *p = arg;
	const char *a = coev_task_name(NULL);
	const char *b = coev_task_name(coev_self());

	TU_CHECK(a != NULL && b != NULL);
	snprintf(p->seen_null, sizeof p->seen_null, "%s", a ? a : "(null)");
	snprintf(p->seen_self, sizeof p->seen_self, "%s", b ? b : "(null)");
	p->id_self = coev_task_id(coev_self());
	return 0;
}

#define IDS_N 200

static int names_main(void *arg)
{
	name_probe_t p[4];
	coev_task_t *t[4];
	char temp[] = "temporary-name";
	const char *long_name = "abcdefghijklmnopqrstuvwxyz0123456789"; /* 36 */

	(void)arg;
	memset(p, 0, sizeof p);
	TU_CHECK_EQ(coev_spawn_named("worker-7", probe_name, &p[0], &t[0]), 0);
	TU_CHECK_EQ(coev_spawn(probe_name, &p[1], &t[1]), 0);
	TU_CHECK_EQ(coev_spawn_named(temp, probe_name, &p[2], &t[2]), 0);
	memset(temp, 'X', sizeof temp - 1); /* the name was copied */
	TU_CHECK_EQ(coev_spawn_named(long_name, probe_name, &p[3], &t[3]), 0);

	/* Names and ids through the handles, before the joins. */
	TU_CHECK(strcmp(coev_task_name(t[0]), "worker-7") == 0);
	TU_CHECK(strcmp(coev_task_name(t[1]), "") == 0);
	TU_CHECK(strcmp(coev_task_name(t[2]), "temporary-name") == 0);
	TU_CHECK_MSG(strcmp(coev_task_name(t[3]),
			    "abcdefghijklmnopqrstuvwxyz01234") == 0,
		     "long name kept as '%s'", coev_task_name(t[3]));
	uint64_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = coev_task_id(t[i]);
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);

	TU_CHECK(strcmp(p[0].seen_null, "worker-7") == 0);
	TU_CHECK(strcmp(p[0].seen_self, "worker-7") == 0);
	TU_CHECK(strcmp(p[1].seen_null, "") == 0);
	TU_CHECK(strcmp(p[2].seen_self, "temporary-name") == 0);
	TU_CHECK(strcmp(p[3].seen_self, "abcdefghijklmnopqrstuvwxyz01234") ==
		 0);
	for (int i = 0; i < 4; i++) {
		TU_CHECK(ids[i] != 0);
		TU_CHECK(p[i].id_self == ids[i]);
	}
	/* Main's own name and id. */
	TU_CHECK(coev_task_id(coev_self()) != 0);
	TU_CHECK(coev_task_id(NULL) == 0);

	/* Ids are unique, also across workers and with blocks reused. */
	uint64_t *all = calloc(IDS_N + 4, sizeof *all);
	for (int i = 0; i < 4; i++)
		all[i] = ids[i];
	for (int i = 0; i < IDS_N; i++) {
		coev_task_t *x;
		name_probe_t q;
		TU_CHECK_EQ(coev_spawn(probe_name, &q, &x), 0);
		all[4 + i] = coev_task_id(x);
		TU_CHECK_EQ(coev_join(x, NULL), 0);
		TU_CHECK(q.id_self == all[4 + i]);
	}
	for (int i = 0; i < IDS_N + 4; i++)
		for (int j = i + 1; j < IDS_N + 4; j++)
			TU_CHECK_MSG(all[i] != all[j], "id %llu twice",
				     (unsigned long long)all[i]);
	free(all);
	return 0;
}

static void test_task_names_and_ids(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(names_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- coev_self, coev_worker_id, coev_rt_current ------------------------- */

typedef struct self_probe {
	coev_task_t *self;
	int worker;
	coev_rt_t *rt;
	coev_task_t *self_after_yield;
	int worker_after_sleep;
} self_probe_t;

static int probe_self(void *arg)
{
	self_probe_t *p = arg;

	p->self = coev_self();
	p->worker = coev_worker_id();
	p->rt = coev_rt_current();
	coev_yield();
	p->self_after_yield = coev_self();
	coev_sleep(COEV_MSEC(1));
	p->worker_after_sleep = coev_worker_id();
	return 0;
}

typedef struct foreign_probe {
	coev_task_t *self;
	int worker;
	coev_rt_t *rt;
} foreign_probe_t;

static void *foreign_probe_thread(void *arg)
{
	foreign_probe_t *p = arg;

	p->self = coev_self();
	p->worker = coev_worker_id();
	p->rt = coev_rt_current();
	return NULL;
}

static void test_task_self_and_worker_id(void **state)
{
	enum { N = 8, W = 2 };
	coev_rt_t *rt = NULL;
	coev_task_t *t[N];
	self_probe_t p[N];

	(void)state;
	/* Outside any runtime. */
	assert_null(coev_self());
	assert_int_equal(coev_worker_id(), -1);
	assert_null(coev_rt_current());

	coev_config_t cfg = tu_config(W);
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	memset(p, 0, sizeof p);
	for (int i = 0; i < N; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "probe", probe_self, &p[i], &t[i]),
			0);
	/* The test thread is still outside: no task, no worker. */
	assert_null(coev_self());
	assert_int_equal(coev_worker_id(), -1);
	assert_null(coev_rt_current());
	/* So is another thread while the runtime runs. */
	foreign_probe_t fp = {(coev_task_t *)&fp, 99, (coev_rt_t *)&fp};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_probe_thread, &fp),
			 0);
	pthread_join(th, NULL);
	assert_null(fp.self);
	assert_int_equal(fp.worker, -1);
	assert_null(fp.rt);

	for (int i = 0; i < N; i++) {
		assert_int_equal(coev_join(t[i], NULL), 0);
		assert_ptr_equal(p[i].self, t[i]);
		assert_ptr_equal(p[i].self_after_yield, t[i]);
		assert_in_range(p[i].worker, 0, W - 1);
		assert_in_range(p[i].worker_after_sleep, 0, W - 1);
		assert_ptr_equal(p[i].rt, rt);
	}
	coev_rt_free(rt);
}

/* ---- sleep -------------------------------------------------------------- */

typedef struct sleeper {
	coev_time_t want;    /* requested sleep */
	coev_time_t elapsed; /* measured */
	int rc;
} sleeper_t;

static int sleep_for(void *arg)
{
	sleeper_t *s = arg;
	coev_time_t t0 = coev_now();

	s->rc = coev_sleep(s->want);
	s->elapsed = coev_now() - t0;
	return 0;
}

static int sleep_main(void *arg)
{
	enum { N = 10 };
	sleeper_t s[N];
	coev_task_t *t[N];

	(void)arg;
	/* 50 ms from main itself: at least 50 ms (no upper bound). */
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(50)), 0);
	coev_time_t el = coev_now() - t0;
	TU_CHECK_MSG(el >= COEV_MSEC(50), "slept %lld ns", (long long)el);

	/* sleep_until a deadline: wakes at or after it. */
	coev_time_t dl = coev_now() + COEV_MSEC(30);
	TU_CHECK_EQ(coev_sleep_until(dl), 0);
	TU_CHECK(coev_now() >= dl);

	/* Many sleepers at once, each woken no earlier than asked. */
	for (int i = 0; i < N; i++) {
		s[i].want = COEV_MSEC(5 + 7 * ((i * 3) % N));
		TU_CHECK_EQ(coev_spawn(sleep_for, &s[i], &t[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(s[i].rc, 0);
		TU_CHECK_MSG(s[i].elapsed >= s[i].want,
			     "sleeper %d asked %lld slept %lld", i,
			     (long long)s[i].want, (long long)s[i].elapsed);
	}
	return 0;
}

static void test_task_sleep_lasts_at_least_duration(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(sleep_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int sleep_past_main(void *arg)
{
	(void)arg;
	/* Deadlines at or before now return at once: a hang here is caught
	 * by the binary's timeout. Repeated so that even a wait of one loop
	 * iteration per call would show up as a very slow test. */
	for (int i = 0; i < 1000; i++) {
		TU_CHECK_EQ(coev_sleep_until(coev_now() - COEV_SEC(1)), 0);
		TU_CHECK_EQ(coev_sleep_until(coev_now()), 0);
		TU_CHECK_EQ(coev_sleep(0), 0);
		TU_CHECK_EQ(coev_sleep(-COEV_SEC(5)), 0);
	}
	TU_CHECK_EQ(coev_sleep_until(0), 0);
	TU_CHECK_EQ(coev_sleep_until(INT64_MIN), 0);
	return 0;
}

static void test_task_sleep_until_past_returns_at_once(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(sleep_past_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- yield: nobody starves ---------------------------------------------- */

#define YIELDERS 4

typedef struct ystate {
	atomic_int stop;
	atomic_int late_ran;
	atomic_int all_advanced;
	atomic_ulong count[YIELDERS];
} ystate_t;

typedef struct yarg {
	ystate_t *s;
	int i;
} yarg_t;

static int yielder(void *arg)
{
	yarg_t *a = arg;

	while (!atomic_load(&a->s->stop)) {
		atomic_fetch_add(&a->s->count[a->i], 1);
		if (coev_yield() != 0) {
			TU_CHECK_MSG(0, "coev_yield failed in a task");
			break;
		}
	}
	return 0;
}

static int late_task(void *arg)
{
	ystate_t *s = arg;
	unsigned long snap[YIELDERS];

	atomic_store(&s->late_ran, 1);
	for (int i = 0; i < YIELDERS; i++)
		snap[i] = atomic_load(&s->count[i]);
	/* While we keep yielding, every yielder must get turns. */
	for (long tries = 0; tries < 10000000L; tries++) {
		int all = 1;
		for (int i = 0; i < YIELDERS; i++)
			if (atomic_load(&s->count[i]) < snap[i] + 3)
				all = 0;
		if (all) {
			atomic_store(&s->all_advanced, 1);
			break;
		}
		coev_yield();
	}
	atomic_store(&s->stop, 1);
	return 0;
}

static int yield_main(void *arg)
{
	ystate_t *s = arg;
	yarg_t a[YIELDERS];
	coev_task_t *t[YIELDERS], *late;

	for (int i = 0; i < YIELDERS; i++) {
		a[i].s = s;
		a[i].i = i;
		TU_CHECK_EQ(coev_spawn(yielder, &a[i], &t[i]), 0);
	}
	/* Main yields too until every yielder has run. */
	for (;;) {
		int all = 1;
		for (int i = 0; i < YIELDERS; i++)
			if (atomic_load(&s->count[i]) == 0)
				all = 0;
		if (all)
			break;
		coev_yield();
	}
	/* A task spawned now, behind busy yielders, must still run. */
	TU_CHECK_EQ(coev_spawn_named("late", late_task, s, &late), 0);
	int rc = coev_join_dl(late, coev_deadline(COEV_SEC(60)), NULL);
	TU_CHECK_MSG(rc == 0, "the late task did not finish: %s",
		     coev_strerror(rc));
	if (rc != 0) {
		atomic_store(&s->stop, 1);
		coev_join(late, NULL);
	}
	for (int i = 0; i < YIELDERS; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	return 0;
}

static void yield_case(unsigned workers)
{
	ystate_t s;

	memset(&s, 0, sizeof s);
	assert_int_equal(tu_run_main(yield_main, &s, workers), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&s.late_ran), 1);
	assert_int_equal(atomic_load(&s.all_advanced), 1);
	for (int i = 0; i < YIELDERS; i++)
		assert_true(atomic_load(&s.count[i]) >= 4);
}

static void test_task_yield_starves_nobody_one_worker(void **state)
{
	(void)state;
	yield_case(1);
}

static void test_task_yield_starves_nobody_two_workers(void **state)
{
	(void)state;
	yield_case(2);
}

/* coev_rt_spawn from a task of rt behaves as coev_spawn_named. */
static int rt_spawn_inside_main(void *arg)
{
	coev_task_t *t;
	int r = 0;

	(void)arg;
	TU_CHECK_EQ(coev_rt_spawn(coev_rt_current(), "inner", return_seven,
				  NULL, &t),
		    0);
	TU_CHECK(strcmp(coev_task_name(t), "inner") == 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 7);
	return 0;
}

static void test_task_rt_spawn_from_task(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(rt_spawn_inside_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_million_spawned_and_joined),
		cmocka_unit_test(test_task_nested_spawn_tree),
		cmocka_unit_test(test_task_join_publishes_task_writes),
		cmocka_unit_test(test_task_gather_counts_failures),
		cmocka_unit_test(test_task_gather_bad_input),
		cmocka_unit_test(
			test_task_gather_dl_times_out_and_keeps_unfinished),
		cmocka_unit_test(test_task_join_deadline_times_out_then_joins),
		cmocka_unit_test(test_task_join_bad_handles),
		cmocka_unit_test(test_task_detach_and_spawn_without_handle),
		cmocka_unit_test(test_task_names_and_ids),
		cmocka_unit_test(test_task_self_and_worker_id),
		cmocka_unit_test(test_task_sleep_lasts_at_least_duration),
		cmocka_unit_test(test_task_sleep_until_past_returns_at_once),
		cmocka_unit_test(test_task_yield_starves_nobody_one_worker),
		cmocka_unit_test(test_task_yield_starves_nobody_two_workers),
		cmocka_unit_test(test_task_rt_spawn_from_task),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
