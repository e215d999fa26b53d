/* SPDX-License-Identifier: MIT */
/*
 * tests/adapters/test_redis.c — the hiredis adapter (include/coev/redis.h)
 * against redis-server on 127.0.0.1:$COEV_REDIS_PORT (default 6390,
 * started by ci/servers.sh start), and against private redis-servers that
 * a test starts on a free port when it kills the server or blocks it with
 * DEBUG SLEEP (fork and exec; they die with the test process).
 *
 * Connect and PING (numeric address, a name, errors); reply copying
 * (strings with NUL bytes, arrays, nested arrays, nil, integers, status,
 * error replies, the argv form, a 16 MB value written and read in parts);
 * connect refused, connect timeout (a listener whose accept queue is full
 * drops our SYN) and a cancelled connect; 200 tasks on 2 workers sharing
 * one connection, every INCR's reply seen exactly once; commands from the
 * other worker and from a plain thread, close from the other worker;
 * pub/sub in order on two channels, subscribing from the other worker, a
 * subscription outliving its closed connection; the server killed with
 * commands, blocked commands and a subscription in flight (all fail, none
 * hangs, later calls fail fast, the server reaped); a command timing out
 * behind DEBUG SLEEP and one cancelled behind it, while the next commands
 * get their own replies, and a late SUBSCRIBE undone; close with commands
 * in flight on both workers; a loop callback is refused. Every test checks
 * that it leaves no fd open; ASan checks leaks.
 *
 * Keys are prefixed with "coev:test:<pid>:" and deleted by the tests.
 */
#define TU_LOOP_CALLS 1
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "coev/redis.h"

/* ---- helpers ------------------------------------------------------------ */

static int shared_port(void)
{
	const char *s = getenv("COEV_REDIS_PORT");

	return s && *s ? atoi(s) : 6390;
}

static void key_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "coev:test:%d:%s", (int)getpid(), name);
}

/* A free TCP port on 127.0.0.1 (nothing listens on it now). */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* A private redis-server, started from the test thread. */
typedef struct srv {
	pid_t pid;
	int port;
} srv_t;

static int tcp_probe(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static void srv_start(srv_t *s)
{
	char port[16];
	char *argv[] = {"redis-server",
			"--bind",
			"127.0.0.1",
			"--port",
			port,
			"--save",
			"",
			"--appendonly",
			"no",
			"--daemonize",
			"no",
			"--dir",
			"/tmp",
			"--enable-debug-command",
			"yes",
			NULL};
	pid_t parent = getpid();

	s->port = free_port();
	snprintf(port, sizeof port, "%d", s->port);
	fflush(stdout);
	fflush(stderr);
	if ((s->pid = fork()) < 0)
		fail_msg("fork: %s", strerror(errno));
	if (s->pid == 0) {
		/* Dies with the test, however the test ends. */
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(null, 1);
		dup2(null, 2);
		execvp("redis-server", argv);
		_exit(127);
	}
	for (int i = 0; i < 500 && !tcp_probe(s->port); i++)
		tu_nap_ms(10);
	if (!tcp_probe(s->port)) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		fail_msg("private redis-server on port %d never listened",
			 s->port);
	}
}

/* Kill (if still running) and reap; returns the wait status. */
static int srv_stop(srv_t *s)
{
	int st = 0;

	kill(s->pid, SIGKILL);
	assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
	return st;
}

static coev_redis_t *connect_or_fail(int port)
{
	coev_redis_t *c = NULL;
	int r = coev_redis_connect("127.0.0.1", port, tu_guard(), &c);

	TU_CHECK_MSG(r == 0, "connect to 127.0.0.1:%d: %s", port,
		     coev_strerror(r));
	return r == 0 ? c : NULL;
}

/* A command that must succeed; returns its reply (NULL on failure). */
static coev_redis_reply_t *must(coev_redis_t *c, const char *fmt, ...)
{
	coev_redis_reply_t *rep = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = coev_redis_vcommand(c, tu_guard(), &rep, fmt, ap);
	va_end(ap);
	TU_CHECK_MSG(r == 0, "%s: %s", fmt, coev_strerror(r));
	return rep;
}

static int is_str(const coev_redis_reply_t *r, int type, const char *s)
{
	return r && r->type == type && r->len == strlen(s) &&
	       memcmp(r->str, s, r->len) == 0 && r->str[r->len] == '\0';
}

static int is_int(const coev_redis_reply_t *r, long long v)
{
	return r && r->type == COEV_REDIS_INTEGER && r->integer == v;
}

static void del_key(coev_redis_t *c, const char *key)
{
	coev_redis_reply_free(must(c, "DEL %s", key));
}

static void run2(coev_fn fn, void *arg)
{
	int r = tu_run_main(fn, arg, 2);

	assert_int_equal(r, 0);
	tu_assert_no_failures();
}

/* ---- connect and PING ----------------------------------------------------- */

