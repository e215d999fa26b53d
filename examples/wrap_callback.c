/* SPDX-License-Identifier: MIT */
/*
 * examples/wrap_callback.c — wrapping a callback-based C library into a
 * call that tasks simply make: the asyncio posts' "integrate with
 * callback-based libraries" pattern, with coev_future_t.
 *
 *   async def wrapped_operation():
 *       future = asyncio.Future()
 *       def callback(result):
 *           future.set_result(result)
 *       async_operation(callback)
 *       return await future
 *
 * The library here is "slowlib", a stand-in written below for any C
 * library that answers requests later, from a thread of its own, through a
 * callback (a database driver, a name resolver, a message broker client):
 *
 *   int slowlib_request(const char *q, slowlib_cb cb, void *ctx);
 *   // later, on slowlib's thread:  cb(ctx, status, answer)
 *
 * Its answer is valid only during the callback, its errors are negative
 * errno codes, and it cannot take a request back once it has it.
 *
 * The wrapper, slow_query(q, &answer, deadline), is what the program's
 * tasks call, as if it were a plain blocking function:
 *   1. create a future (one reference, the caller's);
 *   2. give the library the callback and a second reference to the future
 *      (the callback's: the future lives until the callback has run, even
 *      if the caller is long gone by then);
 *   3. coev_future_await_dl: the task sleeps, its worker runs other tasks;
 *   4. on slowlib's thread the callback copies the answer and completes the
 *      future (coev_future_complete may be called from any thread and
 *      never blocks), then drops its reference; the task wakes up.
 * Unlike asyncio, where a callback from another thread must go through
 * loop.call_soon_threadsafe, the future may be completed from the
 * library's own thread directly.
 *
 * Giving up: when the deadline passes, or the task is cancelled, the await
 * returns -ETIMEDOUT or -ECANCELED and cancels the future. The library
 * still answers later; its callback's coev_future_complete then returns
 * -ECANCELED ("nobody wants this any more"), the callback frees its copy,
 * and nothing else happens: no dangling pointer, no lost memory.
 *
 * The program: 20 tasks call slow_query at once (as asyncio.gather over 20
 * coroutines) on 2 workers. Most queries take 10-60 ms; two are refused by
 * the library (-ENOENT); one takes 400 ms but its caller allows 100 ms (it
 * times out); one takes 400 ms and its task is cancelled by main after
 * 50 ms. coev_gather collects every task's own result. Then the library is
 * shut down, which waits for its last two (late) answers, and the program
 * checks that each task got exactly what it should, that both late
 * answers were refused, and that every callback ran once.
 *
 * Usage: wrap_callback [-w WORKERS] [-x]
 *   -w N  worker threads (default 2)
 *   -x    a broken wrapper that ignores the deadline, to see the check
 *         fail (the 100 ms caller then waits the full 400 ms)
 * Exit status: 0 when every check holds, 1 otherwise, 2 for bad arguments.
 */
#include <coev.h>

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ===== slowlib: a callback-based library with its own thread ============ */

/*
 * slowlib answers a query q after a delay, on its own thread, by calling
 * cb(ctx, status, answer): status 0 and the answer (q in upper case), or a
 * negative errno code and NULL. The delay is 10-60 ms, 400 ms for queries
 * starting with "slow"; queries starting with "bad" fail with -ENOENT.
 * The answer string is slowlib's and valid only during the callback.
 */
typedef void (*slowlib_cb)(void *ctx, int status, const char *answer);

#define SLOWLIB_SLOW_MS 400

struct slowlib_req {
	struct slowlib_req *next;
	struct timespec due; /* CLOCK_MONOTONIC */
	slowlib_cb cb;
	void *ctx;
	char q[64]; /* a copy: the caller's string may go away */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;	   /* a request came, or stop */
	struct slowlib_req *queue; /* [mu] sorted by due time */
	bool stop;		   /* [mu] answer what is queued, then end */
	pthread_t thread;
} lib = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The library's thread: sleep until the earliest request is due, answer
 * it, repeat; after slowlib_shutdown, end once the queue is empty. */
