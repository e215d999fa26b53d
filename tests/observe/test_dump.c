/* SPDX-License-Identifier: MIT */
/*
 * tests/observe/test_dump.c — task dumps (include/coev/debug.h,
 * observe/dump.c): coev_rt_tasks() and coev_rt_dump() list every live task
 * with its true state, what it waits on, its worker and age; parked tasks
 * come with a backtrace through their own functions; a cycle of tasks
 * waiting on each other's mutexes is named as a deadlock; bad arguments
 * are refused.
 *
 * Design choices:
 *  - One scene of tasks whose state is known by construction: each parks
 *    in a different kind of wait (mutex, event, timer, fd, channel,
 *    future, join, blocking pool), one has ended unjoined, and a
 *    "director" task takes the snapshot, so it is the running one. The
 *    director first polls coev_rt_tasks() until every task shows the
 *    state it is built to reach (a task notes its wait before it parks,
 *    and only parked tasks are WAITING), then checks one snapshot field
 *    by field and the text dump line by line.
 *  - A task that has not run yet cannot be caught on two workers (an idle
 *    worker may take it at any time), so READY is checked in a runtime of
 *    one worker whose only running task spawns and snapshots without
 *    suspending in between.
 *  - Task bodies that must show in a backtrace are noinline, have names
 *    found nowhere else, and never end in a tail call to the wait (the
 *    call is followed by a check), so their frames are on the stack.
 *  - The text dump is written to a tmpfile, not a pipe: a dump larger than
 *    the pipe's buffer would block its writer, the director itself.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#define MAX_TASKS 64

/* ---- helpers ------------------------------------------------------------- */

static const coev_task_info_t *find(const coev_task_info_t *a, int n,
				    const char *name)
{
	for (int i = 0; i < n && i < MAX_TASKS; i++)
		if (strcmp(a[i].name, name) == 0)
			return &a[i];
	return NULL;
}

/* rt's text dump, NUL-terminated and malloc'd (NULL on failure). */
static char *dump_text(coev_rt_t *rt)
{
	FILE *f = tmpfile();
	char *buf = NULL;
	long len;
	int r;

	if (!f)
		return NULL;
	r = coev_rt_dump(rt, fileno(f));
	TU_CHECK_EQ(r, 0);
	len = lseek(fileno(f), 0, SEEK_END);
	if (r == 0 && len > 0 && (buf = malloc((size_t)len + 1)) != NULL) {
		ssize_t k = pread(fileno(f), buf, (size_t)len, 0);

		buf[k > 0 ? k : 0] = '\0';
	}
	fclose(f);
	return buf;
}

/* The line of text starting with "task #id 'name': " and the backtrace
 * lines after it, as a malloc'd string (NULL when there is no such
 * line). */
static char *task_block(const char *text, uint64_t id, const char *name)
{
	char head[96];
	const char *at, *end;
	char *out;
	size_t hl;

	hl = (size_t)snprintf(head, sizeof head,
			      "task #%llu '%s': ", (unsigned long long)id,
			      name);
	for (at = text; (at = strstr(at, head)) != NULL; at += hl)
		if (at == text || at[-1] == '\n')
			break;
	if (!at)
		return NULL;
	end = strchr(at, '\n');
	while (end && strncmp(end + 1, "    #", 5) == 0)
		end = strchr(end + 1, '\n');
	end = end ? end + 1 : at + strlen(at);
	out = malloc((size_t)(end - at) + 1);
	if (out) {
		memcpy(out, at, (size_t)(end - at));
		out[end - at] = '\0';
	}
	return out;
}

/* The dump has a line for task id 'name' that goes on with rest, and, when
 * fn is not NULL, backtrace lines after it with a frame in fn. */
static void check_block(const char *text, uint64_t id, const char *name,
			const char *rest, const char *fn)
{
	char *b = task_block(text, id, name);
	char frame[64];

	TU_CHECK_MSG(b != NULL, "no line for task #%llu '%s'",
		     (unsigned long long)id, name);
	if (!b)
		return;
	TU_CHECK_MSG(strstr(b, rest) == b + strcspn(b, ":") + 2,
		     "task '%s': expected \"%s\" in:\n%s", name, rest, b);
	if (fn) {
		snprintf(frame, sizeof frame, " %s+0x", fn);
		TU_CHECK_MSG(strstr(b, "\n    #0 ") != NULL,
			     "task '%s' has no backtrace:\n%s", name, b);
		TU_CHECK_MSG(strstr(b, frame) != NULL,
			     "task '%s': no frame in %s:\n%s", name, fn, b);
	}
	free(b);
}