static int ping_main(void *arg)
{
	coev_redis_reply_t *rep;
	coev_redis_t *c, *c2 = NULL;
	int r;

	(void)arg;
	if (!(c = connect_or_fail(shared_port())))
		return 0;
	TU_CHECK_EQ(coev_redis_owner(c), coev_worker_id());
	rep = must(c, "PING");
	TU_CHECK(is_str(rep, COEV_REDIS_STATUS, "PONG"));
	coev_redis_reply_free(rep);
	TU_CHECK_EQ(coev_redis_close(c), 0);

	/* A name, resolved on the blocking pool; its addresses are tried in
	 * turn (::1 may come first and be refused). */
	r = coev_redis_connect("localhost", shared_port(), tu_guard(), &c2);
	TU_CHECK_MSG(r == 0, "localhost: %s", coev_strerror(r));
	if (r == 0) {
		rep = must(c2, "ECHO %s", "by name");
		TU_CHECK(is_str(rep, COEV_REDIS_STRING, "by name"));
		coev_redis_reply_free(rep);
		coev_redis_close(c2);
	}

	/* A deadline already past: connecting needs the loop. */
	c2 = (coev_redis_t *)&r;
	r = coev_redis_connect("127.0.0.1", shared_port(), coev_now() - 1, &c2);
	TU_CHECK_EQ(r, -ETIMEDOUT);
	TU_CHECK(c2 == NULL);

	TU_CHECK_EQ(coev_redis_connect(NULL, 1, COEV_FOREVER, &c2), -EINVAL);
	TU_CHECK_EQ(coev_redis_connect("127.0.0.1", 0, COEV_FOREVER, &c2),
		    -EINVAL);
	TU_CHECK_EQ(coev_redis_connect("127.0.0.1", 70000, COEV_FOREVER, &c2),
		    -EINVAL);
	TU_CHECK_EQ(coev_redis_command(NULL, COEV_FOREVER, NULL, "PING"),
		    -EINVAL);
	return 0;
}

static void test_redis_connect_and_ping(void **state)
{
	coev_redis_t *c = NULL;

	(void)state;
	/* Outside a task. */
	assert_int_equal(coev_redis_connect("127.0.0.1", shared_port(),
					    COEV_FOREVER, &c),
			 COEV_ENOTCORO);
	run2(ping_main, NULL);
}

/* ---- replies ---------------------------------------------------------------- */

static int replies_main(void *arg)
{
	static const char bin[] = {'a', '\0', 'b', '\0', '\0', 'c'};
	char k[128], kl[128], kn[128];
	coev_redis_reply_t *rep = NULL;
	coev_redis_t *c;
	int r;

	(void)arg;
	if (!(c = connect_or_fail(shared_port())))
		return 0;
	key_of(k, sizeof k, "str");
	key_of(kl, sizeof kl, "list");
	key_of(kn, sizeof kn, "num");

	/* A string with NUL bytes, both ways. */
	rep = must(c, "SET %s %b", k, bin, sizeof bin);
	TU_CHECK(is_str(rep, COEV_REDIS_STATUS, "OK"));
	coev_redis_reply_free(rep);
	rep = must(c, "GET %s", k);
	TU_CHECK(rep && rep->type == COEV_REDIS_STRING &&
		 rep->len == sizeof bin &&
		 memcmp(rep->str, bin, sizeof bin) == 0 &&
		 rep->str[rep->len] == '\0');
	coev_redis_reply_free(rep);

	/* The argv form, binary-safe. */
	const char *argv[] = {"APPEND", k, "x\0y"};
	const size_t argvlen[] = {6, strlen(k), 3};
	r = coev_redis_commandargv(c, tu_guard(), &rep, 3, argv, argvlen);
	TU_CHECK_EQ(r, 0);
	TU_CHECK(is_int(rep, (long long)sizeof bin + 3));
	coev_redis_reply_free(rep);
	const char *argv2[] = {"STRLEN", k};
	r = coev_redis_commandargv(c, tu_guard(), &rep, 2, argv2, NULL);
	TU_CHECK_EQ(r, 0);
	TU_CHECK(is_int(rep, (long long)sizeof bin + 3));
	coev_redis_reply_free(rep);

	/* Integers, and an error reply (returned as a reply). */
	del_key(c, kn);
	for (int i = 1; i <= 3; i++) {
		rep = must(c, "INCR %s", kn);
		TU_CHECK(is_int(rep, i));
		coev_redis_reply_free(rep);
	}
	rep = must(c, "INCR %s", k);
	TU_CHECK(rep && rep->type == COEV_REDIS_ERROR &&
		 strncmp(rep->str, "ERR", 3) == 0 &&
		 rep->len == strlen(rep->str));
	coev_redis_reply_free(rep);
	rep = must(c, "NOSUCHCOMMAND %s", "x");
	TU_CHECK(rep && rep->type == COEV_REDIS_ERROR);
	coev_redis_reply_free(rep);

	/* Nil, arrays, an empty array, nil inside an array. */
	del_key(c, kl);
	rep = must(c, "GET %s", kl);
	TU_CHECK(rep && rep->type == COEV_REDIS_NIL && rep->str == NULL);
	coev_redis_reply_free(rep);
	rep = must(c, "LRANGE %s 0 -1", kl);
	TU_CHECK(rep && rep->type == COEV_REDIS_ARRAY && rep->elements == 0);
	coev_redis_reply_free(rep);
	coev_redis_reply_free(must(c, "RPUSH %s one %b three", kl, "t\0o", 3));
	rep = must(c, "LRANGE %s 0 -1", kl);
	TU_CHECK(rep && rep->type == COEV_REDIS_ARRAY && rep->elements == 3);
	if (rep && rep->elements == 3) {
		TU_CHECK(is_str(rep->element[0], COEV_REDIS_STRING, "one"));
		TU_CHECK(rep->element[1]->len == 3 &&
			 memcmp(rep->element[1]->str, "t\0o", 3) == 0);
		TU_CHECK(is_str(rep->element[2], COEV_REDIS_STRING, "three"));
	}
	coev_redis_reply_free(rep);
	rep = must(c, "MGET %s %s:missing", kn, kl);
	TU_CHECK(rep && rep->type == COEV_REDIS_ARRAY && rep->elements == 2);
	if (rep && rep->elements == 2) {
		TU_CHECK(is_str(rep->element[0], COEV_REDIS_STRING, "3"));
		TU_CHECK(rep->element[1]->type == COEV_REDIS_NIL);
	}
	coev_redis_reply_free(rep);

	/* A nested array: [1, [2, "x"], "y"]. */
	rep = must(c, "EVAL %s 0", "return {1, {2, 'x'}, 'y'}");
	TU_CHECK(rep && rep->type == COEV_REDIS_ARRAY && rep->elements == 3);
	if (rep && rep->elements == 3) {
		coev_redis_reply_t *in = rep->element[1];

		TU_CHECK(is_int(rep->element[0], 1));
		TU_CHECK(in->type == COEV_REDIS_ARRAY && in->elements == 2);
		if (in->elements == 2) {
			TU_CHECK(is_int(in->element[0], 2));
			TU_CHECK(
				is_str(in->element[1], COEV_REDIS_STRING, "x"));
		}
		TU_CHECK(is_str(rep->element[2], COEV_REDIS_STRING, "y"));
	}
	coev_redis_reply_free(rep);

	/* A value larger than the socket buffers: hiredis writes it in
	 * parts (the watch waits for room) and reads the reply in parts. */
	size_t big_len = 16u << 20; /* > tcp_wmem max */
	char *big = malloc(big_len);
	TU_CHECK(big != NULL);
	for (size_t i = 0; big && i < big_len; i++)
		big[i] = (char)(i * 7 + i / 4096);
	rep = must(c, "SET %s %b", k, big, big_len);
	TU_CHECK(is_str(rep, COEV_REDIS_STATUS, "OK"));
	coev_redis_reply_free(rep);
	rep = must(c, "GET %s", k);
	TU_CHECK(rep && rep->type == COEV_REDIS_STRING && rep->len == big_len &&
		 memcmp(rep->str, big, big_len) == 0);
	coev_redis_reply_free(rep);
	free(big);

	/* A NULL reply pointer discards the reply. */
	TU_CHECK_EQ(coev_redis_command(c, tu_guard(), NULL, "PING"), 0);

	/* Refused: no command, a bad format, commands that change mode. */
	rep = (coev_redis_reply_t *)&r;
	TU_CHECK_EQ(coev_redis_command(c, tu_guard(), &rep, ""), -EINVAL);
	TU_CHECK(rep == NULL);
	TU_CHECK_EQ(coev_redis_command(c, tu_guard(), &rep, "SUBSCRIBE x"),
		    -EINVAL);
	TU_CHECK_EQ(coev_redis_command(c, tu_guard(), &rep, "psubscribe x"),
		    -EINVAL);
	TU_CHECK_EQ(coev_redis_command(c, tu_guard(), &rep, "MONITOR"),
		    -EINVAL);
	TU_CHECK_EQ(coev_redis_commandargv(c, tu_guard(), &rep, 0, argv, NULL),
		    -EINVAL);
	/* The connection still works. */
	rep = must(c, "ECHO %s", "still");
	TU_CHECK(is_str(rep, COEV_REDIS_STRING, "still"));
	coev_redis_reply_free(rep);

	del_key(c, k);
	del_key(c, kl);
	del_key(c, kn);
	coev_redis_close(c);
	return 0;
}

