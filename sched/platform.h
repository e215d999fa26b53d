/* SPDX-License-Identifier: MIT */
/*
 * sched/platform.h — the platform seam.
 *
 * Everything the scheduler needs from the outside world goes through these
 * few functions: threads, the clock, each worker's event loop (park, poll,
 * doorbell, timers) and every choice the scheduler makes that is not forced
 * (which victim to steal from). The real platform (plat_ev.c: pthreads,
 * CLOCK_MONOTONIC, libev) is the one compiled by default; the deterministic
 * simulation in fuzz/ provides the same functions with fibers, a virtual
 * clock and decisions read from the fuzzer's input, so the scheduler code
 * above this seam runs unchanged under both. The backend is chosen by which
 * file the Makefile compiles, never by run-time indirection, so the seam
 * costs nothing on the hot paths.
 */
#ifndef COEV_SCHED_PLATFORM_H
#define COEV_SCHED_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "coev/time.h"

struct coev_worker;

/* A timer on one worker's loop. Owned by the caller (it lives in the frame
 * of a waiting task); only the owning worker's thread arms or disarms it. */
typedef struct coev__timer {
	void (*fire)(struct coev__timer *tm); /* runs on the owning worker */
	void *data;
	_Alignas(16) unsigned char impl[64]; /* the backend's watcher */
} coev__timer_t;

/* Readiness of one fd on one worker's loop; the same rules as a timer.
 * fire gets the ready events (COEV_READ, COEV_WRITE). */
typedef struct coev__io {
	void (*fire)(struct coev__io *io, unsigned events);
	void *data;
	_Alignas(16) unsigned char impl[64]; /* the backend's watcher */
} coev__io_t;

/* Clock: monotonic nanoseconds. */
coev_time_t coev__plat_now(void);
/* The same clock, coarse (a few ms of resolution) and cheaper to read:
 * for task ages in dumps, which a spawn stamps. */
coev_time_t coev__plat_coarse_now(void);

/* Threads. start returns 0 or a negative errno; join waits for the end. */
typedef struct coev__thread {
	uintptr_t handle;
} coev__thread_t;
int coev__plat_thread_start(coev__thread_t *th, void *(*fn)(void *), void *arg);
void coev__plat_thread_join(coev__thread_t th);

/* Loops. init/destroy run on any thread while no one else uses w's loop;
 * park, poll, timer_arm and timer_disarm only on w's own thread; unpark on
 * any thread. park blocks until the doorbell rings, a timer fires or I/O is
 * ready, runs those callbacks and returns; a ring that came before the park
 * makes it return at once (doorbell rings are kept, and coalesce).
 * Disarming a timer or io that is not armed (or has fired) is a no-op. A
 * watcher fires at most once per arm: the backend disarms it before
 * calling fire. io_arm returns 0, -EBUSY when another io of this worker
 * waits for the same event on fd, -EPERM for an fd that cannot be polled
 * (a regular file: always ready), or another negative errno (bad fd). Once
 * an io has fired or been disarmed, the backend never touches its fd
 * again, so the fd may be closed on any thread. (coev__plat_fd_register,
 * below, is the one exception: for fds coev owns, sched/fd.c.) */
int coev__plat_loop_init(struct coev_worker *w);
void coev__plat_loop_destroy(struct coev_worker *w);
void coev__plat_park(struct coev_worker *w);
void coev__plat_poll(struct coev_worker *w);
void coev__plat_unpark(struct coev_worker *w);
void coev__plat_timer_arm(struct coev_worker *w, coev__timer_t *tm,
			  coev_time_t deadline);
void coev__plat_timer_disarm(struct coev_worker *w, coev__timer_t *tm);
int coev__plat_io_arm(struct coev_worker *w, coev__io_t *io, int fd,
		      unsigned events);
void coev__plat_io_disarm(struct coev_worker *w, coev__io_t *io);
/* Register fd for good, edge-triggered for reading and writing, in w's
 * set (w's thread): its events reach coev__fd_event(w, key, events) until
 * the fd is closed. 0, -EPERM (cannot be polled), or a negative errno. */
int coev__plat_fd_register(struct coev_worker *w, int fd, uint64_t key);

/* The backend's own loop object for w (a struct ev_loop * for plat_ev),
 * for libraries that attach to it; NULL when the backend has none. Called
 * on w's thread; from then on w's polls always run the loop. */
void *coev__plat_native_loop(struct coev_worker *w);

