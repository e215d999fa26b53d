/* SPDX-License-Identifier: MIT */
/*
 * coev/redis.h — Redis for tasks: hiredis' async client on a coev worker
 * (adapters/redis.c, archive libcoev_redis.a; link -lhiredis).
 *
 *     coev_redis_t *c;
 *     coev_redis_reply_t *rep;
 *     coev_redis_connect("127.0.0.1", 6379, coev_deadline(COEV_SEC(1)), &c);
 *     r = coev_redis_command(c, coev_deadline(COEV_MSEC(100)), &rep,
 *                            "INCR %s", key);
 *     ... rep->type == COEV_REDIS_INTEGER, rep->integer ...
 *     coev_redis_reply_free(rep);
 *     coev_redis_close(c);
 *
 * Rules:
 *  1. A connection belongs to the worker of the task that connected it
 *     (its owner, coev_redis_owner): hiredis runs there only, its socket is
 *     watched by that worker's loop. Commands may come from any task on
 *     any worker, and from plain threads (which block): on the owner a
 *     command goes to hiredis at once; elsewhere it is handed to the owner
 *     (batched, one hand-off per burst). A task that pins itself to the
 *     owner (coev_pin_to(coev_redis_owner(c))) always takes the direct
 *     path.
 *  2. Many tasks share one connection: their commands are pipelined (all
 *     commands issued during one turn of the owner's loop go out in one
 *     write) and each gets its own reply, in order.
 *  3. Replies are copied out of hiredis into one allocation per reply
 *     (coev_redis_reply_t, freed with coev_redis_reply_free). An error
 *     reply from the server ("-ERR ...", "-WRONGTYPE ...") is a reply of
 *     type COEV_REDIS_ERROR and the call returns 0: the connection is fine
 *     and the text is the information. Negative returns are for the
 *     transport: the connection failed, the deadline passed, the caller
 *     was cancelled.
 *  4. Deadlines are the caller's, per command; hiredis' own timers are not
 *     used. A command whose deadline passes (-ETIMEDOUT) or whose task is
 *     cancelled (-ECANCELED) may or may not have run on the server; its
 *     late reply is read in order and discarded, so the next command on
 *     the connection gets its own reply.
 *  5. When the connection fails (the server closed or reset it, a protocol
 *     error) every command waiting on it returns the error (-ECONNRESET
 *     for a closed or reset connection) and every later command returns it
 *     at once: a connection does not reconnect; connect a new one.
 *  6. Pub/sub: coev_redis_subscribe turns the connection into a pub/sub
 *     connection (hiredis' and Redis' rule) for the rest of its life, from
 *     the moment its SUBSCRIBE is sent (also when that subscribe then
 *     times out): commands on it return -EBUSY. Use another connection for PUBLISH and
 *     everything else. Each subscription is a stream of messages, buffered
 *     without bound until coev_redis_sub_next takes them.
 *  7. coev_redis_close (or _dl) may be called from any task (or plain
 *     thread) once no call on c is starting any more; calls already
 *     waiting return -ECANCELED. Subscriptions keep their own reference: close them too.
 *     Close every connection before its runtime stops.
 */
#ifndef COEV_REDIS_H
#define COEV_REDIS_H

#include <stdarg.h>
#include <stddef.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_redis coev_redis_t;

/* Reply types: the same values as hiredis' REDIS_REPLY_*. */
enum coev_redis_type {
	COEV_REDIS_STRING = 1,	/* bulk string: str, len */
	COEV_REDIS_ARRAY = 2,	/* elements, element[] */
	COEV_REDIS_INTEGER = 3, /* integer */
	COEV_REDIS_NIL = 4,	/* nil bulk string or nil array */
	COEV_REDIS_STATUS = 5,	/* "+OK": str, len */
	COEV_REDIS_ERROR = 6,	/* "-ERR ...": str, len (without the '-') */
};

/*
 * A reply, copied out of hiredis: the same shape as hiredis' redisReply.
 * str holds len bytes followed by a NUL (the bytes may contain NULs); it
 * is NULL for the types without text. The tree is one allocation: free
 * only the root, with coev_redis_reply_free.
 */
typedef struct coev_redis_reply {
	int type; /* enum coev_redis_type */
	long long integer;
	size_t len;
	char *str;
	size_t elements;
	struct coev_redis_reply **element;
} coev_redis_reply_t;

/*
 * coev_redis_connect — connect to the server at host:port (a numeric IPv4
 * or IPv6 address, or a name resolved on the blocking pool, each of its
 * addresses tried in turn) and store the connection in *out. The calling
 * task's worker becomes the connection's owner (rule 1); the task is
 * pinned there while it connects. Returns 0, -ETIMEDOUT (deadline),
 * -ECANCELED, the connect's error (-ECONNREFUSED, ...), the resolver's
 * (COEV_ENONAME, COEV_ENOADDR: see coev_resolve), -EINVAL (NULL host or
 * out, port out of range), -ENOMEM, COEV_ENOTCORO (not in a task). From a
 * task; suspends; allocates the connection.
 */
COEV_API int coev_redis_connect(const char *host, int port,
				coev_time_t deadline, coev_redis_t **out);

