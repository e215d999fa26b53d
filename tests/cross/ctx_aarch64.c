/* SPDX-License-Identifier: MIT */
/*
 * tests/cross/ctx_aarch64.c — the aarch64 context switch, checked under
 * qemu-aarch64 on any host (`make check-aarch64`): callee-saved x19-x26 and
 * d8-d15 survive a round trip through another context, each context keeps
 * its own FPCR, and a new context starts with the default FPCR. Standalone
 * (no cmocka, which has no cross-built package): exits non-zero on failure.
 */
#include "sched/ctx.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
static coev__ctx_t mc, cc;
static volatile long n;
static uint64_t fpcr_get(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, fpcr" : "=r"(v));
	return v;
}
static void fpcr_set(uint64_t v)
{
	__asm__ volatile("msr fpcr, %0" ::"r"(v));
}
static void entry(void *a)
{
	(void)a;
	if (fpcr_get() != 0) {
		printf("new ctx fpcr %llx\n", (unsigned long long)fpcr_get());
		exit(3);
	}
	fpcr_set(0x800000); /* round toward +inf in this flow only */
	for (;;) {
		n++;
		/* Scribble on every callee-saved register: only the switch's own
     * save and restore can give main its values back. */
		__asm__ volatile("mov x19, #1\n mov x20, #2\n mov x21, #3\n "
				 "mov x22, #4\n mov x23, #5\n"
				 "mov x24, #6\n mov x25, #7\n mov x26, #8\n "
				 "mov x27, #9\n mov x28, #10\n"
				 "fmov d8, #-1.0\n fmov d9, #-2.0\n fmov d10, "
				 "#-3.0\n fmov d11, #-4.0\n"
				 "fmov d12, #-5.0\n fmov d13, #-6.0\n fmov "
				 "d14, #-7.0\n fmov d15, #-8.0\n" ::
					 : "x19", "x20", "x21", "x22", "x23",
					   "x24", "x25", "x26", "x27", "x28",
					   "d8", "d9", "d10", "d11", "d12",
					   "d13", "d14", "d15");
		coev__ctx_switch(&cc, &mc);
		if (fpcr_get() != 0x800000) {
			printf("coro fpcr lost\n");
			exit(4);
		}
	}
}
/* Load known values into callee-saved regs, switch, check them. */
static int check_regs(void)
{
	uint64_t out[18];
	int bad = 0;
	register uint64_t x19 __asm__("x19") = 0x1919,
			      x20 __asm__("x20") = 0x2020,
			      x21 __asm__("x21") = 0x2121,
			      x22 __asm__("x22") = 0x2222,
			      x23 __asm__("x23") = 0x2323,
			      x24 __asm__("x24") = 0x2424,
			      x25 __asm__("x25") = 0x2525,
			      x26 __asm__("x26") = 0x2626;
	__asm__ volatile("fmov d8, #1.0\n fmov d9, #2.0\n fmov d10, #3.0\n "
			 "fmov d11, #4.0\n fmov d12, #5.0\n fmov d13, #6.0\n "
			 "fmov d14, #7.0\n fmov d15, #8.0\n"
			 "mov x0, %[m]\n mov x1, %[c]\n bl coev__ctx_switch\n"
			 "str d8, [%[o], #80]\n str d9, [%[o], #88]\n str d10, "
			 "[%[o], #96]\n str d11, [%[o], #104]\n str d12, "
			 "[%[o], #112]\n str d13, [%[o], #120]\n str d14, "
			 "[%[o], #128]\n str d15, [%[o], #136]\n"
			 : "+r"(x19), "+r"(x20), "+r"(x21), "+r"(x22),
			   "+r"(x23), "+r"(x24), "+r"(x25), "+r"(x26)
			 : [m] "r"(&mc), [c] "r"(&cc), [o] "r"(out)
			 : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8",
			   "x9", "x10", "x11", "x12", "x13", "x14", "x15",
			   "x16", "x17", "x30", "memory", "d0", "d1", "d2",
			   "d3", "d4", "d5", "d6", "d7", "d16", "d17", "d18",
			   "d19", "d20", "d21", "d22", "d23", "d24", "d25",
			   "d26", "d27", "d28", "d29", "d30", "d31", "cc");
	uint64_t exp[8] = {0x1919, 0x2020, 0x2121, 0x2222,
			   0x2323, 0x2424, 0x2525, 0x2626};
	uint64_t got[8] = {x19, x20, x21, x22, x23, x24, x25, x26};
	for (int i = 0; i < 8; i++)
		if (got[i] != exp[i]) {
			printf("x%d = %llx\n", 19 + i,
			       (unsigned long long)got[i]);
			bad = 1;
		}
	for (int i = 0; i < 8; i++) {
		double d;
		__builtin_memcpy(&d, &out[10 + i], 8);
		if (d != (double)(i + 1)) {
			printf("d%d = %f\n", 8 + i, d);
			bad = 1;
		}
	}
	return bad;
}
int main(void)
{
	char *st = malloc(65536);
	coev__ctx_init(&cc, st, 65536, entry, NULL);
	for (int i = 0; i < 1000; i++) {
		if (check_regs())
			return 1;
		if (fpcr_get() != 0) {
			printf("main fpcr changed\n");
			return 2;
		}
	}
	printf("aarch64 ctx ok: %ld switches round trip, regs and fpcr kept\n",
	       n);
	return n != 1000;
}
