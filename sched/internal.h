/* SPDX-License-Identifier: MIT */
/*
 * sched/internal.h — what the scheduler offers the other layers: sync/,
 * bridge/, observe/, the platform backends (sched/plat_ev.c and fuzz/'s
 * simulation) and white-box tests. Not installed. What is private to
 * sched/ is in sched/sched.h, which only sched/ (and tests/sched/)
 * includes; ci/check-layout.py enforces it.
 *
 * What other layers may do with it:
 *   - the waiter protocol and park/wake (sync/, bridge/): coev__waiter_*,
 *     coev__park*, coev__wake*, coev__wait_fd, the strict-wait, cancel and
 *     deadline helpers, and coev__wait_note for what a task waits on;
 *   - the current task and worker, posts to a worker (bridge/), pinning;
 *   - read the runtime, worker, task and stack structs (observe/, which
 *     also implements the hooks declared at the end: traces and debug
 *     mode's reports) under the rules each field states; write none of
 *     their fields but through the functions here;
 *   - the platform backends fill the loop fields of a worker.
 *
 * Ownership tags used below:
 *   [owner]  read and written only by the worker's own thread;
 *   [any]    read or written by any thread, through atomics or a lock named
 *            beside the field;
 *   [init]   written once before the worker starts, read-only afterwards.
 */
#ifndef COEV_SCHED_INTERNAL_H
#define COEV_SCHED_INTERNAL_H

#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "coev.h"
#include "sched/ctx.h"
#include "sched/platform.h"

#define COEV_CACHELINE 64

/* Local run queue size (power of two). 1024 rather than tokio's and Go's
 * 256: with 1,000 tasks yielding on two workers a 256-slot ring overflowed
 * on every round and a third of each yield went to inject-queue round
 * trips (70 ns against 102 ns per yield, measured with bench/coev). The
 * cost is 8 KiB per worker. Test builds may shrink it to reach the
 * wrap-around and overflow paths with few tasks. */
#ifndef COEV_RUNQ_SIZE
#define COEV_RUNQ_SIZE 1024
#endif

/* Entries a worker takes from its own ring at once (worker.c, "The
 * owner's batch"): one CAS per this many pops of a long ring. */
#ifndef COEV_BATCH
#define COEV_BATCH 8
#endif

/* --- tasks ------------------------------------------------------------ */

/* A queue entry: a tagged task pointer (its encoding is private to sched/,
 * sched/sched.h). Never dereferenced. */
typedef struct coev__entry coev__entry_t;

/*
 * Task state word. NOTIFIED without RUNNING means "queued or about to be";
 * with RUNNING it is a wake that came while the task ran (the permit).
 *   IDLE      parked: in no queue; the next wake queues it
 *   NOTIFIED  queued (spawned, woken, yielded)
 *   RUNNING   on a worker
 *   RUNNING|NOTIFIED  running, and woken since it started running
 *   DONE      finished (other bits ignored)
 * STARTED is set from the first run on; a task that is exactly NOTIFIED has
 * never run (no stack, never pinned), which is what a join may boost.
 */
enum {
	TS_IDLE = 0,
	TS_NOTIFIED = 1u << 0,
	TS_RUNNING = 1u << 1,
	TS_DONE = 1u << 2,
	TS_STARTED = 1u << 3,
};

/* Sentinels of the joiner slot. */
#define JOIN_DONE ((coev__waiter_t *)1)	     /* finished, result published */
#define JOIN_DETACHED ((coev__waiter_t *)2)  /* handle given up */
#define JOIN_FREED ((coev__waiter_t *)3)     /* block released */
#define JOIN_ABANDONED ((coev__waiter_t *)4) /* given up by a shutdown */

struct coev_stack;
struct coev_worker;

/* Someone waiting for one event: a task (which holds a reference on itself
 * while registered) or a plain thread (mutex and condition). */
typedef struct coev__waiter {
	coev_task_t *task;
	atomic_int done;
	/* [init] a task waiter signalled once that holds no reference on
	 * its task (coev__waiter_init_once): done goes 0, 1, 2. */
	bool once;
	atomic_bool gone; /* [any] join.c: a shutdown gave up on its task */
	pthread_mutex_t mu;
	pthread_cond_t cv;
} coev__waiter_t;

/* 248 bytes in plain builds, carved as blocks of 256 (four cache lines,
 * block.c): 8 bytes are left, and small fields fill the holes after
 * yield, boosted and pin_depth; check with a layout print before adding
 * one. */
