/*
 * sched/stack.c — coroutine stacks: mapping, guard pages, per-worker pools,
 * the fallback when guard pages run out, and naming a stack overflow.
 *
 * Layout of one guarded stack (one mmap, two kernel mappings once the guard
 * is protected):
 *
 *   map                 lo                                     lo+size  end
 *   | guard (PROT_NONE) | usable stack, grows down  <--------  | header |
 *
 * The header (struct coev_stack) sits in the top bytes of the mapping, so a
 * stack needs no separate allocation, and only the pages a task touches
 * become resident: a task that sleeps after a few calls costs one page.
 *
 * A task takes a stack when it first runs (coev__stack_get from the running
 * worker's pool) and gives it back to the pool of the worker it ends on, so
 * a million short tasks run on a handful of stacks. A pool that grows past
 * 2 * COEV_STACK_CACHE spills COEV_STACK_CACHE stacks to the runtime's
 * shared pool (one lock per batch), and an empty pool refills from it
 * before mapping new ones, so tasks that end on another worker than they
 * started on do not make one worker map while another hoards. Stacks go
 * back to the kernel only when a worker parks (coev__stack_trim): busy
 * workers never pay for munmap and its TLB shootdowns.
 *
 * Guard pages and vm.max_map_count: each guarded stack costs two mappings
 * and the kernel's default limit is 65530 per process. Guarded stacks are
 * counted process-wide; past half the limit minus a reserve for everything
 * else (or when mmap/mprotect fails with ENOMEM), new stacks come from
 * unguarded slabs of SLAB_STACKS stacks (one mapping each), and coev says
 * so once on stderr. An unguarded stack is checked when its task ends: its
 * lowest CANARY_BYTES must still be zero (fresh anonymous memory reads as
 * zero without becoming resident, so the check costs no memory); if not,
 * the task reached the end of its stack and coev aborts naming it. Idle
 * slab stacks beyond the pool limit are returned to the kernel with
 * MADV_DONTNEED and kept for reuse.
 *
 * Stack overflow: each worker thread has an alternate signal stack, and a
 * SIGSEGV handler checks whether the fault address lies in the guard page
 * of the task running on this thread. If so it writes a message naming the
 * task (its name, id and function) and lets the fault kill the process; any
 * other fault goes to the handler that was installed before coev's.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched.h"

/* Under valgrind (COEV_VALGRIND builds) every stack is registered while it
 * is mapped: valgrind then knows a context switch for what it is, not a
 * wild jump of the stack pointer. */
#if defined(COEV_VALGRIND)
#include <valgrind/valgrind.h>
#define VG_STACK_REGISTER(s)                           \
	((s)->vg_id = VALGRIND_STACK_REGISTER((s)->lo, \
					      (char *)(s)->lo + (s)->size))
#define VG_STACK_DEREGISTER(s) VALGRIND_STACK_DEREGISTER((s)->vg_id)
#else
#define VG_STACK_REGISTER(s) ((void)0)
#define VG_STACK_DEREGISTER(s) ((void)0)
#endif

#define HEADER_BYTES 64
#define CANARY_BYTES 64
#define SLAB_STACKS 16
#define ALTSTACK_BYTES (64 * 1024)
#define MAP_RESERVE 4096

_Static_assert(sizeof(struct coev_stack) <= HEADER_BYTES,
	       "stack header too large");

struct coev_slab {
	void *map;
	size_t len;
	struct coev_slab *next;
};

static size_t page_size;
static long guard_limit;
static atomic_long guarded_live;
static atomic_bool fallback_said;
static struct sigaction old_segv;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void segv_handler(int sig, siginfo_t *si, void *uc);

static void stack_once(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long max = 65530;
	struct sigaction sa;

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	guard_limit = max > 2 * MAP_RESERVE ? (max - MAP_RESERVE) / 2 : 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
}

size_t coev__page_size(void)
{
	pthread_once(&once, stack_once);
	return page_size;
}

static void say_fallback(const char *why)
{
	/* seq_cst (plain atomic_exchange) protects no store-load order: a
	 * once flag between the threads that map stacks, against this same
	 * exchange on another thread; only its atomicity is needed. */
	if (atomic_exchange(&fallback_said, true))
		return;
	fprintf(stderr,
		"coev: %s: further coroutine stacks have no guard page "
		"(vm.max_map_count allows about %ld guarded stacks; raise it "
		"with sysctl vm.max_map_count=N to keep guards). Unguarded "
		"stacks are checked for overflow when their task ends.\n",
		why, guard_limit);
}