static void test_redis_reply_copies(void **state)
{
	(void)state;
	run2(replies_main, NULL);
}

/* ---- connect refused, timeout, cancelled -------------------------------- */

typedef struct hang {
	int port;
	coev_time_t deadline;
	int rc;
} hang_t;

static int connect_task(void *arg)
{
	hang_t *h = arg;
	coev_redis_t *c = NULL;

	h->rc = coev_redis_connect("127.0.0.1", h->port, h->deadline, &c);
	TU_CHECK(c == NULL);
	if (c)
		coev_redis_close(c);
	return 0;
}

static int refused_main(void *arg)
{
	hang_t *h = arg;
	coev_redis_t *c = NULL;
	coev_task_t *t;
	int r;

	r = coev_redis_connect("127.0.0.1", free_port(), tu_guard(), &c);
	TU_CHECK_EQ(r, -ECONNREFUSED);
	TU_CHECK(c == NULL);

	/* h->port's accept queue is full: the SYN is dropped, the connect
	 * hangs until the deadline. */
	coev_time_t t0 = coev_now();
	r = coev_redis_connect("127.0.0.1", h->port,
			       coev_deadline(COEV_MSEC(200)), &c);
	TU_CHECK_EQ(r, -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(200));
	TU_CHECK(c == NULL);

	/* The same, cancelled. */
	h->deadline = COEV_FOREVER;
	h->rc = 1;
	TU_CHECK_EQ(coev_spawn(connect_task, h, &t), 0);
	/* Waiting for the connect (its future). */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_FUTURE, NULL), 0);
	TU_CHECK_EQ(h->rc, 1);
	coev_cancel(t);
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), NULL), 0);
	TU_CHECK_EQ(h->rc, -ECANCELED);
	return 0;
}

static void test_redis_connect_refused_and_timeout(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int lfd, fill[4];
	hang_t h;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	/* Fill the accept queue (backlog 0 holds one connection). */
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET,
				 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
	}
	/* The first is established (in the queue), filling it. */
	struct pollfd pf = {.fd = fill[0], .events = POLLOUT};
	assert_int_equal(poll(&pf, 1, TU_GUARD_S * 1000), 1);
	h.port = ntohs(sa.sin_port);
	run2(refused_main, &h);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}

/* ---- many tasks, one connection --------------------------------------------- */

typedef struct incr {
	coev_redis_t *c;
	char key[128];
	int per_task;
	int total;
	atomic_int *seen; /* seen[v]: replies with value v */
	atomic_int cross; /* commands issued away from the owner */
	atomic_int bad;
} incr_t;