struct coev_task {
	_Alignas(16) atomic_uint state;	  /* [any] see TS_* */
	atomic_uint refs;		  /* [any] handle + run + wakers */
	_Atomic(coev__waiter_t *) joiner; /* [any] see JOIN_* */
	coev__ctx_t ctx;	    /* saved context while suspended [runner] */
	struct coev_worker *worker; /* worker running it, or that last did */
	struct coev_worker *pin;    /* resumes only on this worker, or NULL */
	struct coev_rt *rt;	    /* [init] */
	coev_fn fn;		    /* [init] */
	void *arg;		    /* [init] */
	int result;		    /* written before DONE is published */
	uint8_t yield;		    /* TY_*: set by the task before switching */
	/* What a parked task waits on, for dumps (observe/dump.c): see
	 * coev__wait_note. [runner writes, any reads] */
	_Atomic(unsigned char) wait_kind;
	bool ext; /* [init] counted in rt->live_ext (spawned from outside) */
	struct coev_stack *stack; /* NULL until first run [runner] */
	coev__entry_t *link[3];	  /* queue links, one per entry kind */
	union {
		struct coev_task *next; /* free-list link (a freed block) */
		uint64_t trace_flow;	/* [waker, then runner] wake flow */
	};
	bool boosted;		  /* a work-first join queued it [joiner] */
	uint16_t locks_held;	  /* [runner] coev mutexes held */
	struct coev_worker *home; /* [init] spawner's worker (live count) */
	/* Cancellation (task.c) and structured concurrency (scope.c). */
	atomic_uint cancel;	  /* [any] 1 once cancelled; never cleared */
	unsigned shield;	  /* [runner] shield depth */
	unsigned pin_depth;	  /* [runner] coev_pin nesting (bridge/) */
	uint32_t born_ms;	  /* [init] coarse ms from rt->started_coarse */
	coev_time_t dl_limit;	  /* [runner] earliest pushed deadline */
	struct coev_scope *scope; /* [init] scope it is a child of */
	struct coev_scope *scope_top;	 /* [runner] innermost scope it owns */
	struct coev_task *sprev, *snext; /* scope's children [scope mu] */
	uint64_t id;			 /* [init] */
	struct coev__locals *locals;	 /* [runner] local.c: in its frame */
	_Atomic(const void *) wait_obj;
	atomic_llong wait_arg;
#if defined(COEV_TSAN)
	void *san_fiber; /* TSan fiber [runner] */
#endif
#if defined(COEV_ASAN)
	void *san_fake; /* ASan fake stack [runner] */
#endif
	char name[32]; /* [init] */
};

/*
 * A function to run on one worker's thread between tasks (bridge/'s
 * coev_submit): posted from any thread, run by the worker in its scheduler
 * context as a loop callback is. fn(p, false) when the runtime is freed
 * with p never run, so its owner can fail it and free it.
 */
typedef struct coev__post {
	struct coev__post *next;
	void (*fn)(struct coev__post *p, bool run);
} coev__post_t;

/* --- stacks ----------------------------------------------------------- */

struct coev_stack {
	void *lo;    /* lowest usable byte */
	size_t size; /* usable bytes */
	void *map;   /* its own mapping to unmap, or NULL inside an arena */
	size_t map_len;
	bool guarded;		 /* a guard region lies just below lo */
	struct coev_stack *next; /* pool link */
#if defined(COEV_VALGRIND)
	unsigned vg_id; /* valgrind's name for the stack while it is mapped */
#endif
};

/* --- task block chunks (block.c) ------------------------------------ */

/* The header at the start of each chunk of task blocks. */
struct coev__chunk {
	struct coev__chunk *next; /* [rt->block_mu] */
	bool kept; /* [teardown] holds an abandoned task: never unmapped */
};

/* --- the inject queue ------------------------------------------------- */

/*
 * MPMC FIFO of tasks for work from outside the runtime and for overflow of
 * local rings: an intrusive list under a mutex, plus an atomic length so
 * that the common "is it empty?" question takes no lock. Batches move in
 * and out under one lock acquisition.
 */
typedef struct coev__inject {
	pthread_mutex_t mu;
	coev__entry_t *head, *tail; /* [mu] */
	atomic_size_t len;	    /* [any] written under mu */
} coev__inject_t;

/* --- the blocking pool (pool.c) -------------------------------------- */

struct coev__job;
struct coev__pool_thread;

typedef struct coev__pool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* idle threads wait here (CLOCK_MONOTONIC) */
	pthread_cond_t gone; /* fini waits here for the last thread */
	struct coev__job *head, *tail;	 /* [mu] queued jobs, FIFO */
	unsigned threads, idle, max;	 /* [mu] max: [init] */
	coev_time_t idle_ns;		 /* [init] */
	bool stop;			 /* [mu] */
	struct coev__pool_thread *ended; /* [mu] threads to join */
	atomic_uint_fast64_t jobs_run;	 /* [any] */
} coev__pool_t;

/* --- workers ---------------------------------------------------------- */