static void *slowlib_thread(void *arg)
{
	struct slowlib_req *r;
	struct timespec now;
	char answer[64];

	(void)arg;
	pthread_mutex_lock(&lib.mu);
	for (;;) {
		if (!lib.queue) {
			if (lib.stop)
				break;
			pthread_cond_wait(&lib.cv, &lib.mu);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ts_before(&now, &lib.queue->due)) {
			pthread_cond_timedwait(&lib.cv, &lib.mu,
					       &lib.queue->due);
			continue;
		}
		r = lib.queue;
		lib.queue = r->next;
		/* Call back without the lock, as libraries do. */
		pthread_mutex_unlock(&lib.mu);
		if (strncmp(r->q, "bad", 3) == 0) {
			r->cb(r->ctx, -ENOENT, NULL);
		} else {
			size_t i;

			for (i = 0; r->q[i] && i < sizeof answer - 1; i++)
				answer[i] =
					(char)toupper((unsigned char)r->q[i]);
			answer[i] = '\0';
			r->cb(r->ctx, 0, answer);
			/* The answer is gone after the callback returns. */
			memset(answer, '#', sizeof answer - 1);
		}
		free(r);
		pthread_mutex_lock(&lib.mu);
	}
	pthread_mutex_unlock(&lib.mu);
	return NULL;
}

/* Start the library's thread. Returns 0 or a negative errno code. */
static int slowlib_init(void)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&lib.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0)
		return -r;
	if ((r = pthread_create(&lib.thread, NULL, slowlib_thread, NULL))) {
		pthread_cond_destroy(&lib.cv);
		return -r;
	}
	return 0;
}

/* Queue query q; cb(ctx, ...) is called once, later, on slowlib's thread.
 * Returns 0, -EINVAL (q too long), -ESHUTDOWN or -ENOMEM; on an error cb
 * is never called. Any thread; never blocks for long. */