/* ---- the scene ----------------------------------------------------------- */

enum {
	T_HOLDER,
	T_MUTEX,
	T_SLEEPER,
	T_READER,
	T_CHAN,
	T_FUTURE,
	T_JOINEE,
	T_JOINER,
	T_BLOCKER,
	T_SHIELDED,
	T_DONE,
	T_COUNT
};

typedef struct scene {
	coev_mutex_t mu;
	coev_event_t hold;   /* the holder waits on it */
	coev_event_t go;     /* the joinee waits on it */
	coev_event_t shield; /* the shielded task waits on it */
	coev_chan_t *ch;
	coev_future_t *fut;
	int pfd[2];
	sem_t job; /* the blocking job waits on it */
	atomic_int holder_locked;
	atomic_int job_started;
	atomic_int shield_in;
	coev_time_t sleep_from; /* the sleeper's coev_now() before it slept */
	coev_task_t *t[T_COUNT];
	uint64_t self_id[T_COUNT]; /* each task's own coev_task_id */
	coev_time_t started;	   /* coev_now() when the test began */
} scene_t;

static void note_self(scene_t *s, int k)
{
	s->self_id[k] = coev_task_id(coev_self());
}

static TU_NOINLINE int dumpee_holder_body(void *arg)
{
	scene_t *s = arg;

	note_self(s, T_HOLDER);
	TU_CHECK_EQ(coev_mutex_lock(&s->mu), 0);
	atomic_store(&s->holder_locked, 1);
	TU_CHECK_EQ(coev_event_wait(&s->hold), 0);
	coev_mutex_unlock(&s->mu);
	return 0;
}

static TU_NOINLINE int dumpee_mutex_body(void *arg)
{
	scene_t *s = arg;

	note_self(s, T_MUTEX);
	TU_CHECK_EQ(coev_mutex_lock(&s->mu), 0);
	coev_mutex_unlock(&s->mu);
	return 0;
}

static TU_NOINLINE int dumpee_sleeper_body(void *arg)
{
	scene_t *s = arg;
	int r;

	note_self(s, T_SLEEPER);
	s->sleep_from = coev_now();
	r = coev_sleep(COEV_SEC(10));
	TU_CHECK_EQ(r, -ECANCELED);
	return 0;
}

static TU_NOINLINE int dumpee_reader_body(void *arg)
{
	scene_t *s = arg;
	char b = 0;
	ssize_t n;

	note_self(s, T_READER);
	n = coev_read(s->pfd[0], &b, 1, COEV_FOREVER);
	TU_CHECK_EQ(n, 1);
	return b;
}

static TU_NOINLINE int dumpee_chan_body(void *arg)
{
	scene_t *s = arg;
	int v = -1;

	note_self(s, T_CHAN);
	TU_CHECK_EQ(coev_chan_recv(s->ch, &v), 0);
	return v;
}

static TU_NOINLINE int dumpee_future_body(void *arg)
{
	scene_t *s = arg;
	int res = -1;

	note_self(s, T_FUTURE);
	TU_CHECK_EQ(coev_future_wait(s->fut, &res), 0);
	return res;
}

static TU_NOINLINE int dumpee_joinee_body(void *arg)
{
	scene_t *s = arg;

	note_self(s, T_JOINEE);
	TU_CHECK_EQ(coev_event_wait(&s->go), 0);
	return 5;
}

static TU_NOINLINE int dumpee_joiner_body(void *arg)
{
	scene_t *s = arg;
	int ret = -1;

	note_self(s, T_JOINER);
	TU_CHECK_EQ(coev_join(s->t[T_JOINEE], &ret), 0);
	TU_CHECK_EQ(ret, 5);
	return ret;
}

static int blocking_job(void *arg)
{
	scene_t *s = arg;

	atomic_store(&s->job_started, 1);
	while (sem_wait(&s->job) != 0)
		TU_CHECK_EQ(errno, EINTR);
	return 3;
}