struct coev_worker {
	/* Shared with thieves. */
	ck_ring_t ring;		       /* SPMC: owner pushes */
	_Atomic(coev__entry_t *) lifo; /* [any] owner sets, thieves take */
	/* Hand-off partners (worker.c, partners_only): lifo_run is the
	 * run_seq of the run that last woke a task into lifo, 0 when a spawn
	 * or a join filled it since [owner writes, any reads]; stuck_run is
	 * a run_seq the monitor found stuck with work queued behind it
	 * [monitor writes, any reads]. */
	atomic_uint_fast64_t lifo_run, stuck_run;
	char pad0[COEV_CACHELINE];
	/* Owner's hot state. */
	struct coev_rt *rt; /* [init] */
	/* The batch (worker.c, "The owner's batch"): up to COEV_BATCH of the
	 * ring's oldest entries, claimed with one CAS and popped without
	 * one. Entries [batch_i, batch_n) are left. [owner; while it is
	 * stuck in one task, the monitor through batch_gone] */
	atomic_uint batch_i, batch_n; /* [owner writes, any reads] */
	atomic_uint batch_gone; /* [monitor sets, owner clears] see worker.c */
	coev__entry_t *batch[COEV_BATCH];
	unsigned index;	      /* [init] */
	coev_task_t *current; /* [owner] task being run */
	/* [owner] a task that parked by switching straight to current (a
	 * hand-off, task.c) and is not yet published parked: current
	 * publishes it first thing after the switch. */
	coev_task_t *handoff_from;
	coev__ctx_t sched_ctx; /* [owner] scheduler context */
	uint32_t tick;	       /* [owner] */
	uint32_t lifo_runs;    /* [owner] consecutive LIFO runs */
	uint32_t inbox_runs;   /* [owner] consecutive inbox runs */
	uint32_t
		now_ms; /* [owner] coarse ms from rt->started_coarse, for ages */
	bool searching; /* [owner] counted as searcher */
	bool debug;	/* [init] COEV__DEBUG(rt), on the owner's hot line */
	bool loop_lent; /* [owner] coev_ev_loop handed out: always poll */
	uint64_t rng;	/* [owner] plat_ev's choices */
	uint64_t id_next, id_end; /* [owner] block of task ids */
	coev_task_t *task_cache;  /* [owner] free blocks (block.c) */
	unsigned task_cache_len;  /* [owner] */
	coev_task_t *task_spare;  /* [owner] a full batch in reserve */
	char *task_bump;	  /* [owner] next block to carve */
	char *task_bump_end;	  /* [owner] end of the chunk carved */
	/* The live count (live.c): ends on this worker of
	 * tasks spawned by tasks, one counter per spawning worker (indexed
	 * by its index), nworkers of them; the spawns are st.spawned. Only
	 * the owner writes, so neither side takes a locked instruction.
	 * [init pointer; owner writes the counters, any reads them] */
	atomic_uint_fast64_t *live_ends;
	struct coev_stack *stack_pool; /* [owner] idle stacks */
	atomic_uint stack_pool_len;    /* [owner writes, any reads] */
	void *san_sched_fiber;	       /* [owner] TSan */
	const void *san_sched_lo;      /* [owner] ASan: thread stack */
	size_t san_sched_size;	       /* [owner] */
	void *altstack;		       /* [init] SIGSEGV stack */
	/* Pinned tasks: resumable only here; any thread pushes. */
	coev__inject_t inbox;
	/* Functions posted to run here (a LIFO stack; any thread pushes). */
	_Atomic(coev__post_t *) posts;
	/* Idle bookkeeping [rt->idle_mu]. */
	bool sleeping;
	/* Loop (the backend's), doorbell and thread. */
	void *loop; /* [owner after start] */
	/* The doorbell (the backend's): an eventfd, written only when the
	 * worker sleeps in its loop or is about to (db_sleeping) and no ring
	 * is pending yet (db_pending). */
	int db_fd;		/* [init] */
	atomic_int db_pending;	/* [any] */
	atomic_int db_sleeping; /* [owner writes, any reads] */
	/* fd readiness (the backend's): its own epoll set, watched by the
	 * loop, and the waits registered per fd. [owner] */
	int io_fd;
	_Alignas(16) unsigned char io_watch[64];
	void *_Atomic *io_pages; /* [owner] coev__fd_table of io slots */
	/* The owned fds registered in io_fd (fd.c): io_id tells this set
	 * from any earlier one (a registration of a destroyed loop is
	 * void); io_ets: some fd was registered, so polls read io_fd. */
	uint64_t io_id;	       /* [init] */
	bool io_ets;	       /* [owner] */
	bool io_parked;	       /* [owner] parked since the last fairness poll */
	coev__thread_t thread; /* [init] */
	/* Counters: written by the owner, read by anyone (relaxed). timers
	 * and ios are gauges (armed now), kept by the backend. */
	struct {
		atomic_uint_fast64_t polls, spawned, finished, stolen,
			steal_ops, parks, unparks, inject_pops, stacks_mapped,
			stacks_unguarded, idle_ns, timers, ios, task_chunks;
	} st;
	/* What the worker runs, for the monitor (monitor.c): run_seq is odd
	 * while a task runs and changes at every run's start and end (the
	 * task is w->current, read from outside with process_vm_readv);
	 * run_start is set in debug mode and while tracing. park_start: when the current park began, 0 if awake.
	 * [owner writes, any reads] */
	atomic_uint_fast64_t run_seq;
	atomic_llong run_start, park_start;
	struct coev__trace_ring *trace; /* [init] NULL when not tracing */
	struct coev__bt *bt;		/* [init] debug mode: signal replies */
	/* The worker thread's kernel id (gettid), for debug mode's reports:
	 * 0 until the thread starts. [owner writes once, any reads] */
	atomic_int tid;
	ck_ring_buffer_t buf[COEV_RUNQ_SIZE]; /* ring storage */
};