static struct coev_stack *header_at(void *lo, size_t size, void *map,
				    size_t map_len, bool guarded)
{
	struct coev_stack *s =
		(struct coev_stack *)((char *)lo + size - HEADER_BYTES);

	s->lo = lo;
	s->size = size - HEADER_BYTES;
	s->map = map;
	s->map_len = map_len;
	s->guarded = guarded;
	s->next = NULL;
	VG_STACK_REGISTER(s);
	return s;
}

static struct coev_stack *map_guarded(struct coev_rt *rt)
{
	size_t len = rt->stack_size + page_size;
	void *m;

	/* seq_cst (plain atomic_fetch_*) protects no store-load order: the
	 * count is a budget shared with every other mapper here and with
	 * the decrements of stack_release and pool_list_free; each RMW is
	 * atomic, which is all the budget needs, and it publishes no
	 * data. The decrements below give back this increment. */
	if (atomic_fetch_add(&guarded_live, 1) >= guard_limit) {
		atomic_fetch_sub(&guarded_live, 1);
		say_fallback("guarded stacks reached the map-count budget");
		return NULL;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
		 0);
	if (m == MAP_FAILED) {
		atomic_fetch_sub(&guarded_live, 1);
		return NULL;
	}
	if (mprotect(m, page_size, PROT_NONE) != 0) {
		munmap(m, len);
		atomic_fetch_sub(&guarded_live, 1);
		say_fallback("mprotect of a guard page failed");
		return NULL;
	}
	return header_at((char *)m + page_size, rt->stack_size, m, len, true);
}

/* Carve a new slab into rt->slab_free; returns one stack or NULL. */
static struct coev_stack *map_slab(struct coev_rt *rt)
{
	struct coev_slab *sl;
	struct coev_stack *first = NULL, *s;
	size_t len;
	void *m;

	/* Bounded by COEV_STACK_MAX; checked for 32-bit size_t. */
	if (__builtin_mul_overflow(rt->stack_size, SLAB_STACKS, &len) ||
	    !(sl = malloc(sizeof *sl)))
		return NULL;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
		 0);
	if (m == MAP_FAILED) {
		free(sl);
		return NULL;
	}
	sl->map = m;
	sl->len = len;
	pthread_mutex_lock(&rt->slab_mu);
	sl->next = rt->slabs;
	rt->slabs = sl;
	for (unsigned i = 0; i < SLAB_STACKS; i++) {
		s = header_at((char *)m + i * rt->stack_size, rt->stack_size,
			      NULL, 0, false);
		if (!first) {
			first = s;
			continue;
		}
		s->next = rt->slab_free;
		rt->slab_free = s;
	}
	pthread_mutex_unlock(&rt->slab_mu);
	return first;
}

static struct coev_stack *slab_take(struct coev_rt *rt)
{
	struct coev_stack *s;

	pthread_mutex_lock(&rt->slab_mu);
	s = rt->slab_free;
	if (s)
		rt->slab_free = s->next;
	pthread_mutex_unlock(&rt->slab_mu);
	return s ? s : map_slab(rt);
}

/* The pool length has one writer, the owner; statistics read it. */
static void pool_len_set(struct coev_worker *w, unsigned n)
{
	atomic_store_explicit(&w->stack_pool_len, n, memory_order_relaxed);
}

static unsigned pool_len(struct coev_worker *w)
{
	return atomic_load_explicit(&w->stack_pool_len, memory_order_relaxed);
}

/* Give a stack back to the kernel: unmap a guarded one; keep a slab slot
 * but return its pages, all but the top page, which holds the header
 * (madvise rounds lengths up). */
static void stack_release(struct coev_rt *rt, struct coev_stack *s)
{
	if (s->guarded) {
		VG_STACK_DEREGISTER(s);
		munmap(s->map, s->map_len);
		/* seq_cst (plain): gives back map_guarded's increment; no
		 * store-load order, as there. */
		atomic_fetch_sub(&guarded_live, 1);
		return;
	}
	madvise(s->lo, (size_t)((char *)s - (char *)s->lo) & ~(page_size - 1),
		MADV_DONTNEED);
	pthread_mutex_lock(&rt->slab_mu);
	s->next = rt->slab_free;
	rt->slab_free = s;
	pthread_mutex_unlock(&rt->slab_mu);
}

