/* SPDX-License-Identifier: MIT */
/*
 * sched/inject.c — the inject queue: an MPMC FIFO of queue entries for
 * work from outside the runtime and for overflow of the local rings, and
 * the same structure as each worker's inbox of pinned tasks. An intrusive
 * list under a mutex, with an atomic length so that "is it empty?" takes
 * no lock (sched/internal.h has the struct); batches move in and out under
 * one lock acquisition. The scheduler's policy of when to look here is in
 * sched/worker.c.
 */
#include "sched.h"

void coev__inject_push(coev__inject_t *q, coev__entry_t *first,
		       coev__entry_t *last, size_t n)
{
	COEV__POINT(PUSH);
	*coev__entry_link(last) = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		*coev__entry_link(q->tail) = first;
	else
		q->head = first;
	q->tail = last;
	atomic_store_explicit(
		&q->len,
		atomic_load_explicit(&q->len, memory_order_relaxed) + n,
		memory_order_relaxed);
	pthread_mutex_unlock(&q->mu);
}

size_t coev__inject_pop_batch(coev__inject_t *q, size_t max,
			      coev__entry_t **out)
{
	size_t n = 0;
	coev__entry_t *t, *prev = NULL;

	COEV__POINT(POP);
	if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&q->mu);
	t = q->head;
	*out = t;
	while (t && n < max) {
		prev = t;
		t = *coev__entry_link(t);
		n++;
	}
	if (prev)
		*coev__entry_link(prev) = NULL;
	q->head = t;
	if (!t)
		q->tail = NULL;
	atomic_store_explicit(
		&q->len,
		atomic_load_explicit(&q->len, memory_order_relaxed) - n,
		memory_order_relaxed);
	pthread_mutex_unlock(&q->mu);
	return n;
}

coev__entry_t *coev__inject_pop(coev__inject_t *q)
{
	coev__entry_t *t = NULL;
	return coev__inject_pop_batch(q, 1, &t) ? t : NULL;
}
