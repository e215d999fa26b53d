/* SPDX-License-Identifier: MIT */
/*
 * adapters/redis.c — hiredis' async client on a coev worker (coev/redis.h):
 * the shape (a) adapter, "watch this fd for me".
 *
 * The model. A connection is one redisAsyncContext owned by one worker,
 * the worker of the task that connected it. hiredis' event hooks
 * (addRead/delRead/addWrite/delWrite) keep one coev_watch_t on the
 * socket wanting what hiredis wants; the watch's callback runs
 * redisAsyncHandleRead/Write on the owner's loop; the cleanup hook frees
 * the watch just before hiredis closes the socket. hiredis 0.14 has no
 * scheduleTimer hook and its connect and command timeouts are not used:
 * every deadline is the waiting caller's (below).
 *
 * Writes. hiredis calls addWrite for every command it buffers. Once
 * connected, that arms a coev_timer_t due at once instead of the watch's
 * write event: the timer fires at the owner loop's next turn and writes
 * everything buffered by then in one write(), the socket being writable
 * in the common case. Only when that write is partial (hiredis asks for
 * the write event again from inside it) does the watch wait for room.
 * Rejected: the write event for every burst. The watch is one-shot
 * underneath (one epoll_ctl to arm, one to re-arm after each fire), so it
 * cost four epoll_ctl per request where the timer leaves one (the read
 * side's re-arm); strace of the benchmark measured exactly that.
 *
 * A command is a future. The caller formats the command on its own thread
 * (redisFormatCommand: the CPU work stays with the caller) and creates a
 * future; hiredis gets the formatted bytes and a reference to the future
 * as the callback's privdata. The reply callback copies the reply out of
 * hiredis into one allocation (coev_redis_reply_t: nodes, then element
 * arrays, then string bytes), completes the future with it and drops its
 * reference. The caller waits with coev_future_await_dl: on a deadline or
 * a cancel the future is cancelled, so the late reply, which hiredis still
 * matches in order, finds a cancelled future and is freed; the next
 * command gets its own reply. When hiredis gives up the connection it
 * calls every pending callback with a NULL reply: each future is completed
 * with the connection's error, which then sticks (c->err, c->dead) and is
 * returned by every later call without touching hiredis.
 *
 * Getting a command to the owner. On the owner (a task running on that
 * worker) the command goes straight to hiredis, which appends it to its
 * output buffer: everything issued during one loop turn leaves in one
 * write (pipelining for free). Elsewhere it is
 * handed over: appended to the connection's queue under a mutex; the
 * thread that finds the queue idle posts one flush with coev_submit; the
 * flush, on the owner, takes the whole queue and feeds it to hiredis,
 * skipping commands whose waiters already gave up. So a burst of commands
 * from another worker costs one post, not one per command. Rejected:
 * coev_submit per command (a submit record, a second future and a post for
 * every command), and coev_pin_to(owner) per command: it moves the calling
 * task there and back (two cross-worker hops, as the hand-off has: the
 * command out and the wake back), it fails with -EBUSY for a task pinned
 * to another worker (for another library's handle, say), it cannot serve
 * plain threads, and it puts the formatting and copying on the owner.
 * bench/coev/redis_bench.c measures both (modes cross and cross_pinto):
 * equal within the noise of a shared two-core machine, so the choice rests
 * on those reasons. A task may still pin itself to the owner and take the
 * direct path.
 *
 * Pub/sub (redis_pubsub.c). SUBSCRIBE registers a callback whose privdata
 * is the subscription; it gets the subscribe confirmation (completing the
 * subscribe's future), the messages (copied into coev_redis_msg_t and sent
 * into an unbounded coev channel that coev_redis_sub_next reads), and at
 * the end either the unsubscribe confirmation or a NULL reply (hiredis
 * freeing the context), after which hiredis forgets it. A connection that
 * has subscribed stays a pub/sub connection: hiredis 0.14 routes replies
 * by its SUBSCRIBED flag, and a command racing an UNSUBSCRIBE would be
 * matched against the wrong list; refusing commands there (-EBUSY) is the
 * simple rule. Commands that switch hiredis' mode (SUBSCRIBE and friends,
 * MONITOR) are refused by coev_redis_command: their replies do not follow
 * the one-reply-per-callback rule the futures rely on.
 *
 * Lifetimes. A connection is reference-counted: the user's reference,
 * one per posted hand-off, one per subscription. Owner-only state
 * (hiredis, the watch) is gone once hiredis frees the context (on error,
 * or in close, which runs on the owner); the struct goes with the last
 * reference, from any thread. A subscription is counted the same way: the
 * user's reference and hiredis' (until its last callback).
 *
 * Threads. Fields marked [owner] (redis_internal.h, redis_pubsub.c) are
 * touched only on the owner's thread (its tasks and its loop callbacks,
 * which never run at the same time); [lk] under c->lk; the rest is set
 * before the connection is published and read-only after, or atomic.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
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

/* A command handed over to the owner. */
struct op {
	struct op *next;
	coev_future_t *f; /* the op's reference */
	char *cmd;	  /* formatted by hiredis; free() */
	size_t len;
};

