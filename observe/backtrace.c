/* SPDX-License-Identifier: MIT */
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
 * A running task's backtrace (debug mode's slow-task report) must not
 * change what the task does. Its worker is in one of two places, and the
 * report asks the kernel which before it does anything
 * (/proc/self/task/TID/syscall, coev__bt_where):
 *
 *   blocked in a system call (sleep, poll, a blocking read): the kernel
 *     gives the call's number and the user stack pointer and pc at its
 *     entry. No signal is sent: a handled signal ends nanosleep,
 *     clock_nanosleep, poll, ppoll, select, epoll_wait and calls with a
 *     socket timeout early with EINTR whatever SA_RESTART says (sleep(1)
 *     returned after 0.1 s), and the kernel forgets how to restart them
 *     once a handler has run. The backtrace is read from outside
 *     (coev__walk_blocked): the pc, then the words above the stack
 *     pointer that are return addresses (each just after a call
 *     instruction in a loaded object) up to the first live frame record
 *     (its chain reaches the task's first frame, and the frame it points
 *     to was entered by a call to the function it returns into:
 *     record_live), then that chain. The scanned part may hold a stale
 *     return address left in an uninitialised slot; the chain does not.
 *     Rejected: DWARF unwinding (a CFI interpreter, or libunwind, a new
 *     dependency whose local unwinder reads memory that the task may
 *     unmap meanwhile).
 *   running (in user code, or runnable): the worker is sent SIGURG, at
 *     most once per slow run, and the handler walks the frame pointers
 *     from the interrupted registers into the worker's reply buffer
 *     (struct coev__bt), which the asker polls. SA_RESTART restarts the
 *     calls that can be restarted. What remains: a thread that enters a
 *     system call in the microseconds between the look and the signal
 *     sees that call end early; the handler notices (the interrupted pc
 *     follows a system-call instruction whose result is -EINTR) and the
 *     report says so. A system call that runs on the CPU rather than
 *     waiting (a large getrandom) looks running, and may return a short
 *     count.
 *
 * When /proc cannot tell (not mounted), no signal is sent and the report
 * says why. Rejected: the signal alone, documented (it changes the program
 * it watches, which a debugging aid must not); reading a running thread's
 * registers from outside (only ptrace can, and a thread cannot trace its
 * own process: a helper process, which a debug aid must not fork); a
 * sampling perf event, which takes a user backtrace without a signal
 * (perf_event_paranoid and container seccomp profiles forbid it where it
 * matters); a frame pointer the worker publishes per call (the worker does
 * not know when it is slow, and a store per call costs every call);
 * restarting the cut call in the handler (the kernel has already turned
 * it into EINTR and reset its restart block when the handler returns).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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
	bool cut; /* the signal ended a system call with EINTR */
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

/* Whether the signal ended a system call early: the interrupted pc
 * follows a system-call instruction whose result is -EINTR (a call that
 * SA_RESTART restarts is rewound onto the instruction instead).
 * Async-signal-safe. */
static bool cut_short(const ucontext_t *uc, uintptr_t pc)
{
#if defined(__x86_64__)
	unsigned char insn[2];

	return uc->uc_mcontext.gregs[REG_RAX] == -EINTR &&
	       coev__peek(insn, (const void *)(pc - 2), 2) && insn[0] == 0x0f &&
	       insn[1] == 0x05; /* syscall */
#elif defined(__aarch64__)
	uint32_t insn;

	return uc->uc_mcontext.regs[0] == (unsigned long long)-EINTR &&
	       coev__peek(&insn, (const void *)(pc - 4), 4) &&
	       insn == 0xd4000001u; /* svc #0 */
#else
	(void)uc;
	(void)pc;
	return false;
#endif
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
	b->cut = cut_short(uc, pc);
	b->seq = atomic_load_explicit(&w->run_seq, memory_order_relaxed);
	/* Release: publishes pcs, n and seq to the asker's acquire load of
	 * done in coev__bt_ask. */
	atomic_store_explicit(&b->done, want, memory_order_release);
	errno = saved;
}

int coev__bt_ask(struct coev_worker *w, uint_fast64_t seq, uintptr_t *pcs,
		 bool *cut)
{
	struct coev__bt *b = w->bt;
	uint_fast64_t want;
	struct timespec nap = {0, 200000};
	int n;

	*cut = false;
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
			*cut = b->cut;
			return n;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}

