/* SPDX-License-Identifier: MIT */
/*
 * sched/local.c — task-local values (coev/local.h): a table of (key,
 * value) pairs that belongs to one task and moves with it.
 *
 * Where the table lives. Not in a thread-local: a task resumes on any
 * worker, and a value read through the thread would be another task's.
 * Not wholly in the task block either: the block has 16 spare bytes (a
 * whole cache line more per task would cost every spawn). The table is a
 * struct coev__locals in task_body's frame (task.c), on the task's own
 * stack, and the block holds only a pointer to it (t->locals). The frame
 * lives exactly as long as the task runs its function, travels with the
 * stack from worker to worker, and costs no allocation: COEV__LOCAL_INLINE
 * keys fit in it; past them the slots move to a heap array that doubles.
 * Only the task itself reads or writes the table ([runner]), so no lock
 * or atomic is needed.
 *
 * Lookup is a linear scan of the slots. Programs use a handful of keys
 * per task; a scan of four to a dozen pointers is faster than hashing
 * them, and the table stays as small as its contents.
 *
 * The end. After the task's function returns (whatever made it return:
 * a result, an error, -ECANCELED after a cancellation), task_body calls
 * coev__locals_end in the task, before it switches away for the last
 * time, so a destructor runs with the task's stack and may use any coev
 * call (a cancelled task's waits then fail with -ECANCELED, as its
 * function's did). Each value is taken out of the table before its
 * destructor runs, so a destructor that reads or sets task-locals sees a
 * consistent table; what destructors set is destroyed in a further pass,
 * up to COEV__LOCAL_ROUNDS passes (pthread keys' bound, for the same
 * reason: a destructor that always sets a value would loop forever).
 * Values still set after the last pass are dropped undestroyed.
 *
 * A task that never ran set nothing; a task abandoned by a shutdown never
 * ends and keeps its values with its stack (docs/ARCHITECTURE.md, Known
 * missing).
 */
#include <stdlib.h>
#include <string.h>

#include "sched.h"

/* Passes of destructors at a task's end. */
#define COEV__LOCAL_ROUNDS 4

/* The current task's table, or NULL from a plain thread. */
static struct coev__locals *table(void)
{
	coev_task_t *t = coev__task_self();

	return t ? t->locals : NULL;
}

static struct coev__local_slot *find(struct coev__locals *l,
				     const coev_local_t *key)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->slots[i].key == key)
			return &l->slots[i];
	return NULL;
}

/* Room for one more slot: grow to a heap array twice the size. */
static int grow(struct coev__locals *l)
{
	struct coev__local_slot *s;
	unsigned cap = l->cap * 2;

	if (l->n < l->cap)
		return 0;
	if (l->slots == l->inl) {
		s = malloc(cap * sizeof *s);
		if (s)
			memcpy(s, l->inl, l->n * sizeof *s);
	} else {
		s = realloc(l->slots, cap * sizeof *s);
	}
	if (!s)
		return -ENOMEM;
	l->slots = s;
	l->cap = cap;
	return 0;
}

/* Remove slot s, keeping the others (order does not matter). */
static void drop(struct coev__locals *l, struct coev__local_slot *s)
{
	*s = l->slots[--l->n];
}

int coev_local_set(coev_local_t *key, void *value)
{
	struct coev__locals *l = table();
	struct coev__local_slot *s;
	void *old;

	if (!l)
		return COEV_ENOTCORO;
	if (!key)
		return -EINVAL;
	s = find(l, key);
	if (!s) {
		if (!value)
			return 0;
		if (grow(l) != 0)
			return -ENOMEM;
		l->slots[l->n++] = (struct coev__local_slot){key, value};
		return 0;
	}
	old = s->value;
	if (value)
		s->value = value;
	else
		drop(l, s);
	/* After the table is consistent: the destructor may use it. */
	if (old != value && key->dtor)
		key->dtor(old);
	return 0;
}

void *coev_local_get(const coev_local_t *key)
{
	struct coev__locals *l = table();
	struct coev__local_slot *s;

	if (!l || !key)
		return NULL;
	s = find(l, key);
	return s ? s->value : NULL;
}

void *coev_local_take(coev_local_t *key)
{
	struct coev__locals *l = table();
	struct coev__local_slot *s;
	void *v;

	if (!l || !key || !(s = find(l, key)))
		return NULL;
	v = s->value;
	drop(l, s);
	return v;
}

void coev__locals_end(coev_task_t *t)
{
	struct coev__locals *l = t->locals;

	for (int round = 0; round < COEV__LOCAL_ROUNDS && l->n; round++) {
		/* Only the values present when the pass began: what their
		 * destructors set waits for the next pass. */
		for (unsigned left = l->n; left && l->n; left--) {
			struct coev__local_slot s = l->slots[l->n - 1];

			l->n--;
			if (s.key->dtor)
				s.key->dtor(s.value);
		}
	}
	l->n = 0;
	if (l->slots != l->inl)
		free(l->slots);
	t->locals = NULL;
}