/* --- helpers -------------------------------------------------------------- */

bool coev__redis_on_owner(const coev_redis_t *c)
{
	return coev_self() && coev_worker_id() == (int)c->owner &&
	       coev_rt_current() == c->rt;
}

/* A worker thread outside a task (a loop callback) cannot wait. */
static bool in_loop_callback(void)
{
	return coev_worker_id() >= 0 && !coev_self();
}

void coev__redis_conn_release(coev_redis_t *c)
{
	/* acq_rel: every user's last access happens before the free. */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	coev_future_release(c->connf);
	pthread_mutex_destroy(&c->lk);
	free(c);
}

/*
 * hiredis' error as a code. Its I/O errors carry only strerror's text
 * (errno may have been overwritten by the time a callback runs), so the
 * text is matched against the system's messages.
 */
static int map_err(const redisContext *rc)
{
	char buf[128];
	size_t n = strlen(rc->errstr);

	switch (rc->err) {
	case REDIS_ERR_IO:
		for (int e = 1; e < 134; e++) {
			const char *m = strerror_r(e, buf, sizeof buf);
			size_t k = strlen(m);

			if (k <= n && strcmp(rc->errstr + n - k, m) == 0)
				return e == EPIPE ? -ECONNRESET : -e;
		}
		return -EIO;
	case REDIS_ERR_EOF: return -ECONNRESET;
	case REDIS_ERR_PROTOCOL: return -EPROTO;
	case REDIS_ERR_OOM: return -ENOMEM;
	case 0: return -ECONNRESET;
	default: return -EIO;
	}
}

/* [owner] The connection's error, fixed the first time it is asked for. */
int coev__redis_dead_err(coev_redis_t *c, const redisAsyncContext *ac)
{
	if (!c->err)
		c->err = c->closing ? -ECANCELED : map_err(&ac->c);
	return c->err;
}

/* --- replies -------------------------------------------------------------- */

struct fill {
	coev_redis_reply_t *node;
	coev_redis_reply_t **ptr;
	char *bytes;
};

static bool has_text(int type)
{
	return type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS ||
	       type == REDIS_REPLY_ERROR;
}

static void reply_size(const redisReply *r, size_t *nodes, size_t *ptrs,
		       size_t *bytes)
{
	++*nodes;
	if (has_text(r->type))
		*bytes += r->len + 1;
	if (r->type == REDIS_REPLY_ARRAY) {
		*ptrs += r->elements;
		for (size_t i = 0; i < r->elements; i++)
			reply_size(r->element[i], nodes, ptrs, bytes);
	}
}