/*
 * The asymmetric fence: a store-load order between a hot path and a rare
 * one, with no locked instruction on the hot path (Dekker's pattern with
 * the cost moved to one side, as in userspace RCU). The hot side stores,
 * calls coev__fence_light(), then loads; the rare side stores, calls
 * coev__plat_fence_heavy(), then loads: at least one of the two loads
 * sees the other side's store. The heavy fence makes every thread of the
 * process that runs at that moment execute a full barrier (Linux
 * membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED: an IPI to the CPUs that
 * run them; a thread that does not run passes a barrier in its context
 * switch), so the light one only has to keep the compiler from moving the
 * load above the store. coev__plat_fence_init (at each runtime's
 * creation, before its workers start) registers the process; where
 * membarrier is missing (kernels before 4.14, seccomp filters) it leaves
 * coev__plat_fence_cheap false and the light fence is a full one, which
 * is what the hot path paid before. The simulation runs every simulated
 * thread on one OS thread, interleaved only at scheduling points: both
 * fences are compiler barriers there.
 */
extern bool coev__plat_fence_cheap; /* [set before any worker starts] */
void coev__plat_fence_init(void);
void coev__plat_fence_heavy(void);

static inline void coev__fence_light(void)
{
	/* seq_cst: see above; a signal fence is a compiler barrier. */
	if (__builtin_expect(coev__plat_fence_cheap, 1))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

/* Choices: a number in [0, n) for worker w (n > 0). */
unsigned coev__plat_choose(struct coev_worker *w, unsigned n);

/*
 * Scheduling points: places where another thread may run between two
 * steps of this one. On real threads that is anywhere, and the points
 * compile to nothing. In the simulation (COEV_SIM) they are the only
 * places where a simulated thread can lose the CPU, so each asks the
 * platform whether to switch, and which thread runs next. They sit where
 * interleavings decide outcomes: queue push, pop and steal; park and
 * unpark; wake; entering and leaving a spin-locked section; future
 * completion, await and cancel; between the steps of a channel's
 * lock-free send and receive. Blocking calls of the simulation
 * (mutexes, condition variables, park) switch by themselves.
 */
enum coev__point {
	COEV__PT_PUSH,	   /* a task entry goes into a queue */
	COEV__PT_POP,	   /* a worker takes from its own queues */
	COEV__PT_STEAL,	   /* a thief looks at a victim */
	COEV__PT_PARK,	   /* a worker is about to sleep */
	COEV__PT_UNPARK,   /* a doorbell rings */
	COEV__PT_WAKE,	   /* a task is made ready */
	COEV__PT_SUSPEND,  /* a task is about to switch to its scheduler */
	COEV__PT_LOCK,	   /* a spin-locked section begins */
	COEV__PT_UNLOCK,   /* a spin-locked section ends */
	COEV__PT_SPIN,	   /* one turn of a spin-wait */
	COEV__PT_COMPLETE, /* a future is completed */
	COEV__PT_AWAIT,	   /* a future is waited for */
	COEV__PT_CANCEL,   /* a cancellation is delivered */
	COEV__PT_TIMER,	   /* a timer is armed or disarmed */
	COEV__PT_CHAN,	   /* a step of a channel's lock-free ring */
	COEV__PT_LIVE,	   /* between a live-count step and its check */
	COEV__PT_SYSCALL,  /* an fd's system call (the simulation's fakes) */
	COEV__PT_COUNT
};

/*
 * Whether the platform runs threads of its own beside the workers: the
 * monitor (sched/monitor.c). The real platform does; the simulation
 * schedules every thread itself and has none.
 */
#if defined(COEV_SIM)
#define COEV__PLAT_MONITOR 0
#else
#define COEV__PLAT_MONITOR 1
#endif

/*
 * In the simulation each point is also a site: a record of its kind, file
 * and line, placed in the section coev_points (so the fuzz driver lists
 * every point of the build, __start_coev_points to __stop_coev_points, and
 * which ones a series reached: hits). A point in a static inline function
 * has one site per translation unit that uses it.
 */
#if defined(COEV_SIM)
struct coev__point_site {
	enum coev__point p;
	int line;
	const char *file;
	unsigned long hits;
};
void coev__plat_point(struct coev__point_site *site);
#define COEV__POINT(pt)                                                    \
	do {                                                               \
		static struct coev__point_site coev__site_ __attribute__(( \
			section("coev_points"), used, aligned(8))) = {     \
			COEV__PT_##pt, __LINE__, __FILE__, 0};             \
		coev__plat_point(&coev__site_);                            \
	} while (0)
#else
#define COEV__POINT(p) ((void)0)
#endif

#endif
