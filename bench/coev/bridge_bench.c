/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/bridge_bench.c — the bridge workload: a foreign thread (a
 * callback library's own thread, not a worker) completes requests that
 * waiters hand it, and the waiters pick the results up. coev's side and its
 * plain-C peer in one program, so that both share the request queue, the
 * foreign thread, the clock and the latency histogram.
 *
 *   coev-bridge-bench <coev|eventfd> <workers> [seconds [requests]]
 *
 * coev: `requests` tasks (64) on `workers` workers (2) each loop: create a
 * future, hand the foreign thread a request holding a reference to it,
 * coev_future_await it, release it. The foreign thread completes the
 * future with coev_future_set() and drops its reference: the future.h
 * pattern a wrapped library follows, a fresh future per call.
 *
 * eventfd: what a C program without a runtime does for the same library.
 * `workers` waiter threads, each with requests / workers requests in
 * flight, an epoll instance and one eventfd; the foreign thread pushes each
 * completed request onto its waiter's completion list (lock-free) and
 * writes the eventfd when the list was empty, so a busy waiter is not
 * woken again; the waiter sleeps in epoll_wait, reads the eventfd, takes
 * the whole list and re-issues each request at once. Same number of
 * threads (workers + the foreign one) and of requests in flight as coev.
 * The one-eventfd-per-waiter multiplexing was chosen over a thread per
 * request (K blocked threads: a different cost, and not what a C program
 * does) and over a condition variable per waiter (an epoll loop is where
 * such a waiter's other fds would live, and it is what coev's workers
 * sleep in).
 *
 * Both hand requests to the foreign thread through the same queue: a
 * lock-free stack that the foreign thread takes whole, and a condition
 * variable signalled only when that thread sleeps for want of requests.
 * A list under a mutex was tried first and rejected: its futex calls on
 * contention (the workers, the waiters and the foreign thread all take
 * it) were most of the system calls counted, and how often it is contended
 * depends on timing, not on the handoff being measured.
 *
 * Measured: after a 0.3 s warm-up, for `seconds` (2.5 s):
 *   completions_per_s  requests completed and picked up per second;
 *   p99_us, p50_us     completion latency: from the foreign thread's
 *                      timestamp taken just before it completes a request
 *                      (coev_future_set, or the push onto the completion
 *                      list) to the waiter running again with the result;
 *                      what the handoff back costs, queueing behind other
 *                      ready waiters included;
 *   rtt_p99_us ...     round trip: from the waiter's timestamp just before
 *                      it queues the request to the same end point;
 *   cpu_ns_per_completion   user + system time of the whole process;
 *   syscalls_per_completion system calls of every thread of the process
 *                      (counted by the kernel's raw_syscalls:sys_enter
 *                      tracepoint through perf_event_open, which costs no
 *                      ptrace stop; left out when the kernel refuses);
 *   vcsw_per_completion     voluntary context switches (a thread slept);
 *   other_cpu_pct      the share of all CPUs' time that other processes
 *                      used meanwhile (/proc/stat minus our own time):
 *                      they compete with the three busy threads;
 *   parks_per_completion    coev only: worker sleeps (coev_rt_worker_stats).
 * Latencies go into a log-linear histogram per waiter (32 sub-buckets per
 * power of two: a bucket is at most 3 % wide; its midpoint is
 * reported). Prints one line:
 *   BENCH bridge <coev|eventfd> workers=<n> completions_per_s=... p99_us=...
 * and exits non-zero if a call fails, a result is wrong or a request is
 * lost (every request issued must come back exactly once).
 */
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coev.h"
#include "common.h"

#define WARMUP_NS 300000000LL
#define DEFAULT_SECONDS 2.5
#define DEFAULT_REQUESTS 64
#define MAX_REQUESTS 4096

/* ---- the latency histogram ---------------------------------------------- */

/* Values below 64 ns have a bucket each; above, every power of two is split
 * into 32 buckets by the five bits below the top one. */
#define H_SUB 32
#define H_BUCKETS (2 * H_SUB + 58 * H_SUB)

struct hist {
	uint32_t n[H_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < 2 * H_SUB)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v); /* >= 6 */
	return 2 * H_SUB + (msb - 6) * H_SUB +
	       (unsigned)((v >> (msb - 5)) - H_SUB);
}

/* The middle of bucket i, in ns. */
static double hist_value(unsigned i)
{
	unsigned msb, m;

	if (i < 2 * H_SUB)
		return i;
	msb = (i - 2 * H_SUB) / H_SUB + 6;
	m = (i - 2 * H_SUB) % H_SUB + H_SUB;
	return ((double)m + 0.5) * (double)(1ULL << (msb - 5));
}