static coev_redis_reply_t *reply_fill(const redisReply *r, struct fill *fl)
{
	coev_redis_reply_t *n = fl->node++;

	memset(n, 0, sizeof *n);
	n->type = r->type;
	n->integer = r->integer;
	if (has_text(r->type)) {
		n->str = fl->bytes;
		n->len = r->len;
		memcpy(n->str, r->str, r->len);
		n->str[r->len] = '\0';
		fl->bytes += r->len + 1;
	}
	if (r->type == REDIS_REPLY_ARRAY) {
		n->elements = r->elements;
		n->element = fl->ptr;
		fl->ptr += r->elements;
		for (size_t i = 0; i < r->elements; i++)
			n->element[i] = reply_fill(r->element[i], fl);
	}
	return n;
}

/* A copy of r in one allocation, or NULL when out of memory. */
static coev_redis_reply_t *reply_copy(const redisReply *r)
{
	size_t nodes = 0, ptrs = 0, bytes = 0;
	struct fill fl;
	char *p;

	reply_size(r, &nodes, &ptrs, &bytes);
	p = malloc(nodes * sizeof *fl.node + ptrs * sizeof *fl.ptr + bytes);
	if (!p)
		return NULL;
	fl.node = (coev_redis_reply_t *)p;
	fl.ptr = (coev_redis_reply_t **)(p + nodes * sizeof *fl.node);
	fl.bytes = (char *)(fl.ptr + ptrs);
	return reply_fill(r, &fl);
}

void coev_redis_reply_free(coev_redis_reply_t *reply)
{
	free(reply);
}

/* --- hiredis' hooks and the watch ----------------------------------------- */

static void want(coev_redis_t *c, unsigned events)
{
	if (!c->wa || events == c->want)
		return;
	c->want = events;
	/* Cannot fail for a live socket that only this watch polls. */
	coev_watch_set(c->wa, events);
}

static void ev_add_read(void *p)
{
	coev_redis_t *c = p;

	want(c, c->want | COEV_READ);
}

static void ev_del_read(void *p)
{
	coev_redis_t *c = p;

	want(c, c->want & ~COEV_READ);
}

/* [owner] Write what hiredis holds; its addWrite from inside means the
 * socket is full (or not connected yet): then the watch waits for it. */
static void handle_write(coev_redis_t *c)
{
	c->in_write = true;
	redisAsyncHandleWrite(c->ac); /* may free the context */
	c->in_write = false;
}

static void flush_fire(coev_timer_t *tm, void *arg)
{
	coev_redis_t *c = arg;

	(void)tm;
	c->flush_armed = false;
	if (c->ac)
		handle_write(c);
}

static void ev_add_write(void *p)
{
	coev_redis_t *c = p;

	if (c->in_write || !(c->ac->c.flags & REDIS_CONNECTED) ||
	    (c->want & COEV_WRITE)) {
		want(c, c->want | COEV_WRITE);
	} else if (!c->flush_armed) {
		/* New commands: write them at the end of this loop turn. */
		c->flush_armed = true;
		coev_timer_set(c->flush_tm, 0);
	}
}

static void ev_del_write(void *p)
{
	coev_redis_t *c = p;

	want(c, c->want & ~COEV_WRITE);
}

/* hiredis is freeing the context: its callbacks have run, the socket is
 * closed next. */
static void ev_cleanup(void *p)
{
	coev_redis_t *c = p;

	if (!c->ac)
		return;
	coev_watch_free(c->wa);
	c->wa = NULL;
	c->want = 0;
	coev_timer_free(c->flush_tm);
	c->flush_tm = NULL;
	c->flush_armed = false;
	/* Pairs with the acquire in coev__redis_call_check. */
	atomic_store_explicit(&c->dead, coev__redis_dead_err(c, c->ac),
			      memory_order_release);
	c->ac = NULL;
}

