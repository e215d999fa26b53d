/* SPDX-License-Identifier: MIT */
/*
 * tests/misuse/test_misuse.c — misuse and bad input in tasks, the runtime
 * and the sync objects: the rows of docs/GUARANTEES.md that no other suite
 * covers (deadlines, timers and the blocking pool are in
 * test_misuse_deadlines.c).
 *
 * Each test shows one of three outcomes: a specific error code (checked
 * directly), an abort whose message names the misuse (checked in a forked
 * child: the signal and the message's words), or a documented no-op. Calls
 * that could hang when the guarantee is broken (a recursive coev_once, two
 * shutdowns at once) run in a child under an alarm, so that a regression
 * fails the test instead of hanging the binary.
 *
 * Never tested here: use of freed memory (a second coev_rt_free,
 * coev_chan_free or coev_scope_close, a join of a handle whose block was
 * freed, a future used after its last release). The guarantees document
 * says what is detected instead; a test doing it would be reported by
 * ASan, rightly.
 */
#define TU_LOOP_CALLS
#include "tests/misuse/misuse_util.h"

/* ---- tasks: handles ------------------------------------------------------ */

static int detach_twice_main(void *arg)
{
	coev_task_t *t;

	(void)arg;
	if (coev_spawn(wait_gate, NULL, &t) != 0)
		return -1;
	coev_detach(t);
	/* The task still runs, so its block is alive: detectable. */
	coev_detach(t);
	return -3;
}

/* Proves: a second coev_detach of a handle whose task still runs aborts,
 * naming coev_detach and the rule. */
static void test_misuse_detach_twice_aborts(void **state)
{
	static const char *const words[] = {"coev_detach",
					    "already joined or detached", NULL};

	(void)state;
	expect_main_aborts(detach_twice_main, words);
}

static int join_it(void *arg)
{
	return coev_join(arg, NULL);
}

/* Two joiners of one handle: the second to register aborts. */
static int second_joiner_main(void *arg)
{
	coev_task_t *t, *j;

	(void)arg;
	if (coev_spawn(wait_gate, NULL, &t) != 0 ||
	    coev_spawn(join_it, t, &j) != 0)
		return -1;
	tu_wait_parked(NULL, j, COEV_WAIT_JOIN, t); /* j waits to join t */
	coev_join(t, NULL);
	return -3;
}

static int wait_any_joined_main(void *arg)
{
	coev_task_t *t, *j;

	(void)arg;
	if (coev_spawn(wait_gate, NULL, &t) != 0 ||
	    coev_spawn(join_it, t, &j) != 0)
		return -1;
	tu_wait_parked(NULL, j, COEV_WAIT_JOIN, t); /* j waits to join t */
	coev_wait_any(&t, 1, COEV_FOREVER);
	return -3;
}

/* Proves: joining, or coev_wait_any on, a handle another task is already
 * joining aborts, naming the call. */
static void test_misuse_second_joiner_aborts(void **state)
{
	static const char *const join_words[] = {
		"coev_join", "already joined or detached", NULL};
	static const char *const any_words[] = {
		"coev_wait_any", "being joined by someone else", NULL};

	(void)state;
	expect_main_aborts(second_joiner_main, join_words);
	expect_main_aborts(wait_any_joined_main, any_words);
}

/* ---- tasks: shields, pushed deadlines, scopes ---------------------------- */

static int return_inside_shield(void *arg)
{
	(void)arg;
	coev_shield_begin();
	return 0;
}

/* Proves: a task that returns inside a shield aborts, naming the task
 * and the missing coev_shield_end. */
static void test_misuse_return_inside_shield_aborts(void **state)
{
	static const char *const words[] = {"'main'", "inside a shield",
					    "coev_shield_end", NULL};

	(void)state;
	expect_main_aborts(return_inside_shield, words);
}

static int pop_out_of_order(void *arg)
{
	(void)arg;
	coev_time_t outer = coev_deadline_push(coev_deadline(COEV_SEC(100)));
	coev_time_t inner = coev_deadline_push(coev_deadline(COEV_SEC(50)));
	coev_deadline_pop(outer);
	coev_deadline_pop(inner); /* after its outer one: must abort */
	return -3;
}

/* Proves: popping pushed deadlines in the wrong order aborts, naming
 * coev_deadline_pop. */