static void hist_add(struct hist *h, int64_t ns)
{
	h->n[hist_index(ns < 0 ? 0 : (uint64_t)ns)]++;
}

/* The q-quantile (0 < q <= 1) of the sum of hs[0..n-1], in microseconds. */
static double hist_quantile(struct hist *const *hs, int n, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (int k = 0; k < n; k++)
		for (unsigned i = 0; i < H_BUCKETS; i++)
			total += hs[k]->n[i];
	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.999999);
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		for (int k = 0; k < n; k++)
			seen += hs[k]->n[i];
		if (seen >= rank)
			return hist_value(i) / 1e3;
	}
	return hist_value(H_BUCKETS - 1) / 1e3;
}

/* ---- the run's phases ---------------------------------------------------- */

enum { WARMUP, MEASURE, STOP };

/* Set by the driver, read by every waiter after each completion: only
 * completions picked up in MEASURE count; after STOP no request is issued
 * again. Relaxed: a waiter seeing a phase change one completion late
 * changes the count by one. */
static atomic_int phase;

static int phase_now(void)
{
	return atomic_load_explicit(&phase, memory_order_relaxed);
}

/* What one waiter (a coev task or an eventfd thread) measured. */
struct tally {
	uint64_t done;	   /* completions picked up during MEASURE */
	uint64_t issued;   /* requests handed to the foreign thread */
	uint64_t returned; /* and picked up again, in every phase */
	int err;	   /* the first error, or 0 */
	struct hist wake;  /* completion -> waiter running */
	struct hist rtt;   /* request -> waiter running */
};

/* ---- the request queue to the foreign thread ----------------------------- */

struct waiter;

/* One request. The waiter owns it (a coev task's stack, or an eventfd
 * waiter's array); the foreign thread uses it from the moment it is queued
 * until it completes it, and not after. */
struct req {
	struct req *next;
	coev_future_t *f; /* coev: the foreign thread's reference */
	struct waiter *w; /* eventfd: whose completion list */
	int64_t t_req;	  /* the waiter's clock, just before queueing */
	int64_t t_done;	  /* the foreign thread's, just before completing */
};

/*
 * A list of requests many threads push onto and one thread takes whole: a
 * Treiber stack (push: compare-and-swap on top; take: exchange top with
 * NULL), reversed by the taker to get the oldest first. No lock, so no
 * thread ever sleeps on it and it makes no system call of its own.
 */
struct stack {
	_Atomic(struct req *) top;
};

/* Push r; returns 1 if the stack was empty. Release: the taker's acquire
 * exchange sees r's fields. */
static int stack_push(struct stack *st, struct req *r)
{
	struct req *old = atomic_load_explicit(&st->top, memory_order_relaxed);

	do {
		r->next = old;
	} while (!atomic_compare_exchange_weak_explicit(
		&st->top, &old, r, memory_order_release, memory_order_relaxed));
	return old == NULL;
}

/* Everything pushed so far, oldest first, or NULL. */
static struct req *stack_take(struct stack *st)
{
	struct req *r, *next, *fifo = NULL;

	r = atomic_exchange_explicit(&st->top, NULL, memory_order_acquire);
	for (; r; r = next) {
		next = r->next;
		r->next = fifo;
		fifo = r;
	}
	return fifo;
}

/* The requests to the foreign thread, and how it sleeps when there are
 * none: `sleeping` is set before it checks the stack a last time, and a
 * pusher that finds it set clears it and signals; the two seq_cst fences
 * make sure that one of them sees the other (a push the taker missed sees
 * sleeping set). The mutex and condition variable are used only then. */