static int slowlib_request(const char *q, slowlib_cb cb, void *ctx)
{
	struct slowlib_req *r, **pp;
	unsigned h = 2166136261u;
	long ms;

	if (strlen(q) >= sizeof r->q)
		return -EINVAL;
	if (!(r = calloc(1, sizeof *r)))
		return -ENOMEM;
	strcpy(r->q, q);
	r->cb = cb;
	r->ctx = ctx;
	for (const char *c = q; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u; /* FNV-1a */
	ms = strncmp(q, "slow", 4) == 0 ? SLOWLIB_SLOW_MS : 10 + h % 51;
	clock_gettime(CLOCK_MONOTONIC, &r->due);
	r->due.tv_nsec += ms * 1000000;
	r->due.tv_sec += r->due.tv_nsec / 1000000000;
	r->due.tv_nsec %= 1000000000;

	pthread_mutex_lock(&lib.mu);
	if (lib.stop) {
		pthread_mutex_unlock(&lib.mu);
		free(r);
		return -ESHUTDOWN;
	}
	for (pp = &lib.queue; *pp && !ts_before(&r->due, &(*pp)->due);
	     pp = &(*pp)->next)
		;
	r->next = *pp;
	*pp = r;
	pthread_mutex_unlock(&lib.mu);
	pthread_cond_signal(&lib.cv);
	return 0;
}

/* Answer every queued request (at its time), then stop the thread. */
static void slowlib_shutdown(void)
{
	pthread_mutex_lock(&lib.mu);
	lib.stop = true;
	pthread_mutex_unlock(&lib.mu);
	pthread_cond_signal(&lib.cv);
	pthread_join(lib.thread, NULL);
	pthread_cond_destroy(&lib.cv);
}

/* ===== the wrapper: slowlib's callback into an awaitable call ========== */

/* How the callbacks went, for the final check. */
static atomic_int delivered; /* completed a future someone waited for */
static atomic_int refused;   /* came too late: the caller had given up */

/* -x: the broken wrapper, which waits without the deadline. */
static bool ignore_deadline;

/*
 * slowlib's callback, on slowlib's thread. ctx is the callback's reference
 * to the future. The answer must be copied now (it is gone once we
 * return); the copy goes into the future, which frees it with free() if
 * nobody takes it.
 */
static void on_answer(void *ctx, int status, const char *answer)
{
	coev_future_t *f = ctx;
	char *copy = NULL;
	int r;

	if (status == 0 && !(copy = strdup(answer)))
		status = -ENOMEM;
	r = coev_future_complete(f, status, copy, free);
	if (r == 0) {
		atomic_fetch_add(&delivered, 1);
	} else {
		/* -ECANCELED: the caller timed out or was cancelled, and its
		 * await cancelled the future. The copy is still ours. */
		printf("  slowlib's callback: answer \"%s\" is late; "
		       "coev_future_complete refused it (%s): its caller gave "
		       "up\n",
		       copy ? copy : coev_strerror(status), coev_strerror(r));
		free(copy);
		atomic_fetch_add(&refused, 1);
	}
	coev_future_release(f); /* the callback's reference */
}

/*
 * slow_query — ask slowlib q and wait for the answer until deadline (an
 * absolute coev_now() time, or COEV_FOREVER). Returns 0 with *answer a
 * malloc'd string the caller frees; slowlib's error (-ENOENT, ...);
 * -ETIMEDOUT; -ECANCELED (the calling task was cancelled); or an error of
 * slowlib_request. *answer is NULL unless 0 is returned. From a task (or
 * a plain thread, which blocks); the task's worker runs other tasks
 * meanwhile.
 */
static int slow_query(const char *q, char **answer, coev_time_t deadline)
{
	coev_future_t *f;
	int r, result;

	*answer = NULL;
	if ((r = coev_future_new(&f)) < 0)
		return r;
	if ((r = slowlib_request(q, on_answer, coev_future_ref(f))) < 0) {
		/* The callback will never run: drop its reference too. */
		coev_future_release(f);
		coev_future_release(f);
		return r;
	}
	if (ignore_deadline)
		deadline = COEV_FOREVER;
	/* Suspends; cancels f if it gives up (-ETIMEDOUT, -ECANCELED). */
	r = coev_future_await_dl(f, deadline, &result);
	if (r == 0 && result == 0)
		*answer = coev_future_take(f); /* now ours, not f's */
	coev_future_release(f);
	return r < 0 ? r : result;
}

/* ===== the program: 20 concurrent callers ============================== */

#define NJOBS 20
#define TIMEOUT_JOB 7	 /* allows 100 ms for a 400 ms query */
#define CANCELLED_JOB 13 /* cancelled by main after 50 ms */

struct job {
	char query[32];
	coev_time_t timeout;
	int expect;	  /* the result it must get */
	char *answer;	  /* what came back (malloc'd) */
	coev_time_t took; /* call to return */
};

static struct job jobs[NJOBS];

static int job_task(void *arg)
{
	struct job *job = arg;
	coev_time_t t0 = coev_now();
	int r;

	r = slow_query(job->query, &job->answer, t0 + job->timeout);
	job->took = coev_now() - t0;
	return r;
}

static double ms(coev_time_t ns)
{
	return (double)ns / 1e6;
}

/* Start every job at once, cancel one, gather them all, show each result.
 * Returns the number of jobs that did not get what they should. */
static int wrap_main(void *arg)
{
	coev_task_t *tasks[NJOBS];
	int rets[NJOBS], wrong = 0, r;
	unsigned n;
	coev_time_t t0 = coev_now(), sum = 0;

	(void)arg;
	for (n = 0; n < NJOBS; n++) {
		r = coev_spawn_named(jobs[n].query, job_task, &jobs[n],
				     &tasks[n]);
		if (r < 0) {
			fprintf(stderr, "wrap_callback: spawn: %s\n",
				coev_strerror(r));
			break;
		}
	}
	if (n > CANCELLED_JOB) {
		coev_sleep(COEV_MSEC(50));
		coev_cancel(tasks[CANCELLED_JOB]); /* task.cancel() */
	}
	/* asyncio.gather(..., return_exceptions=True): every task's own
	 * result, success or error, in rets[]. */
	r = coev_gather(tasks, n, rets);
	if (r < 0) {
		fprintf(stderr, "wrap_callback: gather: %s\n",
			coev_strerror(r));
		return NJOBS;
	}
	printf("  gathered %u tasks in %.0f ms; %d returned an error:\n", n,
	       ms(coev_now() - t0), r);
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		char want[32];
		bool ok = rets[i] == j->expect;

		for (size_t k = 0; k <= strlen(j->query); k++)
			want[k] = (char)toupper((unsigned char)j->query[k]);
		if (rets[i] == 0) {
			ok = ok && j->answer && strcmp(j->answer, want) == 0;
			printf("  %-8s -> \"%s\" after %.0f ms", j->query,
			       j->answer ? j->answer : "(null)", ms(j->took));
		} else {
			ok = ok && !j->answer;
			printf("  %-8s -> error: %s after %.0f ms", j->query,
			       coev_strerror(rets[i]), ms(j->took));
		}
		printf("%s\n", ok ? "" : "   <-- WRONG");
		if (!ok)
			wrong++;
		sum += j->took;
		free(j->answer);
	}
	wrong += NJOBS - (int)n;
	printf("  the calls took %.0f ms added up: they ran at the same time\n",
	       ms(sum));
	return wrong;
}

