/* SPDX-License-Identifier: MIT */
/*
 * sched/ctx.c — building the first frame of a new context.
 *
 * The frame matches what coev__ctx_switch pops (see ctx_<arch>.S), so the
 * first switch to a new context "returns" (jumps) into coev__ctx_boot, which calls
 * entry(arg). Floating-point control state starts at the ABI defaults
 * (round to nearest, all exceptions masked), not at the creator's.
 */
#include "ctx.h"

#include <stdint.h>
#include <string.h>

void coev__ctx_boot(void);

void coev__ctx_init(coev__ctx_t *c, void *lo, size_t size,
		    coev__ctx_entry entry, void *arg)
{
	uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;

#if defined(__x86_64__)
	/* After the switch pops 8 + 7 * 8 bytes (the last one the address it
	 * jumps to), rsp = top - 16. */
	uint64_t *sp = (uint64_t *)(top - 16 - 8 - 7 * 8);
	uint32_t mxcsr = 0x1F80;
	uint16_t fpucw = 0x037F;

	memset(sp, 0, 8 * 8);
	memcpy(&sp[0], &mxcsr, sizeof mxcsr);
	memcpy((char *)&sp[0] + 4, &fpucw, sizeof fpucw);
	sp[4] = (uint64_t)(uintptr_t)entry; /* r12 */
	sp[3] = (uint64_t)(uintptr_t)arg;   /* r13 */
	sp[6] = 0;			    /* rbp */
	sp[7] = (uint64_t)(uintptr_t)coev__ctx_boot;
	c->sp = sp;
#elif defined(__aarch64__)
	uint64_t *sp = (uint64_t *)(top - 176);

	memset(sp, 0, 176);
	sp[0] = (uint64_t)(uintptr_t)entry;	      /* x19 */
	sp[1] = (uint64_t)(uintptr_t)arg;	      /* x20 */
	sp[10] = 0;				      /* x29 */
	sp[11] = (uint64_t)(uintptr_t)coev__ctx_boot; /* x30 */
	sp[20] = 0;				      /* FPCR: ABI default */
	c->sp = sp;
#else
#error "coev: no context switch for this architecture"
#endif
}