static void on_ready(coev_watch_t *wa, int fd, unsigned events, void *arg)
{
	coev_redis_t *c = arg;

	(void)wa;
	(void)fd;
	/* Either call may free the context (c->ac becomes NULL). */
	if ((events & COEV_READ) && c->ac)
		redisAsyncHandleRead(c->ac);
	if ((events & COEV_WRITE) && c->ac)
		handle_write(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	coev_redis_t *c = ac->data;

	coev_future_set(c->connf, status == REDIS_OK ? 0 : map_err(&ac->c));
}

/* --- commands ------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	coev_future_t *f = priv;
	coev_redis_reply_t *rep;

	if (!r) {
		coev_future_set(f, coev__redis_dead_err(ac->data, ac));
	} else if (!coev_future_cancelled(f)) {
		/* A cancelled future: its waiter gave up; drop the reply. */
		if (!(rep = reply_copy(r)))
			coev_future_set(f, -ENOMEM);
		else if (coev_future_complete(f, 0, rep, free) < 0)
			free(rep);
	}
	coev_future_release(f); /* hiredis' reference */
}

/* [owner] Give one formatted command to hiredis, or complete f with why
 * not. */
static void send_cmd(coev_redis_t *c, coev_future_t *f, const char *cmd,
		     size_t len)
{
	int r = 0;

	if (!c->ac) {
		r = c->err;
	} else if (c->pubsub) {
		r = -EBUSY;
	} else if (redisAsyncFormattedCommand(c->ac, on_reply,
					      coev_future_ref(f), cmd,
					      len) != REDIS_OK) {
		coev_future_release(f);
		r = -ENOTCONN; /* hiredis is disconnecting */
	}
	if (r)
		coev_future_set(f, r);
}

static void op_free(struct op *op)
{
	free(op->cmd);
	coev_future_release(op->f);
	free(op);
}

static void ops_fail(struct op *op, int err)
{
	struct op *next;

	for (; op; op = next) {
		next = op->next;
		coev_future_set(op->f, err);
		op_free(op);
	}
}

static struct op *ops_take(coev_redis_t *c)
{
	struct op *op;

	pthread_mutex_lock(&c->lk);
	op = c->head;
	c->head = c->tail = NULL;
	c->posted = false;
	pthread_mutex_unlock(&c->lk);
	return op;
}

/* [owner] The posted flush: feed the queue to hiredis. */
static int flush(void *arg)
{
	coev_redis_t *c = arg;
	struct op *op = ops_take(c), *next;

	for (; op; op = next) {
		next = op->next;
		if (!coev_future_cancelled(op->f))
			send_cmd(c, op->f, op->cmd, op->len);
		op_free(op);
	}
	coev__redis_conn_release(c); /* the post's reference */
	return 0;
}

/* Queue cmd (now the op's) for the owner; post a flush if none is. */
static int hand_off(coev_redis_t *c, coev_future_t *f, char *cmd, size_t len)
{
	struct op *op = malloc(sizeof *op);
	bool post;
	int r;

	if (!op)
		return -ENOMEM;
	op->next = NULL;
	op->f = coev_future_ref(f);
	op->cmd = cmd;
	op->len = len;
	pthread_mutex_lock(&c->lk);
	if (c->tail)
		c->tail->next = op;
	else
		c->head = op;
	c->tail = op;
	post = !c->posted;
	c->posted = true;
	pthread_mutex_unlock(&c->lk);
	if (!post)
		return 0;
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	if ((r = coev_submit(c->rt, c->owner, flush, c, NULL)) < 0) {
		/* Nobody will flush: fail what waits, ours included. */
		ops_fail(ops_take(c), r);
		coev__redis_conn_release(c);
	}
	return 0;
}

/* Refuse what would break the one-reply-per-command rule. cmd is hiredis'
 * formatting: "*<argc>\r\n$<len>\r\n<name>\r\n...". */
static int check_cmd(const char *cmd, size_t len)
{
	static const char *const refused[] = {
		"subscribe",	"psubscribe",	"ssubscribe", "unsubscribe",
		"punsubscribe", "sunsubscribe", "monitor",
	};
	const char *p = memchr(cmd, '\n', len), *name;
	char *end;
	long n;

	if (!p || (size_t)(p + 1 - cmd) >= len || p[1] != '$')
		return -EINVAL; /* "*0\r\n": no command */
	n = strtol(p + 2, &end, 10);
	name = end + 2;
	if (n <= 0 || (size_t)(name - cmd) + (size_t)n > len)
		return -EINVAL;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (strlen(refused[i]) == (size_t)n &&
		    strncasecmp(name, refused[i], (size_t)n) == 0)
			return -EINVAL;
	}
	return 0;
}

