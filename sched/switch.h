/*
 * sched/switch.h — switching between a worker's scheduler and a task, with
 * the sanitizers told about every switch.
 *
 * AddressSanitizer must know which stack is live (start/finish_switch_fiber)
 * or it reports false stack overflows and loses fake frames; ThreadSanitizer
 * keeps one shadow state per fiber (create/switch_to/destroy_fiber). Both
 * hooks compile to nothing in plain builds, so the switch stays a few
 * instructions. Only the scheduler context and task contexts ever switch:
 * a task always returns to the scheduler of the worker it runs on, and the
 * scheduler picks the next task (no task-to-task switches).
 */
#ifndef COEV_SCHED_SWITCH_H
#define COEV_SCHED_SWITCH_H

#include "sched.h"

#if defined(COEV_ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
				    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
				     const void **bottom_old, size_t *size_old);
#endif
#if defined(COEV_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define COEV_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define COEV_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define COEV_TSAN_ACQUIRE(p) ((void)0)
#define COEV_TSAN_RELEASE(p) ((void)0)
#endif

/* On a worker thread, before its first switch. */
static inline void coev__switch_thread_init(struct coev_worker *w)
{
#if defined(COEV_TSAN)
	w->san_sched_fiber = __tsan_get_current_fiber();
#else
	(void)w;
#endif
}

/* Scheduler side: run t until it switches back. */
static inline void coev__switch_to_task(struct coev_worker *w, coev_task_t *t)
{
#if defined(COEV_ASAN)
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, t->stack->lo, t->stack->size);
#endif
#if defined(COEV_TSAN)
	if (!t->san_fiber)
		t->san_fiber = __tsan_create_fiber(0);
	__tsan_switch_to_fiber(t->san_fiber, 0);
#endif
	coev__ctx_switch(&w->sched_ctx, &t->ctx);
#if defined(COEV_ASAN)
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
#if defined(COEV_TSAN)
	if (t->yield == TY_EXIT) {
		__tsan_destroy_fiber(t->san_fiber);
		t->san_fiber = NULL;
	}
#endif
	(void)w;
}

/* Task side, first thing on a new stack: learn the scheduler's stack. */
static inline void coev__switch_task_started(coev_task_t *t)
{
#if defined(COEV_ASAN)
	__sanitizer_finish_switch_fiber(NULL, &t->worker->san_sched_lo,
					&t->worker->san_sched_size);
#endif
	(void)t;
}

/* Task side: return to the scheduler of the worker running t. When this
 * returns the task has been resumed, perhaps by another worker: t->worker
 * has been updated by that worker's scheduler. */
static inline void coev__switch_to_sched(coev_task_t *t)
{
	struct coev_worker *w = t->worker;
#if defined(COEV_ASAN)
	__sanitizer_start_switch_fiber(t->yield == TY_EXIT ? NULL
							   : &t->san_fake,
				       w->san_sched_lo, w->san_sched_size);
#endif
#if defined(COEV_TSAN)
	__tsan_switch_to_fiber(w->san_sched_fiber, 0);
#endif
	coev__ctx_switch(&t->ctx, &w->sched_ctx);
#if defined(COEV_ASAN)
	__sanitizer_finish_switch_fiber(t->san_fake, &t->worker->san_sched_lo,
					&t->worker->san_sched_size);
#endif
}

#endif