/* Move up to n stacks from w's pool to the runtime's shared pool. */
static void spill(struct coev_worker *w, unsigned n)
{
	struct coev_rt *rt = w->rt;
	struct coev_stack *first = w->stack_pool, *last = NULL, *s;
	unsigned moved = 0;

	for (s = first; s && moved < n; s = s->next) {
		last = s;
		moved++;
	}
	if (!moved)
		return;
	w->stack_pool = last->next;
	pool_len_set(w, pool_len(w) - moved);
	pthread_mutex_lock(&rt->stack_mu);
	last->next = rt->stack_pool;
	rt->stack_pool = first;
	rt->stack_pool_len += moved;
	pthread_mutex_unlock(&rt->stack_mu);
}

/* Take up to n stacks from the shared pool into w's; returns how many. */
static unsigned refill(struct coev_worker *w, unsigned n)
{
	struct coev_rt *rt = w->rt;
	struct coev_stack *s;
	unsigned got = 0;

	if (!atomic_load_explicit(&rt->stack_pool_any, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&rt->stack_mu);
	while (got < n && (s = rt->stack_pool) != NULL) {
		rt->stack_pool = s->next;
		rt->stack_pool_len--;
		s->next = w->stack_pool;
		w->stack_pool = s;
		got++;
	}
	atomic_store_explicit(&rt->stack_pool_any, rt->stack_pool != NULL,
			      memory_order_relaxed);
	pthread_mutex_unlock(&rt->stack_mu);
	pool_len_set(w, pool_len(w) + got);
	return got;
}

struct coev_stack *coev__stack_get(struct coev_worker *w)
{
	struct coev_stack *s = w->stack_pool;

	if (s || refill(w, COEV_STACK_CACHE / 2)) {
		s = w->stack_pool;
		w->stack_pool = s->next;
		pool_len_set(w, pool_len(w) - 1);
		return s;
	}
	coev__page_size();
	s = map_guarded(w->rt);
	if (!s)
		s = slab_take(w->rt);
	if (s)
		COEV_STAT_ADD(w, stacks_mapped, 1);
	return s;
}

void coev__stack_put(struct coev_worker *w, struct coev_stack *s)
{
	s->next = w->stack_pool;
	w->stack_pool = s;
	pool_len_set(w, pool_len(w) + 1);
	if (pool_len(w) > 2 * COEV_STACK_CACHE) {
		spill(w, COEV_STACK_CACHE);
		atomic_store_explicit(&w->rt->stack_pool_any, true,
				      memory_order_relaxed);
	}
}

/*
 * Called by a worker about to park: keep COEV_STACK_CACHE stacks in its
 * pool and COEV_STACK_CACHE per worker in the shared pool, and give the
 * rest back to the kernel. Trimming only when idle keeps munmap and its
 * TLB shootdowns off busy workers: trimming on every put made a fork-join
 * stress test spend 40% of its time in munmap.
 */
void coev__stack_trim(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	unsigned keep = COEV_STACK_CACHE * rt->nworkers;
	struct coev_stack *drop = NULL, *s;

	if (pool_len(w) > COEV_STACK_CACHE) {
		spill(w, pool_len(w) - COEV_STACK_CACHE);
		atomic_store_explicit(&rt->stack_pool_any, true,
				      memory_order_relaxed);
	}
	if (!atomic_load_explicit(&rt->stack_pool_any, memory_order_relaxed))
		return;
	pthread_mutex_lock(&rt->stack_mu);
	while (rt->stack_pool_len > keep && (s = rt->stack_pool) != NULL) {
		rt->stack_pool = s->next;
		rt->stack_pool_len--;
		s->next = drop;
		drop = s;
	}
	pthread_mutex_unlock(&rt->stack_mu);
	while ((s = drop) != NULL) {
		drop = s->next;
		stack_release(rt, s);
	}
}

static void pool_list_free(struct coev_stack *s)
{
	struct coev_stack *next;

	for (; s; s = next) {
		next = s->next;
		if (s->guarded) {
			VG_STACK_DEREGISTER(s);
			munmap(s->map, s->map_len);
			/* seq_cst (plain): gives back map_guarded's
			 * increment; no store-load order, as there. */
			atomic_fetch_sub(&guarded_live, 1);
		}
	}
}

void coev__stack_pool_free(struct coev_worker *w)
{
	pool_list_free(w->stack_pool);
	w->stack_pool = NULL;
	pool_len_set(w, 0);
}

/* Forget a slab's stacks before it is unmapped (valgrind builds): each
 * stack's header tops its slot. */
static void slab_deregister(struct coev_rt *rt, struct coev_slab *sl)
{
#if defined(COEV_VALGRIND)
	for (unsigned i = 1; i <= SLAB_STACKS; i++) {
		char *top = (char *)sl->map + i * rt->stack_size;
		VG_STACK_DEREGISTER((struct coev_stack *)(top - HEADER_BYTES));
	}
#else
	(void)rt;
	(void)sl;
#endif
}

/* Unmap the shared pool and every slab of rt (after all workers' pools
 * were emptied). */
void coev__stack_slabs_free(struct coev_rt *rt)
{
	struct coev_slab *sl;

	pool_list_free(rt->stack_pool);
	rt->stack_pool = NULL;
	rt->stack_pool_len = 0;

	while ((sl = rt->slabs) != NULL) {
		rt->slabs = sl->next;
		/* Kept when an abandoned task's stack may be in it. */
		if (!rt->keep_slabs) {
			slab_deregister(rt, sl);
			munmap(sl->map, sl->len);
		}
		free(sl);
	}
	rt->slab_free = NULL;
}

/* --- naming an overflow ---------------------------------------------------- */

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

/* Writes "task 7 'name' (function f)" into buf. */
static void describe_task(char *buf, size_t *n, size_t cap, coev_task_t *t)
{
	Dl_info di;

	put(buf, n, cap, "task ");
	put_u64(buf, n, cap, t->id, 10);
	if (t->name[0]) {
		put(buf, n, cap, " '");
		put(buf, n, cap, t->name);
		put(buf, n, cap, "'");
	}
	put(buf, n, cap, " (function ");
	if (dladdr((void *)(uintptr_t)t->fn, &di) && di.dli_sname) {
		put(buf, n, cap, di.dli_sname);
	} else {
		put(buf, n, cap, "0x");
		put_u64(buf, n, cap, (uintptr_t)t->fn, 16);
	}
	put(buf, n, cap, ")");
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	struct coev_worker *w = coev__tls_worker;
	coev_task_t *t = w ? w->current : NULL;
	uintptr_t a = (uintptr_t)si->si_addr, lo;
	char msg[512];
	size_t n = 0;

	if (t && t->stack && t->stack->guarded) {
		lo = (uintptr_t)t->stack->lo;
		if (a >= lo - page_size && a < lo) {
			put(msg, &n, sizeof msg, "coev: stack overflow in ");
			describe_task(msg, &n, sizeof msg, t);
			put(msg, &n, sizeof msg, " on worker ");
			put_u64(msg, &n, sizeof msg, w->index, 10);
			put(msg, &n, sizeof msg, ": its stack holds ");
			put_u64(msg, &n, sizeof msg, t->stack->size, 10);
			put(msg, &n, sizeof msg,
			    " bytes; raise coev_config_t.stack_size or "
			    "COEV_STACK_SIZE\n");
			if (write(2, msg, n) < 0)
				n = 0;
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
	for (int i = 0; i < CANARY_BYTES; i++) {
		if (p[i] == 0)
			continue;
		put(msg, &n, sizeof msg, "coev: stack overflow in ");
		describe_task(msg, &n, sizeof msg, t);
		put(msg, &n, sizeof msg,
		    ": it reached the end of an unguarded stack; raise "
		    "coev_config_t.stack_size or COEV_STACK_SIZE, or "
		    "vm.max_map_count");
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

/*
 * Debug mode's high-water mark: the bytes of s's stack that are resident,
 * counted from the top down to the lowest resident page (mincore). A
 * stack grows down, so the lowest page touched bounds what the task used;
 * coev__stack_forget drops the pages when the stack goes back to a pool,
 * so the next task's measure starts from nothing. Page granularity; a page
 * swapped out would be missed (swap is rare for a live stack).
 */
size_t coev__stack_used(const struct coev_stack *s)
{
	size_t page = coev__page_size(), npages = s->size / page;
	unsigned char vec[512];
	uintptr_t lo = (uintptr_t)s->lo;

	/* The header of a stack lies at its top, inside [lo, lo + size)
	 * (header_at): always resident, which makes the count at least one
	 * page. Walk up from the bottom in chunks. */
	for (size_t i = 0; i < npages; i += sizeof vec) {
		size_t n = npages - i < sizeof vec ? npages - i : sizeof vec;

		if (mincore((void *)(lo + i * page), n * page, vec) != 0)
			return 0;
		for (size_t k = 0; k < n; k++)
			if (vec[k] & 1)
				return s->size - (i + k) * page;
	}
	return 0;
}

void coev__stack_forget(const struct coev_stack *s)
{
	size_t page = coev__page_size();

	/* Only whole pages below the header's page. */
	if (s->size >= page)
		madvise(s->lo, s->size / page * page, MADV_DONTNEED);
}
