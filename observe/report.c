/* SPDX-License-Identifier: MIT */
/*
 * observe/report.c — debug mode's reports (COEV_DEBUG=1, include/coev/debug.h),
 * and the one made by default: a failed task nobody joined.
 *
 * What is reported, each once, to the runtime's log (coev_config_t.log):
 *   - a task that ended holding coev mutexes, or that used more than 75% of
 *     its stack (coev__debug_task_end, at the end of every task);
 *   - a task that failed and that nobody joined (coev__report_unjoined),
 *     outside debug mode too unless coev_config_t.report_unjoined is 0:
 *     the scheduler calls it only for a negative result, off the hot
 *     path of tasks that succeed;
 *   - tasks alive when a shutdown cancels them, and a full dump of those it
 *     gives up on (coev__debug_shutdown_begin, _left);
 *   - a run longer than rt->slow_ns, with the task's backtrace (read
 *     from outside while its worker waits in a system call, asked by
 *     SIGURG while it runs: observe/backtrace.c says why), and how long it
 *     ran once it suspends (coev__debug_tick, called by the scheduler's
 *     monitor thread every period: a stuck worker cannot report itself);
 *   - a task dump on SIGUSR1.
 * coev takes SIGURG (the backtrace request, observe/backtrace.c) and
 * SIGUSR1 only while they are at their defaults, and gives them back when
 * the last debug-mode runtime stops.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe.h"

/* A runtime's debug-mode state: which run of each worker was reported
 * slow, and the SIGUSR1 count seen. [monitor thread] */
struct coev__debug {
	unsigned usr1_seen;
	struct {
		uint_fast64_t warned; /* run_seq of the run reported, or 0 */
		coev_time_t warned_start;
	} w[];
};

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static int sig_users;			   /* [sig_mu] debug runtimes */
static bool own_urg, own_usr1;		   /* [sig_mu] our handlers are in */
static struct sigaction old_urg, old_usr1; /* [sig_mu] */
static atomic_uint usr1_gen;
static atomic_bool urg_ours;

/* --- reports at task end and shutdown ------------------------------- */

void coev__debug_task_end(struct coev_worker *w, coev_task_t *t)
{
	struct coev_rt *rt = w->rt;

	if (t->locks_held)
		coev__logf(rt,
			   "coev: task #%llu '%s' ended holding %u coev "
			   "mutex%s; no other task can take %s\n",
			   (unsigned long long)t->id, coev__task_label(t->name),
			   (unsigned)t->locks_held,
			   t->locks_held == 1 ? "" : "es",
			   t->locks_held == 1 ? "it" : "them");
	if (t->stack) {
		size_t used = coev__stack_used(t->stack), size = t->stack->size;

		if (used > size / 4 * 3)
			coev__logf(rt,
				   "coev: task #%llu '%s' used %zu KiB of its "
				   "%zu KiB stack (%zu%%); raise "
				   "coev_config_t.stack_size or "
				   "COEV_STACK_SIZE before it overflows\n",
				   (unsigned long long)t->id,
				   coev__task_label(t->name),
				   (used + 512) / 1024, (size + 512) / 1024,
				   used * 100 / size);
		coev__stack_forget(t->stack);
	}
}

void coev__report_unjoined(coev_task_t *t, const char *when)
{
	if (t->result >= 0 || t->result == -ECANCELED)
		return;
	coev__logf(t->rt,
		   "coev: task #%llu '%s' failed with %d (%s) and nobody "
		   "joined it: %s\n",
		   (unsigned long long)t->id, coev__task_label(t->name),
		   t->result, coev_strerror(t->result), when);
}

void coev__debug_shutdown_begin(struct coev_rt *rt)
{
	coev__snap_t *a;
	size_t n = coev__snapshot(rt, &a), live = 0;
	coev__sb_t b = {0};

	for (size_t i = 0; i < n; i++)
		live += a[i].info.state != COEV_TASK_DONE;
	if (live) {
		coev__sb_printf(&b,
				"coev: shutdown: %zu task%s still alive, now "
				"cancelled:\n",
				live, live == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++)
			if (a[i].info.state != COEV_TASK_DONE) {
				coev__sb_printf(&b, "  ");
				coev__put_task(&b, a, n, &a[i]);
			}
	}
	free(a);
	coev__sb_log(rt, &b);
}

void coev__debug_shutdown_left(struct coev_rt *rt, int left)
{
	coev__sb_t b = {0};

	coev__sb_printf(
		&b,
		"coev: shutdown: %d task%s did not end by the deadline and "
		"will not run again:\n",
		left, left == 1 ? "" : "s");
	coev__put_dump(&b, rt, true, true);
	coev__sb_log(rt, &b);
}