static TU_NOINLINE int dumpee_blocker_body(void *arg)
{
	scene_t *s = arg;
	int ret = -1;

	note_self(s, T_BLOCKER);
	TU_CHECK_EQ(coev_blocking(blocking_job, s, COEV_FOREVER, &ret), 0);
	TU_CHECK_EQ(ret, 3);
	return ret;
}

/* Cancelled while it waits in a shield: still waiting, marked cancelled. */
static TU_NOINLINE int dumpee_shielded_body(void *arg)
{
	scene_t *s = arg;

	note_self(s, T_SHIELDED);
	coev_shield_begin();
	atomic_store(&s->shield_in, 1);
	TU_CHECK_EQ(coev_event_wait(&s->shield), 0);
	coev_shield_end();
	return 0;
}

static TU_NOINLINE int dumpee_done_body(void *arg)
{
	scene_t *s = arg;

	note_self(s, T_DONE);
	return 42;
}

static const struct cast {
	const char *name;
	coev_fn fn;
	const char *fn_name;
	int state, wait;
} cast[T_COUNT] = {
	[T_HOLDER] = {"holder", dumpee_holder_body, "dumpee_holder_body",
		      COEV_TASK_WAITING, COEV_WAIT_EVENT},
	[T_MUTEX] = {"mutex_waiter", dumpee_mutex_body, "dumpee_mutex_body",
		     COEV_TASK_WAITING, COEV_WAIT_MUTEX},
	[T_SLEEPER] = {"sleeper", dumpee_sleeper_body, "dumpee_sleeper_body",
		       COEV_TASK_WAITING, COEV_WAIT_TIMER},
	[T_READER] = {"reader", dumpee_reader_body, "dumpee_reader_body",
		      COEV_TASK_WAITING, COEV_WAIT_FD},
	[T_CHAN] = {"chan_rx", dumpee_chan_body, "dumpee_chan_body",
		    COEV_TASK_WAITING, COEV_WAIT_CHANNEL},
	[T_FUTURE] = {"future_waiter", dumpee_future_body, "dumpee_future_body",
		      COEV_TASK_WAITING, COEV_WAIT_FUTURE},
	[T_JOINEE] = {"joinee", dumpee_joinee_body, "dumpee_joinee_body",
		      COEV_TASK_WAITING, COEV_WAIT_EVENT},
	[T_JOINER] = {"joiner", dumpee_joiner_body, "dumpee_joiner_body",
		      COEV_TASK_WAITING, COEV_WAIT_JOIN},
	[T_BLOCKER] = {"blocker", dumpee_blocker_body, "dumpee_blocker_body",
		       COEV_TASK_WAITING, COEV_WAIT_BLOCKING},
	[T_SHIELDED] = {"shielded", dumpee_shielded_body,
			"dumpee_shielded_body", COEV_TASK_WAITING,
			COEV_WAIT_EVENT},
	[T_DONE] = {"done_task", dumpee_done_body, NULL, COEV_TASK_DONE,
		    COEV_WAIT_NONE},
};

/* Every task of the cast in the state it is built to reach. */
static bool settled(const coev_task_info_t *a, int n)
{
	for (int k = 0; k < T_COUNT; k++) {
		const coev_task_info_t *in = find(a, n, cast[k].name);

		if (!in || in->state != cast[k].state ||
		    in->wait != cast[k].wait)
			return false;
		if (k == T_SHIELDED && !in->cancelled)
			return false;
	}
	return true;
}