/* --- workers blocked in the kernel: read from outside ------------------- */

int coev__bt_where(struct coev_worker *w, coev__where_t *k)
{
	int tid = atomic_load_explicit(&w->tid, memory_order_relaxed), fd;
	int i, want;
	char path[64], buf[256], *p, *end;
	unsigned long v[8];
	ssize_t n = -1;

	memset(k, 0, sizeof *k);
	k->how = COEV__WHERE_UNKNOWN;
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
	if (tid > 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	if (n <= 0)
		return k->how;
	buf[n] = '\0';
	if (strncmp(buf, "running", 7) == 0)
		return k->how = COEV__WHERE_RUNNING;
	/* "nr arg1 ... arg6 sp pc" in a system call, "-1 sp pc" blocked
	 * elsewhere (a page fault): numbers in hex after the first. */
	k->nr = strtol(buf, &p, 10);
	want = k->nr == -1 ? 2 : 8;
	for (i = 0; i < want && p != buf; i++, p = end) {
		v[i] = strtoul(p, &end, 16);
		if (end == p)
			break;
	}
	if (p == buf || i < want)
		return k->how;
	k->sp = v[want - 2];
	k->pc = v[want - 1];
	return k->how = k->nr == -1 ? COEV__WHERE_BLOCKED : COEV__WHERE_SYSCALL;
}

/* Whether v is a return address: just after a call instruction, in a
 * loaded object, not on the stack [lo, hi). */
static bool is_ret(uintptr_t v, uintptr_t lo, uintptr_t hi)
{
	unsigned char c[8];
	bool call = false;
	Dl_info di;

	if (v < 4096 || (v >= lo && v < hi) ||
	    !coev__peek(c, (const void *)(v - 8), sizeof c))
		return false;
#if defined(__x86_64__)
	call = c[3] == 0xe8;		      /* call rel32 */
	for (int k = 2; k <= 7 && !call; k++) /* call r/m64: ff /2 */
		call = c[8 - k] == 0xff && ((c[9 - k] >> 3) & 7) == 2;
#elif defined(__aarch64__)
	uint32_t insn;

	memcpy(&insn, c + 4, 4);
	call = (insn & 0xfc000000u) == 0x94000000u || /* bl */
	       (insn & 0xfffffc1fu) == 0xd63f0000u;   /* blr */
#endif
	return call && dladdr((void *)v, &di) != 0;
}

/* Whether the frame-pointer chain from fp stays inside [lo, hi), going
 * up, until the task's first frame (its saved frame pointer is 0:
 * sched/ctx.c) or for CHAIN_CHECK frames. */
#define CHAIN_CHECK 64
static bool chain_ok(uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
	for (int i = 0; i < CHAIN_CHECK; i++) {
		uintptr_t fr[2];

		if (fp < lo || fp + 16 > hi || (fp & 7) ||
		    !coev__peek(fr, (const void *)fp, sizeof fr))
			return false;
		if (fr[0] == 0)
			return true;
		if (fr[0] <= fp)
			return false;
		fp = fr[0];
	}
	return true;
}

/* Where the call just before return address r went, for a direct call;
 * 0 for an indirect one. */
static uintptr_t call_target(uintptr_t r)
{
#if defined(__x86_64__)
	unsigned char c[5];
	int32_t rel;

	if (!coev__peek(c, (const void *)(r - 5), sizeof c) || c[0] != 0xe8)
		return 0;
	memcpy(&rel, c + 1, sizeof rel);
	return r + (uintptr_t)(intptr_t)rel;
#elif defined(__aarch64__)
	uint32_t insn;

	if (!coev__peek(&insn, (const void *)(r - 4), sizeof insn) ||
	    (insn & 0xfc000000u) != 0x94000000u)
		return 0;
	return r - 4 + (uintptr_t)((intptr_t)((int32_t)(insn << 6) >> 6) * 4);
#else
	(void)r;
	return 0;
#endif
}

/*
 * Whether a frame record [fp, ret] found by the scan is live: the frame
 * at fp was entered by a call to the function ret returns into. The
 * return address in fp's own record follows that call; when the call is
 * direct and goes to a known function, it must be the one holding ret.
 * Dead records fail this: one left in an uninitialised local by an
 * earlier call at the same depth (the TSan build showed one returning
 * into coev_yield under a frame entered from blocked_task's call of
 * another function), or a callee-saved register that held a pointer to
 * such a record.
 */
static bool record_live(uintptr_t fp, uintptr_t ret)
{
	uintptr_t fr[2], callee, start;

	if (!coev__peek(fr, (const void *)fp, sizeof fr))
		return false;
	callee = call_target(fr[1]);
	if (!callee || coev__function_start(callee) != callee)
		return true; /* indirect, or through a PLT stub */
	start = coev__function_start(ret - 1);
	return !start || start == callee;
}

/* The words scanned above a blocked thread's stack pointer. */
#define SCAN_WORDS 1024

int coev__walk_blocked(const coev_task_t *t, uintptr_t sp, uintptr_t pc,
		       uintptr_t *pcs, int max)
{
	uintptr_t buf[SCAN_WORDS]; /* the monitor thread's stack is large */
	struct coev_stack *stk, hdr;
	uintptr_t lo, hi;
	size_t nw;
	int n = 0;

	pcs[n++] = pc;
	if (!coev__peek(&stk, &t->stack, sizeof stk) || !stk ||
	    !coev__peek(&hdr, stk, sizeof hdr))
		return n;
	lo = (uintptr_t)hdr.lo;
	hi = lo + hdr.size;
	if (sp < lo || sp >= hi || (sp & 7))
		return n;
	nw = (hi - sp) / sizeof buf[0];
	nw = nw < SCAN_WORDS ? nw : SCAN_WORDS;
	if (nw < 2 || !coev__peek(buf, (const void *)sp, nw * sizeof buf[0]))
		return n;
	for (size_t i = 0; i + 1 < nw && n < max; i++) {
		uintptr_t a = sp + i * sizeof buf[0], fp = buf[i];

		/* The first live frame record: from here on the chain is
		 * exact. Below it, frameless calls' return addresses. */
		if (fp > a && fp < hi && (fp & 15) == 0 &&
		    is_ret(buf[i + 1], lo, hi) && chain_ok(fp, lo, hi) &&
		    record_live(fp, buf[i + 1])) {
			pcs[n++] = buf[i + 1];
			return walk(fp, lo, hi, pcs, n, max);
		}
		if (is_ret(buf[i], lo, hi))
			pcs[n++] = buf[i];
	}
	return n;
}

/* Names of the system calls a task may block its worker in. */
/* clang-format off */
#define SYSNAME(x) {SYS_##x, #x}
static const struct {
	long nr;
	const char *name;
} sysnames[] = {
	SYSNAME(read), SYSNAME(write), SYSNAME(readv), SYSNAME(writev),
	SYSNAME(pread64), SYSNAME(pwrite64), SYSNAME(openat), SYSNAME(close),
	SYSNAME(fsync), SYSNAME(fdatasync), SYSNAME(flock), SYSNAME(fcntl),
	SYSNAME(ioctl), SYSNAME(ppoll), SYSNAME(pselect6),
	SYSNAME(epoll_pwait), SYSNAME(nanosleep), SYSNAME(clock_nanosleep),
	SYSNAME(futex), SYSNAME(wait4), SYSNAME(waitid), SYSNAME(accept),
	SYSNAME(accept4), SYSNAME(connect), SYSNAME(recvfrom),
	SYSNAME(sendto), SYSNAME(recvmsg), SYSNAME(sendmsg),
	SYSNAME(rt_sigtimedwait), SYSNAME(semtimedop), SYSNAME(msgrcv),
	SYSNAME(msgsnd), SYSNAME(getrandom),
#if defined(SYS_poll)
	SYSNAME(poll), SYSNAME(select), SYSNAME(epoll_wait), SYSNAME(pause),
	SYSNAME(open),
#endif
};
/* clang-format on */
#undef SYSNAME

const char *coev__syscall_name(long nr)
{
	for (size_t i = 0; i < sizeof sysnames / sizeof sysnames[0]; i++)
		if (sysnames[i].nr == nr)
			return sysnames[i].name;
	return "a system call";
}
