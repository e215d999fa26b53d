/* SPDX-License-Identifier: MIT */
/*
 * examples/debug_deadlock.c — a task dump finds a deadlock: two tasks each
 * hold one mutex and wait for the other's.
 *
 * 'left' locks mutex A and then wants B; 'right' locks B and then wants A.
 * A barrier makes sure each holds its first mutex before it asks for the
 * second, so they deadlock in every run. After 200 ms the main task calls
 * coev_rt_dump(coev_rt_current(), STDOUT_FILENO), which needs no debug
 * mode: each worker, then every task with what it waits on (a mutex's
 * holder named) and, for a parked task, the backtrace of its stack
 * (take_both, then the mutex's wait), and a "deadlock:" line for the
 * cycle. The same dump goes to stderr on SIGUSR1 in debug mode
 * (COEV_DEBUG=1).
 *
 * Every wait in coev can take a deadline, and these do: each task gives
 * up its second mutex after 1 s (-ETIMEDOUT). Each keeps holding its first
 * one until both have given up (the barrier again), so neither wins by the
 * other's retreat and the ending is the same in every run; then they
 * unlock and the program ends.
 *
 *   build/examples/debug_deadlock      (make examples)
 * Exit status 0 when both timed out as expected, 1 otherwise.
 */
#include <coev.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static coev_mutex_t a = COEV_MUTEX_INIT, b = COEV_MUTEX_INIT;
static coev_barrier_t both;

struct side {
	const char *name;
	coev_mutex_t *first, *second;
	const char *second_name;
	coev_time_t waited;
};

static int take_both(void *arg)
{
	struct side *s = arg;
	coev_time_t t0;
	int rc;

	if ((rc = coev_mutex_lock(s->first)) < 0)
		return rc;
	coev_barrier_wait(&both); /* each holds its first mutex */
	t0 = coev_now();
	rc = coev_mutex_lock_dl(s->second, coev_deadline(COEV_SEC(1)));
	s->waited = coev_now() - t0;
	if (rc == 0)
		coev_mutex_unlock(s->second);
	coev_barrier_wait(&both); /* both have their answer */
	coev_mutex_unlock(s->first);
	return rc;
}

static int run(void *arg)
{
	struct side sides[2] = {{"left", &a, &b, "B", 0},
				{"right", &b, &a, "A", 0}};
	coev_task_t *t[2];
	int res[2], ok = 1;

	(void)arg;
	coev_barrier_init(&both, 2);
	for (int i = 0; i < 2; i++)
		if (coev_spawn_named(sides[i].name, take_both, &sides[i],
				     &t[i]) < 0)
			return 1; /* the runtime cancels a spawned one */
	coev_sleep(COEV_MSEC(200));
	printf("mutex A is %p, mutex B is %p; the dump after 200 ms:\n",
	       (void *)&a, (void *)&b);
	fflush(stdout); /* the dump writes to the fd directly */
	coev_rt_dump(coev_rt_current(), STDOUT_FILENO);
	coev_gather(t, 2, res);
	for (int i = 0; i < 2; i++) {
		printf("%s: mutex %s after %.2f s: %s\n", sides[i].name,
		       sides[i].second_name, (double)sides[i].waited / 1e9,
		       res[i] == 0 ? "taken" : coev_strerror(res[i]));
		ok &= res[i] == -ETIMEDOUT;
	}
	printf("%s\n", ok ? "both deadlines passed: the deadlock ended"
			  : "UNEXPECTED: the deadlock did not end by the "
			    "deadlines");
	coev_barrier_destroy(&both);
	return !ok;
}

int main(void)
{
	coev_config_t cfg;

	coev_config_init(&cfg);
	cfg.workers = 2;
	return coev_run(run, NULL, &cfg) == 0 ? 0 : 1;
}