static void usage(void)
{
	fprintf(stderr, "usage: wrap_callback [-w WORKERS] [-x]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	coev_config_t cfg;
	int opt, r, wrong;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr,
			"wrap_callback: a COEV_* variable is malformed "
			"(%s)\n",
			coev_strerror(r));
	cfg.workers = 2;
	while ((opt = getopt(argc, argv, "w:xh")) != -1) {
		switch (opt) {
		case 'w': {
			char *end;
			long w = strtol(optarg, &end, 10);

			if (*end || end == optarg || w < 1 ||
			    w > COEV_WORKERS_MAX) {
				fprintf(stderr,
					"wrap_callback: %s: out of range "
					"(1..%d)\n",
					optarg, COEV_WORKERS_MAX);
				usage();
			}
			cfg.workers = (unsigned)w;
			break;
		}
		case 'x': ignore_deadline = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	/* The jobs: q0..q19, two of them refused by slowlib, one too slow
	 * for its deadline, one slow and cancelled. */
	for (int i = 0; i < NJOBS; i++) {
		struct job *j = &jobs[i];

		j->timeout = COEV_SEC(1);
		j->expect = 0;
		snprintf(j->query, sizeof j->query, "q%d", i);
		if (i == 4 || i == 16) {
			snprintf(j->query, sizeof j->query, "bad%d", i);
			j->expect = -ENOENT;
		} else if (i == TIMEOUT_JOB) {
			snprintf(j->query, sizeof j->query, "slow%d", i);
			j->timeout = COEV_MSEC(100);
			j->expect = -ETIMEDOUT;
		} else if (i == CANCELLED_JOB) {
			snprintf(j->query, sizeof j->query, "slow%d", i);
			j->expect = -ECANCELED;
		}
	}

	printf("wrap_callback: %d tasks call slow_query() at once on %u "
	       "workers%s\n",
	       NJOBS, cfg.workers,
	       ignore_deadline ? " (-x: the wrapper ignores deadlines)" : "");
	if ((r = slowlib_init()) < 0) {
		fprintf(stderr, "wrap_callback: slowlib_init: %s\n",
			coev_strerror(r));
		return 1;
	}
	wrong = coev_run(wrap_main, NULL, &cfg);
	if (wrong < 0)
		fprintf(stderr, "wrap_callback: coev_run: %s\n",
			coev_strerror(wrong));
	/* The library still owes the two slow answers: wait for them, so
	 * that the late callbacks run (and are refused) before we check. */
	printf("  waiting for slowlib's last answers...\n");
	slowlib_shutdown();

	/* The timed-out and the cancelled caller's answers come late. */
	int d = atomic_load(&delivered), f = atomic_load(&refused);

	printf("  callbacks: %d delivered, %d refused as too late "
	       "(expected %d and 2)\n",
	       d, f, NJOBS - 2);
	if (wrong == 0 && d == NJOBS - 2 && f == 2) {
		printf("wrap_callback: OK: every task got its answer or its "
		       "error, and no late answer was lost or leaked\n");
		return 0;
	}
	printf("wrap_callback: FAILED: %d task(s) with the wrong result\n",
	       wrong < 0 ? NJOBS : wrong);
	return 1;
}
