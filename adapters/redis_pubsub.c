/* SPDX-License-Identifier: MIT */
/*
 * adapters/redis_pubsub.c — a connection's pub/sub streams (coev/redis.h):
 * coev_redis_subscribe sends SUBSCRIBE on the owner with on_sub as the
 * callback, on_sub copies each message into the subscription's unbounded
 * channel (read by coev_redis_sub_next), coev_redis_sub_close sends
 * UNSUBSCRIBE. Why it works this way (one reply callback per subscription,
 * a pub/sub connection refusing commands, the references): redis.c's
 * comment, Pub/sub and Lifetimes.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "coev.h"
#include "coev/redis.h"
#include "redis_internal.h"

struct coev_redis_sub {
	coev_redis_t *c; /* a reference */
	atomic_uint refs;
	coev_chan_t *ch;	/* coev_redis_msg_t *, unbounded */
	coev_future_t *confirm; /* completed by the confirmation */
	atomic_int end;		/* why the stream ended, before ch closes */
	struct coev_redis_sub *next; /* [owner] c->subs */
	bool in_hiredis;	     /* [owner] hiredis calls on_sub */
	bool closing;		     /* [owner] UNSUBSCRIBE sent */
	size_t len;
	char name[];
};

static void sub_release(coev_redis_sub_t *sub)
{
	coev_redis_msg_t *m;

	if (atomic_fetch_sub_explicit(&sub->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (sub->ch) {
		coev_chan_close(sub->ch);
		while (coev_chan_try_recv(sub->ch, &m) == 0)
			free(m);
		coev_chan_free(sub->ch);
	}
	coev_future_release(sub->confirm);
	coev__redis_conn_release(sub->c);
	free(sub);
}

/* The stream is over (end: why). Any thread. */
static void sub_end(coev_redis_sub_t *sub, int end)
{
	int none = 0;

	atomic_compare_exchange_strong(&sub->end, &none, end);
	coev_future_set(sub->confirm, end);
	coev_chan_close(sub->ch);
}

/* [owner] hiredis has called on_sub for the last time. */
static void sub_finish(coev_redis_sub_t *sub, int end)
{
	coev_redis_sub_t **pp = &sub->c->subs;

	while (*pp && *pp != sub)
		pp = &(*pp)->next;
	if (*pp)
		*pp = sub->next;
	sub->in_hiredis = false;
	sub_end(sub, end);
	sub_release(sub); /* hiredis' reference */
}

static void sub_message(coev_redis_sub_t *sub, const redisReply *ch,
			const redisReply *data)
{
	coev_redis_msg_t *m;
	char *p;

	if (ch->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING)
		return;
	if (!(m = malloc(sizeof *m + ch->len + data->len + 2)))
		return; /* lost, as a message to a slow client would be */
	p = (char *)(m + 1);
	memcpy(p, ch->str, ch->len);
	p[ch->len] = '\0';
	m->channel = p;
	m->channel_len = ch->len;
	p += ch->len + 1;
	memcpy(p, data->str, data->len);
	p[data->len] = '\0';
	m->data = p;
	m->len = data->len;
	/* Refused once the user closed the subscription. */
	if (coev_chan_try_send(sub->ch, &m) != 0)
		free(m);
}

static void on_sub(redisAsyncContext *ac, void *r, void *priv)
{
	coev_redis_sub_t *sub = priv;
	redisReply *rep = r;
	const char *kind;

	if (!rep) {
		sub_finish(sub, sub->closing
					? COEV_ECLOSED
					: coev__redis_dead_err(ac->data, ac));
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		return;
	kind = rep->element[0]->str;
	if (strcasecmp(kind, "message") == 0)
		sub_message(sub, rep->element[1], rep->element[2]);
	else if (strcasecmp(kind, "subscribe") == 0)
		coev_future_set(sub->confirm, 0);
	else if (strcasecmp(kind, "unsubscribe") == 0)
		sub_finish(sub, COEV_ECLOSED);
}

/* [owner] Send SUBSCRIBE, or end the subscription with why not. */
static int sub_start(void *arg)
{
	coev_redis_sub_t *sub = arg, *s;
	coev_redis_t *c = sub->c;
	int r = 0;

	for (s = c->subs; s; s = s->next) {
		if (s->len == sub->len &&
		    memcmp(s->name, sub->name, s->len) == 0)
			break;
	}
	if (!c->ac)
		r = c->err;
	else if (coev_chan_closed(sub->ch))
		r = -ECANCELED; /* closed by a caller that gave up: too late */
	else if (s)
		r = -EEXIST;
	else if (redisAsyncCommand(c->ac, on_sub, sub, "SUBSCRIBE %b",
				   sub->name, sub->len) != REDIS_OK)
		r = -ENOTCONN;
	if (r == 0) {
		atomic_fetch_add_explicit(&sub->refs, 1, memory_order_relaxed);
		sub->in_hiredis = true;
		sub->next = c->subs;
		c->subs = sub;
		c->pubsub = true;
	} else {
		sub_end(sub, r);
	}
	sub_release(sub); /* the post's reference */
	return 0;
}

/* [owner] Send UNSUBSCRIBE; hiredis lets go at its confirmation. */
static int sub_stop(void *arg)
{
	coev_redis_sub_t *sub = arg;
	coev_redis_t *c = sub->c;

	if (sub->in_hiredis && !sub->closing && c->ac) {
		sub->closing = true;
		redisAsyncCommand(c->ac, NULL, NULL, "UNSUBSCRIBE %b",
				  sub->name, sub->len);
	}
	sub_release(sub); /* the post's reference: the user's was given */
	return 0;
}

/* Run fn(sub) on sub's owner; fn releases one reference of sub. */
static int sub_post(coev_redis_sub_t *sub, coev_fn fn)
{
	if (coev__redis_on_owner(sub->c))
		return fn(sub);
	return coev_submit(sub->c->rt, sub->c->owner, fn, sub, NULL);
}

int coev_redis_subscribe(coev_redis_t *c, const char *channel,
			 coev_time_t deadline, coev_redis_sub_t **out)
{
	size_t len = channel ? strlen(channel) : 0;
	coev_redis_sub_t *sub;
	int r, res;

	if (out)
		*out = NULL;
	if ((r = coev__redis_call_check(c)) < 0)
		return r;
	if (!channel || !out)
		return -EINVAL;
	if (!(sub = calloc(1, sizeof *sub + len + 1)))
		return -ENOMEM;
	memcpy(sub->name, channel, len);
	sub->len = len;
	sub->c = c;
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	atomic_init(&sub->refs, 2); /* the caller's and the post's */
	atomic_init(&sub->end, 0);
	if ((r = coev_chan_new(&sub->ch, sizeof(coev_redis_msg_t *),
			       COEV_CHAN_UNBOUNDED)) < 0 ||
	    (r = coev_future_new(&sub->confirm)) < 0 ||
	    (r = sub_post(sub, sub_start)) < 0) {
		if (sub->ch)
			coev_chan_close(sub->ch);
		sub_release(sub);
		sub_release(sub);
		return r;
	}
	r = coev_future_wait_dl(sub->confirm, deadline, &res);
	if (r == 0)
		r = res;
	if (r < 0) {
		coev_redis_sub_close(sub);
		return r;
	}
	*out = sub;
	return 0;
}

int coev_redis_sub_next(coev_redis_sub_t *sub, coev_time_t deadline,
			coev_redis_msg_t **msg)
{
	coev_redis_msg_t *m;
	int r;

	if (msg)
		*msg = NULL;
	if (!sub || !msg)
		return -EINVAL;
	r = coev_chan_recv_dl(sub->ch, &m, deadline);
	if (r == 0)
		*msg = m;
	else if (r == COEV_ECLOSED && atomic_load(&sub->end))
		r = atomic_load(&sub->end);
	return r;
}

void coev_redis_msg_free(coev_redis_msg_t *msg)
{
	free(msg);
}

int coev_redis_sub_close(coev_redis_sub_t *sub)
{
	if (!sub)
		return -EINVAL;
	/* Later messages are refused (and freed) by sub_message. */
	coev_chan_close(sub->ch);
	if (sub_post(sub, sub_stop) < 0)
		sub_release(sub); /* the owner is gone: just let go */
	return 0;
}
