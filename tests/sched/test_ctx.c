/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_ctx.c — the raw context switch (sched/ctx.h).
 *
 * White-box: uses coev__ctx_init / coev__ctx_switch directly on mmap'd
 * stacks, without a runtime. The sanitizer builds get the fiber annotations
 * that sched/ does for its own switches, so that ASan and TSan know which
 * stack is current; the switch itself is the library's, unchanged.
 *
 * Callee-saved registers are checked with a small assembly helper that
 * loads known values into all of them, calls coev__ctx_switch, and stores
 * what the registers hold when the switch returns; both sides of a switch
 * use it with different values.
 */
#include "tests/testutil.h"

#include <fenv.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "sched/ctx.h"

#if defined(COEV_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(COEV_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#define STACK_BYTES ((size_t)256 * 1024)

/* ---- fibers: a context, its stack, and the sanitizer annotations ------ */

typedef struct fib {
	coev__ctx_t ctx;
	void *lo; /* stack bounds; for the thread's own stack learned lazily */
	size_t size;
	void *tsan; /* TSan's fiber, or NULL */
} fib_t;

static fib_t *g_from; /* the fiber that made the last switch */

static void fib_main(fib_t *f)
{
	memset(f, 0, sizeof *f);
#if defined(COEV_TSAN)
	f->tsan = __tsan_get_current_fiber();
#endif
}

static void fib_new(fib_t *f, coev__ctx_entry entry, void *arg)
{
	memset(f, 0, sizeof *f);
	f->size = STACK_BYTES;
	f->lo = mmap(NULL, f->size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->lo != MAP_FAILED);
#if defined(COEV_TSAN)
	f->tsan = __tsan_create_fiber(0);
#endif
	coev__ctx_init(&f->ctx, f->lo, f->size, entry, arg);
}

static void fib_free(fib_t *f)
{
#if defined(COEV_ASAN)
	/* The fiber never returned from its frames: clear their poisoning. */
	__asan_unpoison_memory_region(f->lo, f->size);
#endif
#if defined(COEV_TSAN)
	__tsan_destroy_fiber(f->tsan);
#endif
	munmap(f->lo, f->size);
}

/* Before a switch from `from` to `to`; dying: `from` never runs again.
 * Inlined: TSan must see the fiber switch in the same frame as the context
 * switch, or its per-fiber shadow call stacks get out of balance. */
static inline __attribute__((always_inline)) void *
pre_switch(fib_t *from, fib_t *to, bool dying)
{
	void *fake = NULL;

	g_from = from;
#if defined(COEV_ASAN)
	__sanitizer_start_switch_fiber(dying ? NULL : &fake, to->lo, to->size);
#else
	(void)dying;
#endif
#if defined(COEV_TSAN)
	__tsan_switch_to_fiber(to->tsan, 0);
#endif
	(void)to;
	return fake;
}

/* First thing after a switch lands (also at the start of a new fiber). */
static inline __attribute__((always_inline)) void post_switch(void *fake)
{
#if defined(COEV_ASAN)
	const void *old_lo = NULL;
	size_t old_size = 0;

	__sanitizer_finish_switch_fiber(fake, &old_lo, &old_size);
	if (g_from && g_from->lo == NULL) {
		g_from->lo = (void *)old_lo;
		g_from->size = old_size;
	}
#else
	(void)fake;
#endif
}

static void fib_switch(fib_t *from, fib_t *to)
{
	void *fake = pre_switch(from, to, false);

	coev__ctx_switch(&from->ctx, &to->ctx);
	post_switch(fake);
}

static _Noreturn void fib_exit(fib_t *from, fib_t *to)
{
	pre_switch(from, to, true);
	coev__ctx_switch(&from->ctx, &to->ctx);
	abort(); /* a finished fiber is never resumed */
}

/* ---- callee-saved registers ------------------------------------------ */

#if defined(__x86_64__)
#define NREGS 6 /* rbx rbp r12 r13 r14 r15 */
static const char *const reg_names[NREGS] = {"rbx", "rbp", "r12",
					     "r13", "r14", "r15"};