/* What every call checks first. */
int coev__redis_call_check(coev_redis_t *c)
{
	if (!c)
		return -EINVAL;
	if (in_loop_callback())
		return COEV_ENOTCORO;
	/* Pairs with the release in ev_cleanup. */
	return atomic_load_explicit(&c->dead, memory_order_acquire);
}

/* Send cmd (formatted, len bytes or hiredis' error, now ours) and wait. */
static int command(coev_redis_t *c, coev_time_t deadline,
		   coev_redis_reply_t **reply, char *cmd, int len)
{
	coev_redis_reply_t *rep;
	coev_future_t *f;
	int r, res;

	if (len < 0)
		return len == -1 ? -ENOMEM : -EINVAL;
	if ((r = check_cmd(cmd, (size_t)len)) < 0 ||
	    (r = coev_future_new(&f)) < 0) {
		free(cmd);
		return r;
	}
	if (coev__redis_on_owner(c)) {
		send_cmd(c, f, cmd, (size_t)len);
		free(cmd);
	} else if ((r = hand_off(c, f, cmd, (size_t)len)) < 0) {
		free(cmd);
		coev_future_release(f);
		return r;
	}
	r = coev_future_await_dl(f, deadline, &res);
	if (r == 0 && res < 0)
		r = res;
	if (r == 0) {
		rep = coev_future_take(f);
		if (reply)
			*reply = rep;
		else
			free(rep);
	}
	coev_future_release(f);
	return r;
}

int coev_redis_vcommand(coev_redis_t *c, coev_time_t deadline,
			coev_redis_reply_t **reply, const char *fmt, va_list ap)
{
	char *cmd = NULL;
	int r, len;

	if (reply)
		*reply = NULL;
	if ((r = coev__redis_call_check(c)) < 0)
		return r;
	if (!fmt)
		return -EINVAL;
	len = redisvFormatCommand(&cmd, fmt, ap);
	return command(c, deadline, reply, cmd, len);
}

int coev_redis_command(coev_redis_t *c, coev_time_t deadline,
		       coev_redis_reply_t **reply, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = coev_redis_vcommand(c, deadline, reply, fmt, ap);
	va_end(ap);
	return r;
}

int coev_redis_commandargv(coev_redis_t *c, coev_time_t deadline,
			   coev_redis_reply_t **reply, int argc,
			   const char *const *argv, const size_t *argvlen)
{
	char *cmd = NULL;
	int r, len;

	if (reply)
		*reply = NULL;
	if ((r = coev__redis_call_check(c)) < 0)
		return r;
	if (argc <= 0 || !argv)
		return -EINVAL;
	len = redisFormatCommandArgv(&cmd, argc, (const char **)argv, argvlen);
	return command(c, deadline, reply, cmd, len);
}

/* --- connect and close ---------------------------------------------------- */

/* Connect to a numeric address, on the calling (pinned) task's worker. */
static int connect_addr(const char *ip, int port, coev_time_t deadline,
			coev_redis_t **out)
{
	coev_redis_t *c = calloc(1, sizeof *c);
	redisAsyncContext *ac;
	int r, res;

	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	atomic_init(&c->dead, 0);
	pthread_mutex_init(&c->lk, NULL);
	c->rt = coev_rt_current();
	c->owner = (unsigned)coev_worker_id();
	if ((r = coev_future_new(&c->connf)) < 0) {
		coev__redis_conn_release(c);
		return r;
	}
	if (!(ac = redisAsyncConnect(ip, port))) {
		coev__redis_conn_release(c);
		return -ENOMEM;
	}
	if (ac->err) {
		r = map_err(&ac->c);
		redisAsyncFree(ac);
		coev__redis_conn_release(c);
		return r;
	}
	c->ac = ac;
	ac->data = c;
	ac->ev.data = c;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	if ((r = coev_watch_new(ac->c.fd, on_ready, c, &c->wa)) < 0 ||
	    (r = coev_timer_new(flush_fire, c, &c->flush_tm)) < 0) {
		c->closing = true;
		redisAsyncFree(ac);
		coev__redis_conn_release(c);
		return r;
	}
	/* Asks for the write event: connected once the socket is writable. */
	redisAsyncSetConnectCallback(ac, on_connect);
	r = coev_future_wait_dl(c->connf, deadline, &res);
	if (r == 0)
		r = res;
	if (r < 0) {
		c->closing = true;
		if (c->ac)
			redisAsyncFree(c->ac);
		coev__redis_conn_release(c);
		return r;
	}
	*out = c;
	return 0;
}

