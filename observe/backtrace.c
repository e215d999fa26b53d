/*
 * observe/backtrace.c — backtraces of parked tasks and of running ones.
 *
 * Dumps read other threads' tasks without stopping them. Everything read
 * from another thread's task goes through process_vm_readv (coev__peek):
 * the saved stack pointer, the stack bounds, the frames of a parked task's
 * stack. A task that resumes, ends or frees its stack during the walk
 * gives a truncated or stale backtrace, never a fault, and sanitizers see
 * no racy access. Frames are found by the frame-pointer chain (the build
 * keeps frame pointers); the first one of a parked task comes from the
 * callee-saved registers the context switch left at the saved stack
 * pointer (sched/ctx_*.S documents the layout).
 *
 * A running task's backtrace (debug mode's slow-task report) is taken by
 * its own worker: the monitor's report sends the worker SIGURG, and the
 * handler walks the frame pointers from the interrupted registers into the
 * worker's reply buffer (struct coev__bt), which the asker polls.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "observe.h"
#include "symbol.h"

/* How long an asker waits for a worker's reply to SIGURG. */
#define BT_WAIT_NS 50000000

/* A worker's reply to SIGURG: its backtrace at the moment. */
struct coev__bt {
	atomic_uint_fast64_t want, done; /* request numbers */
	uint_fast64_t seq;		 /* the worker's run_seq then */
	int n;
	uintptr_t pcs[COEV__BT_MAX];
};

bool coev__peek(void *dst, const void *src, size_t n)
{
	struct iovec l = {dst, n}, r = {(void *)(uintptr_t)src, n};

	return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)n;
}

/* Follow the frame-pointer chain from fp while it stays inside [lo, hi)
 * and goes up: each frame holds the caller's frame pointer and then the
 * return address. */
static int walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int n,
		int max)
{
	while (n < max && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
		uintptr_t fr[2];

		if (!coev__peek(fr, (const void *)fp, sizeof fr) || fr[1] == 0)
			break;
		pcs[n++] = fr[1];
		if (fr[0] <= fp)
			break;
		fp = fr[0];
	}
	return n;
}

int coev__walk_parked(uintptr_t sp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
		      int max)
{
	uintptr_t fr[2];

#if defined(__x86_64__)
	/* +48 rbp, +56 return address (ctx_x86_64.S). */
	if (sp < lo || sp + 64 > hi ||
	    !coev__peek(fr, (const void *)(sp + 48), 16))
		return 0;
#elif defined(__aarch64__)
	/* +80 x29 (frame pointer), +88 x30 (ctx_aarch64.S). */
	if (sp < lo || sp + 96 > hi ||
	    !coev__peek(fr, (const void *)(sp + 80), 16))
		return 0;
#else
	(void)sp;
	(void)lo;
	(void)hi;
	(void)pcs;
	(void)max;
	(void)fr;
	return 0;
#endif
#if defined(__x86_64__) || defined(__aarch64__)
	pcs[0] = fr[1];
	return walk(fr[0], lo, hi, pcs, 1, max);
#endif
}

void coev__put_backtrace(coev__sb_t *b, const uintptr_t *pcs, int n,
			 bool exact0)
{
	char sym[256];

	for (int i = 0; i < n; i++) {
		coev__symbolise(pcs[i], i > 0 || !exact0, sym, sizeof sym);
		coev__sb_printf(b, "    #%d %s\n", i, sym);
	}
}

/* --- running tasks: SIGURG -------------------------------------------- */

int coev__bt_alloc(struct coev_rt *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rt->workers[i]->bt = calloc(1, sizeof(struct coev__bt));
		if (!rt->workers[i]->bt) {
			coev__bt_free(rt);
			return -ENOMEM;
		}
	}
	return 0;
}

void coev__bt_free(struct coev_rt *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		free(rt->workers[i]->bt);
		rt->workers[i]->bt = NULL;
	}
}

void coev__bt_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved = errno;
	struct coev_worker *w = coev__tls_worker;
	struct coev__bt *b = w ? w->bt : NULL;
	ucontext_t *uc = ucv;
	uintptr_t pc = 0, fp = 0, lo = 0, hi = 0;
	uint_fast64_t want;

	(void)sig;
	(void)si;
	if (!b)
		return;
	/* Acquire: pairs with the asker's release store of want, so the
	 * request is seen whole. */
	want = atomic_load_explicit(&b->want, memory_order_acquire);
#if defined(__x86_64__)
	pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
	pc = (uintptr_t)uc->uc_mcontext.pc;
	fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
	(void)uc;
#endif
	if (w->current && w->current->stack) {
		lo = (uintptr_t)w->current->stack->lo;
		hi = lo + w->current->stack->size;
	}
	b->pcs[0] = pc;
	b->n = walk(fp, lo, hi, b->pcs, 1, COEV__BT_MAX);
	b->seq = atomic_load_explicit(&w->run_seq, memory_order_relaxed);
	/* Release: publishes pcs, n and seq to the asker's acquire load of
	 * done in coev__bt_ask. */
	atomic_store_explicit(&b->done, want, memory_order_release);
	errno = saved;
}

int coev__bt_ask(struct coev_worker *w, uint_fast64_t seq, uintptr_t *pcs)
{
	struct coev__bt *b = w->bt;
	uint_fast64_t want;
	struct timespec nap = {0, 200000};
	int n;

	if (!b)
		return 0;
	/* One asker (the monitor thread): the request number is ours. */
	want = atomic_load_explicit(&b->want, memory_order_relaxed) + 1;
	/* Release: pairs with the handler's acquire load of want. */
	atomic_store_explicit(&b->want, want, memory_order_release);
	if (pthread_kill((pthread_t)w->thread.handle, SIGURG) != 0)
		return 0;
	for (coev_time_t waited = 0; waited < BT_WAIT_NS;
	     waited += nap.tv_nsec) {
		/* Acquire: pairs with the handler's release store of done. */
		if (atomic_load_explicit(&b->done, memory_order_acquire) ==
		    want) {
			if (b->seq != seq)
				return -1;
			n = b->n;
			memcpy(pcs, b->pcs, (size_t)n * sizeof *pcs);
			return n;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}
