/* SPDX-License-Identifier: MIT */
/*
 * fuzz/driver.c — coev-fuzz, the one binary of every harness (--list).
 *
 *   coev-fuzz HARNESS                    AFL++ (persistent mode when built
 *                                        with afl-clang-fast; else one
 *                                        input from stdin)
 *   coev-fuzz HARNESS FILE... [-t]       replay inputs; -t prints the
 *                                        interleaving (every switch)
 *   coev-fuzz HARNESS --random N [--seed S]
 *                                        N random programs, each under a
 *                                        random schedule
 *   coev-fuzz HARNESS --pct N [--depth D] [--seed S]
 *                                        N random programs under PCT
 *   coev-fuzz HARNESS --one --seed S --pct 1|--random 1 [--depth D]
 *                                        one run of a series, by its seed
 *   coev-fuzz --list                     the harnesses
 *   coev-fuzz --plants                   the planted bugs built in
 *
 *   --points      after the runs, print every scheduling point of the
 *                 build (fuzz/points.sh): hits, kind, file:line
 *   --secs S      stop a --random or --pct series after S seconds
 *   --plant BUGS  a record (.seed files): the input was found on a build
 *                 with these planted bugs; a warning if this one differs
 *
 * HARNESS is one of --list. Each mode ends with a line of figures (runs,
 * steps, runs per second) on stderr; a broken oracle aborts with a dump,
 * and the random and PCT modes then print the .seed line that reproduces
 * the run (with the planted bugs of the build: fuzz/replay rebuilds with
 * them).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz/harness.h"
#include "sched/platform.h"

#ifndef __AFL_FUZZ_TESTCASE_LEN
#define AFL_PLAIN 1
#endif
#ifdef __AFL_FUZZ_TESTCASE_LEN
__AFL_FUZZ_INIT();
#endif

/* One line per harness. */
/* clang-format off */
static const struct harness *const harnesses[] = {
	&h_sched,
	&h_sync,
	&h_chan,
	&h_future,
	&h_timer,
	&h_fd,
	&h_lock,
	&h_scope,
	&h_life,
	&h_io,
	&h_select,
	&h_waitany,
	&h_any,
	&h_bcast,
	&h_latest,
};
/* clang-format on */
#define NHARNESS (sizeof harnesses / sizeof harnesses[0])

#define MAX_INPUT 4096

/* The planted bugs this binary was built with (the Makefile passes the
 * COEV_PLANT_* names of the build's flags), "" for none. */
#ifndef COEV_FUZZ_PLANTS
#define COEV_FUZZ_PLANTS ""
#endif
static const char plants[] = COEV_FUZZ_PLANTS;

void h_run(struct prog *g, struct sim_opts *o, void (*host)(void *), void *arg)
{
	long a, m;

	if (o->mode == SIM_BYTES) {
		o->bytes = g->p + g->i;
		o->len = g->i < g->n ? g->n - g->i : 0;
	}
	sim_run(o, host, arg);
	a = sim_leaked_allocs();
	m = sim_leaked_map_bytes();
	if (a || m)
		sim_fail("leak: %ld allocations and %ld mapped bytes not "
			 "returned by the end of the run",
			 a, m);
}