static int incr_task(void *arg)
{
	incr_t *in = arg;
	coev_redis_reply_t *rep;

	for (int i = 0; i < in->per_task; i++) {
		if (coev_worker_id() != coev_redis_owner(in->c))
			atomic_fetch_add(&in->cross, 1);
		int r = coev_redis_command(in->c, tu_guard(), &rep, "INCR %s",
					   in->key);
		if (r != 0 || rep->type != COEV_REDIS_INTEGER ||
		    rep->integer < 1 || rep->integer > in->total) {
			atomic_fetch_add(&in->bad, 1);
			TU_CHECK_MSG(0, "INCR: %s", coev_strerror(r));
		} else {
			atomic_fetch_add(&in->seen[rep->integer], 1);
		}
		coev_redis_reply_free(rep);
	}
	return 0;
}

#define INCR_TASKS 200

static int incr_main(void *arg)
{
	incr_t *in = arg;
	coev_task_t *t[INCR_TASKS];
	coev_redis_reply_t *rep;

	if (!(in->c = connect_or_fail(shared_port())))
		return 0;
	del_key(in->c, in->key);
	for (int i = 0; i < INCR_TASKS; i++)
		TU_CHECK_EQ(coev_spawn(incr_task, in, &t[i]), 0);
	for (int i = 0; i < INCR_TASKS; i++)
		TU_CHECK_EQ(coev_join_dl(t[i], tu_guard(), NULL), 0);
	rep = must(in->c, "GET %s", in->key);
	char want[32];
	snprintf(want, sizeof want, "%d", in->total);
	TU_CHECK_MSG(is_str(rep, COEV_REDIS_STRING, want), "total %s != %s",
		     rep && rep->str ? rep->str : "?", want);
	coev_redis_reply_free(rep);
	del_key(in->c, in->key);
	coev_redis_close(in->c);
	return 0;
}

static void test_redis_200_tasks_share_a_connection(void **state)
{
	incr_t *in = calloc(1, sizeof *in);

	(void)state;
	assert_non_null(in);
	key_of(in->key, sizeof in->key, "incr");
	in->per_task = TU_SCALE(500, 200, 50);
	in->total = INCR_TASKS * in->per_task;
	in->seen = calloc((size_t)in->total + 1, sizeof *in->seen);
	assert_non_null(in->seen);
	run2(incr_main, in);
	int missing = 0, dup = 0;
	for (int v = 1; v <= in->total; v++) {
		int n = atomic_load(&in->seen[v]);
		missing += n == 0;
		dup += n > 1;
	}
	assert_int_equal(atomic_load(&in->bad), 0);
	assert_int_equal(missing, 0);
	assert_int_equal(dup, 0);
	print_message("      %d of %d INCRs issued away from the owner\n",
		      atomic_load(&in->cross), in->total);
	free(in->seen);
	free(in);
}

/* ---- the other worker, a plain thread ---------------------------------------- */

typedef struct other {
	coev_redis_t *c;
	atomic_int done;
	atomic_int ok;
} other_t;

static int echo_n(coev_redis_t *c, const char *who, int n)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		char tok[64];
		coev_redis_reply_t *rep = NULL;

		snprintf(tok, sizeof tok, "%s-%d", who, i);
		int r = coev_redis_command(c, tu_guard(), &rep, "ECHO %s", tok);
		TU_CHECK_MSG(r == 0, "%s: %s", tok, coev_strerror(r));
		TU_CHECK(is_str(rep, COEV_REDIS_STRING, tok));
		ok += r == 0 && is_str(rep, COEV_REDIS_STRING, tok);
		coev_redis_reply_free(rep);
	}
	return ok;
}

static int other_task(void *arg)
{
	other_t *o = arg;
	char who[32];

	TU_CHECK_EQ(coev_pin_to(1), 0);
	TU_CHECK_EQ(coev_worker_id(), 1);
	snprintf(who, sizeof who, "task%llu",
		 (unsigned long long)coev_task_id(NULL));
	atomic_fetch_add(&o->ok, echo_n(o->c, who, 100));
	TU_CHECK_EQ(coev_worker_id(), 1);
	coev_unpin();
	return 0;
}

static void *other_thread(void *arg)
{
	other_t *o = arg;

	atomic_fetch_add(&o->ok, echo_n(o->c, "thread", 100));
	atomic_store(&o->done, 1);
	return NULL;
}

static int close_task(void *arg)
{
	other_t *o = arg;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	TU_CHECK_EQ(coev_redis_close(o->c), 0);
	coev_unpin();
	return 0;
}

static int other_main(void *arg)
{
	other_t *o = arg;
	coev_task_t *t[8];
	pthread_t th;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	if (!(o->c = connect_or_fail(shared_port())))
		return 0;
	TU_CHECK_EQ(coev_redis_owner(o->c), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, other_thread, o), 0);
	for (int i = 0; i < 8; i++)
		TU_CHECK_EQ(coev_spawn(other_task, o, &t[i]), 0);
	for (int i = 0; i < 8; i++)
		TU_CHECK_EQ(coev_join_dl(t[i], tu_guard(), NULL), 0);
	/* The thread needs worker 0 to run its commands: do not block it. */
	TU_CHECK_EQ(tu_wait_at_least(&o->done, 1), 0);
	pthread_join(th, NULL);
	TU_CHECK_EQ(atomic_load(&o->ok), 900);

	/* Closed from worker 1: waits until worker 0 closed the socket. */
	coev_task_t *ct;
	TU_CHECK_EQ(coev_spawn(close_task, o, &ct), 0);
	TU_CHECK_EQ(coev_join_dl(ct, tu_guard(), NULL), 0);
	coev_unpin();
	return 0;
}

static void test_redis_commands_from_other_worker_and_thread(void **state)
{
	other_t o;

	(void)state;
	memset(&o, 0, sizeof o);
	run2(other_main, &o);
}

/* ---- pub/sub ------------------------------------------------------------------ */

struct far_sub {
	coev_redis_t *c;
	char ch[128];
	coev_redis_sub_t *sub;
	int rc;
};