static struct {
	struct stack st;
	atomic_int sleeping; /* the foreign thread is about to wait, or waits */
	atomic_int closed;   /* no more requests: the thread ends */
	pthread_mutex_t mu;
	pthread_cond_t cv;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void q_wake(void)
{
	if (atomic_exchange_explicit(&q.sleeping, 0, memory_order_relaxed)) {
		/* Under mu: the foreign thread is in pthread_cond_wait, or
		 * has not yet checked sleeping again. */
		pthread_mutex_lock(&q.mu);
		pthread_cond_signal(&q.cv);
		pthread_mutex_unlock(&q.mu);
	}
}

static void q_push(struct req *r)
{
	stack_push(&q.st, r);
	/* Pairs with the fence in q_take: our push before our load of
	 * sleeping, its store of sleeping before its load of top. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q.sleeping, memory_order_relaxed))
		q_wake();
}

/* Every queued request, oldest first; NULL once closed and drained. */
static struct req *q_take(void)
{
	struct req *all;

	while (!(all = stack_take(&q.st))) {
		if (atomic_load_explicit(&q.closed, memory_order_acquire))
			return stack_take(&q.st);
		pthread_mutex_lock(&q.mu);
		atomic_store_explicit(&q.sleeping, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst); /* see q_push */
		while (atomic_load_explicit(&q.sleeping,
					    memory_order_relaxed) &&
		       !atomic_load_explicit(&q.st.top, memory_order_relaxed) &&
		       !atomic_load_explicit(&q.closed, memory_order_relaxed))
			pthread_cond_wait(&q.cv, &q.mu);
		atomic_store_explicit(&q.sleeping, 0, memory_order_relaxed);
		pthread_mutex_unlock(&q.mu);
	}
	return all;
}

static void q_close(void)
{
	atomic_store_explicit(&q.closed, 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst); /* as in q_push */
	q_wake();
}

/* The foreign thread's error count: completions refused, failed pushes. */
static atomic_int foreign_errors;

/* ---- coev: tasks awaiting futures --------------------------------------- */

/* The foreign thread of the coev run: the library's callback completes
 * each request's future and drops its own reference. It reads r->f before
 * completing: from then on the request (on the task's stack) may be gone. */
static void *coev_foreign(void *arg)
{
	struct req *r, *next;
	coev_future_t *f;
	int rc;

	(void)arg;
	while ((r = q_take())) {
		for (; r; r = next) {
			next = r->next;
			f = r->f;
			r->t_done = now_ns();
			if ((rc = coev_future_set(f, 0)) < 0) {
				fail("coev_future_set", rc);
				atomic_fetch_add(&foreign_errors, 1);
			}
			coev_future_release(f);
		}
	}
	return NULL;
}

/* One waiting task: request, await, record, until STOP. */
static int coev_waiter(void *arg)
{
	struct tally *t = arg;
	coev_future_t *f;
	struct req r;
	int rc, res;

	while (phase_now() != STOP) {
		if ((rc = coev_future_new(&f)) < 0)
			return t->err = fail("coev_future_new", rc);
		r.f = coev_future_ref(f);
		r.t_req = now_ns();
		t->issued++;
		q_push(&r);
		rc = coev_future_await(f, &res);
		int64_t end = now_ns();
		coev_future_release(f);
		if (rc < 0 || res != 0)
			return t->err = fail("coev_future_await",
					     rc < 0 ? rc : res);
		t->returned++;
		if (phase_now() == MEASURE) {
			t->done++;
			hist_add(&t->wake, end - r.t_done);
			hist_add(&t->rtt, end - r.t_req);
		}
	}
	return 0;
}

/* ---- eventfd: waiter threads multiplexing their requests ----------------- */

struct waiter {
	struct stack done; /* completed, not yet picked up */
	int efd, ep;	   /* the eventfd, and the epoll instance watching it */
	struct req *reqs;  /* this waiter's requests */
	int nreqs;
	struct tally *t;
};

/* The foreign thread of the eventfd run: one "callback" per completion,
 * as a library would call it: push onto the waiter's list, and ring its
 * eventfd if the list was empty (a waiter with a non-empty list has been
 * rung already and will take the whole list). */
static void *eventfd_foreign(void *arg)
{
	const uint64_t one = 1;
	struct req *r, *next;
	struct waiter *w;

	(void)arg;
	while ((r = q_take())) {
		for (; r; r = next) {
			next = r->next;
			w = r->w;
			r->t_done = now_ns();
			if (stack_push(&w->done, r) &&
			    write(w->efd, &one, sizeof one) != sizeof one) {
				perror("coev-bridge-bench: eventfd write");
				atomic_fetch_add(&foreign_errors, 1);
			}
		}
	}
	return NULL;
}

/* Pick up one completed request: record it, and issue it again unless the
 * run is stopping. Returns 1 if it was re-issued, else 0. */
static int eventfd_pick_up(struct waiter *w, struct req *r)
{
	int64_t end = now_ns();
	struct tally *t = w->t;

	t->returned++;
	if (phase_now() == MEASURE) {
		t->done++;
		hist_add(&t->wake, end - r->t_done);
		hist_add(&t->rtt, end - r->t_req);
	} else if (phase_now() == STOP) {
		return 0;
	}
	r->t_req = now_ns();
	t->issued++;
	q_push(r);
	return 1;
}

static void *eventfd_waiter(void *arg)
{
	struct waiter *w = arg;
	struct epoll_event ev;
	struct req *list, *next;
	int in_flight = 0, n;
	uint64_t cnt;

	for (int i = 0; i < w->nreqs; i++) {
		w->reqs[i].w = w;
		w->reqs[i].t_req = now_ns();
		w->t->issued++;
		q_push(&w->reqs[i]);
		in_flight++;
	}
	while (in_flight > 0) {
		n = epoll_wait(w->ep, &ev, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1) {
			perror("coev-bridge-bench: epoll_wait");
			w->t->err = -1;
			break;
		}
		if (read(w->efd, &cnt, sizeof cnt) != sizeof cnt &&
		    errno != EAGAIN) {
			perror("coev-bridge-bench: eventfd read");
			w->t->err = -1;
			break;
		}
		for (list = stack_take(&w->done); list; list = next) {
			next = list->next;
			in_flight -= !eventfd_pick_up(w, list);
		}
	}
	return NULL;
}

/* ---- measuring ---------------------------------------------------------- */

/* A counter of every system call this process (all its threads, those
 * created after it included) makes, or -1 when the kernel refuses one. */
static int syscall_counter(void)
{
	struct perf_event_attr pa;
	char buf[32];
	FILE *f;
	long id;

	f = fopen("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id", "r");
	if (!f)
		f = fopen("/sys/kernel/debug/tracing/events/raw_syscalls/"
			  "sys_enter/id",
			  "r");
	if (!f)
		return -1;
	id = fgets(buf, sizeof buf, f) ? strtol(buf, NULL, 10) : -1;
	fclose(f);
	if (id < 0)
		return -1;
	memset(&pa, 0, sizeof pa);
	pa.type = PERF_TYPE_TRACEPOINT;
	pa.size = sizeof pa;
	pa.config = (uint64_t)id;
	pa.inherit = 1; /* threads created later count too */
	return (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1,
			    PERF_FLAG_FD_CLOEXEC);
}

static long long read_counter(int fd)
{
	uint64_t v;

	if (fd < 0 || read(fd, &v, sizeof v) != sizeof v)
		return -1;
	return (long long)v;
}

/* What the driver samples at the start and the end of MEASURE. */
struct sample {
	int64_t t;
	long long cpu_ns, vcsw, syscalls;
	long long all_busy, all_total; /* /proc/stat, clock ticks, all CPUs */
	uint64_t parks;
};

/* The machine's busy and total CPU time so far, in clock ticks, from the
 * first line of /proc/stat (guest time is already in user time); -1 when
 * unreadable. */
static void machine_ticks(long long *busy, long long *total)
{
	long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");

	*busy = *total = -1;
	if (!f)
		return;
	if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		*busy = *total - v[3] - v[4]; /* minus idle and iowait */
	}
	fclose(f);
}

static int sys_fd = -1;

static void take_sample(struct sample *s, int in_task)
{
	struct rusage ru;

	s->syscalls = read_counter(sys_fd);
	getrusage(RUSAGE_SELF, &ru);
	s->cpu_ns =
		((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
			1000000000LL +
		((long long)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
	s->vcsw = ru.ru_nvcsw;
	machine_ticks(&s->all_busy, &s->all_total);
	s->parks = 0;
	if (in_task) {
		coev_worker_stats_t st;

		rt_stats(&st);
		s->parks = st.parks;
	}
	s->t = now_ns();
}

/* Warm up, measure for `ns`, then tell everyone to stop. Sleeps with
 * coev_sleep in a task, nanosleep on a plain thread. */
static void drive(int64_t ns, struct sample *a, struct sample *b, int in_task)
{
	struct timespec ts;

	if (in_task) {
		coev_sleep(WARMUP_NS);
	} else {
		ts = (struct timespec){0, WARMUP_NS};
		nanosleep(&ts, NULL);
	}
	take_sample(a, in_task);
	atomic_store_explicit(&phase, MEASURE, memory_order_relaxed);
	if (in_task) {
		coev_sleep(ns);
	} else {
		ts = (struct timespec){ns / 1000000000, ns % 1000000000};
		nanosleep(&ts, NULL);
	}
	atomic_store_explicit(&phase, STOP, memory_order_relaxed);
	take_sample(b, in_task);
}

/* ---- the two runs ------------------------------------------------------- */

struct run {
	int nreq;
	unsigned workers;
	int64_t ns;
	struct tally *tallies; /* one per waiter */
	int ntallies;
	struct sample a, b;
};

static int coev_main(void *arg)
{
	struct run *run = arg;
	coev_task_t **h = calloc((size_t)run->nreq, sizeof *h);
	int rc, ret, err = 0, spawned;

	if (!h)
		return fail("calloc", -ENOMEM);
	for (spawned = 0; spawned < run->nreq; spawned++) {
		rc = coev_spawn(coev_waiter, &run->tallies[spawned],
				&h[spawned]);
		if (rc < 0) {
			err = fail("coev_spawn", rc);
			break;
		}
	}
	drive(run->ns, &run->a, &run->b, 1);
	for (int i = 0; i < spawned; i++) {
		if ((rc = coev_join(h[i], &ret)) < 0 && !err)
			err = fail("coev_join", rc);
		else if (ret < 0 && !err)
			err = ret;
	}
	free(h);
	return err;
}

static int run_coev(struct run *run)
{
	coev_config_t cfg;
	pthread_t ft;
	char arg[16];
	int rc;

	snprintf(arg, sizeof arg, "%u", run->workers);
	if ((rc = bench_config(&cfg, arg)) != 0)
		return -1;
	run->ntallies = run->nreq;
	if ((rc = pthread_create(&ft, NULL, coev_foreign, NULL)) != 0)
		return fail("pthread_create", -rc);
	rc = coev_run(coev_main, run, &cfg);
	q_close();
	pthread_join(ft, NULL);
	if (rc < 0)
		return fail("coev_run", rc);
	return 0;
}

static int run_eventfd(struct run *run)
{
	struct waiter *ws = calloc(run->workers, sizeof *ws);
	struct req *reqs = calloc((size_t)run->nreq, sizeof *reqs);
	pthread_t *th = calloc(run->workers, sizeof *th);
	struct epoll_event ev = {.events = EPOLLIN};
	unsigned started = 0, made = 0;
	pthread_t ft;
	int err = 0, rc, per, extra, off = 0;

	if (!ws || !reqs || !th) {
		err = fail("calloc", -ENOMEM);
		goto out;
	}
	run->ntallies = (int)run->workers;
	per = run->nreq / (int)run->workers;
	extra = run->nreq % (int)run->workers;
	for (; made < run->workers; made++) {
		struct waiter *w = &ws[made];

		w->reqs = reqs + off;
		w->nreqs = per + ((int)made < extra);
		off += w->nreqs;
		w->t = &run->tallies[made];
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		ev.data.ptr = w;
		if (w->efd < 0 || w->ep < 0 ||
		    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &ev) < 0) {
			perror("coev-bridge-bench: eventfd/epoll");
			err = -1;
			made++;
			goto out;
		}
	}
	if ((rc = pthread_create(&ft, NULL, eventfd_foreign, NULL)) != 0) {
		err = fail("pthread_create", -rc);
		goto out;
	}
	for (; started < run->workers; started++) {
		rc = pthread_create(&th[started], NULL, eventfd_waiter,
				    &ws[started]);
		if (rc != 0) {
			err = fail("pthread_create", -rc);
			break;
		}
	}
	drive(run->ns, &run->a, &run->b, 0);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	q_close();
	pthread_join(ft, NULL);
out:
	for (unsigned i = 0; i < made; i++) {
		if (ws[i].efd >= 0)
			close(ws[i].efd);
		if (ws[i].ep >= 0)
			close(ws[i].ep);
	}
	free(ws);
	free(reqs);
	free(th);
	return err;
}

/* ---- driver ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: coev-bridge-bench <coev|eventfd> <workers> "
			"[seconds [requests]]\n");
	exit(2);
}

/* The share of the machine's CPU time during MEASURE that other processes
 * used, in percent: busy time minus ours, over the total. */
static double other_cpu_pct(const struct run *run)
{
	long long ticks = run->b.all_total - run->a.all_total;
	double tick_ns, busy, other;

	if (run->a.all_total < 0 || run->b.all_total < 0 || ticks <= 0)
		return 0;
	tick_ns = 1e9 / (double)sysconf(_SC_CLK_TCK);
	busy = (double)(run->b.all_busy - run->a.all_busy) * tick_ns;
	other = 100 * (busy - (double)(run->b.cpu_ns - run->a.cpu_ns)) /
		((double)ticks * tick_ns);
	return other < 0 ? 0 : other;
}

/* Add up the waiters' tallies, check them (err: the run's own error) and
 * print the BENCH line. Returns 0, or 1 after saying what went wrong. */
static int report(struct run *run, const char *mode, int err)
{
	uint64_t done = 0, issued = 0, returned = 0;
	struct hist **wake = calloc((size_t)run->ntallies, sizeof *wake);
	struct hist **rtt = calloc((size_t)run->ntallies, sizeof *rtt);
	char sc[64] = "";

	if ((!wake || !rtt) && !err)
		err = fail("calloc", -ENOMEM);
	for (int i = 0; i < run->ntallies && !err; i++) {
		struct tally *t = &run->tallies[i];

		err = t->err;
		done += t->done;
		issued += t->issued;
		returned += t->returned;
		wake[i] = &t->wake;
		rtt[i] = &t->rtt;
	}
	if (!err && atomic_load(&foreign_errors))
		err = -1;
	if (!err && issued != returned) {
		fprintf(stderr,
			"coev-bridge-bench: %llu requests issued, %llu "
			"picked up\n",
			(unsigned long long)issued,
			(unsigned long long)returned);
		err = -1;
	}
	if (!err && done == 0) {
		fprintf(stderr, "coev-bridge-bench: no completion measured\n");
		err = -1;
	}
	if (err) {
		fprintf(stderr, "coev-bridge-bench: %s run failed\n", mode);
		free(wake);
		free(rtt);
		return 1;
	}

	double s = (double)(run->b.t - run->a.t) / 1e9, d = (double)done;

	if (run->a.syscalls >= 0 && run->b.syscalls >= 0)
		snprintf(sc, sizeof sc, " syscalls_per_completion=%.4f",
			 (double)(run->b.syscalls - run->a.syscalls) / d);
	printf("BENCH bridge %s workers=%u inflight=%d completions=%llu "
	       "elapsed_ms=%.1f completions_per_s=%.0f p50_us=%.2f "
	       "p99_us=%.2f rtt_p50_us=%.2f rtt_p99_us=%.2f "
	       "cpu_ns_per_completion=%.1f%s vcsw_per_completion=%.4f "
	       "other_cpu_pct=%.0f",
	       mode, run->workers, run->nreq, (unsigned long long)done, s * 1e3,
	       d / s, hist_quantile(wake, run->ntallies, 0.50),
	       hist_quantile(wake, run->ntallies, 0.99),
	       hist_quantile(rtt, run->ntallies, 0.50),
	       hist_quantile(rtt, run->ntallies, 0.99),
	       (double)(run->b.cpu_ns - run->a.cpu_ns) / d, sc,
	       (double)(run->b.vcsw - run->a.vcsw) / d, other_cpu_pct(run));
	if (!strcmp(mode, "coev"))
		printf(" parks_per_completion=%.4f",
		       (double)(run->b.parks - run->a.parks) / d);
	printf("\n");
	free(wake);
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	struct run run = {.nreq = DEFAULT_REQUESTS};
	double secs = DEFAULT_SECONDS;
	int is_coev, err;
	char *end;

	if (argc < 3 || argc > 5)
		usage();
	if (!strcmp(argv[1], "coev"))
		is_coev = 1;
	else if (!strcmp(argv[1], "eventfd"))
		is_coev = 0;
	else
		usage();
	run.workers = (unsigned)strtoul(argv[2], &end, 10);
	if (*end || run.workers < 1 || run.workers > COEV_WORKERS_MAX)
		usage();
	if (argc > 3 && ((secs = strtod(argv[3], &end)) < 0.1 || *end))
		usage();
	if (argc > 4 && ((run.nreq = (int)strtol(argv[4], &end, 10)) < 1 ||
			 run.nreq > MAX_REQUESTS || *end))
		usage();
	if (run.nreq < (int)run.workers)
		run.nreq = (int)run.workers;
	run.ns = (int64_t)(secs * 1e9);
	/* One tally per task (coev) or per waiter thread (eventfd). */
	run.tallies = calloc((size_t)run.nreq, sizeof *run.tallies);
	if (!run.tallies) {
		fail("calloc", -ENOMEM);
		return 1;
	}
	/* Before any thread starts, so that every thread is counted. */
	sys_fd = syscall_counter();
	err = is_coev ? run_coev(&run) : run_eventfd(&run);
	err = report(&run, argv[1], err);
	if (sys_fd >= 0)
		close(sys_fd);
	free(run.tallies);
	return err;
}