/* --- signals ------------------------------------------------------------ */

static void usr1_handler(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&usr1_gen, 1, memory_order_relaxed);
}

/* Take a signal for ourselves only when the program left it alone. */
static bool claim(int sig, struct sigaction *old, struct sigaction *sa)
{
	if (sigaction(sig, NULL, old) != 0 || (old->sa_flags & SA_SIGINFO) ||
	    old->sa_handler != SIG_DFL)
		return false;
	return sigaction(sig, sa, NULL) == 0;
}

static void signals_take(void)
{
	struct sigaction sa;

	pthread_mutex_lock(&sig_mu);
	if (sig_users++ == 0) {
		memset(&sa, 0, sizeof sa);
		sigemptyset(&sa.sa_mask);
		sa.sa_sigaction = coev__bt_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
		own_urg = claim(SIGURG, &old_urg, &sa);
		atomic_store_explicit(&urg_ours, own_urg, memory_order_relaxed);
		memset(&sa, 0, sizeof sa);
		sigemptyset(&sa.sa_mask);
		sa.sa_handler = usr1_handler;
		sa.sa_flags = SA_RESTART;
		own_usr1 = claim(SIGUSR1, &old_usr1, &sa);
	}
	pthread_mutex_unlock(&sig_mu);
}

static void signals_give(void)
{
	pthread_mutex_lock(&sig_mu);
	if (--sig_users == 0) {
		if (own_urg)
			sigaction(SIGURG, &old_urg, NULL);
		if (own_usr1)
			sigaction(SIGUSR1, &old_usr1, NULL);
		own_urg = own_usr1 = false;
		atomic_store_explicit(&urg_ours, false, memory_order_relaxed);
	}
	pthread_mutex_unlock(&sig_mu);
}

struct name_of {
	uint64_t id;
	char *buf;
	size_t len;
};

static void name_if(coev_task_t *t, void *arg)
{
	struct name_of *q = arg;

	if (t->id == q->id)
		snprintf(q->buf, q->len, "%s", coev__task_label(t->name));
}

/* Name the live task with this id. */
static void name_of(struct coev_rt *rt, uint64_t id, char *buf, size_t len)
{
	struct name_of q = {id, buf, len};

	snprintf(buf, len, "(ended)");
	coev__task_each(rt, name_if, &q);
}

/* Where the slow task is now, without changing what it does
 * (observe/backtrace.c): read from outside while its worker waits in a
 * system call, which a signal would cut short; asked by SIGURG while it
 * runs. */
static void put_where(coev__sb_t *b, struct coev_worker *w,
		      const coev_task_t *cur, uint_fast64_t seq)
{
	uintptr_t pcs[COEV__BT_MAX];
	coev__where_t k;
	bool cut = false;
	int n = 0;

	if (coev__bt_where(w, &k) == COEV__WHERE_SYSCALL) {
		coev__sb_printf(
			b,
			"  it is blocked in system call %s (%ld): a call that "
			"blocks holds its worker as a busy loop does "
			"(coev_sleep, coev's I/O calls and coev_blocking do "
			"not)\n",
			coev__syscall_name(k.nr), k.nr);
		if (cur)
			n = coev__walk_blocked(cur, k.sp, k.pc, pcs,
					       COEV__BT_MAX);
		/* Acquire: as check_slow's load; a new run means the stack
		 * read may belong to another task. */
		if (atomic_load_explicit(&w->run_seq, memory_order_acquire) !=
		    seq)
			n = -1;
	} else if (k.how != COEV__WHERE_UNKNOWN &&
		   atomic_load_explicit(&urg_ours, memory_order_relaxed)) {
		n = coev__bt_ask(w, seq, pcs, &cut);
	}
	if (n > 0) {
		coev__sb_printf(b, "  where it is now%s:\n",
				k.how == COEV__WHERE_SYSCALL
					? " (read from its stack, without a "
					  "signal, which would cut the call "
					  "short)"
					: "");
		coev__put_backtrace(b, pcs, n, true);
	} else {
		coev__sb_printf(
			b, "  (no backtrace: %s)\n",
			n < 0 ? "it suspended before the worker answered"
			: k.how == COEV__WHERE_UNKNOWN
				? "/proc/self/task cannot say whether the "
				  "worker runs or waits in a system call, "
				  "which a signal would cut short"
			: k.how == COEV__WHERE_SYSCALL
				? "its stack could not be read"
			: atomic_load_explicit(&urg_ours, memory_order_relaxed)
				? "the worker did not answer SIGURG"
				: "the program handles SIGURG itself");
	}
	if (cut)
		coev__sb_printf(b, "  (the signal came as the task entered a "
				   "system call and ended it early: that call "
				   "returned EINTR)\n");
}