static int far_subscribe(void *arg)
{
	struct far_sub *fs = arg;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	TU_CHECK(coev_redis_owner(fs->c) != 1);
	fs->rc = coev_redis_subscribe(fs->c, fs->ch, tu_guard(), &fs->sub);
	coev_unpin();
	return 0;
}

static int far_close(void *arg)
{
	struct far_sub *fs = arg;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	TU_CHECK_EQ(coev_redis_sub_close(fs->sub), 0);
	coev_unpin();
	return 0;
}

static int pubsub_main(void *arg)
{
	char ch1[128], ch2[128];
	coev_redis_sub_t *s1 = NULL, *s2 = NULL, *dup = NULL;
	coev_redis_msg_t *m = NULL;
	coev_redis_reply_t *rep;
	coev_redis_t *a, *b;
	int n = TU_SCALE(1000, 500, 200), r;

	(void)arg;
	TU_CHECK_EQ(coev_pin_to(0), 0);
	key_of(ch1, sizeof ch1, "chan1");
	key_of(ch2, sizeof ch2, "chan2");
	if (!(a = connect_or_fail(shared_port())))
		return 0;
	if (!(b = connect_or_fail(shared_port())))
		return 0;
	TU_CHECK_EQ(coev_redis_subscribe(a, ch1, tu_guard(), &s1), 0);
	TU_CHECK_EQ(coev_redis_subscribe(a, ch2, tu_guard(), &s2), 0);
	TU_CHECK_EQ(coev_redis_subscribe(a, ch1, tu_guard(), &dup), -EEXIST);
	TU_CHECK(dup == NULL);
	/* A pub/sub connection refuses commands. */
	TU_CHECK_EQ(coev_redis_command(a, tu_guard(), &rep, "PING"), -EBUSY);
	if (!s1 || !s2)
		return 0;
	TU_CHECK_EQ(coev_redis_sub_next(s1, coev_deadline(COEV_MSEC(20)), &m),
		    -ETIMEDOUT);
	TU_CHECK(m == NULL);

	for (int i = 0; i < n; i++) {
		char p[64];
		int len = snprintf(p, sizeof p, "msg %d", i) + 1;

		/* The NUL is part of the payload. */
		rep = must(b, "PUBLISH %s %b", i % 10 == 9 ? ch2 : ch1, p,
			   (size_t)len);
		TU_CHECK(is_int(rep, 1));
		coev_redis_reply_free(rep);
	}
	for (int i = 0; i < n; i++) {
		coev_redis_sub_t *s = i % 10 == 9 ? s2 : s1;
		const char *ch = i % 10 == 9 ? ch2 : ch1;
		char p[64];
		int len = snprintf(p, sizeof p, "msg %d", i) + 1;

		r = coev_redis_sub_next(s, tu_guard(), &m);
		TU_CHECK_MSG(r == 0, "message %d: %s", i, coev_strerror(r));
		if (r)
			break;
		TU_CHECK(m->channel_len == strlen(ch) &&
			 strcmp(m->channel, ch) == 0);
		TU_CHECK_MSG(m->len == (size_t)len &&
				     memcmp(m->data, p, (size_t)len) == 0,
			     "message %d is '%s'", i, m->data);
		coev_redis_msg_free(m);
	}
	TU_CHECK_EQ(coev_redis_sub_next(s1, coev_deadline(COEV_MSEC(10)), &m),
		    -ETIMEDOUT);

	/* Closed with messages nobody took: they are freed. */
	for (int i = 0; i < 10; i++)
		coev_redis_reply_free(must(b, "PUBLISH %s x", ch2));
	TU_CHECK_EQ(coev_redis_sub_close(s2), 0);
	/* After s2's UNSUBSCRIBE, ch2 has no subscriber left. */
	for (int i = 0; i < 200; i++) {
		rep = must(b, "PUBLISH %s y", ch2);
		r = rep && rep->integer == 0;
		coev_redis_reply_free(rep);
		if (r)
			break;
		coev_sleep(COEV_MSEC(5));
	}
	TU_CHECK(r);
	TU_CHECK_EQ(coev_redis_sub_close(s1), 0);

	/* Subscribed from worker 1 (handed to a's owner); a closed while it
	 * is open: its buffered message first, then -ECANCELED. */
	struct far_sub fs = {a, {0}, NULL, 0};
	coev_task_t *ft;
	key_of(fs.ch, sizeof fs.ch, "chan3");
	TU_CHECK_EQ(coev_spawn(far_subscribe, &fs, &ft), 0);
	TU_CHECK_EQ(coev_join_dl(ft, tu_guard(), NULL), 0);
	TU_CHECK_EQ(fs.rc, 0);
	if (fs.sub) {
		rep = must(b, "PUBLISH %s last", fs.ch);
		TU_CHECK(is_int(rep, 1));
		coev_redis_reply_free(rep);
		r = coev_redis_sub_next(fs.sub, tu_guard(), &m);
		TU_CHECK_EQ(r, 0);
		TU_CHECK(r == 0 && m->len == 4 && !strcmp(m->data, "last"));
		if (r == 0)
			coev_redis_msg_free(m);
	}
	coev_redis_close(a);
	if (fs.sub) {
		TU_CHECK_EQ(coev_redis_sub_next(fs.sub, tu_guard(), &m),
			    -ECANCELED);
		TU_CHECK_EQ(coev_spawn(far_close, &fs, &ft), 0);
		TU_CHECK_EQ(coev_join_dl(ft, tu_guard(), NULL), 0);
	}
	coev_redis_close(b);
	return 0;
}

static void test_redis_pubsub_in_order(void **state)
{
	(void)state;
	run2(pubsub_main, NULL);
}

