/* SPDX-License-Identifier: MIT */
/*
 * coev/local.h — task-local values: a value that belongs to the running
 * task, found through a key, and that stays with the task when it moves
 * to another worker (asyncio's contextvars, tokio's task_local!). A C
 * thread-local is wrong in a task: the task may resume on another thread
 * after any call that suspends.
 *
 * Rules:
 *  1. A key is a coev_local_t in the program's storage, usually static,
 *     made with COEV_LOCAL_INIT(dtor). It must outlive every task that
 *     set a value under it. Keys need no registration and no cleanup.
 *  2. Values are kept in the task (sched/local.c): in a small array in
 *     the task's own frame, grown on the heap past a few keys. Reading
 *     and writing them takes no lock and touches nothing shared.
 *  3. A value set under a key with a destructor belongs to the task: the
 *     destructor runs once, in the task, when the value is replaced by
 *     coev_local_set, or when the task ends (after its function returns,
 *     however it ended: a result, an error, a cancellation). A value
 *     taken back with coev_local_take is the caller's again.
 *  4. Children start with no values: a spawned task does not inherit its
 *     parent's. A value with a destructor has exactly one owner, and a
 *     copy the runtime made could not be destroyed twice; a parent hands
 *     a child what it needs through the spawn's argument.
 *  5. Only tasks have task-local values; from a plain thread every call
 *     here fails with COEV_ENOTCORO (or finds nothing).
 */
#ifndef COEV_LOCAL_H
#define COEV_LOCAL_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The destructor of a key's values: called with the value (never NULL). */
typedef void (*coev_local_dtor)(void *value);

/* A task-local key: its address names it. */
typedef struct coev_local {
	coev_local_dtor dtor; /* may be NULL: values need no cleanup */
} coev_local_t;

/* A key whose values are destroyed by dtor (or by nothing: NULL). */
#define COEV_LOCAL_INIT(dtor) \
	{                     \
		(dtor)        \
	}

/*
 * coev_local_set — make value the current task's value under key,
 * replacing (and destroying, rule 3) the one it had. NULL removes the
 * value. Returns 0, COEV_ENOTCORO from a plain thread, -EINVAL for a NULL
 * key, or -ENOMEM when the task's table had to grow and could not (the
 * old value is then kept). Tasks only; never suspends (a destructor it
 * runs may); allocates only past the task's first few keys.
 */
COEV_API int coev_local_set(coev_local_t *key, void *value);

/*
 * coev_local_get — the current task's value under key, or NULL (none set,
 * a NULL key, or not called from a task). Never suspends or allocates.
 */
COEV_API void *coev_local_get(const coev_local_t *key);

/*
 * coev_local_take — remove the current task's value under key without
 * destroying it and return it (NULL when there is none): the caller owns
 * it again. Never suspends or allocates.
 */
COEV_API void *coev_local_take(coev_local_t *key);

#ifdef __cplusplus
}
#endif

#endif