/* Checks one snapshot, field by field. */
static void check_snapshot(scene_t *s, const coev_task_info_t *a, int n,
			   uint64_t director)
{
	coev_time_t elapsed = coev_now() - s->started;
	const coev_task_info_t *in[T_COUNT], *d = find(a, n, "director");

	TU_CHECK_EQ(n, T_COUNT + 1);
	for (int k = 0; k < T_COUNT; k++) {
		in[k] = find(a, n, cast[k].name);
		TU_CHECK_MSG(in[k] != NULL, "no task '%s'", cast[k].name);
		if (!in[k])
			return;
		TU_CHECK_EQ(in[k]->id, coev_task_id(s->t[k]));
		TU_CHECK_EQ(in[k]->id, s->self_id[k]);
		TU_CHECK_EQ(in[k]->state, cast[k].state);
		TU_CHECK_EQ(in[k]->wait, cast[k].wait);
		TU_CHECK(in[k]->worker == 0 || in[k]->worker == 1);
		/* Coarse clock: a few ms of slack. */
		TU_CHECK_MSG(in[k]->age >= 0 &&
				     in[k]->age <= elapsed + COEV_MSEC(50),
			     "'%s': age %lld of %lld", cast[k].name,
			     (long long)in[k]->age, (long long)elapsed);
		TU_CHECK_EQ(in[k]->cancelled, k == T_SHIELDED);
		if (k != T_MUTEX)
			TU_CHECK_EQ(in[k]->owner, 0);
	}
	TU_CHECK(in[T_HOLDER]->obj == &s->hold);
	TU_CHECK(in[T_MUTEX]->obj == &s->mu);
	TU_CHECK_EQ(in[T_MUTEX]->owner, in[T_HOLDER]->id);
	/* The sleep's deadline, from just before it was taken. */
	TU_CHECK_MSG(in[T_SLEEPER]->arg >= s->sleep_from + COEV_SEC(10) &&
			     in[T_SLEEPER]->arg <= s->sleep_from +
							   COEV_SEC(10) +
							   COEV_MSEC(500),
		     "sleep deadline %lld, slept from %lld", in[T_SLEEPER]->arg,
		     (long long)s->sleep_from);
	TU_CHECK_EQ(in[T_READER]->arg, s->pfd[0]);
	TU_CHECK(in[T_CHAN]->obj == s->ch);
	TU_CHECK(in[T_FUTURE]->obj == s->fut);
	TU_CHECK(in[T_JOINEE]->obj == &s->go);
	TU_CHECK(in[T_JOINER]->obj == s->t[T_JOINEE]);
	TU_CHECK_EQ(in[T_JOINER]->arg, in[T_JOINEE]->id);
	TU_CHECK(in[T_SHIELDED]->obj == &s->shield);
	TU_CHECK(in[T_DONE]->obj == NULL);

	TU_CHECK_MSG(d != NULL, "the director is not listed");
	if (!d)
		return;
	TU_CHECK_EQ(d->id, director);
	TU_CHECK_EQ(d->state, COEV_TASK_RUNNING);
	TU_CHECK_EQ(d->wait, COEV_WAIT_NONE);
	TU_CHECK_EQ(d->worker, coev_worker_id());
	TU_CHECK(d->age >= 0 && d->age <= elapsed + COEV_MSEC(50));
}

/* Checks the text dump, line by line. */
static void check_text(scene_t *s, const char *text, uint64_t director)
{
	uint64_t id[T_COUNT];
	char rest[160];

	for (int k = 0; k < T_COUNT; k++)
		id[k] = coev_task_id(s->t[k]);
	TU_CHECK(strncmp(text, "coev: dump of runtime ", 22) == 0);
	TU_CHECK(strstr(text, ": 2 workers, 12 tasks, ") != NULL);
	snprintf(rest, sizeof rest,
		 "\nworker %d: running task #%llu 'director'", coev_worker_id(),
		 (unsigned long long)director);
	TU_CHECK_MSG(strstr(text, rest) != NULL, "no \"%s\"", rest + 1);

	snprintf(rest, sizeof rest, "waiting on event %p; worker ",
		 (void *)&s->hold);
	check_block(text, id[T_HOLDER], "holder", rest, cast[T_HOLDER].fn_name);
	snprintf(rest, sizeof rest,
		 "waiting on mutex %p held by task #%llu 'holder'; worker ",
		 (void *)&s->mu, (unsigned long long)id[T_HOLDER]);
	check_block(text, id[T_MUTEX], "mutex_waiter", rest,
		    cast[T_MUTEX].fn_name);
	check_block(text, id[T_SLEEPER], "sleeper",
		    "waiting on a timer due in ", cast[T_SLEEPER].fn_name);
	snprintf(rest, sizeof rest, "waiting on fd %d (read); worker ",
		 s->pfd[0]);
	check_block(text, id[T_READER], "reader", rest, cast[T_READER].fn_name);
	snprintf(rest, sizeof rest, "waiting on channel %p; worker ",
		 (void *)s->ch);
	check_block(text, id[T_CHAN], "chan_rx", rest, cast[T_CHAN].fn_name);
	snprintf(rest, sizeof rest, "waiting on future %p; worker ",
		 (void *)s->fut);
	check_block(text, id[T_FUTURE], "future_waiter", rest,
		    cast[T_FUTURE].fn_name);
	snprintf(rest, sizeof rest, "waiting on event %p; worker ",
		 (void *)&s->go);
	check_block(text, id[T_JOINEE], "joinee", rest, cast[T_JOINEE].fn_name);
	snprintf(rest, sizeof rest, "waiting on task #%llu; worker ",
		 (unsigned long long)id[T_JOINEE]);
	check_block(text, id[T_JOINER], "joiner", rest, cast[T_JOINER].fn_name);
	check_block(text, id[T_BLOCKER], "blocker",
		    "waiting on a blocking-pool job; worker ",
		    cast[T_BLOCKER].fn_name);
	snprintf(rest, sizeof rest, "waiting on event %p; worker ",
		 (void *)&s->shield);
	check_block(text, id[T_SHIELDED], "shielded", rest,
		    cast[T_SHIELDED].fn_name);
	check_block(text, id[T_DONE], "done_task", "done; worker ", NULL);
	check_block(text, director, "director", "running; worker ", NULL);
	/* The shielded task's line ends with its cancel; the others not. */
	TU_CHECK_EQ(strstr(text, "; cancelled\n") != NULL, 1);
	{
		char *b = task_block(text, id[T_SHIELDED], "shielded");

		TU_CHECK(b && strstr(b, "; cancelled\n") != NULL);
		free(b);
	}
	/* A mutex held by a task that waits elsewhere is no deadlock. */
	TU_CHECK(strstr(text, "deadlock:") == NULL);
}

