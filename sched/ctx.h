/* SPDX-License-Identifier: MIT */
/*
 * sched/ctx.h — the raw context switch.
 *
 * A context is the stack pointer of a suspended flow of control. Switching
 * pushes the callee-saved state of the current flow on its own stack, saves
 * its stack pointer in *from, loads to->sp and pops the state of the other
 * flow. Saved per switch:
 *   x86_64:  rbx rbp r12-r15, rsp, MXCSR control bits and the x87 control
 *            word (the SysV ABI makes both callee-saved);
 *   aarch64: x19-x29, x30 (lr), sp, d8-d15 and FPCR.
 * The floating-point control state is saved on every switch but loaded only
 * when the resumed flow's differs from the current one (loading it stalls
 * the pipeline, and flows almost always share it).
 * Everything else is caller-saved, so a C call to the switch already
 * assumes it is clobbered. The implementation is chosen by the Makefile:
 * ctx_x86_64.S or ctx_aarch64.S.
 *
 * Rejected: swapcontext(), which makes a sigprocmask syscall per switch
 * (about 20x slower), and setjmp/longjmp tricks, which are undefined
 * behaviour across stacks and fortified away by glibc.
 *
 * These are the bare switches; sched/switch.h wraps them with the
 * sanitizer fiber annotations that the scheduler uses.
 */
#ifndef COEV_SCHED_CTX_H
#define COEV_SCHED_CTX_H

#include <stddef.h>

typedef struct coev__ctx {
	void *sp;
} coev__ctx_t;

typedef void (*coev__ctx_entry)(void *arg);

/*
 * coev__ctx_init — make c start entry(arg) on the stack [lo, lo + size)
 * when first switched to. entry must never return: it ends by switching
 * away for the last time (returning aborts the process). Never allocates.
 */
void coev__ctx_init(coev__ctx_t *c, void *lo, size_t size,
		    coev__ctx_entry entry, void *arg);

/*
 * coev__ctx_switch — save the current flow in from and resume to.
 * Returns when some flow switches back to from. Implemented in assembly.
 */
void coev__ctx_switch(coev__ctx_t *from, coev__ctx_t *to);

#endif