/*
 * void switch_with_regs(coev__ctx_t *from, coev__ctx_t *to,
 *                       const uint64_t in[6], uint64_t out[6]);
 * Saves the caller's callee-saved registers, loads in[] into them, calls
 * coev__ctx_switch(from, to), stores the registers into out[] when it
 * returns, and restores the caller's registers.
 */
__asm__(".text\n"
	".p2align 4\n"
	".type switch_with_regs, @function\n"
	"switch_with_regs:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	pushq %rcx\n" /* out; rsp is now 16-byte aligned */
	"	movq 0(%rdx), %rbx\n"
	"	movq 8(%rdx), %rbp\n"
	"	movq 16(%rdx), %r12\n"
	"	movq 24(%rdx), %r13\n"
	"	movq 32(%rdx), %r14\n"
	"	movq 40(%rdx), %r15\n"
	"	call coev__ctx_switch\n"
	"	movq (%rsp), %rcx\n"
	"	movq %rbx, 0(%rcx)\n"
	"	movq %rbp, 8(%rcx)\n"
	"	movq %r12, 16(%rcx)\n"
	"	movq %r13, 24(%rcx)\n"
	"	movq %r14, 32(%rcx)\n"
	"	movq %r15, 40(%rcx)\n"
	"	popq %rcx\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size switch_with_regs, .-switch_with_regs\n");