static void test_misuse_deadline_pop_out_of_order_aborts(void **state)
{
	static const char *const words[] = {"coev_deadline_pop out of order",
					    "'main'", NULL};

	(void)state;
	expect_main_aborts(pop_out_of_order, words);
}

static int return_with_scope_open(void *arg)
{
	coev_scope_t *s;

	(void)arg;
	if (coev_scope_open(0, &s) != 0)
		return -1;
	return 0;
}

/* The owner keeps its scope open; a plain thread tries to close it. */
static coev_scope_t *foreign_scope;
static atomic_int foreign_scope_ready;

static int scope_owner(void *arg)
{
	(void)arg;
	if (coev_scope_open(0, &foreign_scope) != 0)
		return -1;
	atomic_store(&foreign_scope_ready, 1);
	wait_gate(NULL);
	return coev_scope_close(foreign_scope);
}

static void close_scope_from_thread(void *arg)
{
	coev_rt_t *rt;
	coev_config_t cfg;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 1;
	if (coev_rt_new(&cfg, &rt) != 0 ||
	    coev_rt_spawn(rt, "owner", scope_owner, NULL, NULL) != 0)
		_exit(91);
	tu_thread_wait_at_least(&foreign_scope_ready, 1);
	coev_scope_close(foreign_scope);
	fprintf(stderr, "coev_scope_close returned: no abort\n");
}

/* Proves: a task returning with a scope still open aborts, naming the
 * task; closing a scope from a plain thread (not its owner) aborts. */
static void
test_misuse_scope_left_open_or_closed_by_stranger_aborts(void **state)
{
	static const char *const open_words[] = {
		"'main'", "returned with a scope still open", NULL};
	static const char *const close_words[] = {"coev_scope_close",
						  "not by its owner", NULL};

	(void)state;
	expect_main_aborts(return_with_scope_open, open_words);
	expect_abort(close_scope_from_thread, NULL, close_words);
}

/* ---- tasks: calls from the wrong kind of thread --------------------------- */

/* Proves: from a plain thread (with and without a runtime running) the
 * task-only calls not covered elsewhere return COEV_ENOTCORO
 * (coev_shield_end, coev_wait_for) or do nothing (coev_deadline_pop),
 * while the calls that may block a plain thread work there: a join, a
 * mutex lock, a channel receive. */
static void test_misuse_task_calls_from_plain_thread(void **state)
{
	int r = -1;

	(void)state;
	for (int with_rt = 0; with_rt < 2; with_rt++) {
		coev_rt_t *rt = with_rt ? tu_new_rt(2) : NULL;

		assert_int_equal(coev_shield_end(), COEV_ENOTCORO);
		assert_int_equal(
			coev_wait_for(return_arg, NULL, tu_guard(), &r),
			COEV_ENOTCORO);
		assert_int_equal(r, -1);
		coev_deadline_pop(0);
		coev_deadline_pop(COEV_FOREVER);
		assert_int_equal(coev_sleep(COEV_MSEC(1)), COEV_ENOTCORO);

		coev_mutex_t m;
		assert_int_equal(coev_mutex_init(&m, 0), 0);
		assert_int_equal(coev_mutex_lock(&m), 0);
		assert_int_equal(coev_mutex_lock(&m), -EDEADLK);
		coev_mutex_unlock(&m);
		coev_mutex_destroy(&m);

		coev_chan_t *ch;
		int v = 7, got = 0;
		assert_int_equal(coev_chan_new(&ch, sizeof v, 1), 0);
		assert_int_equal(coev_chan_send(ch, &v), 0);
		assert_int_equal(coev_chan_recv(ch, &got), 0);
		assert_int_equal(got, 7);
		coev_chan_free(ch);

		if (rt) {
			coev_task_t *t;
			assert_int_equal(coev_rt_spawn(rt, NULL, return_arg,
						       (void *)(intptr_t)11,
						       &t),
					 0);
			assert_int_equal(coev_join(t, &r), 0);
			assert_int_equal(r, 11);
			coev_rt_free(rt);
		}
	}
}

typedef struct loop_calls {
	coev_rt_t *rt;
	coev_task_t *target; /* a handle of the task that asked */
	int sleep, sleep_until, yield, spawn, spawn_named, join, join_dl,
		gather, gather_dl, wait_any, wait_for, scope_open, cancelled,
		shield_begin, shield_end, push, blocking, shutdown, run;
	int joined_r; /* untouched by the refused join */
	coev_task_t *spawned;
} loop_calls_t;

