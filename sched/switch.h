/* SPDX-License-Identifier: MIT */
/*
 * sched/switch.h — switching between a worker's scheduler and a task, with
 * the sanitizers told about every switch.
 *
 * AddressSanitizer must know which stack is live (start/finish_switch_fiber)
 * or it reports false stack overflows and loses fake frames; ThreadSanitizer
 * keeps one shadow state per fiber (create/switch_to/destroy_fiber). Both
 * hooks compile to nothing in plain builds, so the switch stays a few
 * instructions. Three switches exist: the scheduler to a task, a task back
 * to the scheduler of the worker it runs on, and the hand-off (task.c): a
 * parking task straight to the task its worker would run next, on the
 * same thread. A task may therefore resume from the scheduler or from
 * another task; which one is told by w->handoff_from, set by a hand-off
 * before its switch, and the sanitizers learn the scheduler's stack only
 * from a switch that came from the scheduler.
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

/* Scheduler side: run t until a task switches back, and return that task:
 * t, or the last task of a chain of hand-offs that t began. */
static inline coev_task_t *coev__switch_to_task(struct coev_worker *w,
						coev_task_t *t)
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
	t = w->current;
#if defined(COEV_ASAN)
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
#if defined(COEV_TSAN)
	if (t->yield == TY_EXIT) {
		__tsan_destroy_fiber(t->san_fiber);
		t->san_fiber = NULL;
	}
#endif
	return t;
}

/* Task side, just resumed on worker w: tell ASan which stack it came
 * from. Only a switch from the scheduler gives w's scheduler stack; a
 * hand-off came from another task (w->handoff_from is set). */
static inline void coev__switch_landed(coev_task_t *t, struct coev_worker *w)
{
#if defined(COEV_ASAN)
	if (w->handoff_from)
		__sanitizer_finish_switch_fiber(t->san_fake, NULL, NULL);
	else
		__sanitizer_finish_switch_fiber(t->san_fake, &w->san_sched_lo,
						&w->san_sched_size);
#endif
	(void)t;
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
	coev__switch_landed(t, t->worker);
}

/* Task side: a hand-off from the running task from to to, a started task
 * that was claimed on the same worker. When this returns from has been
 * resumed, as after coev__switch_to_sched. */
static inline void coev__switch_to_peer(coev_task_t *from, coev_task_t *to)
{
#if defined(COEV_ASAN)
	__sanitizer_start_switch_fiber(&from->san_fake, to->stack->lo,
				       to->stack->size);
#endif
#if defined(COEV_TSAN)
	__tsan_switch_to_fiber(to->san_fiber, 0);
#endif
	coev__ctx_switch(&from->ctx, &to->ctx);
	coev__switch_landed(from, from->worker);
}

#endif