/* Counters have one writer, the owner: a relaxed load and store, not a
 * locked read-modify-write, keeps them off the hot paths' cost. */
#define COEV_STAT_ADD(w, field, n)                                           \
	atomic_store_explicit(                                               \
		&(w)->st.field,                                              \
		atomic_load_explicit(&(w)->st.field, memory_order_relaxed) + \
			(n),                                                 \
		memory_order_relaxed)

/* --- the runtime ------------------------------------------------------ */

struct coev_rt {
	unsigned nworkers; /* [init] */
	unsigned debug;	   /* [init] COEV_DEBUG_* flags */
	bool unjoined;	   /* [init] report failed tasks nobody joined */
	bool migrate;	   /* [init] COEV_DEBUG_MIGRATE, 2+ workers */
	size_t stack_size; /* [init] page-rounded */
	coev_time_t shutdown_timeout; /* [init] */
	struct coev_worker **workers; /* [init] */
	coev__inject_t inject;
	/* Idle: packed counters, and the stack of sleeping workers. */
	atomic_uint_fast64_t idle_state; /* [any] searching | unparked << 32 */
	pthread_mutex_t idle_mu;
	unsigned *sleepers; /* [idle_mu] */
	unsigned nsleepers; /* [idle_mu] */
	/* Lifecycle. */
	atomic_long live_ext;	 /* [any] live-count share of non-workers */
	atomic_bool closed;	 /* [any] spawns refused */
	atomic_bool stop;	 /* [any] workers exit their loops */
	atomic_bool abandoned;	 /* [any] workers gone, tasks given up */
	int shutdown_left;	 /* [shutdown_mu] -1 until shut down */
	pthread_mutex_t live_mu; /* with live_cv: shutdown waits */
	pthread_cond_t live_cv;
	atomic_int live_waiters; /* [any] threads waiting on live_cv */
	long plain_waits;	 /* [live_mu] plain threads joining: join.c */
	/* Held by coev_rt_shutdown: one shutdown at a time. */
	pthread_mutex_t shutdown_mu;
	/* Shared pool of idle stacks, fed by workers with too many. */
	pthread_mutex_t stack_mu;
	struct coev_stack *stack_pool; /* [stack_mu] */
	unsigned stack_pool_len;       /* [stack_mu] */
	atomic_bool stack_pool_any;    /* [any] hint: stack_pool != NULL */
	coev__pool_t pool;	       /* the blocking pool */
	/* Arenas: the large mappings stacks are carved from (stack.c). */
	pthread_mutex_t arena_mu;
	struct coev_arena *arenas;     /* [arena_mu] all, newest first */
	struct coev_stack *arena_free; /* [arena_mu] released arena stacks */
	bool keep_arenas; /* [teardown] abandoned tasks' stacks stay mapped */
	/* Task blocks (block.c): chunks, and batches of free blocks. */
	pthread_mutex_t block_mu;
	struct coev__chunk *chunks; /* [block_mu] every chunk, for unmapping */
	coev_task_t *batches;	    /* [block_mu] stack of free batches */
	char *bump, *bump_end;	    /* [block_mu] plain threads' carving */
	atomic_bool batches_any;    /* [any] hint: batches != NULL */
	atomic_uint block_chunks;   /* [any] chunks mapped */
	/* The monitor (monitor.c) and observability (observe/). */
	coev_time_t started;	    /* [init] */
	coev_time_t started_coarse; /* [init] the same on the coarse clock */
	coev_time_t slow_ns;	    /* [init] slow-task threshold */
	void (*log)(void *arg, const char *msg); /* [init] never NULL */
	void *log_arg;				 /* [init] */
	struct coev__monitor *mon;		 /* [init] or NULL */
	struct coev__debug *dbg; /* [init] debug mode's state, or NULL */
	atomic_uint_fast64_t stuck_kicks; /* [any] monitor's wakes */
	char *trace_path;		  /* [init] or NULL */
	size_t trace_events;		  /* [init] per worker */
};
void coev__join_plain(struct coev_rt *rt, int delta); /* join.c: +1, -1 */

