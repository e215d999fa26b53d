/* SPDX-License-Identifier: MIT */
/*
 * adapters/redis_internal.h — what the two halves of the hiredis adapter
 * share: the connection (redis.c: hooks, commands, connect and close) and
 * the helpers its pub/sub streams (redis_pubsub.c) call. The model is in
 * redis.c's comment. Not installed.
 */
#ifndef COEV_ADAPTERS_REDIS_INTERNAL_H
#define COEV_ADAPTERS_REDIS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <hiredis/async.h>

#include "coev.h"
#include "coev/redis.h"

struct op; /* a command handed over to the owner (redis.c) */

struct coev_redis {
	coev_rt_t *rt;
	unsigned owner;
	atomic_uint refs;
	atomic_int dead; /* 0, or c->err once hiredis is gone (any thread) */

	redisAsyncContext *ac;	     /* [owner] NULL once hiredis freed it */
	coev_watch_t *wa;	     /* [owner] */
	unsigned want;		     /* [owner] events the watch wants */
	coev_timer_t *flush_tm;	     /* [owner] writes at the turn's end */
	bool flush_armed;	     /* [owner] flush_tm is set */
	bool in_write;		     /* [owner] in redisAsyncHandleWrite */
	coev_future_t *connf;	     /* completed by on_connect */
	int err;		     /* [owner] why hiredis is gone */
	bool closing;		     /* [owner] coev_redis_close has begun */
	bool pubsub;		     /* [owner] SUBSCRIBE was sent */
	struct coev_redis_sub *subs; /* [owner] hiredis holds these */

	pthread_mutex_t lk;
	struct op *head, *tail; /* [lk] handed-over commands, oldest first */
	bool posted;		/* [lk] a flush is posted and has not run */
};

/* The calling task runs on c's owner (the direct path). */
bool coev__redis_on_owner(const coev_redis_t *c);

/* Drops one reference; the last frees c. Any thread. */
void coev__redis_conn_release(coev_redis_t *c);

/* [owner] The connection's error, fixed the first time it is asked for. */
int coev__redis_dead_err(coev_redis_t *c, const redisAsyncContext *ac);

/* What every call checks first: 0, or why the call cannot go on. */
int coev__redis_call_check(coev_redis_t *c);

#endif
