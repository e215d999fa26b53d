/* SPDX-License-Identifier: MIT */
/*
 * sched/overflow.c — naming a stack overflow: the SIGSEGV handler that
 * tells a fault in the guard region below the running task's stack from
 * any other fault, the canary check of an unguarded stack, and the
 * alternate signal stack each worker thread runs the handler on. How
 * stacks and their guards are laid out is in sched/stack.c.
 *
 * The handler runs on the faulting worker's alternate stack. A fault in
 * the guard of the task running on this thread is an overflow: it writes
 * a message naming the task (its name, id and function) and the function
 * that faulted, by symbol (observe/'s symbol tables through
 * coev__symbol_name_try, dladdr's names when those are busy), with
 * async-signal-safe writes only, and lets the fault repeat with the
 * default action, which kills the process. Any other fault goes to the
 * handler that was installed before coev's.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "sched.h"

#define ALTSTACK_BYTES (64 * 1024)

static struct sigaction old_segv;

static void segv_handler(int sig, siginfo_t *si, void *uc);

void coev__overflow_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
}

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
	buf[*n] = '\0';
}

static void put_u64(char *buf, size_t *n, size_t cap, uint64_t v, int base)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v && i < 23);
	while (i > 0 && *n + 1 < cap)
		buf[(*n)++] = tmp[--i];
	buf[*n] = '\0';
}

/* Writes the name of the function holding pc, or its address. */
static void put_function(char *buf, size_t *n, size_t cap, uintptr_t pc)
{
	char name[256];

	if (coev__symbol_name_try(pc, name, sizeof name) > 0) {
		put(buf, n, cap, name);
	} else {
		put(buf, n, cap, "0x");
		put_u64(buf, n, cap, pc, 16);
	}
}

/* Writes "task 7 'name' (function f)" into buf. */
static void describe_task(char *buf, size_t *n, size_t cap, coev_task_t *t)
{
	put(buf, n, cap, "task ");
	put_u64(buf, n, cap, t->id, 10);
	if (t->name[0]) {
		put(buf, n, cap, " '");
		put(buf, n, cap, t->name);
		put(buf, n, cap, "'");
	}
	put(buf, n, cap, " (function ");
	put_function(buf, n, cap, (uintptr_t)t->fn);
	put(buf, n, cap, ")");
}

/* The faulting instruction's address, or 0 where unknown. */
static uintptr_t fault_pc(const void *uc)
{
	const ucontext_t *u = uc;

#if defined(__x86_64__)
	return (uintptr_t)u->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)u->uc_mcontext.pc;
#else
	(void)u;
	return 0;
#endif
}

/* Names the overflow of t's stack on w (a fault at a in its guard). */
static void say_overflow(struct coev_worker *w, coev_task_t *t, uintptr_t a,
			 const void *uc)
{
	uintptr_t pc = fault_pc(uc);
	char msg[1024];
	size_t n = 0;

	put(msg, &n, sizeof msg, "coev: stack overflow in ");
	describe_task(msg, &n, sizeof msg, t);
	put(msg, &n, sizeof msg, " on worker ");
	put_u64(msg, &n, sizeof msg, w->index, 10);
	if (pc) {
		put(msg, &n, sizeof msg, ", in function ");
		put_function(msg, &n, sizeof msg, pc);
	}
	put(msg, &n, sizeof msg, ": it touched 0x");
	put_u64(msg, &n, sizeof msg, a, 16);
	put(msg, &n, sizeof msg, ", in the guard below its stack of ");
	put_u64(msg, &n, sizeof msg, t->stack->size, 10);
	put(msg, &n, sizeof msg,
	    " bytes; raise coev_config_t.stack_size or COEV_STACK_SIZE\n");
	coev__write_all(2, msg, n, NULL);
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	struct coev_worker *w = coev__tls_worker;
	coev_task_t *t = w ? w->current : NULL;
	uintptr_t a = (uintptr_t)si->si_addr, lo;

	if (t && t->stack && t->stack->guarded) {
		lo = (uintptr_t)t->stack->lo;
		if (a >= lo - COEV__GUARD_BYTES && a < lo) {
			say_overflow(w, t, a, uc);
			signal(SIGSEGV, SIG_DFL);
			return; /* the fault repeats and kills the process */
		}
	}
	if (old_segv.sa_flags & SA_SIGINFO) {
		old_segv.sa_sigaction(sig, si, uc);
	} else if (old_segv.sa_handler == SIG_DFL ||
		   old_segv.sa_handler == SIG_IGN) {
		signal(SIGSEGV, SIG_DFL);
	} else {
		old_segv.sa_handler(sig);
	}
}

void coev__stack_check(coev_task_t *t)
{
	const unsigned char *p = t->stack->lo;
	char msg[512];
	size_t n = 0;

	if (t->stack->guarded)
		return;
	for (int i = 0; i < COEV__CANARY_BYTES; i++) {
		if (p[i] == 0)
			continue;
		put(msg, &n, sizeof msg, "coev: stack overflow in ");
		describe_task(msg, &n, sizeof msg, t);
		put(msg, &n, sizeof msg,
		    ": it reached the end of an unguarded stack; raise "
		    "coev_config_t.stack_size or COEV_STACK_SIZE (or "
		    "vm.max_map_count on kernels before 6.13)");
		coev__panic("%s", msg);
	}
}

/* The worker's alternate signal stack is mapped with the worker, before
 * its thread starts, so that running out of memory is coev_rt_new's
 * -ENOMEM rather than a worker whose stack overflows go unnamed. */
int coev__stack_altstack_new(struct coev_worker *w)
{
	void *m = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -ENOMEM;
	w->altstack = m;
	return 0;
}

void coev__stack_altstack_free(struct coev_worker *w)
{
	if (w->altstack)
		munmap(w->altstack, ALTSTACK_BYTES);
	w->altstack = NULL;
}

void coev__stack_thread_init(struct coev_worker *w)
{
	stack_t ss;

	coev__page_size();
	coev__tls_worker = w;
	ss.ss_sp = w->altstack;
	ss.ss_size = ALTSTACK_BYTES;
	ss.ss_flags = 0;
	sigaltstack(&ss, NULL);
}

void coev__stack_thread_fini(struct coev_worker *w)
{
	stack_t ss;

	(void)w;
	coev__tls_worker = NULL;
	memset(&ss, 0, sizeof ss);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
}
