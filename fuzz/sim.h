/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim.h — the deterministic simulation platform, as the harnesses
 * see it.
 *
 * Built with COEV_SIM, the library's platform seam (sched/platform.h) is
 * fuzz/sim.c instead of sched/plat_ev.c: every thread the runtime starts
 * (workers, blocking-pool threads) and every thread a harness starts (its
 * "foreign" actors) is a fiber on the one OS thread that called sim_run,
 * the clock is virtual, the loops are a fake poller, and pthread mutexes
 * and condition variables are the simulation's own (fuzz/sim_redirect.h).
 * A simulated thread loses the CPU only at a scheduling point
 * (COEV__POINT) or when it blocks, and which thread runs next comes from
 * the decision source. So one input and one source give one interleaving,
 * every time.
 *
 * Decision sources:
 *   SIM_BYTES   the schedule bytes of a fuzz input. Each byte is one
 *               decision: bits 0-3 how many more points the running thread
 *               keeps the CPU, bits 4-6 which runnable thread runs next,
 *               bit 7 advance the clock to the next timer first. When the
 *               bytes run out, SIM_RANDOM continues, seeded by a hash of
 *               the whole input (the run stays a function of the input).
 *   SIM_RANDOM  a seeded PRNG: switch at one point in eight, to a
 *               uniformly chosen runnable thread.
 *   SIM_PCT     probabilistic concurrency testing (Burckhardt et al.):
 *               random thread priorities, the highest-priority runnable
 *               thread always runs, and at d - 1 random steps of the
 *               expected run length the running thread drops to the lowest
 *               priority. A bug of depth d is found with probability at
 *               least 1 / (n k^(d-1)) per run. A thread that yields in a
 *               spin-wait drops too, so the holder it waits for runs.
 *
 * Oracles built in: a step budget (a hang or livelock aborts), a deadlock
 * and lost-wakeup detector (no thread can run and no timer is pending), a
 * liveness oracle (every worker of a runtime parked with nothing due while
 * work is queued in it, when no other thread can act: fuzz/sim.c,
 * check_liveness), and leak counters (allocations and mappings made during
 * the run and not returned; sim_leaked_allocs()). Every failure aborts
 * with a dump: each simulated thread and what it waits on, each task of
 * each runtime with its wait note (coev__wait_note), the harness's own
 * description (sim_set_describe), and the last 32 switches.
 */
#ifndef COEV_FUZZ_SIM_H
#define COEV_FUZZ_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sim_mode { SIM_BYTES, SIM_RANDOM, SIM_PCT };

struct sim_opts {
	enum sim_mode mode;
	const uint8_t *bytes; /* SIM_BYTES */
	size_t len;
	uint64_t seed;	    /* SIM_RANDOM, SIM_PCT */
	unsigned depth;	    /* SIM_PCT: bug depth d (>= 1) */
	uint64_t expect;    /* SIM_PCT: expected steps of one run */
	uint64_t budget;    /* steps before a hang is declared (0: default) */
	FILE *trace;	    /* print every switch here, or NULL */
	unsigned fail_mem;  /* fail the Nth allocation (0: never) */
	bool fail_mem_more; /* and every one after it */
};

/* Run fn(arg) as the first simulated thread (the host) until it and every
 * thread it started have ended. Aborts (with a dump) on a deadlock, a
 * spent step budget or a thread left running after the host ended. */
void sim_run(const struct sim_opts *o, void (*fn)(void *), void *arg);

/* splitmix64: the one PRNG of the simulation and its driver. */
static inline uint64_t sim_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Fake fds for the fake poller: numbers no real fd has, whose readiness
 * (COEV_READ, COEV_WRITE) an actor sets; a worker's watch on one fires at
 * its next park or poll. new returns the fd or -EMFILE. */
int sim_fd_new(void);
void sim_fd_set(int fd, unsigned events);
void sim_fd_close(int fd);

/* Steps (scheduling points passed) of the current or last run. */
uint64_t sim_steps(void);

/* A decision for a harness: a number in [0, n), from the same source. */
unsigned sim_choose(unsigned n);

/* Foreign actors: simulated plain threads (a callback library's thread).
 * start returns 0 or a negative errno; join waits for fn to return. */
typedef struct sim_actor {
	uintptr_t handle;
} sim_actor_t;
int sim_actor_start(sim_actor_t *a, const char *name, void (*fn)(void *),
		    void *arg);
void sim_actor_join(sim_actor_t a);

/* Called in every failure's dump: the harness says what its tasks wait
 * on. Registered before sim_run or during it, it stays until the next
 * call (the driver clears it before each run). */
void sim_set_describe(void (*fn)(FILE *out, void *arg), void *arg);

/* Report a broken oracle: print the message and the dump, then abort. */
__attribute__((noreturn, format(printf, 1, 2))) void sim_fail(const char *fmt,
							      ...);

/* On an abort that did not come from sim_fail (a panic of the runtime):
 * print the dump of a run in progress (the driver's SIGABRT handler). */
void sim_abort_dump(void);

/* Allocations (malloc family) and mapped bytes still out since sim_run
 * began; both 0 after a clean run. Counted by the --wrap'ed functions of
 * fuzz/sim_alloc.c. */
long sim_leaked_allocs(void);
long sim_leaked_map_bytes(void);
/* Allocations failed on purpose by fail_mem in the last run. */
unsigned sim_failed_allocs(void);

/* Fake sockets that hold bytes (fuzz/sim_fd.c): the library's fd system
 * calls reach them through fuzz/sim_io_redirect.h. Unix stream sockets
 * (socket, bind, listen, connect, accept4) are fake; so are pairs made
 * here. clear: forget every fake socket (at the start of a run); cap: the
 * buffer of each direction of the connections made from now on (1-32
 * bytes); pair: a connected pair, not owned by coev (a socketpair; 0 or
 * -EMFILE); read, write: the system calls, non-blocking, returning
 * -errno; close: close(2) behind coev's back; fail: the next call on fd
 * fails with err (EINTR), or ECONNRESET: the connection is reset now
 * (both ends read their bytes, then get ECONNRESET once, then 0; writes
 * get EPIPE); open: fake sockets open; unread: bytes waiting for fd's
 * reads; sock_level: its readiness now (COEV_READ, COEV_WRITE).
 * fake: whether fd is a fake fd's number; fd_level: a fake fd's
 * readiness after its own call (no edge, unlike sim_fd_set). */
#include <sys/types.h>
void sim_sock_clear(void);
void sim_sock_cap(unsigned cap);
int sim_sock_pair(int fds[2]);
ssize_t sim_sock_read(int fd, void *buf, size_t n);
ssize_t sim_sock_write(int fd, const void *buf, size_t n);
int sim_sock_close(int fd);
void sim_sock_fail(int fd, int err);
unsigned sim_sock_open(void);
unsigned sim_sock_unread(int fd);
unsigned sim_sock_level(int fd);
bool sim_fd_fake(int fd);
void sim_fd_level(int fd, unsigned events);

#endif