#define HAVE_REG_HELPER 1
#elif defined(__aarch64__)
#define NREGS 19 /* x19..x29, d8..d15 */
static const char *const reg_names[NREGS] = {
	"x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
	"x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
/* Same contract as on x86_64, with in[]/out[] = x19..x29 then d8..d15. */
__asm__(".text\n"
	".p2align 4\n"
	".type switch_with_regs, %function\n"
	"switch_with_regs:\n"
	"	stp x29, x30, [sp, #-176]!\n"
	"	mov x29, sp\n"
	"	stp x19, x20, [sp, #16]\n"
	"	stp x21, x22, [sp, #32]\n"
	"	stp x23, x24, [sp, #48]\n"
	"	stp x25, x26, [sp, #64]\n"
	"	stp x27, x28, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	str x3, [sp, #160]\n"
	"	ldp x19, x20, [x2, #0]\n"
	"	ldp x21, x22, [x2, #16]\n"
	"	ldp x23, x24, [x2, #32]\n"
	"	ldp x25, x26, [x2, #48]\n"
	"	ldp x27, x28, [x2, #64]\n"
	"	ldr x29, [x2, #80]\n"
	"	ldp d8, d9, [x2, #88]\n"
	"	ldp d10, d11, [x2, #104]\n"
	"	ldp d12, d13, [x2, #120]\n"
	"	ldp d14, d15, [x2, #136]\n"
	"	bl coev__ctx_switch\n"
	"	ldr x3, [sp, #160]\n"
	"	stp x19, x20, [x3, #0]\n"
	"	stp x21, x22, [x3, #16]\n"
	"	stp x23, x24, [x3, #32]\n"
	"	stp x25, x26, [x3, #48]\n"
	"	stp x27, x28, [x3, #64]\n"
	"	str x29, [x3, #80]\n"
	"	stp d8, d9, [x3, #88]\n"
	"	stp d10, d11, [x3, #104]\n"
	"	stp d12, d13, [x3, #120]\n"
	"	stp d14, d15, [x3, #136]\n"
	"	ldp x19, x20, [sp, #16]\n"
	"	ldp x21, x22, [sp, #32]\n"
	"	ldp x23, x24, [sp, #48]\n"
	"	ldp x25, x26, [sp, #64]\n"
	"	ldp x27, x28, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	ldp x29, x30, [sp], #176\n"
	"	ret\n"
	".size switch_with_regs, .-switch_with_regs\n");
#define HAVE_REG_HELPER 1
#endif

#if defined(HAVE_REG_HELPER)
void switch_with_regs(coev__ctx_t *from, coev__ctx_t *to, const uint64_t *in,
		      uint64_t *out);

#define REG_ROUNDS 64

static uint64_t pattern(uint64_t side, uint64_t round, uint64_t reg)
{
	/* Distinct per side, round and register; all 64 bits in use. */
	uint64_t x = (side << 56) ^ (round << 24) ^ (reg << 8) ^ 0x5a;
	return x ^ 0x0123456789abcdefULL ^ (reg * 0x9e3779b97f4a7c15ULL);
}

static fib_t reg_main, reg_co;
static int reg_co_bad;

static void fib_switch_regs(fib_t *from, fib_t *to, const uint64_t *in,
			    uint64_t *out)
{
	void *fake = pre_switch(from, to, false);

	switch_with_regs(&from->ctx, &to->ctx, in, out);
	post_switch(fake);
}

static void reg_co_entry(void *arg)
{
	uint64_t in[NREGS], out[NREGS];

	(void)arg;
	post_switch(NULL);
	for (uint64_t r = 0; r < REG_ROUNDS; r++) {
		for (int i = 0; i < NREGS; i++)
			in[i] = pattern(2, r, (uint64_t)i);
		fib_switch_regs(&reg_co, &reg_main, in, out);
		for (int i = 0; i < NREGS; i++) {
			if (out[i] != in[i]) {
				fprintf(stderr,
					"coroutine round %d: %s was %#llx, "
					"expected %#llx\n",
					(int)r, reg_names[i],
					(unsigned long long)out[i],
					(unsigned long long)in[i]);
				reg_co_bad++;
			}
		}
	}
	fib_exit(&reg_co, &reg_main);
}

static void test_ctx_callee_saved_registers_kept(void **state)
{
	uint64_t in[NREGS], out[NREGS];
	int bad = 0;

	(void)state;
	reg_co_bad = 0;
	fib_main(&reg_main);
	fib_new(&reg_co, reg_co_entry, NULL);
	/* Round r: main loads its values and switches; the coroutine loads
	 * its own (different) values before switching back; then each side
	 * checks that it got its own values back. The last switch from main
	 * lets the coroutine finish its last check and exit. */
	for (uint64_t r = 0; r <= REG_ROUNDS; r++) {
		for (int i = 0; i < NREGS; i++)
			in[i] = pattern(1, r, (uint64_t)i);
		fib_switch_regs(&reg_main, &reg_co, in, out);
		for (int i = 0; i < NREGS; i++) {
			if (out[i] != in[i]) {
				fprintf(stderr,
					"main round %d: %s was %#llx, "
					"expected %#llx\n",
					(int)r, reg_names[i],
					(unsigned long long)out[i],
					(unsigned long long)in[i]);
				bad++;
			}
		}
	}
	fib_free(&reg_co);
	assert_int_equal(bad, 0);
	assert_int_equal(reg_co_bad, 0);
}
#endif

/* ---- floating-point control state ------------------------------------ */

#if defined(__x86_64__)
static unsigned read_mxcsr(void)
{
	unsigned v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void write_mxcsr(unsigned v)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static unsigned read_x87cw(void)
{
	unsigned short v;
	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void write_x87cw(unsigned v)
{
	unsigned short s = (unsigned short)v;
	__asm__ volatile("fldcw %0" : : "m"(s));
}

#define MXCSR_RC_MASK 0x6000u /* bits 13-14 */
#define MXCSR_FTZ 0x8000u
#define MXCSR_DAZ 0x0040u
#define MXCSR_CTRL_MASK 0xffc0u /* everything but the sticky flags */
#define X87_RC_MASK 0x0c00u	/* bits 10-11 */
#define X87_PC_MASK 0x0300u	/* bits 8-9 */
#endif

static volatile double v_one = 1.0, v_three = 3.0;

static double third(void)
{
	return v_one / v_three;
}

static fib_t fp_main, fp_co;

static struct {
	int initial_round; /* fegetround() when the coroutine started */
	int second_round;  /* fegetround() after main switched back in */
	double q_co;	   /* 1/3 rounded downwards, in the coroutine */
	unsigned initial_mxcsr, initial_x87;
	unsigned later_mxcsr, later_x87;
} fp;

static void fp_co_entry(void *arg)
{
	(void)arg;
	post_switch(NULL);
	fp.initial_round = fegetround();
#if defined(__x86_64__)
	fp.initial_mxcsr = read_mxcsr();
	fp.initial_x87 = read_x87cw();
#endif
	fesetround(FE_DOWNWARD);
	fib_switch(&fp_co, &fp_main);

	fp.second_round = fegetround();
	fp.q_co = third();
#if defined(__x86_64__)
	/* Change more than the rounding mode: flush-to-zero and
	 * denormals-are-zero in MXCSR, single precision in x87. */
	write_mxcsr(read_mxcsr() | MXCSR_FTZ | MXCSR_DAZ);
	write_x87cw(read_x87cw() & ~X87_PC_MASK);
#endif
	fib_switch(&fp_co, &fp_main);

#if defined(__x86_64__)
	fp.later_mxcsr = read_mxcsr();
	fp.later_x87 = read_x87cw();
#endif
	fib_exit(&fp_co, &fp_main);
}

static void test_ctx_fp_rounding_mode_per_context(void **state)
{
	(void)state;
	memset(&fp, 0, sizeof fp);
	fib_main(&fp_main);
	fib_new(&fp_co, fp_co_entry, NULL);

	/* The creator's mode must not leak into the new context. */
	assert_int_equal(fesetround(FE_UPWARD), 0);
#if defined(__x86_64__)
	unsigned main_mxcsr = read_mxcsr();
	unsigned main_x87 = read_x87cw();
#endif
	fib_switch(&fp_main, &fp_co);

	/* The coroutine set FE_DOWNWARD: ours is still FE_UPWARD. */
	int after_first = fegetround();
	double q_main = third();
#if defined(__x86_64__)
	unsigned mxcsr1 = read_mxcsr(), x871 = read_x87cw();
#endif
	assert_int_equal(fesetround(FE_TOWARDZERO), 0);
	fib_switch(&fp_main, &fp_co);

	/* The coroutine set FTZ/DAZ and x87 single precision. */
	int after_second = fegetround();
#if defined(__x86_64__)
	unsigned mxcsr2 = read_mxcsr(), x872 = read_x87cw();
	/* Now change ours (FTZ without DAZ, double precision) and check that
	 * the coroutine does not see it. */
	write_mxcsr((read_mxcsr() & ~MXCSR_DAZ) | MXCSR_FTZ);
	write_x87cw((read_x87cw() & ~X87_PC_MASK) | 0x0200u);
#endif
	fib_switch(&fp_main, &fp_co);
#if defined(__x86_64__)
	write_mxcsr(main_mxcsr);
	write_x87cw(main_x87);
#endif
	fesetround(FE_TONEAREST);
	fib_free(&fp_co);

	assert_int_equal(fp.initial_round, FE_TONEAREST);
	assert_int_equal(after_first, FE_UPWARD);
	assert_int_equal(fp.second_round, FE_DOWNWARD);
	assert_int_equal(after_second, FE_TOWARDZERO);
	assert_true(q_main > fp.q_co); /* rounded up vs rounded down */
#if defined(__x86_64__)
	/* A new context starts at the ABI defaults: MXCSR 0x1f80 (all
	 * exceptions masked, round to nearest) and x87 0x037f. */
	assert_int_equal(fp.initial_mxcsr & MXCSR_CTRL_MASK, 0x1f80);
	assert_int_equal(fp.initial_x87 & 0x1f3f, 0x037f & 0x1f3f);
	/* Both halves of the FP state are the creator's own again. */
	assert_int_equal(mxcsr1 & MXCSR_CTRL_MASK,
			 main_mxcsr & MXCSR_CTRL_MASK);
	assert_int_equal(x871 & 0x1f3f, main_x87 & 0x1f3f);
	assert_int_equal(mxcsr2 & MXCSR_RC_MASK, 0x6000); /* toward zero */
	assert_int_equal(x872 & X87_RC_MASK, 0x0c00);
	assert_int_equal(mxcsr2 & (MXCSR_FTZ | MXCSR_DAZ), 0);
	assert_int_equal(x872 & X87_PC_MASK, x871 & X87_PC_MASK);
	/* And the coroutine kept its FTZ/DAZ and precision. */
	assert_int_equal(fp.later_mxcsr & (MXCSR_FTZ | MXCSR_DAZ),
			 MXCSR_FTZ | MXCSR_DAZ);
	assert_int_equal(fp.later_x87 & X87_PC_MASK, 0);
	assert_int_equal(fp.later_mxcsr & MXCSR_RC_MASK, 0x2000); /* down */
	assert_int_equal(fp.later_x87 & X87_RC_MASK, 0x0400);
#endif
}

/* A new context starts at round-to-nearest whatever the creator uses, for
 * every mode the creator may be in. */
static fib_t nr_main, nr_co;
static int nr_seen;

static void nr_co_entry(void *arg)
{
	(void)arg;
	post_switch(NULL);
	nr_seen = fegetround();
	fib_exit(&nr_co, &nr_main);
}

static void test_ctx_new_context_rounds_to_nearest(void **state)
{
	static const int modes[] = {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO,
				    FE_TONEAREST};

	(void)state;
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		nr_seen = -12345;
		fib_main(&nr_main);
		fib_new(&nr_co, nr_co_entry, NULL);
		assert_int_equal(fesetround(modes[i]), 0);
		fib_switch(&nr_main, &nr_co);
		int mine = fegetround();
		fesetround(FE_TONEAREST);
		fib_free(&nr_co);
		assert_int_equal(nr_seen, FE_TONEAREST);
		assert_int_equal(mine, modes[i]);
	}
}

/* ---- entry, argument, stack placement and alignment ------------------- */

static fib_t en_main, en_co;
static struct {
	void *arg;
	uintptr_t local_addr;
	uintptr_t frame_misalign;
	char printed[64];
} en;

static TU_NOINLINE uintptr_t frame_misalignment(void)
{
	/* Forces a frame pointer: on x86_64 it is rsp-at-entry - 8 and on
	 * aarch64 the sp after the frame record, so it is 16-byte aligned
	 * iff the caller's stack was aligned per the ABI. */
	return (uintptr_t)__builtin_frame_address(0) & 15;
}

static void en_co_entry(void *arg)
{
	volatile char local = 1;

	post_switch(NULL);
	en.arg = arg;
	en.local_addr = (uintptr_t)&local;
	en.frame_misalign = frame_misalignment();
	/* Variadic calls with doubles use aligned SSE spills in glibc. */
	snprintf(en.printed, sizeof en.printed, "%.3f %g %d", 2.5, 0.125,
		 (int)local);
	fib_exit(&en_co, &en_main);
}

static void test_ctx_entry_gets_arg_and_aligned_stack(void **state)
{
	int token = 7;

	(void)state;
	memset(&en, 0, sizeof en);
	fib_main(&en_main);
	fib_new(&en_co, en_co_entry, &token);
	fib_switch(&en_main, &en_co);
	uintptr_t lo = (uintptr_t)en_co.lo;
	fib_free(&en_co);

	assert_ptr_equal(en.arg, &token);
	assert_true(en.local_addr >= lo && en.local_addr < lo + STACK_BYTES);
	assert_int_equal(en.frame_misalign, 0);
	assert_string_equal(en.printed, "2.500 0.125 1");
}

/* A stack whose top is not 16-byte aligned still gives an aligned frame. */
static void test_ctx_unaligned_stack_bounds(void **state)
{
	(void)state;
	for (size_t skew = 1; skew < 16; skew += 7) {
		memset(&en, 0, sizeof en);
		fib_main(&en_main);
		fib_new(&en_co, en_co_entry, NULL);
		/* Re-init on [lo + skew, lo + STACK_BYTES - skew). */
		coev__ctx_init(&en_co.ctx, (char *)en_co.lo + skew,
			       STACK_BYTES - 2 * skew, en_co_entry, &en);
		fib_switch(&en_main, &en_co);
		uintptr_t lo = (uintptr_t)en_co.lo;
		fib_free(&en_co);
		assert_ptr_equal(en.arg, &en);
		assert_true(en.local_addr >= lo + skew &&
			    en.local_addr < lo + STACK_BYTES - skew);
		assert_int_equal(en.frame_misalign, 0);
		assert_string_equal(en.printed, "2.500 0.125 1");
	}
}

/* ---- many switches ---------------------------------------------------- */

#define PINGPONG_ROUNDS TU_SCALE(1000000, 1000000, 1000000)

static fib_t pp_main, pp_co;
static struct {
	uint64_t shared;
	uint64_t co_local;
	uint64_t co_bad;
} pp;

static void pp_co_entry(void *arg)
{
	uint64_t mine = 0;

	(void)arg;
	post_switch(NULL);
	for (;;) {
		/* main incremented once since we last ran */
		if (pp.shared != 2 * mine + 1)
			pp.co_bad++;
		pp.shared++;
		mine++;
		pp.co_local = mine;
		if (mine == (uint64_t)PINGPONG_ROUNDS)
			break;
		fib_switch(&pp_co, &pp_main);
	}
	fib_exit(&pp_co, &pp_main);
}

static void test_ctx_many_switches_keep_counter(void **state)
{
	uint64_t bad = 0;

	(void)state;
	memset(&pp, 0, sizeof pp);
	fib_main(&pp_main);
	fib_new(&pp_co, pp_co_entry, NULL);
	for (uint64_t i = 0; i < (uint64_t)PINGPONG_ROUNDS; i++) {
		if (pp.shared != 2 * i)
			bad++;
		pp.shared++;
		fib_switch(&pp_main, &pp_co);
	}
	fib_free(&pp_co);
	assert_int_equal(bad, 0);
	assert_int_equal(pp.co_bad, 0);
	assert_int_equal(pp.shared, 2 * (uint64_t)PINGPONG_ROUNDS);
	assert_int_equal(pp.co_local, (uint64_t)PINGPONG_ROUNDS);
}

/* A ring main -> c0 -> c1 -> c2 -> main: switches between two contexts
 * that are both not the thread's own, in a fixed order. */
#define RING 3
#define RING_ROUNDS TU_SCALE(200000, 200000, 200000)

static fib_t ring_main, ring_co[RING];
static struct {
	int next; /* which context must run next: 0..RING-1, RING=main */
	uint64_t laps[RING];
	uint64_t bad;
} ring;

static void ring_entry(void *arg)
{
	int me = (int)(intptr_t)arg;

	post_switch(NULL);
	for (uint64_t lap = 0; lap < (uint64_t)RING_ROUNDS; lap++) {
		if (ring.next != me)
			ring.bad++;
		ring.laps[me]++;
		ring.next = me + 1;
		fib_t *to = me + 1 < RING ? &ring_co[me + 1] : &ring_main;
		if (lap + 1 == (uint64_t)RING_ROUNDS)
			fib_exit(&ring_co[me], to);
		fib_switch(&ring_co[me], to);
	}
	abort();
}

static void test_ctx_switch_ring_keeps_order(void **state)
{
	(void)state;
	memset(&ring, 0, sizeof ring);
	fib_main(&ring_main);
	for (int i = 0; i < RING; i++)
		fib_new(&ring_co[i], ring_entry, (void *)(intptr_t)i);
	for (uint64_t lap = 0; lap < (uint64_t)RING_ROUNDS; lap++) {
		ring.next = 0;
		fib_switch(&ring_main, &ring_co[0]);
		if (ring.next != RING)
			ring.bad++;
	}
	for (int i = 0; i < RING; i++)
		fib_free(&ring_co[i]);
	assert_int_equal(ring.bad, 0);
	for (int i = 0; i < RING; i++)
		assert_int_equal(ring.laps[i], (uint64_t)RING_ROUNDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#if defined(HAVE_REG_HELPER)
		cmocka_unit_test(test_ctx_callee_saved_registers_kept),
#endif
		cmocka_unit_test(test_ctx_fp_rounding_mode_per_context),
		cmocka_unit_test(test_ctx_new_context_rounds_to_nearest),
		cmocka_unit_test(test_ctx_entry_gets_arg_and_aligned_stack),
		cmocka_unit_test(test_ctx_unaligned_stack_bounds),
		cmocka_unit_test(test_ctx_many_switches_keep_counter),
		cmocka_unit_test(test_ctx_switch_ring_keeps_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
