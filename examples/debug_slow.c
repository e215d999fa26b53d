/* SPDX-License-Identifier: MIT */
/*
 * examples/debug_slow.c — debug mode's slow-task report: a task that
 * computes for 400 ms without suspending holds up its worker, and debug
 * mode names it on stderr, with a backtrace of where it is.
 *
 * Two tasks on a runtime of 2 workers in debug mode (set here in
 * cfg.debug, so no COEV_DEBUG=1 is needed):
 *   - 'crunch' counts primes by trial division for 400 ms and never calls
 *     into coev meanwhile: asyncio's "Executing <Task ...> took 0.400
 *     seconds" case;
 *   - 'heartbeat' prints a line every 50 ms.
 * Once crunch has run for cfg.slow_task (100 ms by default), the monitor
 * thread reports it: its worker, how long it has run, what waits behind
 * it, and where it is now (count_primes, called from crunch); once it
 * suspends, how long it ran. The heartbeat meanwhile keeps its pace on the
 * other worker: a busy task stalls only its own worker. Each task is
 * pinned to a worker of its own so that the picture is the same in every
 * run (unpinned, the heartbeat could sit behind crunch until the monitor
 * woke the other worker to take it). The reports go to stderr through
 * cfg.log, which also notes the last one: the monitor says how long
 * crunch ran at its next look after crunch suspends, and says nothing
 * once the runtime has stopped, so the program waits for it (on a busy
 * machine crunch may end after the heartbeat, just before the end).
 *
 *   build/examples/debug_slow              (make examples)
 *   build/examples/debug_slow 2>/dev/null  the heartbeat alone
 * Exit status 0, or 1 when a coev call fails.
 */
#include <coev.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define BUSY_MS 400
#define BEATS 10
#define BEAT_MS 50

static coev_time_t t0;
static atomic_int end_reported;

/* Debug mode's reports, to stderr as by default; notes the report of the
 * end of crunch's run. */
static void report(void *arg, const char *text)
{
	(void)arg;
	fputs(text, stderr);
	if (strstr(text, "suspended after about"))
		atomic_store(&end_reported, 1);
}

static long ms_since(coev_time_t t)
{
	return (long)((coev_now() - t) / COEV_MSEC(1));
}

/* The busy part: trial division from 2 up, until ms milliseconds have
 * passed; *below gets where it stopped. Not inlined, so that the report's
 * backtrace names it. */
static __attribute__((noinline)) long count_primes(long ms, long *below)
{
	coev_time_t end = coev_now() + COEV_MSEC(ms);
	long n, found = 0;

	for (n = 2; (n & 1023) || coev_now() < end; n++) {
		long d = 2;

		while (d * d <= n && n % d)
			d++;
		found += d * d > n;
	}
	*below = n;
	return found;
}

static int crunch(void *arg)
{
	coev_time_t start;
	long below, found;

	(void)arg;
	if (coev_pin_to(0) < 0)
		return -1;
	start = coev_now();
	found = count_primes(BUSY_MS, &below);
	printf("crunch: %ld primes below %ld: %ld ms without suspending, "
	       "on worker %d\n",
	       found, below, ms_since(start), coev_worker_id());
	return coev_unpin();
}

static int heartbeat(void *arg)
{
	coev_time_t last = coev_now(), gap = 0;
	int rc;

	(void)arg;
	if ((rc = coev_pin_to(1)) < 0)
		return rc;
	for (int i = 1; i <= BEATS; i++) {
		if ((rc = coev_sleep(COEV_MSEC(BEAT_MS))) < 0)
			return rc;
		if (coev_now() - last > gap)
			gap = coev_now() - last;
		last = coev_now();
		printf("heartbeat %2d at %3ld ms on worker %d\n", i,
		       ms_since(t0), coev_worker_id());
	}
	printf("heartbeat: %d beats, at most %ld ms apart (every %d ms "
	       "asked)\n",
	       BEATS, (long)(gap / COEV_MSEC(1)), BEAT_MS);
	return coev_unpin();
}

static int run(void *arg)
{
	coev_task_t *t[2];
	int res[2];

	(void)arg;
	t0 = coev_now();
	if (coev_spawn_named("heartbeat", heartbeat, NULL, &t[0]) < 0)
		return 1;
	if (coev_spawn_named("crunch", crunch, NULL, &t[1]) < 0) {
		coev_cancel(t[0]);
		coev_join(t[0], NULL);
		return 1;
	}
	coev_gather(t, 2, res);
	/* Until debug mode has said how long crunch ran (up to 5 s). */
	for (int i = 0; i < 5000 && !atomic_load(&end_reported); i++)
		coev_sleep(COEV_MSEC(1));
	return res[0] < 0 || res[1] < 0;
}

int main(void)
{
	coev_config_t cfg;

	setvbuf(stdout, NULL, _IOLBF, 0);
	coev_config_init(&cfg);
	cfg.workers = 2;
	cfg.debug |= COEV_DEBUG_CHECKS;
	cfg.log = report;
	return coev_run(run, NULL, &cfg) == 0 ? 0 : 1;
}