/* ---- the server killed ------------------------------------------------------- */

typedef struct kill_ctx {
	srv_t srv;
	coev_redis_t *c;       /* INCRs: never blocked */
	coev_redis_t *cb, *c1; /* BLPOPs: owned by worker 0 and 1 */
	coev_redis_t *cs;      /* pub/sub */
	coev_redis_sub_t *sub;
	atomic_int started;
	atomic_int incrs; /* successful INCRs before the kill */
	char key[128];
} kill_ctx_t;

/* INCR until an error: returns it. */
static int incr_loop_task(void *arg)
{
	kill_ctx_t *k = arg;
	coev_redis_reply_t *rep;
	int r;

	atomic_fetch_add(&k->started, 1);
	for (;;) {
		r = coev_redis_command(k->c, tu_guard(), &rep, "INCR %s",
				       k->key);
		if (r)
			break;
		TU_CHECK(rep->type == COEV_REDIS_INTEGER);
		coev_redis_reply_free(rep);
		atomic_fetch_add(&k->incrs, 1);
	}
	TU_CHECK(rep == NULL);
	return r;
}

/* BLPOP forever: certainly in flight at the kill (it blocks its
 * connection: the commands behind it wait too). */
static int blpop_task(void *arg)
{
	kill_ctx_t *k = arg;
	coev_redis_t *c = coev_worker_id() == 1 ? k->c1 : k->cb;

	atomic_fetch_add(&k->started, 1);
	return coev_redis_command(c, tu_guard(), NULL, "BLPOP %s:list 0",
				  k->key);
}

static int sub_task(void *arg)
{
	kill_ctx_t *k = arg;
	coev_redis_msg_t *m;

	atomic_fetch_add(&k->started, 1);
	return coev_redis_sub_next(k->sub, tu_guard(), &m);
}

static int c1_connect_task(void *arg)
{
	kill_ctx_t *k = arg;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	k->c1 = connect_or_fail(k->srv.port);
	coev_unpin();
	return 0;
}

#define KILL_INCR 20
#define KILL_BLPOP 6

static int kill_main(void *arg)
{
	kill_ctx_t *k = arg;
	coev_task_t *t[KILL_INCR + KILL_BLPOP + 1], *ct;
	int n = 0, ret, r;

	key_of(k->key, sizeof k->key, "killed");
	TU_CHECK_EQ(coev_pin_to(0), 0);
	k->c = connect_or_fail(k->srv.port);
	k->cb = connect_or_fail(k->srv.port);
	k->cs = connect_or_fail(k->srv.port);
	TU_CHECK_EQ(coev_spawn(c1_connect_task, k, &ct), 0);
	TU_CHECK_EQ(coev_join_dl(ct, tu_guard(), NULL), 0);
	if (!k->c || !k->cb || !k->cs || !k->c1)
		return 0;
	TU_CHECK_EQ(coev_redis_subscribe(k->cs, "killed", tu_guard(), &k->sub),
		    0);
	for (int i = 0; i < KILL_INCR; i++)
		TU_CHECK_EQ(coev_spawn(incr_loop_task, k, &t[n++]), 0);
	for (int i = 0; i < KILL_BLPOP; i++)
		TU_CHECK_EQ(coev_spawn(blpop_task, k, &t[n++]), 0);
	TU_CHECK_EQ(coev_spawn(sub_task, k, &t[n++]), 0);
	TU_CHECK_EQ(tu_wait_at_least(&k->started, n), 0);
	TU_CHECK_EQ(tu_wait_at_least(&k->incrs, 100), 0);
	/* The BLPOPs are sent: each waits for its reply. */
	for (int i = KILL_INCR; i < KILL_INCR + KILL_BLPOP; i++)
		TU_CHECK_EQ(tu_wait_parked(NULL, t[i], COEV_WAIT_FUTURE, NULL),
			    0);

	TU_CHECK_EQ(kill(k->srv.pid, SIGKILL), 0);
	for (int i = 0; i < n; i++) {
		r = coev_join_dl(t[i], tu_guard(), &ret);
		TU_CHECK_MSG(r == 0, "task %d hangs", i);
		TU_CHECK_MSG(ret == -ECONNRESET, "task %d: %s", i,
			     coev_strerror(ret));
	}
	/* Later calls fail at once, also on a pub/sub connection. */
	TU_CHECK_EQ(coev_redis_command(k->c, tu_guard(), NULL, "PING"),
		    -ECONNRESET);
	TU_CHECK_EQ(coev_redis_command(k->c1, tu_guard(), NULL, "PING"),
		    -ECONNRESET);
	coev_redis_msg_t *m;
	TU_CHECK_EQ(coev_redis_sub_next(k->sub, tu_guard(), &m), -ECONNRESET);
	coev_redis_sub_t *s2;
	TU_CHECK_EQ(coev_redis_subscribe(k->cs, "again", tu_guard(), &s2),
		    -ECONNRESET);
	coev_redis_sub_close(k->sub);
	coev_redis_close(k->c);
	coev_redis_close(k->cb);
	coev_redis_close(k->c1);
	coev_redis_close(k->cs);
	coev_unpin();
	return 0;
}

static void test_redis_server_killed_mid_command(void **state)
{
	kill_ctx_t *k = calloc(1, sizeof *k);

	(void)state;
	assert_non_null(k);
	srv_start(&k->srv);
	run2(kill_main, k);
	int st = srv_stop(&k->srv);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	free(k);
}

/* ---- deadlines and cancellation behind DEBUG SLEEP ------------------------- */

typedef struct slow {
	coev_redis_t *c;
	char tok[32];
	coev_time_t deadline;
	int rc;
	int own; /* 1: the reply was the ECHO of tok */
} slow_t;