static void loop_calls_cb(void *arg)
{
	loop_calls_t *c = arg;
	coev_task_t *tasks[1] = {c->target};
	coev_scope_t *s = NULL;
	int rets[1] = {0};

	c->sleep = coev_sleep(COEV_MSEC(1));
	c->sleep_until = coev_sleep_until(coev_deadline(COEV_MSEC(1)));
	c->yield = coev_yield();
	c->spawn = coev_spawn(return_arg, NULL, &c->spawned);
	c->spawn_named = coev_spawn_named("x", return_arg, NULL, &c->spawned);
	c->join = coev_join(c->target, &c->joined_r);
	c->join_dl = coev_join_dl(c->target, tu_guard(), &c->joined_r);
	c->gather = coev_gather(tasks, 1, rets);
	c->gather_dl = coev_gather_dl(tasks, 1, rets, tu_guard());
	c->wait_any = coev_wait_any(tasks, 1, tu_guard());
	c->wait_for = coev_wait_for(return_arg, NULL, tu_guard(), NULL);
	c->scope_open = coev_scope_open(0, &s);
	c->cancelled = coev_cancelled();
	c->shield_begin = coev_shield_begin();
	c->shield_end = coev_shield_end();
	c->push = (int)coev_deadline_push(tu_guard());
	c->blocking = coev_blocking(return_arg, NULL, tu_guard(), NULL);
	c->shutdown = coev_rt_shutdown(c->rt, tu_guard());
	c->run = coev_run(return_arg, NULL, NULL);
}

static int loop_calls_main(void *arg)
{
	loop_calls_t c;
	coev_task_t *t;
	int r = 0;

	(void)arg;
	memset(&c, 0, sizeof c);
	c.joined_r = 12345;
	c.rt = coev_rt_current();
	TU_CHECK_EQ(coev_spawn(wait_gate, NULL, &t), 0);
	c.target = t;
	TU_CHECK_EQ(tu_on_loop(loop_calls_cb, &c), 0);
	TU_CHECK_EQ(c.sleep, COEV_ENOTCORO);
	TU_CHECK_EQ(c.sleep_until, COEV_ENOTCORO);
	TU_CHECK_EQ(c.yield, COEV_ENOTCORO);
	TU_CHECK_EQ(c.spawn, COEV_ENOTCORO);
	TU_CHECK_EQ(c.spawn_named, COEV_ENOTCORO);
	TU_CHECK(c.spawned == NULL);
	TU_CHECK_EQ(c.join, COEV_ENOTCORO);
	TU_CHECK_EQ(c.join_dl, COEV_ENOTCORO);
	TU_CHECK_EQ(c.gather, COEV_ENOTCORO);
	TU_CHECK_EQ(c.gather_dl, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wait_any, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wait_for, COEV_ENOTCORO);
	TU_CHECK_EQ(c.scope_open, COEV_ENOTCORO);
	TU_CHECK_EQ(c.cancelled, COEV_ENOTCORO);
	TU_CHECK_EQ(c.shield_begin, COEV_ENOTCORO);
	TU_CHECK_EQ(c.shield_end, COEV_ENOTCORO);
	TU_CHECK_EQ(c.push, COEV_ENOTCORO);
	TU_CHECK_EQ(c.blocking, COEV_ENOTCORO);
	TU_CHECK_EQ(c.shutdown, COEV_ENOTRT);
	TU_CHECK_EQ(c.run, COEV_ENOTRT);
	TU_CHECK_EQ(c.joined_r, 12345);
	/* The refused calls consumed nothing: the handle is still ours. */
	atomic_store(&gate_open, 1);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 0);
	return 0;
}

/* Proves: in a loop callback (a worker thread outside any task) every
 * task call that can wait returns COEV_ENOTCORO, coev_rt_shutdown and
 * coev_run return COEV_ENOTRT, and a refused join or gather leaves the
 * handle valid. */
