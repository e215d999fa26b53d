/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_internal.h — what the files of the simulation share, private
 * to them (the harnesses see fuzz/sim.h): a simulated thread and its
 * states, a worker's fake loop and its watchers, and the one simulation's
 * state. fuzz/sim.c has the decisions, the threads and the loop that runs
 * them; fuzz/sim_loop.c the clock, timers, fake fds and fake poller;
 * fuzz/sim_sync.c the mutexes and condition variables.
 */
#ifndef COEV_FUZZ_SIM_INTERNAL_H
#define COEV_FUZZ_SIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz/sim.h"
#include "sched/internal.h"

#define SIM_THREADS_MAX 64
#define SIM_EPOCH 1000000000 /* the clock starts at 1 s */

enum sim_state { S_RUN, S_MUTEX, S_COND, S_PARK, S_JOIN, S_DONE };

struct sim_thread {
	coev__ctx_t ctx;
	const void *lo; /* the stack it runs on now (ASan) */
	size_t size;
	void *stack; /* its own stack; NULL for the loop */
	struct coev_worker *tls;
	struct coev__pool *tls_pool;
	void *(*fn)(void *);
	void *arg;
	enum sim_state state;
	const void *on;		    /* mutex, cond or thread waited for */
	coev_time_t until;	    /* COND: deadline, or COEV_FOREVER */
	bool signalled;		    /* COND */
	bool timedout;		    /* COND */
	struct coev_worker *w;	    /* PARK */
	struct coev_worker *worker; /* the worker this thread is, or NULL */
	unsigned id;
	uint64_t prio; /* PCT */
	bool spinning; /* yielded in a spin-wait; someone else runs first */
	char name[32];
};

/* One worker's fake loop. */
struct sim_loop {
	bool ring;	       /* doorbell rung since the last park/poll */
	coev__timer_t *timers; /* armed, unsorted */
	coev__io_t *ios;       /* armed, unsorted */
};

/* A watcher is armed while it is on its loop's list; the list, not a
 * flag in the watcher (whose bytes are the caller's until it is armed),
 * says so. */
struct timer_impl {
	coev__timer_t *next;
	coev_time_t when;
	uint64_t seq;
};

struct io_impl {
	coev__io_t *next;
	int fd;
	unsigned events;
};

_Static_assert(sizeof(struct timer_impl) <= sizeof(((coev__timer_t *)0)->impl),
	       "timer_impl too big");
_Static_assert(sizeof(struct io_impl) <= sizeof(((coev__io_t *)0)->impl),
	       "io_impl too big");

/* One switch of the loop, kept for the dumps: the last SIM_RING. */
#define SIM_RING 32
struct sim_switch {
	uint64_t step;
	coev_time_t clock;
	const struct coev__point_site *site; /* where `from` stopped */
	char from[32], to[32];
};

struct sim {
	bool running;
	struct sim_opts o;
	enum sim_mode mode; /* may fall from SIM_BYTES to SIM_RANDOM */
	size_t pos;	    /* next schedule byte */
	uint64_t rng;
	coev_time_t clock;
	uint64_t steps, budget, seq;
	unsigned keep; /* BYTES: points left before the next decision */
	unsigned pick; /* BYTES: the next pick */
	bool jump;     /* BYTES: advance the clock before the next pick */
	struct sim_thread loop;
	struct sim_thread *cur, *prev;
	struct sim_thread *threads[SIM_THREADS_MAX];
	unsigned nthreads, started;
	/* PCT */
	uint64_t change[8];
	unsigned nchange, low;
	void (*describe)(FILE *, void *);
	void *describe_arg;
	struct coev__point_site *last_site;
	struct sim_switch ring[SIM_RING];
	uint64_t nswitch;
};

/* The one simulation; defined, with what follows, in fuzz/sim.c. */
extern struct sim coev__sim;
void coev__sim_to_loop(void);

extern const char *const coev__sim_point_name[COEV__PT_COUNT];
bool coev__sim_runnable(struct sim_thread *t);

/* fuzz/sim_dump.c */
void coev__sim_dump(FILE *out);
void coev__sim_record_switch(struct sim_thread *t);
void coev__sim_check_liveness(void);

/* fuzz/sim_loop.c */
coev__timer_t *coev__sim_first_timer(struct sim_loop *l);
bool coev__sim_loop_due(struct sim_loop *l);
void coev__sim_fd_reset(void); /* every fake fd closed (sim_run) */

static inline struct sim_loop *loop_of(struct coev_worker *w)
{
	return w->loop;
}

#endif