static void report_slow(struct coev_rt *rt, struct coev_worker *w,
			uint_fast64_t seq, coev_time_t ran)
{
	const coev_task_t *cur = coev__running_on(w);
	uint64_t id = 0, ring, lifo, inbox;
	uint_fast64_t timers, ios;
	char name[32], d[32], lim[32];
	coev__sb_t b = {0};

	/* The block is live while registered: name_of finds it there. */
	if (cur)
		coev__peek(&id, &cur->id, sizeof id);
	name_of(rt, id, name, sizeof name);
	coev__fmt_dur(d, sizeof d, ran);
	coev__fmt_dur(lim, sizeof lim, rt->slow_ns);
	coev__worker_depths(w, &ring, &lifo, &inbox);
	timers = atomic_load_explicit(&w->st.timers, memory_order_relaxed);
	ios = atomic_load_explicit(&w->st.ios, memory_order_relaxed);
	coev__sb_printf(
		&b,
		"coev: slow task: task #%llu '%s' has run for %s on worker "
		"%u without suspending (debug mode's limit: %s)\n",
		(unsigned long long)id, name, d, w->index, lim);
	coev__sb_printf(
		&b,
		"  waiting for worker %u: %llu queued task%s (other "
		"workers take them), %llu task%s pinned to it, %llu "
		"timer%s and %llu fd wait%s on its loop (they fire late)\n",
		w->index, (unsigned long long)(ring + lifo),
		ring + lifo == 1 ? "" : "s", (unsigned long long)inbox,
		inbox == 1 ? "" : "s", (unsigned long long)timers,
		timers == 1 ? "" : "s", (unsigned long long)ios,
		ios == 1 ? "" : "s");
	put_where(&b, w, cur, seq);
	coev__sb_log(rt, &b);
}

/* Report a slow run once, and its end once it has ended. */
static void check_slow(struct coev_rt *rt, struct coev__debug *d, unsigned i,
		       coev_time_t now)
{
	struct coev_worker *w = rt->workers[i];
	/* Acquire: pairs with the release stores of run_seq in the
	 * worker's run_begin/run_end (sched/task.c). */
	uint_fast64_t seq =
		atomic_load_explicit(&w->run_seq, memory_order_acquire);
	coev_time_t start;

	if (d->w[i].warned && seq != d->w[i].warned) {
		char dur[32];

		/* The reported run ended (within a period). */
		coev__fmt_dur(dur, sizeof dur, now - d->w[i].warned_start);
		coev__logf(rt,
			   "coev: slow task: the task reported on worker %u "
			   "suspended after about %s\n",
			   w->index, dur);
		d->w[i].warned = 0;
	}
	if (!(seq & 1) || d->w[i].warned)
		return;
	start = atomic_load_explicit(&w->run_start, memory_order_relaxed);
	if (start && now - start >= rt->slow_ns) {
		report_slow(rt, w, seq, now - start);
		d->w[i].warned = seq;
		d->w[i].warned_start = start;
	}
}

void coev__debug_tick(struct coev_rt *rt)
{
	struct coev__debug *d = rt->dbg;
	coev_time_t now = coev__plat_now();
	unsigned g;

	for (unsigned i = 0; i < rt->nworkers; i++)
		check_slow(rt, d, i, now);
	g = atomic_load_explicit(&usr1_gen, memory_order_relaxed);
	if (g != d->usr1_seen) {
		coev__sb_t b = {0};

		d->usr1_seen = g;
		coev__sb_printf(&b, "coev: SIGUSR1: ");
		coev__put_dump(&b, rt, true, false);
		coev__sb_log(rt, &b);
	}
}

int coev__debug_start(struct coev_rt *rt)
{
	struct coev__debug *d =
		calloc(1, sizeof *d + rt->nworkers * sizeof d->w[0]);

	if (!d)
		return -ENOMEM;
	if (coev__bt_alloc(rt) < 0) {
		free(d);
		return -ENOMEM;
	}
	d->usr1_seen = atomic_load_explicit(&usr1_gen, memory_order_relaxed);
	rt->dbg = d;
	signals_take();
	return 0;
}

void coev__debug_stop(struct coev_rt *rt)
{
	signals_give();
	coev__bt_free(rt);
	free(rt->dbg);
	rt->dbg = NULL;
}