static void test_misuse_task_calls_from_loop_callback(void **state)
{
	(void)state;
	atomic_store(&gate_open, 0);
	assert_int_equal(tu_run_main(loop_calls_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- runtime --------------------------------------------------------------- */

/* Proves: configuration fields out of range other than workers and
 * stack_size give -EINVAL and no runtime; a malformed
 * COEV_BLOCKING_THREADS gives -EINVAL with that field at its default. */
static void test_misuse_config_fields_out_of_range(void **state)
{
	static const coev_time_t bad_times[] = {-1, INT64_MIN};
	static const unsigned bad_max[] = {0, COEV_BLOCKING_MAX + 1, UINT_MAX};
	static const char *const bad_env[] = {"0", "4097", "x", "-1", "8q"};
	coev_rt_t *rt;
	coev_config_t cfg;

	(void)state;
	for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
		cfg = tu_config(1);
		cfg.shutdown_timeout = bad_times[i];
		rt = (coev_rt_t *)&rt;
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
		assert_null(rt);
		cfg = tu_config(1);
		cfg.blocking_idle = bad_times[i];
		rt = (coev_rt_t *)&rt;
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
		assert_null(rt);
	}
	for (size_t i = 0; i < sizeof bad_max / sizeof bad_max[0]; i++) {
		cfg = tu_config(1);
		cfg.blocking_max = bad_max[i];
		rt = (coev_rt_t *)&rt;
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
		assert_null(rt);
	}
	for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
		setenv("COEV_BLOCKING_THREADS", bad_env[i], 1);
		memset(&cfg, 0xab, sizeof cfg);
		assert_int_equal(coev_config_init(&cfg), -EINVAL);
		assert_int_equal(cfg.blocking_max, COEV_BLOCKING_DEFAULT);
	}
	unsetenv("COEV_BLOCKING_THREADS");
	assert_int_equal(coev_config_init(NULL), -EINVAL);
	assert_int_equal(coev_run(NULL, NULL, NULL), -EINVAL);
}

static atomic_int idle_job_ran;

static int count_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&idle_job_ran, 1);
	return 5;
}

static int longest_main(void *arg)
{
	int r = 0;

	(void)arg;
	/* The pool starts empty; the job starts its first thread. */
	int before = tu_thread_count();
	TU_CHECK_EQ(coev_blocking(count_job, NULL, tu_guard(), &r), 0);
	TU_CHECK_EQ(r, 5);
	/* The pool thread stays: an idle time of forever never ends (a
	 * negative check: time for a wrong exit to show itself). */
	coev_sleep(COEV_MSEC(50));
	TU_CHECK_EQ(tu_thread_count(), before + 1);
	return 0;
}

/* Proves: the longest timeouts a configuration takes (COEV_FOREVER for
 * blocking_idle and shutdown_timeout) are accepted and mean "never":
 * the pool thread does not end after its job (the idle deadline does not
 * overflow; UBSan checks the arithmetic in the sanitizer build), and
 * coev_run still returns once main has. */
static void test_misuse_config_longest_timeouts(void **state)
{
	coev_config_t cfg = tu_config(2);

	(void)state;
	cfg.blocking_idle = COEV_FOREVER;
	cfg.shutdown_timeout = COEV_FOREVER;
	atomic_store(&idle_job_ran, 0);
	assert_int_equal(coev_run(longest_main, NULL, &cfg), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&idle_job_ran), 1);
}

typedef struct racer {
	coev_rt_t *rt;
	coev_time_t deadline;
	atomic_int *go;
	int left;
} racer_t;

static void *shutdown_racer(void *arg)
{
	racer_t *r = arg;

	while (!atomic_load(r->go))
		;
	r->left = coev_rt_shutdown(r->rt, r->deadline);
	return NULL;
}

/* Two threads shut rt down at once; stores what each got. */
static void shutdown_twice_at_once(coev_rt_t *rt, coev_time_t deadline,
				   int left[2])
{
	atomic_int go = 0;
	racer_t r[2];
	pthread_t th[2];

	for (int i = 0; i < 2; i++) {
		r[i] = (racer_t){.rt = rt, .deadline = deadline, .go = &go};
		if (pthread_create(&th[i], NULL, shutdown_racer, &r[i]) != 0)
			_exit(94);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		left[i] = r[i].left;
	}
}