/* Debug mode is on (COEV_DEBUG=1 or cfg.debug & COEV_DEBUG_CHECKS). */
#define COEV__DEBUG(rt) (((rt)->debug & COEV_DEBUG_CHECKS) != 0)

/* --- the current task and worker --------------------------------------- */

/* Current worker of the calling thread, or NULL. Never cached across a
 * switch by the compiler (see task.c). */
struct coev_worker *coev__worker_self(void);
coev_task_t *coev__task_self(void);

extern __thread struct coev_worker *coev__tls_worker
	__attribute__((tls_model("initial-exec")));
/* The blocking pool whose thread this is, or NULL (pool.c). The
 * simulation keeps it per simulated thread, as coev__tls_worker. */
extern __thread struct coev__pool *coev__tls_pool;

/* A worker thread's body (what a platform backend starts). */
void *coev__worker_main(void *arg);
/* Run p on w's thread between tasks (bridge/'s coev_submit); any thread. */
void coev__worker_post(struct coev_worker *w, coev__post_t *p);
/* What is queued on w now (read from any thread: a snapshot). */
void coev__worker_depths(struct coev_worker *w, uint64_t *ring, uint64_t *lifo,
			 uint64_t *inbox);
/* Wake a sleeping worker to search for work, unless one searches. */
void coev__notify_parked(struct coev_rt *rt);
#if defined(COEV_SIM)
/* For the simulation's oracles and dumps (fuzz/sim.c): entries queued
 * anywhere in rt (inject queue; each worker's ring, batch, LIFO slot,
 * inbox, and 1 for a non-empty post stack), a snapshot (worker.c); and
 * every live task block, walked with no lock and no reference (block.c),
 * only while every other simulated thread is stopped. */
long coev__sim_queued_work(struct coev_rt *rt);
void coev__sim_task_each(struct coev_rt *rt,
			 void (*fn)(coev_task_t *t, void *arg), void *arg);
#endif
/* Live tasks of rt (task.c): exact when nothing spawns or ends meanwhile;
 * otherwise a value the count had or will have. */
long coev__live_count(struct coev_rt *rt);
/* Tasks spawned by tasks on worker h and not yet ended, wherever they run
 * or end; never negative (task.c). */
long coev__live_share(struct coev_rt *rt, unsigned h);
/* Drop a reference taken with coev__task_ref (task.c). */
void coev__task_release(coev_task_t *t);
/* fn(t, arg) for every live task block of rt (spawned and not released:
 * running, ready, waiting, or ended and not joined), with a reference
 * held across the call so the block is not reused meanwhile; the
 * reference is dropped after (which may free the block). A walk of the
 * chunks (block.c): cold paths only (shutdown, dumps, reports). Any
 * thread; takes block_mu once; never suspends. */
void coev__task_each(struct coev_rt *rt, void (*fn)(coev_task_t *t, void *arg),
		     void *arg);
/* Queued blocking-pool jobs, under p->mu (pool.c, for metrics). */
size_t coev__pool_queued(const coev__pool_t *p);

/* --- parking and waking (task.c, wait.c) ------------------------------ */

/*
 * coev__park — suspend the calling task until coev__wake() is called on it.
 * A wake that arrives before the park (while the task still runs) is kept
 * as a single permit and makes the next park return at once. Parks may
 * return spuriously: callers re-check their condition in a loop.
 * From a task only (aborts otherwise).
 */
void coev__park(void);

/*
 * coev__wake — make t runnable if it is parked, or leave it a permit if it
 * is running. Idempotent; any thread, also foreign threads and libev
 * callbacks; never suspends; never allocates.
 */
void coev__wake(coev_task_t *t);

/*
 * coev__park_until — park the calling task until woken, the deadline
 * passes, or the task is cancelled (unless shielded). Returns 0 when woken
 * (possibly spuriously: re-check the condition), -ETIMEDOUT, or
 * -ECANCELED; a cancelled task returns -ECANCELED without parking, and a
 * deadline already past gives -ETIMEDOUT without parking. The deadline is
 * also bounded by coev_deadline_push(). From a task only.
 */
int coev__park_until(coev_time_t deadline);

/*
 * coev__wait_fd — coev__park_until, also ended by fd becoming ready for
 * events; then returns the ready events (> 0). The fd is watched on the
 * current worker's loop for this one wait only.
 */
int coev__wait_fd(int fd, unsigned events, coev_time_t deadline);

/*
 * fd.c: the fds coev owns. An fd created through coev's socket calls
 * (io/socket.c) is owned until coev_close: it has a state block that is
 * registered once, edge-triggered, in the epoll set of the worker that
 * first waits on it, and remembers per direction how many edges came (seq,
 * even numbers) and at which seq the direction was last seen drained (an
 * EAGAIN or a short transfer: drained = seq | 1). See fd.c's header.
 *
 * COEV_FD_MAX bounds every fd table (the owned fds' and each worker's
 * one-shot slots): fds at or above it are refused (-EBADF).
 */
