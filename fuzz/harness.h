/* SPDX-License-Identifier: MIT */
/*
 * fuzz/harness.h — what the fuzz harnesses share: the program reader, the
 * oracle check, the runtime configuration, and the table the driver runs.
 *
 * An input is a small program followed by schedule bytes. Each harness
 * reads its program from the front with prog_byte() (an exhausted input
 * reads as zeros, so every input is a valid program), runs it under the
 * simulation with the rest of the input as the schedule, and checks its
 * oracles; a broken one aborts through sim_fail with a dump. Programs are
 * built so that a correct runtime always finishes them: every wait has a
 * partner that comes, or a deadline. So the simulation's deadlock detector
 * reports only lost wakeups and leaked waits.
 */
#ifndef COEV_FUZZ_HARNESS_H
#define COEV_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "coev.h"
#include "fuzz/sim.h"

struct prog {
	const uint8_t *p;
	size_t n, i;
};

static inline unsigned prog_byte(struct prog *g)
{
	return g->i < g->n ? g->p[g->i++] : 0;
}

/* An oracle: abort with a dump when cond is false. Usable anywhere in a
 * simulated run (tasks, actors, callbacks). */
#define H_CHECK(cond, ...)                            \
	do {                                          \
		if (!(cond))                          \
			h_failed(#cond, __VA_ARGS__); \
	} while (0)
__attribute__((noreturn, format(printf, 2, 3))) void
h_failed(const char *cond, const char *fmt, ...);

/* The runtime every harness uses: small stacks, the given workers. */
static inline void h_config(coev_config_t *cfg, unsigned workers)
{
	coev_config_init(cfg);
	cfg->workers = workers;
#if defined(COEV_ASAN)
	cfg->stack_size = 128 * 1024;
#else
	cfg->stack_size = 64 * 1024;
#endif
	cfg->blocking_max = 2;
}

/* Run the host under o with the schedule that follows the program, then
 * check that the run returned every allocation and mapping it took. */
void h_run(struct prog *g, struct sim_opts *o, void (*host)(void *), void *arg);

struct harness {
	const char *name;
	const char *what;
	/* Read a program from data and run it with the rest as schedule
	 * (o->mode SIM_BYTES) or under o's own source. */
	void (*run)(const uint8_t *data, size_t len, struct sim_opts *o);
};

extern const struct harness h_sched;
extern const struct harness h_sync;
extern const struct harness h_chan;
extern const struct harness h_future;
extern const struct harness h_timer;
extern const struct harness h_fd;
extern const struct harness h_lock;
extern const struct harness h_scope;
extern const struct harness h_life;
extern const struct harness h_io;
extern const struct harness h_select;
extern const struct harness h_waitany;
extern const struct harness h_any;
extern const struct harness h_bcast;
extern const struct harness h_latest;
/* one line per harness */

#endif