static int echo_task(void *arg)
{
	slow_t *s = arg;
	coev_redis_reply_t *rep = NULL;

	s->rc = coev_redis_command(s->c, s->deadline, &rep, "ECHO %s", s->tok);
	s->own = is_str(rep, COEV_REDIS_STRING, s->tok);
	coev_redis_reply_free(rep);
	return 0;
}

static int sleep_task(void *arg)
{
	slow_t *s = arg;
	coev_redis_reply_t *rep = NULL;

	s->rc = coev_redis_command(s->c, s->deadline, &rep, "DEBUG SLEEP %s",
				   s->tok);
	TU_CHECK(s->rc != 0 || rep != NULL);
	TU_CHECK(s->rc == 0 || rep == NULL);
	coev_redis_reply_free(rep);
	return 0;
}

#define SLOW_ECHO 8

static int slow_main(void *arg)
{
	srv_t *srv = arg;
	slow_t sl, e[SLOW_ECHO];
	coev_task_t *st, *et[SLOW_ECHO];
	coev_redis_reply_t *rep = NULL;
	coev_redis_t *c;
	int r;

	if (!(c = connect_or_fail(srv->port)))
		return 0;
	/* A 100 ms deadline on a 0.5 s command. */
	r = coev_redis_command(c, coev_deadline(COEV_MSEC(100)), &rep,
			       "DEBUG SLEEP 0.5");
	TU_CHECK_EQ(r, -ETIMEDOUT);
	TU_CHECK(rep == NULL);
	/* The late "+OK" is discarded: ECHO gets its own reply. */
	rep = must(c, "ECHO %s", "after-timeout");
	TU_CHECK(is_str(rep, COEV_REDIS_STRING, "after-timeout"));
	coev_redis_reply_free(rep);

	/* Commands pipelined behind a sleep, some giving up: the others get
	 * their own replies, from tasks on both workers. */
	memset(&sl, 0, sizeof sl);
	sl.c = c;
	strcpy(sl.tok, "0.3");
	sl.deadline = coev_deadline(COEV_MSEC(50));
	TU_CHECK_EQ(coev_spawn(sleep_task, &sl, &st), 0);
	/* Its command is first in the pipeline: it waits for the reply. */
	TU_CHECK_EQ(tu_wait_parked(NULL, st, COEV_WAIT_FUTURE, NULL), 0);
	for (int i = 0; i < SLOW_ECHO; i++) {
		memset(&e[i], 0, sizeof e[i]);
		e[i].c = c;
		snprintf(e[i].tok, sizeof e[i].tok, "echo-%d", i);
		e[i].deadline =
			i % 2 ? coev_deadline(COEV_MSEC(50)) : tu_guard();
		TU_CHECK_EQ(coev_spawn(echo_task, &e[i], &et[i]), 0);
	}
	TU_CHECK_EQ(coev_join_dl(st, tu_guard(), NULL), 0);
	TU_CHECK_EQ(sl.rc, -ETIMEDOUT);
	for (int i = 0; i < SLOW_ECHO; i++) {
		TU_CHECK_EQ(coev_join_dl(et[i], tu_guard(), NULL), 0);
		if (i % 2) {
			TU_CHECK_EQ(e[i].rc, -ETIMEDOUT);
		} else {
			TU_CHECK_EQ(e[i].rc, 0);
			TU_CHECK_MSG(e[i].own, "echo %d got another reply", i);
		}
	}

	/* Cancelled while its reply is late. */
	memset(&sl, 0, sizeof sl);
	sl.c = c;
	strcpy(sl.tok, "0.3");
	sl.deadline = COEV_FOREVER;
	TU_CHECK_EQ(coev_spawn(sleep_task, &sl, &st), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, st, COEV_WAIT_FUTURE, NULL), 0);
	coev_cancel(st);
	TU_CHECK_EQ(coev_join_dl(st, tu_guard(), NULL), 0);
	TU_CHECK_EQ(sl.rc, -ECANCELED);
	rep = must(c, "ECHO %s", "after-cancel");
	TU_CHECK(is_str(rep, COEV_REDIS_STRING, "after-cancel"));
	coev_redis_reply_free(rep);

	/* A SUBSCRIBE whose confirmation is late is undone: once the server
	 * wakes, the channel has no subscriber. */
	coev_redis_t *c2 = connect_or_fail(srv->port);
	coev_redis_sub_t *sub = NULL;
	if (c2) {
		memset(&sl, 0, sizeof sl);
		sl.c = c;
		strcpy(sl.tok, "0.3");
		sl.deadline = tu_guard();
		TU_CHECK_EQ(coev_spawn(sleep_task, &sl, &st), 0);
		coev_sleep(COEV_MSEC(20));
		r = coev_redis_subscribe(c2, "late",
					 coev_deadline(COEV_MSEC(50)), &sub);
		TU_CHECK_EQ(r, -ETIMEDOUT);
		TU_CHECK(sub == NULL);
		TU_CHECK_EQ(coev_join_dl(st, tu_guard(), NULL), 0);
		TU_CHECK_EQ(sl.rc, 0);
		/* Without the undo, c2's SUBSCRIBE would count by now. */
		coev_sleep(COEV_MSEC(50));
		rep = must(c, "PUBSUB NUMSUB %s", "late");
		TU_CHECK(rep && rep->type == COEV_REDIS_ARRAY &&
			 rep->elements == 2 && is_int(rep->element[1], 0));
		coev_redis_reply_free(rep);
		/* A pub/sub connection from its first SUBSCRIBE on. */
		TU_CHECK_EQ(coev_redis_command(c2, tu_guard(), NULL, "PING"),
			    -EBUSY);
		coev_redis_close(c2);
	}
	coev_redis_close(c);
	return 0;
}

