/* SPDX-License-Identifier: MIT */
/*
 * io/signal.c — awaitable signals (coev/signal.h): a handler that counts
 * deliveries, an eventfd it rings, and a thread that passes each ring on
 * to the watches as a coev event.
 *
 * Why not signalfd alone. A signalfd sees a signal only while it is
 * blocked in every thread that could take it; otherwise the kernel runs
 * the disposition on whichever thread has it unblocked. The runtime's
 * workers, its monitor, its blocking pool and the threads of libraries
 * (c-ares, curl) exist before a program asks for a signal, and a library
 * may start threads later with any mask, so "blocked everywhere" cannot be
 * arranged after the fact. A handler (sigaction) runs whatever thread
 * the kernel picks, so it is correct everywhere; this is what tokio and
 * libuv do (a handler writing to a self-pipe).
 *
 * The protocol, process-wide (signals are):
 *   1. The handler adds one to delivered[signo] (a lock-free atomic, so
 *      safe in a handler), records the sender of the latest delivery, and
 *      writes 1 to the eventfd. It touches nothing else: no lock, no
 *      allocation, no coev call.
 *   2. The dispatcher thread blocks in read() on the eventfd. After each
 *      read it compares delivered[] with its own last snapshot and, under
 *      mu, sets the event of every watch that covers a changed signal.
 *   3. A watch keeps seen[signo], the deliveries it has returned (it
 *      starts at delivered[signo] when the watch is made). A wait takes a
 *      delivery when seen < delivered (one per wait: nothing is lost
 *      between waits, and each watch counts on its own, so every watch
 *      sees every delivery); else it clears its event, looks once more
 *      (a ring between the first look and the clear set the event before
 *      the clear, and the second look sees its count), and waits on the
 *      event with the caller's deadline.
 * A delivery that comes while the dispatcher is busy rings the eventfd
 * again (its counter adds up), so the next read reports it.
 *
 * Handlers in flight. When the last watch of a signal goes, its old
 * disposition is put back; a handler already running on another thread
 * may still be about to write to the eventfd. The handler counts itself
 * in `inside` for its whole run, and the last free waits for that count to
 * reach zero after restoring the dispositions and before closing the fd,
 * so a handler never writes to a closed (or reused) fd number.
 *
 * The dispatcher lives while any watch does: the first watch of the
 * process starts it (with a new eventfd), the last free stops and joins
 * it. It blocks every signal, so the kernel never picks it to run a
 * handler and its read is never interrupted.
 *
 * Rejected: one eventfd per watch written by the handler (the handler
 * would walk the watch list, which frees change under it, needing a
 * lock-free list with deferred reclamation); a coev task as the
 * dispatcher (signals belong to the process, not to one runtime, and a
 * program may watch before or between runtimes).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "coev.h"
#include "coev/signal.h"

struct coev_signal {
	struct coev_signal *prev, *next; /* [mu] the list of watches */
	sigset_t set;			 /* [init] */
	coev_event_t ev;		 /* set by the dispatcher */
	uint64_t seen[NSIG];		 /* [waiter] deliveries returned */
};

/* One running dispatcher: its thread, its eventfd, its snapshot. */
struct dispatch {
	pthread_t th;
	int efd;
	atomic_bool stop;
	uint64_t last[NSIG]; /* [dispatcher] delivered[] at its last look */
};

/* Written by the handler (any thread) and read by waits and the
 * dispatcher: relaxed counts, ordered by the eventfd's write and read
 * (a system call each) and by the event's lock. */
static atomic_uint_fast64_t delivered[NSIG];
static atomic_int last_code[NSIG], last_pid[NSIG], last_uid[NSIG];
/* The fd the handler rings; -1 while no dispatcher runs. */
static atomic_int ring_fd = -1;
/* Handlers running now (see "Handlers in flight"). */
static atomic_int inside;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct coev_signal *watches;	  /* [mu] */
static unsigned watchers[NSIG];		  /* [mu] watches per signal */
static struct sigaction old_action[NSIG]; /* [mu] put back at the last */
static struct dispatch *running;	  /* [mu] */