static int director(void *arg)
{
	scene_t *s = arg;
	coev_rt_t *rt = coev_rt_current();
	coev_task_info_t a[MAX_TASKS];
	uint64_t me = coev_task_id(coev_self());
	coev_time_t dl = tu_guard();
	int n, rets[T_COUNT], two = 2;
	char *text;

	/* The holder takes the mutex before the others come. */
	TU_CHECK_EQ(coev_spawn_named("holder", dumpee_holder_body, s,
				     &s->t[T_HOLDER]),
		    0);
	TU_CHECK_EQ(tu_wait_at_least(&s->holder_locked, 1), 0);
	for (int k = T_HOLDER + 1; k < T_COUNT; k++)
		TU_CHECK_EQ(
			coev_spawn_named(cast[k].name, cast[k].fn, s, &s->t[k]),
			0);
	/* Cancel the shielded one once it is in its shield (a task
	 * cancelled before it first runs never runs). */
	TU_CHECK_EQ(tu_wait_at_least(&s->shield_in, 1), 0);
	TU_CHECK_EQ(coev_cancel(s->t[T_SHIELDED]), 0);

	do {
		n = coev_rt_tasks(rt, a, MAX_TASKS);
		if (settled(a, n))
			break;
		coev_sleep(COEV_MSEC(1));
	} while (coev_now() < dl);
	/* One snapshot and one dump of the settled scene. */
	n = coev_rt_tasks(rt, a, MAX_TASKS);
	text = dump_text(rt);
	TU_CHECK(text != NULL);
	if (!settled(a, n) && text)
		fprintf(stderr, "the scene never settled:\n%s", text);
	check_snapshot(s, a, n, me);
	if (text)
		check_text(s, text, me);
	free(text);

	/* Release everyone, then join them all. */
	coev_event_set(&s->hold);
	TU_CHECK_EQ(coev_cancel(s->t[T_SLEEPER]), 0);
	TU_CHECK_EQ(write(s->pfd[1], "r", 1), 1);
	TU_CHECK_EQ(coev_chan_send(s->ch, &two), 0);
	TU_CHECK_EQ(coev_future_set(s->fut, 7), 0);
	coev_event_set(&s->go);
	TU_CHECK_EQ(sem_post(&s->job), 0);
	coev_event_set(&s->shield);
	for (int k = 0; k < T_COUNT; k++)
		if (k != T_JOINEE) /* the joiner joins it */
			TU_CHECK_EQ(coev_join(s->t[k], &rets[k]), 0);
	TU_CHECK_EQ(rets[T_HOLDER], 0);
	TU_CHECK_EQ(rets[T_MUTEX], 0);
	TU_CHECK_EQ(rets[T_SLEEPER], 0);
	TU_CHECK_EQ(rets[T_READER], 'r');
	TU_CHECK_EQ(rets[T_CHAN], 2);
	TU_CHECK_EQ(rets[T_FUTURE], 7);
	TU_CHECK_EQ(rets[T_JOINER], 5);
	TU_CHECK_EQ(rets[T_BLOCKER], 3);
	TU_CHECK_EQ(rets[T_SHIELDED], 0);
	TU_CHECK_EQ(rets[T_DONE], 42);
	/*
	 * Only the director is left, once the blocking-pool thread has let
	 * go of the blocker: it wakes the task and only then drops its
	 * reference (sched/wait.c, coev__waiter_signal), so for a moment
	 * after the join the blocker may still be listed, as done.
	 */
	do {
		n = coev_rt_tasks(rt, a, MAX_TASKS);
		if (n <= 1)
			break;
		TU_CHECK_EQ(n, 2);
		TU_CHECK(strcmp(a[0].name, "blocker") == 0 ||
			 strcmp(a[1].name, "blocker") == 0);
		coev_sleep(COEV_USEC(100));
	} while (coev_now() < dl);
	TU_CHECK_EQ(n, 1);
	TU_CHECK(n < 1 || a[0].id == me);
	return 0;
}