static void shutdown_race_body(void *arg)
{
	int left[2];

	(void)arg;
	for (int round = 0; round < TU_SCALE(10, 6, 4); round++) {
		coev_rt_t *rt = child_rt(2);
		int late = round % 2;
		/* One task that finishes in time, one that does not; both
		 * started (a task cancelled before it runs never runs). */
		atomic_store(&sleepers_started, 0);
		TU_CHECK_EQ(coev_rt_spawn(rt, "short", shielded_sleep_ms,
					  (void *)(intptr_t)20, NULL),
			    0);
		if (late)
			TU_CHECK_EQ(coev_rt_spawn(rt, "long", shielded_sleep_ms,
						  (void *)(intptr_t)10000,
						  NULL),
				    0);
		TU_CHECK_EQ(
			tu_thread_wait_at_least(&sleepers_started, 1 + late),
			0);
		shutdown_twice_at_once(rt, coev_deadline(COEV_MSEC(200)), left);
		TU_CHECK_EQ(left[0], late);
		TU_CHECK_EQ(left[1], late);
		coev_time_t t0 = coev_now();
		TU_CHECK_EQ(coev_rt_shutdown(rt, COEV_FOREVER), late);
		TU_CHECK(coev_now() - t0 < PROMPT);
		coev_rt_free(rt);
	}
}

/* Proves: coev_rt_shutdown called by two threads at once is one shutdown:
 * both get the same count (0 when every task finished in time, else the
 * tasks left), and a third call returns it again without waiting. In a
 * child under an alarm: two shutdowns joining the same workers can hang. */
static void test_misuse_shutdown_from_two_threads_at_once(void **state)
{
	(void)state;
	expect_clean_child(shutdown_race_body, NULL);
}

typedef struct other_rt {
	coev_rt_t *other;
	int shutdown, run;
} other_rt_t;

static int from_other_runtime(void *arg)
{
	other_rt_t *o = arg;

	o->shutdown = coev_rt_shutdown(o->other, tu_guard());
	o->run = coev_run(return_arg, NULL, NULL);
	return 0;
}

/* Proves: shutting a runtime down from a task of another runtime, and
 * coev_run from inside a task, return COEV_ENOTRT (a worker must never
 * block on a runtime); past, zero and negative shutdown deadlines do not
 * wait and report the tasks left. */
static void
test_misuse_shutdown_from_another_runtime_and_past_deadlines(void **state)
{
	static const coev_time_t past[] = {INT64_MIN, -1, 0};
	other_rt_t o = {0};
	coev_task_t *t;
	int r = -1;

	(void)state;
	coev_rt_t *a = tu_new_rt(1), *b = tu_new_rt(1);
	o.other = b;
	assert_int_equal(coev_rt_spawn(a, NULL, from_other_runtime, &o, &t), 0);
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(o.shutdown, COEV_ENOTRT);
	assert_int_equal(o.run, COEV_ENOTRT);
	coev_rt_free(a);
	coev_rt_free(b);

	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		coev_rt_t *rt = tu_new_rt(1);
		atomic_store(&sleepers_started, 0);
		assert_int_equal(coev_rt_spawn(rt, "long", shielded_sleep_ms,
					       (void *)(intptr_t)10000, NULL),
				 0);
		/* Started: a task cancelled before it runs is not counted. */
		assert_int_equal(tu_thread_wait_at_least(&sleepers_started, 1),
				 0);
		coev_time_t t0 = coev_now();
		assert_int_equal(coev_rt_shutdown(rt, past[i]), 1);
		assert_true(coev_now() - t0 < PROMPT);
		coev_rt_free(rt);
	}
}

/* ---- sync ------------------------------------------------------------------ */