static void on_signal(int signo, siginfo_t *si, void *uctx)
{
	int saved = errno;
	uint64_t one = 1;
	int fd;

	(void)uctx;
	/* seq_cst: `inside` must be seen raised by a free that has just
	 * put the disposition back and then reads it (its load is seq_cst
	 * too), or this handler must see ring_fd already -1. */
	atomic_fetch_add_explicit(&inside, 1, memory_order_seq_cst);
	atomic_fetch_add_explicit(&delivered[signo], 1, memory_order_relaxed);
	atomic_store_explicit(&last_code[signo], si ? si->si_code : 0,
			      memory_order_relaxed);
	atomic_store_explicit(&last_pid[signo], si ? (int)si->si_pid : 0,
			      memory_order_relaxed);
	atomic_store_explicit(&last_uid[signo], si ? (int)si->si_uid : 0,
			      memory_order_relaxed);
	fd = atomic_load_explicit(&ring_fd, memory_order_seq_cst);
	if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is full, a ring is pending anyway. */
	}
	atomic_fetch_sub_explicit(&inside, 1, memory_order_release);
	errno = saved;
}

static bool watchable(int s)
{
	switch (s) {
	case SIGKILL:
	case SIGSTOP:
	case SIGSEGV:
	case SIGBUS:
	case SIGILL:
	case SIGFPE:
	case SIGTRAP:
	case SIGSYS: return false;
	default: return true;
	}
}

/* Step 2: pass the deliveries since the last look on to the watches. */
static void dispatch_once(struct dispatch *d)
{
	bool changed[NSIG] = {false};
	bool any = false;

	for (int s = 1; s < NSIG; s++) {
		uint64_t n = atomic_load_explicit(&delivered[s],
						  memory_order_relaxed);
		if (n != d->last[s]) {
			d->last[s] = n;
			changed[s] = any = true;
		}
	}
	if (!any)
		return;
	pthread_mutex_lock(&mu);
	for (struct coev_signal *w = watches; w; w = w->next)
		for (int s = 1; s < NSIG; s++)
			if (changed[s] && sigismember(&w->set, s) == 1) {
				coev_event_set(&w->ev);
				break;
			}
	pthread_mutex_unlock(&mu);
}

static void *dispatcher(void *arg)
{
	struct dispatch *d = arg;
	uint64_t v;

	while (!atomic_load_explicit(&d->stop, memory_order_acquire)) {
		if (read(d->efd, &v, sizeof v) < 0 && errno != EINTR)
			break; /* cannot happen with a valid eventfd */
		dispatch_once(d);
	}
	return NULL;
}