/*
 * coev_redis_command — send a command formatted as hiredis'
 * redisCommand formats it ("SET %s %b", key, value, value_len) and wait
 * until its reply or the deadline. On 0, *reply (when reply is not NULL)
 * is the reply, the caller's to free; a NULL reply discards it. On an
 * error *reply is NULL. Returns 0 (also for an error reply, rule 3),
 * -ETIMEDOUT, -ECANCELED, the connection's error (rule 5), -EBUSY (a
 * pub/sub connection), -EINVAL (a bad format, no command, or a command
 * that changes the connection's mode: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE,
 * their UNSUBSCRIBEs, MONITOR), -ENOMEM, -ESHUTDOWN (the runtime is
 * stopping), COEV_ENOTCORO (a worker thread outside a task). From a task
 * or a plain thread; suspends; allocates the request and the reply.
 * coev_redis_vcommand — the same with a va_list.
 * coev_redis_commandargv — the same with argc arguments argv[i] of
 * argvlen[i] bytes (argvlen NULL: strlen of each).
 */
COEV_API int coev_redis_command(coev_redis_t *c, coev_time_t deadline,
				coev_redis_reply_t **reply, const char *fmt,
				...);
COEV_API int coev_redis_vcommand(coev_redis_t *c, coev_time_t deadline,
				 coev_redis_reply_t **reply, const char *fmt,
				 va_list ap);
COEV_API int coev_redis_commandargv(coev_redis_t *c, coev_time_t deadline,
				    coev_redis_reply_t **reply, int argc,
				    const char *const *argv,
				    const size_t *argvlen);

/* coev_redis_reply_free — free a reply tree (its root). NULL is ignored. */
COEV_API void coev_redis_reply_free(coev_redis_reply_t *reply);

/*
 * coev_redis_close_dl — close c: commands still waiting return
 * -ECANCELED, the socket is closed, and c is freed (at once, or when the
 * last hand-off in flight to its owner has run). Away from the owner the
 * close is handed to it, and the call waits until the owner has closed
 * the socket or the deadline passes: -ETIMEDOUT (or -ECANCELED for a
 * cancelled caller) says the owner has not done it yet, typically because
 * a long task holds its worker; the close still happens there, and c is
 * no longer the caller's either way. Returns 0, -ETIMEDOUT, -ECANCELED,
 * -EINVAL (NULL), COEV_ENOTCORO (a loop callback away from the owner), or
 * the hand-off's error (-ESHUTDOWN, -ENOMEM: nothing was handed over; with
 * -ESHUTDOWN c is leaked, the runtime is stopping). Any task or plain
 * thread.
 * coev_redis_close — coev_redis_close_dl with COEV_FOREVER; a cancelled
 * caller stops waiting and gets 0 (the close still happens).
 */
COEV_API int coev_redis_close_dl(coev_redis_t *c, coev_time_t deadline);
COEV_API int coev_redis_close(coev_redis_t *c);

/*
 * coev_redis_owner — the index of c's owner worker (for coev_pin_to).
 * Any thread; never fails for a valid c; -EINVAL for NULL.
 */
COEV_API int coev_redis_owner(const coev_redis_t *c);

/* --- pub/sub ------------------------------------------------------------ */

typedef struct coev_redis_sub coev_redis_sub_t;

/* A published message: its channel and payload (both binary-safe, each
 * followed by a NUL). One allocation, freed with coev_redis_msg_free. */
typedef struct coev_redis_msg {
	const char *channel;
	size_t channel_len;
	const char *data;
	size_t len;
} coev_redis_msg_t;

/*
 * coev_redis_subscribe — SUBSCRIBE to channel on c and wait for the
 * server's confirmation; c becomes a pub/sub connection (rule 6). Stores
 * the subscription in *out. Returns 0, -ETIMEDOUT, -ECANCELED (nothing is
 * left subscribed then: the attempt is undone), -EEXIST (c is already
 * subscribed to channel), the connection's error, -EINVAL, -ENOMEM,
 * -ESHUTDOWN, COEV_ENOTCORO. From a task or a plain thread; suspends;
 * allocates the subscription and its channel.
 */
COEV_API int coev_redis_subscribe(coev_redis_t *c, const char *channel,
				  coev_time_t deadline, coev_redis_sub_t **out);

/*
 * coev_redis_sub_next — wait for the next message of the subscription,
 * oldest first, and store it in *msg (the caller's, coev_redis_msg_free).
 * Returns 0, -ETIMEDOUT, -ECANCELED, or, once every buffered message has
 * been taken, why the stream ended: the connection's error (rule 5),
 * -ECANCELED (c was closed). -EINVAL for NULL arguments; COEV_ENOTCORO.
 * From one task or plain thread at a time; suspends.
 */
COEV_API int coev_redis_sub_next(coev_redis_sub_t *sub, coev_time_t deadline,
				 coev_redis_msg_t **msg);

/* coev_redis_msg_free — free a message. NULL is ignored. */
COEV_API void coev_redis_msg_free(coev_redis_msg_t *msg);

/*
 * coev_redis_sub_close — end the subscription (UNSUBSCRIBE; the connection
 * stays a pub/sub connection) and free it with the messages nobody took.
 * No call on sub may be running or start. Returns 0 or -EINVAL. Any task
 * or plain thread; never waits.
 */
COEV_API int coev_redis_sub_close(coev_redis_sub_t *sub);

#ifdef __cplusplus
}
#endif

#endif