static void destroy_twice_body(void *arg)
{
	coev_mutex_t m;
	coev_rwlock_t rw;
	coev_sem_t s;
	coev_event_t e;
	coev_cond_t c;
	coev_wg_t wg;
	coev_barrier_t b;

	(void)arg;
	for (int round = 0; round < 2; round++) {
		TU_CHECK_EQ(coev_mutex_init(&m, 0), 0);
		TU_CHECK_EQ(coev_mutex_trylock(&m), 0);
		coev_mutex_unlock(&m);
		coev_mutex_destroy(&m);
		coev_mutex_destroy(&m);

		TU_CHECK_EQ(coev_rwlock_init(&rw), 0);
		TU_CHECK_EQ(coev_rwlock_trywrlock(&rw), 0);
		coev_rwlock_wrunlock(&rw);
		coev_rwlock_destroy(&rw);
		coev_rwlock_destroy(&rw);

		TU_CHECK_EQ(coev_sem_init(&s, 1), 0);
		TU_CHECK_EQ(coev_sem_tryacquire(&s), 0);
		TU_CHECK_EQ(coev_sem_release(&s), 0);
		coev_sem_destroy(&s);
		coev_sem_destroy(&s);

		TU_CHECK_EQ(coev_event_init(&e), 0);
		coev_event_set(&e);
		coev_event_destroy(&e);
		coev_event_destroy(&e);

		TU_CHECK_EQ(coev_cond_init(&c), 0);
		coev_cond_broadcast(&c);
		coev_cond_destroy(&c);
		coev_cond_destroy(&c);

		TU_CHECK_EQ(coev_wg_init(&wg), 0);
		coev_wg_add(&wg, 1);
		coev_wg_done(&wg);
		coev_wg_destroy(&wg);
		coev_wg_destroy(&wg);

		TU_CHECK_EQ(coev_barrier_init(&b, 1), 0);
		TU_CHECK_EQ(coev_barrier_wait(&b), COEV_BARRIER_SERIAL);
		coev_barrier_destroy(&b);
		coev_barrier_destroy(&b);
		/* The next round initialises the same storage again. */
	}
	fprintf(stderr, "destroyed each kind twice, twice\n");
}

/* Proves: destroying an idle sync object a second time (mutex, rwlock,
 * semaphore, event, condition variable, wait group, barrier) does nothing:
 * no abort, and the storage can be initialised and used again. */
static void test_misuse_sync_destroy_twice_is_a_noop(void **state)
{
	(void)state;
	expect_clean_child(destroy_twice_body, NULL);
}

static coev_once_t rec_once;

static int once_inner(void *arg)
{
	(void)arg;
	return 0;
}

static int once_recursive(void *arg)
{
	int *inner = arg;

	*inner = coev_once(&rec_once, once_inner, NULL);
	return 1;
}

static void once_recursion_check(void)
{
	int inner = 1;

	memset(&rec_once, 0, sizeof rec_once);
	TU_CHECK_EQ(coev_once(&rec_once, once_recursive, &inner), 0);
	TU_CHECK_EQ(inner, -EDEADLK);
	TU_CHECK_EQ(coev_once_done(&rec_once), 1);
	/* Done now: a later call from fn's caller returns 0 at once. */
	TU_CHECK_EQ(coev_once(&rec_once, once_inner, NULL), 0);
}

static int once_recursion_task(void *arg)
{
	(void)arg;
	once_recursion_check();
	return 0;
}

static void once_recursion_body(void *arg)
{
	(void)arg;
	once_recursion_check(); /* a plain thread */
	coev_rt_t *rt = child_rt(2);
	coev_task_t *t;
	int r = -1;
	TU_CHECK_EQ(coev_rt_spawn(rt, NULL, once_recursion_task, NULL, &t), 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK_EQ(r, 0);
	coev_rt_free(rt);
}

/* Proves: coev_once called on o from inside o's own fn (by the caller
 * running fn, task or plain thread) returns -EDEADLK instead of waiting
 * for itself forever; the outer call completes normally. */
static void test_misuse_once_called_from_its_own_fn(void **state)
{
	(void)state;
	expect_clean_child(once_recursion_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Children first, while the process has one thread. */
		cmocka_unit_test(test_misuse_detach_twice_aborts),
		cmocka_unit_test(test_misuse_second_joiner_aborts),
		cmocka_unit_test(test_misuse_return_inside_shield_aborts),
		cmocka_unit_test(test_misuse_deadline_pop_out_of_order_aborts),
		cmocka_unit_test(
			test_misuse_scope_left_open_or_closed_by_stranger_aborts),
		cmocka_unit_test(test_misuse_sync_destroy_twice_is_a_noop),
		cmocka_unit_test(test_misuse_once_called_from_its_own_fn),
		cmocka_unit_test(test_misuse_shutdown_from_two_threads_at_once),
		TU_FD_TEST(test_misuse_task_calls_from_plain_thread),
		TU_FD_TEST(test_misuse_task_calls_from_loop_callback),
		TU_FD_TEST(test_misuse_config_fields_out_of_range),
		TU_FD_TEST(test_misuse_config_longest_timeouts),
		TU_FD_TEST(
			test_misuse_shutdown_from_another_runtime_and_past_deadlines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
