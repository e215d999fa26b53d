/* SPDX-License-Identifier: MIT */
/*
 * sched/ctx_aarch64.S — context switch for aarch64 (AAPCS64).
 *
 * Frame left on a suspended stack, from the saved sp upwards (176 bytes):
 *   +0 x19 x20  +16 x21 x22  +32 x23 x24  +48 x25 x26  +64 x27 x28
 *   +80 x29 x30(lr)  +96 d8 d9  +112 d10 d11  +128 d12 d13  +144 d14 d15
 *   +160 FPCR  +168 padding
 * coev__ctx_init() (sched/ctx.c) builds the same frame on a fresh stack with
 * the boot trampoline in x30, entry in x19 and arg in x20.
 */
	.text
	.globl	coev__ctx_switch
	.hidden	coev__ctx_switch
	.type	coev__ctx_switch, %function
	.p2align 4
coev__ctx_switch:	/* x0 = from, x1 = to */
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x10, fpcr
	str	x10, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	/* A write of FPCR can stall the pipeline, and almost every flow
	 * runs with the same value: write it only when it differs. x10 and
	 * x11 are caller-saved. */
	ldr	x11, [sp, #160]
	cmp	x10, x11
	b.eq	1f
	msr	fpcr, x11
1:
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	coev__ctx_switch, .-coev__ctx_switch

/* First code run on a new stack; x29 = 0 ends frame-pointer unwinding. */
	.globl	coev__ctx_boot
	.hidden	coev__ctx_boot
	.type	coev__ctx_boot, %function
	.p2align 4
coev__ctx_boot:
	mov	x29, #0
	mov	x0, x20
	blr	x19
	brk	#0
	.size	coev__ctx_boot, .-coev__ctx_boot

	.section .note.GNU-stack,"",%progbits