static int connect_pinned(const char *ip, int port, coev_time_t deadline,
			  coev_redis_t **out)
{
	int r;

	if ((r = coev_pin()) < 0)
		return r;
	r = connect_addr(ip, port, deadline, out);
	coev_unpin();
	return r;
}

int coev_redis_connect(const char *host, int port, coev_time_t deadline,
		       coev_redis_t **out)
{
	struct sockaddr_storage addrs[8];
	unsigned char addr[sizeof(struct in6_addr)];
	char ip[INET6_ADDRSTRLEN];
	int r, n;

	if (!host || !out || port <= 0 || port > 65535)
		return -EINVAL;
	*out = NULL;
	if (!coev_self())
		return COEV_ENOTCORO;
	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		return connect_pinned(host, port, deadline, out);
	/* hiredis would resolve the name itself, blocking the worker: coev's
	 * resolver (c-ares when set, else the blocking pool) does it. */
	if ((n = coev_resolve(host, (unsigned)port, addrs, 8, deadline)) < 0)
		return n;
	r = COEV_ENOADDR; /* none of them usable */
	for (int i = 0; i < n; i++) {
		if (getnameinfo((struct sockaddr *)&addrs[i],
				addrs[i].ss_family == AF_INET6
					? sizeof(struct sockaddr_in6)
					: sizeof(struct sockaddr_in),
				ip, sizeof ip, NULL, 0, NI_NUMERICHOST) != 0)
			continue;
		r = connect_pinned(ip, port, deadline, out);
		if (r == 0 || r == -ETIMEDOUT || r == -ECANCELED)
			break;
	}
	return r;
}

/* [owner] Close: fail what is queued, free hiredis (its callbacks fail the
 * rest), drop the user's reference. */
static int close_on_owner(void *arg)
{
	coev_redis_t *c = arg;

	c->closing = true;
	ops_fail(ops_take(c), -ECANCELED);
	if (c->ac)
		redisAsyncFree(c->ac);
	else
		atomic_store_explicit(&c->dead, c->err, memory_order_release);
	coev__redis_conn_release(c);
	return 0;
}

/* The close is posted to the owner and happens there whatever becomes of
 * the caller: the post holds c (close_on_owner drops the user's
 * reference), so a caller that stops waiting leaves nothing behind. */
int coev_redis_close_dl(coev_redis_t *c, coev_time_t deadline)
{
	coev_future_t *f;
	int r;

	if (!c)
		return -EINVAL;
	if (coev__redis_on_owner(c))
		return close_on_owner(c);
	if (in_loop_callback())
		return COEV_ENOTCORO;
	if ((r = coev_submit(c->rt, c->owner, close_on_owner, c, &f)) < 0)
		return r;
	/* Not await: a caller that gives up must not cancel the close. */
	r = coev_future_wait_dl(f, deadline, NULL);
	coev_future_release(f);
	return r;
}

int coev_redis_close(coev_redis_t *c)
{
	int r = coev_redis_close_dl(c, COEV_FOREVER);

	/* A cancelled caller stopped waiting; the close still happens. */
	return r == -ECANCELED ? 0 : r;
}

int coev_redis_owner(const coev_redis_t *c)
{
	if (!c)
		return -EINVAL;
	return (int)c->owner;
}