static void test_redis_deadline_and_cancel_keep_replies_in_order(void **state)
{
	srv_t srv;

	(void)state;
	srv_start(&srv);
	run2(slow_main, &srv);
	srv_stop(&srv);
}

/* ---- close with commands in flight ------------------------------------------ */

typedef struct inflight {
	coev_redis_t *c;
	char key[128];
	atomic_int sent;
	int pin; /* worker to run on */
} inflight_t;

static int inflight_task(void *arg)
{
	inflight_t *f = arg;
	int r;

	TU_CHECK_EQ(coev_pin_to((unsigned)f->pin), 0);
	atomic_fetch_add(&f->sent, 1);
	r = coev_redis_command(f->c, tu_guard(), NULL, "BLPOP %s 0", f->key);
	coev_unpin();
	return r;
}

static int inflight_closer(void *arg)
{
	inflight_t *f = arg;

	TU_CHECK_EQ(coev_pin_to((unsigned)f->pin), 0);
	TU_CHECK_EQ(coev_redis_close(f->c), 0);
	coev_unpin();
	return 0;
}

static int inflight_main(void *arg)
{
	inflight_t f[2];
	coev_task_t *t[10], *ct;
	int ret;

	(void)arg;
	TU_CHECK_EQ(coev_pin_to(0), 0);
	/* Round 0 closes from the owner, round 1 from worker 1. */
	for (int round = 0; round < 2; round++) {
		inflight_t *in = &f[round];

		memset(in, 0, sizeof *in);
		key_of(in->key, sizeof in->key, "inflight");
		if (!(in->c = connect_or_fail(shared_port())))
			return 0;
		for (int i = 0; i < 10; i++) {
			in->pin = i % 2;
			TU_CHECK_EQ(coev_spawn(inflight_task, in, &t[i]), 0);
			coev_yield();
		}
		TU_CHECK_EQ(tu_wait_at_least(&in->sent, 10), 0);
		/* All ten wait for their replies. */
		for (int i = 0; i < 10; i++)
			TU_CHECK_EQ(tu_wait_parked(NULL, t[i], COEV_WAIT_FUTURE,
						   NULL),
				    0);
		in->pin = round;
		TU_CHECK_EQ(coev_spawn(inflight_closer, in, &ct), 0);
		TU_CHECK_EQ(coev_join_dl(ct, tu_guard(), NULL), 0);
		for (int i = 0; i < 10; i++) {
			TU_CHECK_EQ(coev_join_dl(t[i], tu_guard(), &ret), 0);
			TU_CHECK_MSG(ret == -ECANCELED, "round %d task %d: %s",
				     round, i, coev_strerror(ret));
		}
	}
	coev_unpin();
	return 0;
}

static void test_redis_close_with_commands_in_flight(void **state)
{
	(void)state;
	run2(inflight_main, NULL);
}

/* ---- close with the owner busy ---------------------------------------------- */

/*
 * The owner's worker busy in a long task (a task pinned there that spins
 * without suspending until released), and a close from the other
 * worker with a 100 ms deadline: it returns -ETIMEDOUT within a generous
 * ratio of the deadline, and the close still happens on the owner once
 * it is free (a post made after it runs after it; the fd check and ASan
 * see the rest).
 */
#include "tests/adapters/owner_busy.h"

static int close_dl(void *c, coev_time_t deadline)
{
	return coev_redis_close_dl(c, deadline);
}

static int busy_close_main(void *arg)
{
	coev_redis_t *c;
	coev_time_t took;
	int r;

	(void)arg;
	TU_CHECK_EQ(coev_pin_to(0), 0);
	c = connect_or_fail(shared_port());
	TU_CHECK_EQ(coev_unpin(), 0);
	if (!c)
		return 0;
	coev_redis_reply_free(must(c, "PING"));
	r = with_owner_busy(close_dl, c, &took);
	check_timed_out("coev_redis_close_dl", r, took);
	return 0;
}

/* Proves: coev_redis_close_dl is bounded by its deadline when the owner's
 * worker is busy; the connection is still closed (no fd left). */
static void test_redis_close_dl_with_owner_busy(void **state)
{
	(void)state;
	run2(busy_close_main, NULL);
}

/* ---- a loop callback cannot wait ------------------------------------------- */

static void loop_cmd(void *arg)
{
	TU_CHECK_EQ(coev_redis_command(arg, COEV_FOREVER, NULL, "PING"),
		    COEV_ENOTCORO);
}

static int loop_main(void *arg)
{
	coev_redis_t *c;

	(void)arg;
	if (!(c = connect_or_fail(shared_port())))
		return 0;
	TU_CHECK_EQ(tu_on_loop(loop_cmd, c), 0);
	coev_redis_close(c);
	return 0;
}

static void test_redis_loop_callback_refused(void **state)
{
	(void)state;
	run2(loop_main, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_redis_connect_and_ping),
		TU_FD_TEST(test_redis_reply_copies),
		TU_FD_TEST(test_redis_connect_refused_and_timeout),
		TU_FD_TEST(test_redis_200_tasks_share_a_connection),
		TU_FD_TEST(test_redis_commands_from_other_worker_and_thread),
		TU_FD_TEST(test_redis_pubsub_in_order),
		TU_FD_TEST(test_redis_server_killed_mid_command),
		TU_FD_TEST(
			test_redis_deadline_and_cancel_keep_replies_in_order),
		TU_FD_TEST(test_redis_close_with_commands_in_flight),
		TU_FD_TEST(test_redis_close_dl_with_owner_busy),
		TU_FD_TEST(test_redis_loop_callback_refused),
	};

	if (!tcp_probe(shared_port())) {
		fprintf(stderr,
			"test_redis: no redis-server on 127.0.0.1:%d "
			"(start one: ci/servers.sh start)\n",
			shared_port());
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