#define COEV_FD_MAX (1 << 24)
struct coev__fd {
	atomic_uint lock;
	_Atomic uint32_t gen;	     /* [lock writes, any reads] */
	atomic_bool owned;	     /* [lock writes, any reads] */
	bool stream;		     /* [lock] a short transfer drains */
	bool reg;		     /* [lock] registered in reg_id's set */
	unsigned reg_idx;	     /* [lock] that worker's index */
	uint64_t reg_id;	     /* [lock] that worker's io_id */
	_Atomic uint32_t seq[2];     /* [lock writes, any reads] per dir */
	_Atomic uint32_t drained[2]; /* [the direction's user] */
	atomic_uint closed;	     /* [lock writes, any reads] COEV_READ: the
				     * peer's end came (a short read no longer
				     * drains), COEV_WRITE: error or hang-up */
	coev__io_t *waiter[2];	     /* [lock] per direction */
};

/* A slot of a two-level table indexed by fd (top: COEV_FD_MAX / 1024
 * pointers to pages of 1024 elements of size bytes, a page allocated on
 * first use when grow); NULL for an fd out of range or a page missing. */
void *coev__fd_table(void *_Atomic *top, size_t size, int fd, bool grow);
/* fd's state block if coev owns fd, else NULL. Lock-free. */
struct coev__fd *coev__fd_owned(int fd);
/* Own fd (just created by coev); stream: a short read or write drains
 * it. 0, or -EBADF (fd >= COEV_FD_MAX) / -ENOMEM: then not owned, and
 * the calls on it take the one-shot path. */
int coev__fd_own(int fd, bool stream);
/* Drop fd's ownership before closing it: waiters on it get -EBADF. */
void coev__fd_disown(int fd);
/* Free the owned fds' table: for the end of a simulated run (no runtime,
 * no fd owned any more), whose allocations must all come back. */
void coev__fd_table_free(void);
/* What a call saw of an owned fd before its system call: the generation
 * (read when the call began) and the seq of each direction. */
struct coev__fd_snap {
	uint32_t gen, seq[2];
};
/* Wait until an edge of events came after snap's seqs, or the deadline:
 * the events (> 0), or -ETIMEDOUT, -ECANCELED, -EBADF (closed through
 * coev since snap's generation, even if the number is owned again),
 * -EBUSY, or the registration's error. Suspends (wait.c). */
int coev__fd_wait(struct coev__fd *f, int fd, unsigned events,
		  const struct coev__fd_snap *snap, coev_time_t deadline);
/* fd.c for wait.c: arm io for t's wait on worker w; 0 armed, > 0 ready
 * events (nothing armed), < 0 error. disarm: take io back; the result a
 * dispatcher or a close left in it (events, -EBADF), or 0. */
int coev__fd_arm(struct coev__fd *f, int fd, coev__io_t *io,
		 struct coev_worker *w, coev_task_t *t, unsigned events,
		 const struct coev__fd_snap *snap);
int coev__fd_disarm(coev__io_t *io);
/* The backend's: an event of key (what coev__plat_fd_register got) came
 * on w's set: COEV_READ, COEV_WRITE, and what ended a direction for good
 * (COEV__FD_CLOSED_READ: EPOLLRDHUP, EPOLLHUP, EPOLLERR; _WRITE: the last
 * two). */
#define COEV__FD_CLOSED_READ 4u
#define COEV__FD_CLOSED_WRITE 8u
void coev__fd_event(struct coev_worker *w, uint64_t key, unsigned events);

static inline unsigned coev__fd_dir(unsigned ev)
{
	return ev == COEV_WRITE;
}

/*
 * wait.c: the waiter protocol, for waits that another thread ends by
 * signalling one waiter (sync/'s wait queues, join, futures, blocking
 * jobs). The waiter lives in the waiting frame:
 *   1. init (self: the calling task, or NULL on a plain thread, which
 *      then blocks on the waiter's own mutex and condition variable);
 *   2. publish the waiter where signallers find it (under the object's
 *      lock, or with a compare-and-swap), then wait;
 *   3. a signaller removes it (the same way) and signals it, once;
 *   4. a waiter that gives up (deadline, cancel) takes itself back the
 *      same way; if it was already taken, a signal is on its way, and it
 *      must settle (wait for it, ignoring deadline and cancel) before its
 *      frame goes; then fini.
 * wait_on returns 0 once signalled, -ETIMEDOUT or -ECANCELED; it notes
 * (kind, what, arg) for dumps while it waits (coev__wait_note). wait_n
 * waits for n signals. Where a signaller may still touch the waiting
 * task after the signal, the waiter holds a reference on it for that
 * (coev__task_ref; join does).
 */