void h_failed(const char *cond, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sim_fail("oracle failed: %s: %s", cond, msg);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct harness *find(const char *name)
{
	for (size_t i = 0; i < NHARNESS; i++)
		if (!strcmp(harnesses[i]->name, name))
			return harnesses[i];
	fprintf(stderr, "coev-fuzz: no harness '%s' (try --list)\n", name);
	exit(2);
}

static size_t read_all(FILE *f, uint8_t *buf, size_t cap)
{
	size_t n = 0, r;

	while (n < cap && (r = fread(buf + n, 1, cap - n, f)) > 0)
		n += r;
	return n;
}

/* One run of a --random or --pct series: its program and its schedule
 * both come from seed, so the seed alone replays it (--one). */
static void seeded_run(const struct harness *h, enum sim_mode mode,
		       uint64_t seed, unsigned depth, FILE *trace)
{
	uint8_t prog[64];
	uint64_t ps = seed;
	struct sim_opts o = {0};

	for (size_t j = 0; j < sizeof prog; j++)
		prog[j] = (uint8_t)sim_splitmix(&ps);
	o.mode = mode;
	o.seed = seed;
	o.depth = depth;
	o.expect = 4000;
	o.trace = trace;
	sim_set_describe(NULL, NULL);
	h->run(prog, sizeof prog, &o);
}

/* Where a --random or --pct series is, for the report of a failure. */
static struct {
	long run;
	uint64_t seed;
	double t0;
	const char *mode, *harness;
	unsigned depth;
} series;

static void on_abort(int sig)
{
	(void)sig;
	sim_abort_dump();
	if (!series.harness)
		return;
	fprintf(stderr,
		"coev-fuzz %s %s: failed at run %ld after %.3f s; "
		"reproduce with: coev-fuzz %s --one --seed %llu --%s 1 "
		"--depth %u -t\n",
		series.harness, series.mode, series.run + 1,
		now_s() - series.t0, series.harness,
		(unsigned long long)series.seed, series.mode, series.depth);
	/* The .seed line (fuzz/regress/README) and how to replay it. */
	fprintf(stderr, "seed line: --%s 1 --depth %u --seed %llu%s%s\n",
		series.mode, series.depth, (unsigned long long)series.seed,
		plants[0] ? " --plant " : "", plants);
	fprintf(stderr,
		"keep it: echo that line (after 'seed line: ') > "
		"fuzz/regress/%s/NAME.seed; fuzz/replay "
		"fuzz/regress/%s/NAME.seed\n",
		series.harness, series.harness);
}

/* Every scheduling point of the build, from the section coev_points
 * (sched/platform.h), merged by file and line (a point in a static
 * inline function has one site per translation unit). */
extern struct coev__point_site __start_coev_points[] __attribute__((weak));
extern struct coev__point_site __stop_coev_points[] __attribute__((weak));

static const char *const pt_kind[COEV__PT_COUNT] = {
	"push",	   "pop",   "steal",  "park", "unpark",	  "wake",
	"suspend", "lock",  "unlock", "spin", "complete", "await",
	"cancel",  "timer", "chan",   "live",
};

static int site_cmp(const void *a, const void *b)
{
	const struct coev__point_site *x =
		*(const struct coev__point_site *const *)a;
	const struct coev__point_site *y =
		*(const struct coev__point_site *const *)b;
	int c = strcmp(x->file, y->file);

	return c ? c : x->line - y->line;
}

static void print_points(FILE *out)
{
	size_t n = (size_t)(__stop_coev_points - __start_coev_points), k, r = 0;
	const struct coev__point_site **v = malloc((n ? n : 1) * sizeof *v);

	if (!v)
		return;
	for (k = 0; k < n; k++)
		v[k] = &__start_coev_points[k];
	qsort(v, n, sizeof *v, site_cmp);
	for (size_t i = 0; i < n; i = k) {
		unsigned long hits = 0;

		for (k = i; k < n && !site_cmp(&v[i], &v[k]); k++)
			hits += v[k]->hits;
		fprintf(out, "%12lu %-9s %s:%d\n", hits, pt_kind[v[i]->p],
			v[i]->file, v[i]->line);
		r++;
	}
	fprintf(stderr, "coev-fuzz: %zu scheduling points in the build\n", r);
	free(v);
}

static int many(const struct harness *h, enum sim_mode mode, long n,
		uint64_t seed, unsigned depth, double secs)
{
	uint64_t s = seed, steps = 0;
	double t0 = now_s();

	series.t0 = t0;
	series.mode = mode == SIM_PCT ? "pct" : "random";
	series.harness = h->name;
	series.depth = depth;
	for (long i = 0; i < n; i++) {
		uint64_t run_seed = sim_splitmix(&s);

		series.run = i;
		series.seed = run_seed;
		seeded_run(h, mode, run_seed, depth, NULL);
		steps += sim_steps();
		if (secs > 0 && (i & 63) == 63 && now_s() - t0 > secs) {
			n = i + 1;
			break;
		}
	}
	fprintf(stderr,
		"coev-fuzz %s %s: %ld runs, %llu steps, %.0f runs/s "
		"(seed %llu)\n",
		h->name, mode == SIM_PCT ? "pct" : "random", n,
		(unsigned long long)steps, (double)n / (now_s() - t0),
		(unsigned long long)seed);
	return 0;
}

/* --one SEED [--pct D]: rerun one run of --random/--pct by its printed
 * seed, with its interleaving traced. */
static int one(const struct harness *h, enum sim_mode mode, uint64_t seed,
	       unsigned depth, FILE *trace)
{
	seeded_run(h, mode, seed, depth, trace);
	fprintf(stderr, "coev-fuzz %s: seed %llu passed, %llu steps\n", h->name,
		(unsigned long long)seed, (unsigned long long)sim_steps());
	return 0;
}

static void run_input(const struct harness *h, const uint8_t *buf, size_t n,
		      FILE *trace)
{
	struct sim_opts o = {0};

	o.mode = SIM_BYTES;
	o.trace = trace;
	sim_set_describe(NULL, NULL);
	h->run(buf, n, &o);
}

int main(int argc, char **argv)
{
	static uint8_t buf[MAX_INPUT];
	const struct harness *h;
	FILE *trace = NULL;
	uint64_t seed = 1;
	unsigned depth = 3;
	long n = 0;
	enum sim_mode mode = SIM_BYTES;
	const char *files[64];
	int nfiles = 0;
	bool single = false, points = false;
	double secs = 0;
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "--plants")) {
		printf("%s\n", plants);
		return 0;
	}
	if (argc < 2 || !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < NHARNESS; i++)
			printf("%-8s %s\n", harnesses[i]->name,
			       harnesses[i]->what);
		return argc < 2 ? 2 : 0;
	}
	h = find(argv[1]);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-t")) {
			trace = stdout;
		} else if (!strcmp(argv[i], "--random") && i + 1 < argc) {
			mode = SIM_RANDOM;
			n = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--pct") && i + 1 < argc) {
			mode = SIM_PCT;
			n = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--one")) {
			single = true;
		} else if (!strcmp(argv[i], "--points")) {
			points = true;
		} else if (!strcmp(argv[i], "--secs") && i + 1 < argc) {
			secs = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--plant") && i + 1 < argc) {
			if (strcmp(argv[++i], plants))
				fprintf(stderr,
					"coev-fuzz: warning: the input was "
					"found with planted bug %s, this "
					"build has '%s' (fuzz/replay rebuilds "
					"with it)\n",
					argv[i], plants);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
			depth = (unsigned)atoi(argv[++i]);
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "coev-fuzz: unknown option %s\n",
				argv[i]);
			return 2;
		} else if (nfiles < 64) {
			files[nfiles++] = argv[i];
		}
	}
	signal(SIGABRT, on_abort);
	if (plants[0])
		fprintf(stderr, "coev-fuzz: built with planted bugs: %s\n",
			plants);
	if (single || mode != SIM_BYTES) {
		rc = single ? one(h, mode == SIM_PCT ? SIM_PCT : SIM_RANDOM,
				  seed, depth, trace)
			    : many(h, mode, n, seed, depth, secs);
		if (points)
			print_points(stdout);
		return rc;
	}
	if (nfiles) {
		for (int i = 0; i < nfiles; i++) {
			FILE *f;
			size_t len;

			if (!(f = fopen(files[i], "rb"))) {
				fprintf(stderr, "coev-fuzz: %s: %s\n", files[i],
					strerror(errno));
				return 1;
			}
			len = read_all(f, buf, sizeof buf);
			fclose(f);
			run_input(h, buf, len, trace);
			fprintf(stderr, "coev-fuzz %s: %s passed, %llu steps\n",
				h->name, files[i],
				(unsigned long long)sim_steps());
		}
		if (points)
			print_points(stdout);
		return 0;
	}
#ifdef __AFL_FUZZ_TESTCASE_LEN
	__AFL_INIT();
	unsigned char *afl = __AFL_FUZZ_TESTCASE_BUF;
	while (__AFL_LOOP(1000)) {
		size_t len = (size_t)__AFL_FUZZ_TESTCASE_LEN;

		if (len > MAX_INPUT)
			len = MAX_INPUT;
		memcpy(buf, afl, len);
		run_input(h, buf, len, NULL);
	}
#else
	run_input(h, buf, read_all(stdin, buf, sizeof buf), trace);
#endif
	return 0;
}