/* Start the dispatcher (first watch of the process). Under mu. */
static int dispatch_start(void)
{
	struct dispatch *d = calloc(1, sizeof *d);
	sigset_t all, was;
	int r;

	if (!d)
		return -ENOMEM;
	d->efd = eventfd(0, EFD_CLOEXEC);
	if (d->efd < 0) {
		r = -errno;
		free(d);
		return r;
	}
	for (int s = 1; s < NSIG; s++)
		d->last[s] = atomic_load_explicit(&delivered[s],
						  memory_order_relaxed);
	/* The thread starts with every signal blocked (it inherits the
	 * mask in force at pthread_create). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	r = pthread_create(&d->th, NULL, dispatcher, d);
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (r != 0) {
		close(d->efd);
		free(d);
		return -r;
	}
	atomic_store_explicit(&ring_fd, d->efd, memory_order_seq_cst);
	running = d;
	return 0;
}

/* Stop a dispatcher taken out of `running`: outside mu (it may be
 * waiting for mu in dispatch_once). */
static void dispatch_stop(struct dispatch *d)
{
	uint64_t one = 1;

	/* Step "Handlers in flight": the dispositions are back already. */
	atomic_store_explicit(&ring_fd, -1, memory_order_seq_cst);
	while (atomic_load_explicit(&inside, memory_order_seq_cst) != 0)
		sched_yield();
	atomic_store_explicit(&d->stop, true, memory_order_release);
	if (write(d->efd, &one, sizeof one) < 0) {
		/* The counter cannot be full: the thread drains it. */
	}
	pthread_join(d->th, NULL);
	close(d->efd);
	free(d);
}

/* Install the handler for each signal of set not yet watched, recording
 * the old dispositions; on failure undo what was done. Under mu. */
static int install(const sigset_t *set)
{
	struct sigaction sa;
	int s, r = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (s = 1; s < NSIG; s++) {
		if (sigismember(set, s) != 1 || watchers[s]++ > 0)
			continue;
		if (sigaction(s, &sa, &old_action[s]) != 0) {
			r = -errno;
			watchers[s]--;
			break;
		}
	}
	if (r != 0)
		while (--s > 0)
			if (sigismember(set, s) == 1 && --watchers[s] == 0)
				sigaction(s, &old_action[s], NULL);
	return r;
}

/* Undo install for set. Under mu. */
static void uninstall(const sigset_t *set)
{
	for (int s = 1; s < NSIG; s++)
		if (sigismember(set, s) == 1 && --watchers[s] == 0)
			sigaction(s, &old_action[s], NULL);
}

/* The set of the n signals: at least one, each watchable. */
static int make_set(const int *signals, size_t n, sigset_t *set)
{
	sigemptyset(set);
	if (!signals || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (signals[i] < 1 || signals[i] >= NSIG ||
		    !watchable(signals[i]) || sigaddset(set, signals[i]) != 0)
			return -EINVAL;
	}
	return 0;
}

int coev_signal_new(const int *signals, size_t n, coev_signal_t **out)
{
	struct coev_signal *w;
	sigset_t set;
	int r;

	if (!out || make_set(signals, n, &set) != 0)
		return -EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->set = set;
	coev_event_init(&w->ev);
	pthread_mutex_lock(&mu);
	if (!running && (r = dispatch_start()) != 0)
		goto fail;
	if ((r = install(&set)) != 0)
		goto fail;
	/* Counting starts now (rule 1): earlier deliveries are not ours. */
	for (int s = 1; s < NSIG; s++)
		w->seen[s] = atomic_load_explicit(&delivered[s],
						  memory_order_relaxed);
	w->next = watches;
	if (watches)
		watches->prev = w;
	watches = w;
	pthread_mutex_unlock(&mu);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* rule 4 */
	*out = w;
	return 0;
fail:
	if (!watches && running) {
		struct dispatch *d = running;

		running = NULL;
		pthread_mutex_unlock(&mu);
		dispatch_stop(d);
	} else {
		pthread_mutex_unlock(&mu);
	}
	coev_event_destroy(&w->ev);
	free(w);
	return r;
}

/* Step 3's look: take one delivery the watch has not returned. */
static int take(struct coev_signal *w, coev_siginfo_t *info)
{
	for (int s = 1; s < NSIG; s++) {
		if (sigismember(&w->set, s) != 1 ||
		    atomic_load_explicit(&delivered[s], memory_order_relaxed) ==
			    w->seen[s])
			continue;
		w->seen[s]++;
		if (info) {
			info->signo = s;
			info->code = atomic_load_explicit(&last_code[s],
							  memory_order_relaxed);
			info->pid = (pid_t)atomic_load_explicit(
				&last_pid[s], memory_order_relaxed);
			info->uid = (uid_t)atomic_load_explicit(
				&last_uid[s], memory_order_relaxed);
		}
		return s;
	}
	return 0;
}

int coev_signal_wait(coev_signal_t *w, coev_siginfo_t *info,
		     coev_time_t deadline)
{
	int s, r;

	if (!w)
		return -EINVAL;
	for (;;) {
		if ((s = take(w, info)) > 0)
			return s;
		coev_event_clear(&w->ev);
		if ((s = take(w, info)) > 0)
			return s;
		if ((r = coev_event_wait_dl(&w->ev, deadline)) != 0)
			return r;
	}
}

coev_event_t *coev_signal_event(coev_signal_t *w)
{
	return w ? &w->ev : NULL;
}

void coev_signal_free(coev_signal_t *w)
{
	struct dispatch *d = NULL;

	if (!w)
		return;
	pthread_mutex_lock(&mu);
	if (w->prev)
		w->prev->next = w->next;
	else
		watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	uninstall(&w->set);
	if (!watches) {
		d = running;
		running = NULL;
	}
	pthread_mutex_unlock(&mu);
	if (d)
		dispatch_stop(d);
	coev_event_destroy(&w->ev);
	free(w);
}