void coev__waiter_init(coev__waiter_t *wt, coev_task_t *self);
/* For a waiter signalled exactly once (sync/'s wait queues): no reference
 * on the task is taken for the signal, nor dropped by it. The signaller
 * marks done 1, wakes the task, and marks it 2 as its last touch; the
 * waiter, once it sees 1, waits the few instructions until 2 before it
 * leaves, so the task outlives the wake without a reference (two atomic
 * read-modify-writes fewer per wait). */
static inline void coev__waiter_init_once(coev__waiter_t *wt, coev_task_t *self)
{
	if (!self) {
		coev__waiter_init(wt, NULL);
		return;
	}
	wt->task = self;
	wt->once = true;
	atomic_init(&wt->done, 0);
}
/* How a signalled task is queued: as a wake (the signaller's next task),
 * as a joiner resumed by the task it joined, or on the signaller's ring
 * where idle workers may take it at once (for a signaller that keeps
 * running, such as an unlock). */
enum { COEV_SIG_WAKE, COEV_SIG_RESUME, COEV_SIG_SHARED };
void coev__waiter_signal(coev__waiter_t *wt, int how);
int coev__waiter_wait_on(coev__waiter_t *wt, coev_time_t deadline,
			 unsigned kind, const void *what, long long arg);
int coev__waiter_wait_n(coev__waiter_t *wt, int n, coev_time_t deadline);
void coev__waiter_settle(coev__waiter_t *wt, int n);
void coev__waiter_fini(coev__waiter_t *wt);
/* Wake t from a watcher of the wait it is pinned for (wait.c), or onto a
 * ring where idle workers may take it (a signaller that keeps running). */
void coev__wake_unpin(coev_task_t *t);
void coev__wake_shared(coev_task_t *t);

/* task.c: a reference held for a later coev__task_release(). */
/* Tell the CPU this is a spin-wait loop (a scheduling point in the
 * simulation). */