static void test_dump_every_wait_kind(void **state)
{
	scene_t *s = calloc(1, sizeof *s);
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	int ret = -1;

	(void)state;
	assert_non_null(s);
	s->started = coev_now();
	assert_int_equal(coev_mutex_init(&s->mu, 0), 0);
	assert_int_equal(coev_event_init(&s->hold), 0);
	assert_int_equal(coev_event_init(&s->go), 0);
	assert_int_equal(coev_event_init(&s->shield), 0);
	assert_int_equal(coev_chan_new(&s->ch, sizeof(int), 4), 0);
	assert_int_equal(coev_future_new(&s->fut), 0);
	assert_int_equal(pipe2(s->pfd, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(sem_init(&s->job, 0, 0), 0);

	assert_int_equal(coev_rt_spawn(rt, "director", director, s, &t), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);

	sem_destroy(&s->job);
	close(s->pfd[0]);
	close(s->pfd[1]);
	coev_future_release(s->fut);
	coev_chan_free(s->ch);
	coev_event_destroy(&s->shield);
	coev_event_destroy(&s->go);
	coev_event_destroy(&s->hold);
	coev_mutex_destroy(&s->mu);
	free(s);
	tu_assert_no_failures();
}

/* ---- ready: spawned and not run yet, or yielded and queued ------------- */

typedef struct ready {
	atomic_int yielder_ran;
	atomic_int stop;
} ready_t;

static int yield_until_stopped(void *arg)
{
	ready_t *r = arg;

	atomic_store(&r->yielder_ran, 1);
	while (!atomic_load(&r->stop))
		TU_CHECK_EQ(coev_yield(), 0);
	return 0;
}

static int return_seven(void *arg)
{
	(void)arg;
	return 7;
}

/* In a runtime of one worker: nothing else runs while this task does. */
static int spawn_and_look(void *arg)
{
	ready_t *r = arg;
	coev_task_info_t a[MAX_TASKS];
	const coev_task_info_t *ny, *yi, *me;
	coev_task_t *nt, *yt;
	char *text, rest[96];
	int n, ret = -1;

	TU_CHECK_EQ(coev_spawn_named("yielder", yield_until_stopped, r, &yt),
		    0);
	while (!atomic_load(&r->yielder_ran))
		TU_CHECK_EQ(coev_yield(), 0);
	/* The yielder is queued behind us now; not_yet never ran. */
	TU_CHECK_EQ(coev_spawn_named("not_yet", return_seven, NULL, &nt), 0);
	n = coev_rt_tasks(coev_rt_current(), a, MAX_TASKS);
	text = dump_text(coev_rt_current());
	TU_CHECK_EQ(n, 3);
	ny = find(a, n, "not_yet");
	yi = find(a, n, "yielder");
	me = find(a, n, "looker");
	TU_CHECK(ny && yi && me);
	if (ny && yi && me) {
		TU_CHECK_EQ(ny->id, coev_task_id(nt));
		TU_CHECK_EQ(ny->state, COEV_TASK_READY);
		TU_CHECK_EQ(ny->wait, COEV_WAIT_NONE);
		TU_CHECK_EQ(ny->worker, -1);
		TU_CHECK_EQ(yi->id, coev_task_id(yt));
		TU_CHECK_EQ(yi->state, COEV_TASK_READY);
		TU_CHECK_EQ(yi->worker, 0);
		TU_CHECK_EQ(me->state, COEV_TASK_RUNNING);
		TU_CHECK_EQ(me->worker, 0);
	}
	if (text) {
		snprintf(rest, sizeof rest,
			 "task #%llu 'not_yet': ready; never ran; age ",
			 (unsigned long long)coev_task_id(nt));
		TU_CHECK_MSG(strstr(text, rest) != NULL, "no \"%s\" in:\n%s",
			     rest, text);
		snprintf(rest, sizeof rest,
			 "task #%llu 'yielder': ready; worker 0; age ",
			 (unsigned long long)coev_task_id(yt));
		TU_CHECK_MSG(strstr(text, rest) != NULL, "no \"%s\" in:\n%s",
			     rest, text);
		TU_CHECK(strstr(text, "'looker': running; worker 0; age ") !=
			 NULL);
		/* Only parked tasks have backtraces. */
		TU_CHECK(strstr(text, "    #0 ") == NULL);
	}
	free(text);
	atomic_store(&r->stop, 1);
	TU_CHECK_EQ(coev_join(nt, &ret), 0);
	TU_CHECK_EQ(ret, 7);
	TU_CHECK_EQ(coev_join(yt, &ret), 0);
	TU_CHECK_EQ(ret, 0);
	return 0;
}

static void test_dump_ready_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(1);
	ready_t r = {0};
	coev_task_t *t;
	int ret = -1;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "looker", spawn_and_look, &r, &t),
			 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- deadlock ----------------------------------------------------------- */

typedef struct crossed {
	coev_mutex_t m[2];
	coev_barrier_t both; /* each holds its first mutex */
	coev_time_t deadline;
} crossed_t;

/* Locks m[first], then, once the other holds its own, m[!first]: a cycle
 * until one is cancelled (or the deadline passes); returns how the second
 * lock ended. */
static int lock_crossed(crossed_t *c, int first)
{
	int r;

	TU_CHECK_EQ(coev_mutex_lock(&c->m[first]), 0);
	r = coev_barrier_wait(&c->both);
	TU_CHECK(r >= 0);
	r = coev_mutex_lock_dl(&c->m[!first], c->deadline);
	if (r == 0)
		coev_mutex_unlock(&c->m[!first]);
	coev_mutex_unlock(&c->m[first]);
	return r;
}

/* Cancelled by the test: gives up, and its unlock lets right through. */
static TU_NOINLINE int crossed_left(void *arg)
{
	int r = lock_crossed(arg, 0);

	TU_CHECK_EQ(r, -ECANCELED);
	return r;
}

static TU_NOINLINE int crossed_right(void *arg)
{
	int r = lock_crossed(arg, 1);

	TU_CHECK_EQ(r, 0);
	return r;
}

static void test_dump_names_deadlock(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	crossed_t c;
	coev_task_t *t[2];
	coev_task_info_t a[MAX_TASKS];
	const coev_task_info_t *l = NULL, *r = NULL;
	coev_time_t dl = tu_guard();
	char want[160], *text;
	uint64_t lid, rid;
	int n, ret;

	(void)state;
	assert_int_equal(coev_mutex_init(&c.m[0], 0), 0);
	assert_int_equal(coev_mutex_init(&c.m[1], 0), 0);
	assert_int_equal(coev_barrier_init(&c.both, 2), 0);
	/* The test cancels one as soon as it has looked; the deadline only
	 * bounds a broken run. */
	c.deadline = coev_deadline(COEV_SEC(TU_SCALE(2, 4, 8)));
	assert_int_equal(coev_rt_spawn(rt, "left", crossed_left, &c, &t[0]), 0);
	assert_int_equal(coev_rt_spawn(rt, "right", crossed_right, &c, &t[1]),
			 0);
	lid = coev_task_id(t[0]);
	rid = coev_task_id(t[1]);
	do {
		n = coev_rt_tasks(rt, a, MAX_TASKS);
		l = find(a, n, "left");
		r = find(a, n, "right");
		if (l && r && l->state == COEV_TASK_WAITING &&
		    l->wait == COEV_WAIT_MUTEX &&
		    r->state == COEV_TASK_WAITING && r->wait == COEV_WAIT_MUTEX)
			break;
		tu_nap_ms(1);
	} while (coev_now() < dl);
	assert_non_null(l);
	assert_non_null(r);
	assert_int_equal(l->wait, COEV_WAIT_MUTEX);
	assert_int_equal(r->wait, COEV_WAIT_MUTEX);
	assert_ptr_equal(l->obj, &c.m[1]);
	assert_ptr_equal(r->obj, &c.m[0]);
	assert_int_equal(l->owner, rid);
	assert_int_equal(r->owner, lid);

	/* From a plain thread this time. */
	text = dump_text(rt);
	assert_non_null(text);
	/* Printed once, from the cycle's least id (left's). */
	snprintf(
		want, sizeof want,
		"\ndeadlock: task #%llu 'left' waits for a mutex held by #%llu "
		"'right', which waits for a mutex held by #%llu 'left'\n",
		(unsigned long long)lid, (unsigned long long)rid,
		(unsigned long long)lid);
	if (!strstr(text, want))
		fail_msg("no \"%s\" in:\n%s", want + 1, text);
	assert_ptr_equal(strstr(text, "deadlock:"), strstr(text, want) + 1);
	assert_null(strstr(strstr(text, want) + strlen(want), "deadlock:"));
	snprintf(want, sizeof want,
		 "task #%llu 'left': waiting on mutex %p held by task #%llu "
		 "'right'; worker ",
		 (unsigned long long)lid, (void *)&c.m[1],
		 (unsigned long long)rid);
	if (!strstr(text, want))
		fail_msg("no \"%s\" in:\n%s", want, text);
	assert_non_null(strstr(text, " crossed_left+0x"));
	assert_non_null(strstr(text, " crossed_right+0x"));
	free(text);

	/* Cancelling one breaks the cycle. */
	assert_int_equal(coev_cancel(t[0]), 0);
	assert_int_equal(coev_join(t[0], &ret), 0);
	assert_int_equal(ret, -ECANCELED);
	assert_int_equal(coev_join(t[1], &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_barrier_destroy(&c.both);
	coev_mutex_destroy(&c.m[0]);
	coev_mutex_destroy(&c.m[1]);
	tu_assert_no_failures();
}

/* ---- arguments ----------------------------------------------------------- */

static int wait_on_event(void *arg)
{
	int r = coev_event_wait(arg);

	TU_CHECK_EQ(r, 0);
	return r;
}

static void test_dump_arguments(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_event_t ev;
	coev_task_t *t[3];
	coev_task_info_t a[3];
	int fd;

	(void)state;
	assert_int_equal(coev_event_init(&ev), 0);
	assert_int_equal(coev_rt_tasks(NULL, a, 3), -EINVAL);
	assert_int_equal(coev_rt_tasks(NULL, NULL, 0), -EINVAL);
	assert_int_equal(coev_rt_tasks(rt, NULL, 1), -EINVAL);
	assert_int_equal(coev_rt_dump(NULL, 2), -EINVAL);
	assert_int_equal(coev_rt_dump(rt, -1), -EINVAL);
	assert_int_equal(coev_rt_tasks(rt, NULL, 0), 0);

	for (int i = 0; i < 3; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "waiter", wait_on_event, &ev, &t[i]),
			0);
	/* The count, whatever room was given. */
	assert_int_equal(coev_rt_tasks(rt, NULL, 0), 3);
	memset(a, 0xa5, sizeof a);
	assert_int_equal(coev_rt_tasks(rt, a, 1), 3);
	assert_string_equal(a[0].name, "waiter");
	assert_int_equal(a[1].id, 0xa5a5a5a5a5a5a5a5ull);
	/* write(2)'s error comes back. */
	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(coev_rt_dump(rt, fd), -ENOSPC);
	close(fd);

	coev_event_set(&ev);
	for (int i = 0; i < 3; i++)
		assert_int_equal(coev_join(t[i], NULL), 0);
	assert_int_equal(coev_rt_tasks(rt, NULL, 0), 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_event_destroy(&ev);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_dump_every_wait_kind),
		cmocka_unit_test(test_dump_ready_tasks),
		cmocka_unit_test(test_dump_names_deadlock),
		TU_FD_TEST(test_dump_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