static inline void coev__cpu_pause(void)
{
	COEV__POINT(SPIN);
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* --- the spin lock of sync/'s objects and of an fd's state block ---------------------------------------- */

/*
 * Each object's state and its wait queue sit under one small spin lock.
 * Critical sections are a few dozen instructions and never switch
 * coroutines, so a holder is only ever delayed by its OS thread being
 * preempted; the slow path yields the CPU after a short spin for that
 * case. Rejected: pthread mutexes (a 40-byte lock and a futex round trip
 * in every contended section, for sections shorter than the syscall).
 */
void coev__spin_lock_slow(atomic_uint *l);

static inline void coev__spin_lock(atomic_uint *l)
{
	COEV__POINT(LOCK);
	/* Acquire: pairs with the release in coev__spin_unlock. */
	if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
		return;
	coev__spin_lock_slow(l);
}

static inline void coev__spin_unlock(atomic_uint *l)
{
	/* What the holder published under the lock is already visible to
	 * lock-free fast paths here, while the holder still has to touch the
	 * object to let go: the simulation may run another thread now. */
	COEV__POINT(UNLOCK);
	/* Release: pairs with the acquire exchange in coev__spin_lock or
	 * coev__spin_lock_slow of the next holder. */
	atomic_store_explicit(l, 0, memory_order_release);
}

static inline void coev__task_ref(coev_task_t *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

/*
 * A strict wait ignores the task's cancellation and pushed deadline: for a
 * wait that must last until signals already on their way arrive (the
 * waiter's frame must outlive them), or for handles that must be consumed.
 * Returns the state to give back to coev__strict_end.
 */
static inline coev_time_t coev__strict_begin(coev_task_t *t)
{
	coev_time_t limit = t->dl_limit;

	t->dl_limit = COEV_FOREVER;
	t->shield++;
	return limit;
}

static inline void coev__strict_end(coev_task_t *t, coev_time_t limit)
{
	t->shield--;
	t->dl_limit = limit;
}

/* task.c: cancellation seen by the calling task's waits. */
static inline int coev__cancel_check(coev_task_t *t)
{
	/* Relaxed: a cancel's wake (acq_rel on the state word) publishes
	 * the flag to the run that follows it; a load that misses it here
	 * is followed by a park that returns at once. */
	if (t->shield == 0 &&
	    atomic_load_explicit(&t->cancel, memory_order_relaxed))
		return -ECANCELED;
	return 0;
}

/* The deadline a wait of t really has: its own or the pushed one. */
static inline coev_time_t coev__deadline_eff(coev_task_t *t,
					     coev_time_t deadline)
{
	return t->dl_limit < deadline ? t->dl_limit : deadline;
}

size_t coev__pool_queued(const coev__pool_t *p); /* under p->mu */

/*
 * pool.c: coev_blocking for a job its caller may abandon: a call whose
 * deadline and cancellation must bound it even while the job runs (a
 * getaddrinfo that takes seconds). arg is the job's, not the caller's:
 * release(arg) frees it and whatever fn left in it. Returns 0 once fn has
 * run, with its result in *ret: arg is the caller's again (it reads the
 * result and calls release). On any error (COEV_ENOTCORO, -ETIMEDOUT,
 * -ECANCELED, -ENOMEM, -EAGAIN, -ESHUTDOWN) arg is no longer the caller's:
 * release ran before the return when fn never started; a running fn was
 * abandoned, and the pool thread calls release once fn returns. A plain
 * thread runs fn itself. The abandoned job keeps its pool thread until fn
 * returns, and coev_rt_free waits for it.
 */
int coev__blocking_abandonable(coev_fn fn, void *arg,
			       void (*release)(void *arg), coev_time_t deadline,
			       int *ret);

/*
 * Note what the calling task waits on, for dumps, or that it waits no more
 * (COEV_WAIT_NONE). The layer that knows the object fills the note: kind
 * COEV_WAIT_*, obj the object, and arg an fd, a deadline or a task id; for
 * an object with a holder (COEV_WAIT_MUTEX), arg is the address of the
 * pointer-sized word where the object keeps its holder (a task, or any
 * other value for a holder that is not one), which dumps read from outside
 * with process_vm_readv to name the holder and find deadlock cycles. The
 * scheduler knows nothing else of the object.
 */
static inline void coev__wait_note(coev_task_t *t, unsigned kind,
				   const void *obj, long long arg)
{
	atomic_store_explicit(&t->wait_obj, obj, memory_order_relaxed);
	atomic_store_explicit(&t->wait_arg, arg, memory_order_relaxed);
	atomic_store_explicit(&t->wait_kind, (unsigned char)kind,
			      memory_order_relaxed);
}

/* --- the runtime's log (error.c) ---------------------------------------- */

/* The default log: the text to stderr. */
void coev__log_stderr(void *arg, const char *text);
/* A formatted line (at most 1 KiB) to rt's log. */
void coev__logf(struct coev_rt *rt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* write() all n bytes, retrying on EINTR; *err (when not NULL) gets the
 * negative errno of a failure. */
void coev__write_all(int fd, const char *p, size_t n, int *err);

/* --- hooks the scheduler calls, implemented by observe/ ----------------- */

/* trace.c: Chrome traces (COEV_TRACE) */
int coev__trace_init(struct coev_rt *rt);
void coev__trace_flush(struct coev_rt *rt);
void coev__trace_free(struct coev_rt *rt);
void coev__trace_run(struct coev_worker *w, coev_task_t *t, coev_time_t start,
		     unsigned why);
void coev__trace_wake(struct coev_worker *w, coev_task_t *t);
void coev__trace_steal(struct coev_worker *w, struct coev_worker *v,
		       unsigned n);
void coev__trace_idle(struct coev_worker *w, coev_time_t start);
void coev__trace_spawn(struct coev_worker *w, coev_task_t *t);

/* Some runtime of the process traces (for sites without a worker at
 * hand). */
extern atomic_bool coev__trace_any;

/* One predictable branch when tracing is off. COEV_NO_TRACE compiles
 * tracing out (the benchmark's baseline: bench/run.sh's trace-off). */
#if defined(COEV_NO_TRACE)
#define COEV__TRACING(w) ((void)(w), 0)
#else
#define COEV__TRACING(w) __builtin_expect((w)->trace != NULL, 0)
#endif

/* report.c: debug mode's reports. start and stop run with the monitor
 * (sched/monitor.c), which calls tick every period from its own thread. */
int coev__debug_start(struct coev_rt *rt);
void coev__debug_stop(struct coev_rt *rt);
void coev__debug_tick(struct coev_rt *rt);
void coev__debug_task_end(struct coev_worker *w, coev_task_t *t);
/* A task failed (t->result < 0) and nobody took its result: reported
 * unless the result is -ECANCELED. Called when rt->unjoined, which is the
 * default outside debug mode too (coev_config_t.report_unjoined). */
void coev__report_unjoined(coev_task_t *t, const char *when);
void coev__debug_shutdown_begin(struct coev_rt *rt);
void coev__debug_shutdown_left(struct coev_rt *rt, int left);

/* symbol.c: the name of the function holding pc into buf (NUL-terminated),
 * returning its length, or 0 when none is known or the symbol cache is busy
 * on another thread: for the SIGSEGV handler's overflow report, which must
 * not wait for a lock. Never mallocs. */
size_t coev__symbol_name_try(uintptr_t pc, char *buf, size_t len);

/* stack.c: bytes of s's stack that were touched (debug mode). */
size_t coev__stack_used(const struct coev_stack *s);
void coev__stack_forget(const struct coev_stack *s);

/* Report misuse that can only be a bug, and abort. */
_Noreturn void coev__panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif
