/* SPDX-License-Identifier: MIT */
/*
 * tests/adapters/test_curl.c — the libcurl adapter (include/coev/curl.h,
 * adapters/curl.c) against tests/adapters/httpd.py on 127.0.0.1:$COEV_HTTP_PORT
 * (default 8390; ci/servers.sh starts it): GET /hello (body, status, the
 * caller's CURLOPT_PRIVATE put back); /bytes/1000000 checked byte by byte
 * (coev_curl_get, and coev_curl_fetch of the caller's handle);
 * 200 transfers in flight from 100 tasks on 2 workers, each body checked;
 * /status/404 is a success with status 404; a transfer cancelled mid-body
 * (on the owner's worker and on the other) returns -ECANCELED with its
 * handle out of the multi handle (reused and freed at once; no write
 * callback after the return); connection refused; a slow server against
 * the bridge's deadline, a pushed deadline, a deadline already past, and
 * CURLOPT_TIMEOUT_MS; coev_curl_free with transfers in flight (from the
 * other worker); calls from the other worker and from a plain thread; an
 * easy handle already in a transfer (-EBUSY); libcurl callbacks calling
 * the adapter (COEV_ENOTCORO; coev_curl_free aborts); the error table.
 *
 * Worker 0 owns every multi handle here; tasks pinned to worker 1 are the
 * "other worker". Task bodies record failures with TU_CHECK; the test
 * thread checks tu_assert_no_failures(). Every test checks that it leaves
 * no fd open (so every connection is closed by coev_curl_free).
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "coev/curl.h"

static int http_port;

/* http://127.0.0.1:PORT/path (numeric: libcurl starts no resolver thread). */
static void url_of(char *buf, size_t size, const char *path)
{
	snprintf(buf, size, "http://127.0.0.1:%d%s", http_port, path);
}

/* As a task: a multi handle owned by worker 0. */
static coev_curl_t *new_on_worker0(void)
{
	coev_curl_t *m = NULL;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	TU_CHECK_EQ(coev_curl_new(&m), 0);
	TU_CHECK_EQ(coev_unpin(), 0);
	TU_CHECK(m != NULL);
	if (m)
		TU_CHECK_EQ(coev_curl_worker(m), 0);
	return m;
}

/* True when body[0..len) is the /bytes pattern of n bytes. */
static bool is_pattern(const char *body, size_t len, size_t n)
{
	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (body[i] != (char)('a' + i % 26))
			return false;
	}
	return true;
}

/* A write callback that only counts. */
static size_t count_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	atomic_fetch_add((atomic_long *)arg, (long)(size * nmemb));
	return size * nmemb;
}

/* A write callback collecting up to 63 bytes into a NUL-terminated
 * char[64]. */
static size_t small_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	char *buf = arg;
	size_t have = strlen(buf), n = size * nmemb;

	if (have + n < 64) {
		memcpy(buf + have, ptr, n);
		buf[have + n] = '\0';
	}
	return n;
}

/* An easy handle for path with small_write into buf. */
static CURL *easy_for(const char *path, char *buf)
{
	char url[128];
	CURL *e = curl_easy_init();

	assert_non_null(e);
	url_of(url, sizeof url, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, small_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
	buf[0] = '\0';
	return e;
}

static long status_of(CURL *e)
{
	long code = -1;

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

/* ---- GET /hello, /status/404, /bytes/1000000 ----------------------------- */

static int hello_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	int mine, status = -1;
	char url[128], buf[64], *priv = NULL, *body = NULL;
	size_t len = 0;
	CURL *e;

	(void)arg;
	/* From worker 0 (the owner: direct calls) and worker 1 (posts). */
	for (unsigned w = 0; w < 2; w++) {
		TU_CHECK_EQ(coev_pin_to(w), 0);
		url_of(url, sizeof url, "/hello");
		TU_CHECK_EQ(
			coev_curl_get(m, url, tu_guard(), &body, &len, &status),
			0);
		TU_CHECK_EQ(status, 200);
		TU_CHECK_EQ(len, 6);
		TU_CHECK(body && strcmp(body, "hello\n") == 0);
		free(body);

		/* The caller's own handle and PRIVATE value. */
		e = easy_for("/hello", buf);
		curl_easy_setopt(e, CURLOPT_PRIVATE, &mine);
		TU_CHECK_EQ(coev_curl_perform(m, e, tu_guard()), 0);
		TU_CHECK_EQ(status_of(e), 200);
		TU_CHECK(strcmp(buf, "hello\n") == 0);
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		TU_CHECK(priv == (char *)&mine);
		/* Reused at once, on a kept-alive connection. */
		buf[0] = '\0';
		TU_CHECK_EQ(coev_curl_perform(m, e, tu_guard()), 0);
		TU_CHECK(strcmp(buf, "hello\n") == 0);
		curl_easy_cleanup(e);
		TU_CHECK_EQ(coev_unpin(), 0);
	}
	/* NULL out-pointers are allowed. */
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), NULL, NULL, NULL), 0);
	TU_CHECK_EQ(coev_curl_get(NULL, url, tu_guard(), &body, &len, &status),
		    -EINVAL);
	TU_CHECK(body == NULL && len == 0 && status == 0);
	TU_CHECK_EQ(coev_curl_perform(m, NULL, tu_guard()), -EINVAL);
	coev_curl_free(m);
	return 0;
}

static void test_curl_get_hello(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(hello_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int status_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	char url[128], *body = NULL;
	size_t len = 0;
	int status = 0;

	(void)arg;
	url_of(url, sizeof url, "/status/404");
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), &body, &len, &status), 0);
	TU_CHECK_EQ(status, 404);
	TU_CHECK(body && strcmp(body, "status 404\n") == 0);
	free(body);
	url_of(url, sizeof url, "/status/503");
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), &body, &len, &status), 0);
	TU_CHECK_EQ(status, 503);
	free(body);
	/* CURLOPT_FAILONERROR turns the status into an error. */
	char buf[64];
	CURL *e = easy_for("/status/404", buf);
	curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
	TU_CHECK_EQ(coev_curl_perform(m, e, tu_guard()), -EREMOTEIO);
	curl_easy_cleanup(e);
	coev_curl_free(m);
	return 0;
}

static void test_curl_status_404_is_a_success(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(status_main, NULL, 2), 0);
	tu_assert_no_failures();
}

#define BIG 1000000

static int bytes_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	char url[128], *body = NULL;
	size_t len = 0;
	int status = 0;

	(void)arg;
	url_of(url, sizeof url, "/bytes/1000000");
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), &body, &len, &status), 0);
	TU_CHECK_EQ(status, 200);
	TU_CHECK_EQ(len, BIG);
	TU_CHECK(body && is_pattern(body, len, BIG));
	TU_CHECK(body && body[len] == '\0');
	free(body);
	/* The caller's own request, collected: a header, then HEAD. */
	struct curl_slist *hdrs = curl_slist_append(NULL, "X-Coev: yes");
	CURL *e = curl_easy_init();
	url_of(url, sizeof url, "/bytes/1000000");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	TU_CHECK_EQ(coev_curl_fetch(m, e, tu_guard(), &body, &len, &status), 0);
	TU_CHECK(status == 200 && body && is_pattern(body, len, BIG));
	free(body);
	curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	TU_CHECK_EQ(coev_curl_fetch(m, e, tu_guard(), &body, &len, &status), 0);
	TU_CHECK(status == 200 && body && len == 0 && body[0] == '\0');
	free(body);
	TU_CHECK_EQ(coev_curl_fetch(m, NULL, tu_guard(), &body, &len, &status),
		    -EINVAL);
	TU_CHECK(body == NULL && len == 0 && status == 0);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	url_of(url, sizeof url, "/bytes/0");
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), &body, &len, &status), 0);
	TU_CHECK(body && len == 0 && body[0] == '\0');
	free(body);
	coev_curl_free(m);
	return 0;
}

static void test_curl_bytes_1m_checked(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(bytes_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- 200 transfers in flight from 100 tasks ------------------------------ */

#define MANY_TASKS 100

typedef struct many {
	coev_curl_t *m;
	atomic_int in_flight, peak, ok, non_owner;
} many_t;

typedef struct many_job {
	many_t *mn;
	unsigned k; /* 0 .. 2 * MANY_TASKS - 1 */
} many_job_t;

static void many_fetch(many_t *mn, unsigned k)
{
	size_t n = 1 + (size_t)k * 7919 % 40000;
	char url[128], path[32], *body = NULL;
	size_t len = 0;
	int status = 0, r, now, old;

	snprintf(path, sizeof path, "/bytes/%zu", n);
	url_of(url, sizeof url, path);
	if (coev_worker_id() != 0)
		atomic_fetch_add(&mn->non_owner, 1);
	now = atomic_fetch_add(&mn->in_flight, 1) + 1;
	old = atomic_load(&mn->peak);
	while (now > old && !atomic_compare_exchange_weak(&mn->peak, &old, now))
		;
	r = coev_curl_get(mn->m, url, tu_guard(), &body, &len, &status);
	atomic_fetch_sub(&mn->in_flight, 1);
	TU_CHECK_MSG(r == 0 && status == 200, "transfer %u: %s, status %d", k,
		     coev_strerror(r), status);
	TU_CHECK_MSG(r != 0 || is_pattern(body, len, n),
		     "transfer %u: %zu bytes, wanted %zu", k, len, n);
	if (r == 0 && is_pattern(body, len, n))
		atomic_fetch_add(&mn->ok, 1);
	free(body);
}

static int many_child(void *arg)
{
	many_job_t *j = arg;

	many_fetch(j->mn, j->k + MANY_TASKS);
	return 0;
}

/* Task k: pinned to worker k % 2, starts its second transfer in a child
 * task (unpinned) and runs its first one meanwhile. */
static int many_task(void *arg)
{
	many_job_t *j = arg;
	coev_task_t *child;

	TU_CHECK_EQ(coev_pin_to(j->k % 2), 0);
	TU_CHECK_EQ(coev_spawn(many_child, j, &child), 0);
	many_fetch(j->mn, j->k);
	TU_CHECK_EQ(coev_join(child, NULL), 0);
	coev_unpin();
	return 0;
}

static int many_main(void *arg)
{
	many_t *mn = arg;
	many_job_t jobs[MANY_TASKS];
	coev_task_t *t[MANY_TASKS];
	int rets[MANY_TASKS];

	mn->m = new_on_worker0();
	for (unsigned k = 0; k < MANY_TASKS; k++) {
		jobs[k] = (many_job_t){mn, k};
		TU_CHECK_EQ(coev_spawn(many_task, &jobs[k], &t[k]), 0);
	}
	TU_CHECK_EQ(coev_gather(t, MANY_TASKS, rets), 0);
	coev_curl_free(mn->m);
	return 0;
}

static void test_curl_200_in_flight_from_100_tasks(void **state)
{
	many_t mn = {0};

	(void)state;
	assert_int_equal(tu_run_main(many_main, &mn, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&mn.ok), 2 * MANY_TASKS);
	assert_true(atomic_load(&mn.non_owner) >= MANY_TASKS / 2);
	print_message("  [ info ] peak %d transfers in flight, %d calls from "
		      "worker 1\n",
		      atomic_load(&mn.peak), atomic_load(&mn.non_owner));
}

/* ---- cancelled mid-body -------------------------------------------------- */

#define DRIP_N 100000

typedef struct drip {
	coev_curl_t *m;
	unsigned worker;
	atomic_long bytes;
	atomic_int started;
	long bytes_at_return;
	int rc, rc_reuse;
	char reuse_body[64];
	coev_time_t returned;
} drip_t;

static int drip_task(void *arg)
{
	drip_t *d = arg;
	char url[128];
	CURL *e = curl_easy_init();

	TU_CHECK_EQ(coev_pin_to(d->worker), 0);
	url_of(url, sizeof url, "/drip/100000/100");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, count_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &d->bytes);
	atomic_store(&d->started, 1);
	d->rc = coev_curl_perform(d->m, e, tu_guard());
	d->returned = coev_now();
	d->bytes_at_return = atomic_load(&d->bytes);
	/* The handle is ours again at once: reuse it (shielded: the task is
	 * cancelled), then free it. */
	url_of(url, sizeof url, "/hello");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, small_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, d->reuse_body);
	coev_shield_begin();
	d->rc_reuse = coev_curl_perform(d->m, e, tu_guard());
	coev_shield_end();
	curl_easy_cleanup(e);
	coev_unpin();
	return d->rc;
}

static int cancel_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	char url[128], *body = NULL;
	int status = 0;

	(void)arg;
	for (unsigned w = 0; w < 2; w++) {
		drip_t d = {.m = m, .worker = w};
		coev_task_t *t;
		coev_time_t start = coev_now(), cancelled;
		int ret = 0;

		TU_CHECK_EQ(coev_spawn(drip_task, &d, &t), 0);
		TU_CHECK_EQ(tu_wait_at_least(&d.started, 1), 0);
		/* ~250 ms: some of the body has come, most has not. */
		coev_sleep_until(start + COEV_MSEC(250));
		coev_time_t guard = tu_guard();
		while (atomic_load(&d.bytes) == 0 && coev_now() < guard)
			coev_sleep(COEV_MSEC(5));
		cancelled = coev_now();
		TU_CHECK_EQ(coev_cancel(t), 0);
		TU_CHECK_EQ(coev_join(t, &ret), 0);
		TU_CHECK_EQ(d.rc, -ECANCELED);
		TU_CHECK_EQ(ret, -ECANCELED);
		TU_CHECK_MSG(
			d.bytes_at_return > 0 && d.bytes_at_return < DRIP_N,
			"%ld bytes when the call returned", d.bytes_at_return);
		TU_CHECK_EQ(d.rc_reuse, 0);
		TU_CHECK(strcmp(d.reuse_body, "hello\n") == 0);
		/* No write callback of the abandoned transfer after the
		 * return: the next chunk would have come within 100 ms. */
		coev_sleep(COEV_MSEC(250));
		TU_CHECK_EQ(atomic_load(&d.bytes), d.bytes_at_return);
		print_message(
			"  [ info ] caller on worker %u: returned %.1f ms "
			"after the cancel, %ld of %d bytes in\n",
			w, (double)(d.returned - cancelled) / 1e6,
			d.bytes_at_return, DRIP_N);
	}
	/* The server copes. */
	url_of(url, sizeof url, "/hello");
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), &body, NULL, &status), 0);
	TU_CHECK(status == 200 && body && strcmp(body, "hello\n") == 0);
	free(body);
	coev_curl_free(m);
	return 0;
}

static void test_curl_cancel_mid_body(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cancel_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- connection refused, timeouts ---------------------------------------- */

/* A port of 127.0.0.1 that nobody listens on (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int refused_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	char url[128], *body = (char *)1;
	size_t len = 1;
	int status = -1;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", *(int *)arg);
	for (unsigned w = 0; w < 2; w++) {
		TU_CHECK_EQ(coev_pin_to(w), 0);
		TU_CHECK_EQ(
			coev_curl_get(m, url, tu_guard(), &body, &len, &status),
			-ECONNREFUSED);
		TU_CHECK(body == NULL && len == 0 && status == 0);
		coev_unpin();
	}
	/* Not HTTP at all: -EPROTONOSUPPORT; a malformed URL: -EINVAL. */
	TU_CHECK_EQ(coev_curl_get(m, "gopherx://127.0.0.1/", tu_guard(), NULL,
				  NULL, NULL),
		    -EPROTONOSUPPORT);
	TU_CHECK_EQ(
		coev_curl_get(m, "http://[::1", tu_guard(), NULL, NULL, NULL),
		-EINVAL);
	coev_curl_free(m);
	return 0;
}

static void test_curl_connection_refused(void **state)
{
	int port = closed_port();

	(void)state;
	assert_int_equal(tu_run_main(refused_main, &port, 2), 0);
	tu_assert_no_failures();
}

typedef struct slow {
	coev_curl_t *m;
	unsigned worker;
	int how; /* 0 bridge deadline, 1 pushed, 2 past, 3 TIMEOUT_MS */
	int rc;
	coev_time_t took;
} slow_t;

static int slow_task(void *arg)
{
	slow_t *s = arg;
	char buf[64], url[128];
	CURL *e = easy_for("/slow/2000", buf);
	coev_time_t start, dl = COEV_FOREVER, tok = -1;

	TU_CHECK_EQ(coev_pin_to(s->worker), 0);
	start = coev_now();
	if (s->how == 0)
		dl = start + COEV_MSEC(200);
	else if (s->how == 1)
		tok = coev_deadline_push(start + COEV_MSEC(200));
	else if (s->how == 2)
		dl = start;
	else
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 200L);
	s->rc = coev_curl_perform(s->m, e, dl);
	s->took = coev_now() - start;
	if (tok >= 0)
		coev_deadline_pop(tok);
	TU_CHECK(strcmp(buf, "") == 0);
	/* Reused at once. */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
	url_of(url, sizeof url, "/hello");
	curl_easy_setopt(e, CURLOPT_URL, url);
	buf[0] = '\0';
	TU_CHECK_EQ(coev_curl_perform(s->m, e, tu_guard()), 0);
	TU_CHECK(strcmp(buf, "hello\n") == 0);
	curl_easy_cleanup(e);
	coev_unpin();
	return 0;
}

static int slow_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	slow_t s[8];
	coev_task_t *t[8];
	int rets[8];

	(void)arg;
	/* All at once: the four kinds, on either worker. */
	for (int i = 0; i < 8; i++) {
		s[i] = (slow_t){
			.m = m, .worker = (unsigned)i % 2, .how = i / 2};
		TU_CHECK_EQ(coev_spawn(slow_task, &s[i], &t[i]), 0);
	}
	TU_CHECK_EQ(coev_gather(t, 8, rets), 0);
	for (int i = 0; i < 8; i++) {
		TU_CHECK_MSG(s[i].rc == -ETIMEDOUT, "case %d on worker %d: %s",
			     s[i].how, i % 2, coev_strerror(s[i].rc));
		TU_CHECK(s[i].took >= (s[i].how == 2 ? 0 : COEV_MSEC(200)));
	}
	coev_curl_free(m);
	return 0;
}

static void test_curl_slow_server_times_out(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(slow_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- coev_curl_free with transfers in flight ----------------------------- */

#define INFLIGHT 20

typedef struct inflight {
	coev_curl_t *m;
	atomic_int started;
	atomic_long bytes;
	int rc[INFLIGHT];
} inflight_t;

typedef struct inflight_job {
	inflight_t *in;
	int i;
} inflight_job_t;

static int inflight_task(void *arg)
{
	inflight_job_t *j = arg;
	inflight_t *in = j->in;
	char url[128];
	CURL *e = curl_easy_init();

	TU_CHECK_EQ(coev_pin_to((unsigned)j->i % 2), 0);
	/* Half wait for the headers, half for the rest of a body. */
	url_of(url, sizeof url, j->i % 4 < 2 ? "/slow/5000" : "/drip/1000/500");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, count_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &in->bytes);
	atomic_fetch_add(&in->started, 1);
	in->rc[j->i] = coev_curl_perform(in->m, e, tu_guard());
	curl_easy_cleanup(e);
	coev_unpin();
	return 0;
}

static int free_other(void *arg)
{
	TU_CHECK_EQ(coev_pin_to(1), 0);
	coev_curl_free(arg);
	coev_unpin();
	return 0;
}

static int inflight_main(void *arg)
{
	inflight_t *in = arg;
	inflight_job_t jobs[INFLIGHT];
	coev_task_t *t[INFLIGHT], *f;
	int rets[INFLIGHT];

	in->m = new_on_worker0();
	for (int i = 0; i < INFLIGHT; i++) {
		jobs[i] = (inflight_job_t){in, i};
		TU_CHECK_EQ(coev_spawn(inflight_task, &jobs[i], &t[i]), 0);
	}
	TU_CHECK_EQ(tu_wait_at_least(&in->started, INFLIGHT), 0);
	/* Connected and asked: a drip's first chunk is in. */
	coev_time_t guard = tu_guard();
	while (atomic_load(&in->bytes) == 0 && coev_now() < guard)
		coev_sleep(COEV_MSEC(5));
	coev_sleep(COEV_MSEC(100));
	TU_CHECK_EQ(coev_spawn(free_other, in->m, &f), 0);
	TU_CHECK_EQ(coev_join(f, NULL), 0);
	TU_CHECK_EQ(coev_gather(t, INFLIGHT, rets), 0);
	for (int i = 0; i < INFLIGHT; i++)
		TU_CHECK_MSG(in->rc[i] == -ECANCELED, "transfer %d: %s", i,
			     coev_strerror(in->rc[i]));
	TU_CHECK(atomic_load(&in->bytes) > 0);
	return 0;
}

static void test_curl_free_with_transfers_in_flight(void **state)
{
	inflight_t in = {0};

	(void)state;
	assert_int_equal(tu_run_main(inflight_main, &in, 2), 0);
	tu_assert_no_failures();
}

/* ---- from a plain thread ------------------------------------------------- */

typedef struct plain {
	coev_curl_t *m;
	atomic_int ready, done;
	int rc_hello, rc_slow, status;
	char *body;
} plain_t;

/* ---- free with the owner busy ---------------------------------------------- */

/*
 * The owner's worker busy in a long task (a task pinned there that spins
 * without suspending until released), and a free from the other
 * worker with a 100 ms deadline: it returns -ETIMEDOUT within a generous
 * ratio of the deadline, and the free still happens on the owner once
 * it is free (a post made after it runs after it; the fd check and ASan
 * see the rest).
 */
#include "tests/adapters/owner_busy.h"

static int free_dl(void *m, coev_time_t deadline)
{
	return coev_curl_free_dl(m, deadline);
}

static int busy_free_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	coev_time_t took;
	char url[128];
	int r, status = -1;

	(void)arg;
	if (!m)
		return 0;
	/* A kept-alive connection, which only the free closes. */
	url_of(url, sizeof url, "/hello");
	TU_CHECK_EQ(coev_curl_get(m, url, tu_guard(), NULL, NULL, &status), 0);
	TU_CHECK_EQ(status, 200);
	r = with_owner_busy(free_dl, m, &took);
	check_timed_out("coev_curl_free_dl", r, took);
	return 0;
}

/* Proves: coev_curl_free_dl is bounded by its deadline when the owner's
 * worker is busy; the handle is still freed (its connection closed: no fd
 * left). */
static void test_curl_free_dl_with_owner_busy(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(busy_free_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void *plain_thread(void *arg)
{
	plain_t *p = arg;
	char url[128];

	url_of(url, sizeof url, "/hello");
	p->rc_hello = coev_curl_get(p->m, url, coev_deadline(COEV_SEC(20)),
				    &p->body, NULL, &p->status);
	url_of(url, sizeof url, "/slow/2000");
	p->rc_slow = coev_curl_get(p->m, url, coev_deadline(COEV_MSEC(200)),
				   NULL, NULL, NULL);
	coev_curl_free(p->m);
	atomic_store(&p->done, 1);
	return NULL;
}

static int plain_main(void *arg)
{
	plain_t *p = arg;

	p->m = new_on_worker0();
	atomic_store(&p->ready, 1);
	/* The thread blocks in the adapter; the workers keep going. */
	TU_CHECK_EQ(tu_wait_at_least(&p->done, 1), 0);
	return 0;
}

static void test_curl_from_plain_thread(void **state)
{
	plain_t p = {0};
	pthread_t th;

	(void)state;
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	int ret = -1;

	assert_int_equal(coev_rt_spawn(rt, "main", plain_main, &p, &t), 0);
	assert_int_equal(tu_thread_wait_at_least(&p.ready, 1), 0);
	assert_int_equal(pthread_create(&th, NULL, plain_thread, &p), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal(ret, 0);
	assert_int_equal(p.rc_hello, 0);
	assert_int_equal(p.status, 200);
	assert_non_null(p.body);
	assert_string_equal(p.body, "hello\n");
	assert_int_equal(p.rc_slow, -ETIMEDOUT);
	free(p.body);
}

/* ---- misuse -------------------------------------------------------------- */

typedef struct busy {
	coev_curl_t *m;
	CURL *e;
	char buf[64];
	atomic_int adding;
	int rc_first, rc_second;
} busy_t;

static int busy_first(void *arg)
{
	busy_t *b = arg;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	/* On the owner the add happens before the call first waits. */
	atomic_store(&b->adding, 1);
	b->rc_first = coev_curl_perform(b->m, b->e, tu_guard());
	coev_unpin();
	return 0;
}

static int busy_second(void *arg)
{
	busy_t *b = arg;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	TU_CHECK_EQ(tu_wait_at_least(&b->adding, 1), 0);
	b->rc_second = coev_curl_perform(b->m, b->e, tu_guard());
	coev_unpin();
	return 0;
}

/* Calls into the adapter from libcurl's write callback (a loop callback
 * on the owner). */
typedef struct reenter {
	coev_curl_t *m;
	CURL *other;
	int rc;
	atomic_int calls;
} reenter_t;

static size_t reenter_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	reenter_t *re = arg;

	(void)ptr;
	if (atomic_fetch_add(&re->calls, 1) == 0)
		re->rc = coev_curl_perform(re->m, re->other, tu_guard());
	return size * nmemb;
}

static int misuse_main(void *arg)
{
	busy_t b = {0};
	reenter_t re = {0};
	coev_task_t *t[2];
	char url[128], *priv = NULL;
	int rets[2], mine;

	(void)arg;
	b.m = re.m = new_on_worker0();
	b.e = easy_for("/slow/300", b.buf);
	curl_easy_setopt(b.e, CURLOPT_PRIVATE, &mine);
	TU_CHECK_EQ(coev_spawn(busy_first, &b, &t[0]), 0);
	TU_CHECK_EQ(coev_spawn(busy_second, &b, &t[1]), 0);
	TU_CHECK_EQ(coev_gather(t, 2, rets), 0);
	TU_CHECK_EQ(b.rc_first, 0);
	TU_CHECK_EQ(b.rc_second, -EBUSY);
	TU_CHECK(strcmp(b.buf, "slow\n") == 0);
	curl_easy_getinfo(b.e, CURLINFO_PRIVATE, &priv);
	TU_CHECK(priv == (char *)&mine);
	curl_easy_cleanup(b.e);

	CURL *e = curl_easy_init();
	re.other = curl_easy_init();
	url_of(url, sizeof url, "/hello");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(re.other, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, reenter_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &re);
	TU_CHECK_EQ(coev_curl_perform(re.m, e, tu_guard()), 0);
	TU_CHECK_EQ(atomic_load(&re.calls), 1);
	TU_CHECK_EQ(re.rc, COEV_ENOTCORO);
	curl_easy_cleanup(e);
	curl_easy_cleanup(re.other);
	coev_curl_free(re.m);
	/* Not on a worker at all. */
	coev_curl_free(NULL);
	return 0;
}

static void test_curl_busy_handle_and_callbacks(void **state)
{
	coev_curl_t *m = (coev_curl_t *)1;

	(void)state;
	assert_int_equal(coev_curl_new(&m), COEV_ENOTRT);
	assert_int_equal(tu_run_main(misuse_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static size_t free_in_callback(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	coev_curl_free(arg);
	return size * nmemb;
}

static int free_in_callback_main(void *arg)
{
	coev_curl_t *m = new_on_worker0();
	char url[128];
	CURL *e = curl_easy_init();

	(void)arg;
	url_of(url, sizeof url, "/hello");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, free_in_callback);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
	coev_curl_perform(m, e, tu_guard());
	return 0; /* not reached */
}

static void child_free_in_callback(void *arg)
{
	(void)arg;
	tu_run_main(free_in_callback_main, NULL, 2);
}

static void test_curl_free_in_callback_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_free_in_callback, NULL, res), 0);
	if (!tu_child_signaled(res, SIGABRT) ||
	    !strstr(res->out, "coev_curl_free"))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "coev_curl_free"));
	free(res);
}

/* ---- the error table ----------------------------------------------------- */

static void test_curl_errno_table(void **state)
{
	(void)state;
	assert_int_equal(coev_curl_errno(CURLE_OK), 0);
	assert_int_equal(coev_curl_errno(CURLE_COULDNT_CONNECT), -ECONNREFUSED);
	assert_int_equal(coev_curl_errno(CURLE_OPERATION_TIMEDOUT), -ETIMEDOUT);
	assert_int_equal(coev_curl_errno(CURLE_COULDNT_RESOLVE_HOST),
			 COEV_ENONAME);
	assert_int_equal(coev_curl_errno(CURLE_PARTIAL_FILE), COEV_EEOF);
	assert_int_equal(coev_curl_errno(CURLE_GOT_NOTHING), COEV_EEOF);
	assert_int_equal(coev_curl_errno(CURLE_OUT_OF_MEMORY), -ENOMEM);
	assert_int_equal(coev_curl_errno(CURLE_URL_MALFORMAT), -EINVAL);
	assert_int_equal(coev_curl_errno(CURLE_WRITE_ERROR), -EIO);
	assert_int_equal(coev_curl_errno(CURLE_ABORTED_BY_CALLBACK),
			 -ECANCELED);
	assert_int_equal(coev_curl_errno(CURLE_PEER_FAILED_VERIFICATION),
			 -EPROTO);
	assert_int_equal(coev_curl_errno(CURLE_TOO_MANY_REDIRECTS), -ELOOP);
	assert_int_equal(coev_curl_errno(CURLE_HTTP_RETURNED_ERROR),
			 -EREMOTEIO);
	assert_int_equal(coev_curl_errno(CURLE_SEND_ERROR), -EPIPE);
	assert_int_equal(coev_curl_errno(CURLE_RECV_ERROR), -ECONNRESET);
	assert_int_equal(coev_curl_errno((CURLcode)9999), -EIO);
	/* Every code maps to a negative errno-style code coev names. */
	for (int c = 1; c < CURL_LAST; c++) {
		int e = coev_curl_errno((CURLcode)c);
		assert_true(e < 0);
		assert_string_not_equal(coev_strerror(e), "unknown error");
	}
}

/* Whether something listens on 127.0.0.1:port. */
static bool server_up(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	r = connect(fd, (struct sockaddr *)&a, sizeof a);
	close(fd);
	return r == 0;
}

int main(void)
{
	const char *port = getenv("COEV_HTTP_PORT");
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_curl_get_hello),
		TU_FD_TEST(test_curl_status_404_is_a_success),
		TU_FD_TEST(test_curl_bytes_1m_checked),
		TU_FD_TEST(test_curl_200_in_flight_from_100_tasks),
		TU_FD_TEST(test_curl_cancel_mid_body),
		TU_FD_TEST(test_curl_connection_refused),
		TU_FD_TEST(test_curl_slow_server_times_out),
		TU_FD_TEST(test_curl_free_with_transfers_in_flight),
		TU_FD_TEST(test_curl_free_dl_with_owner_busy),
		TU_FD_TEST(test_curl_from_plain_thread),
		TU_FD_TEST(test_curl_busy_handle_and_callbacks),
		TU_FD_TEST(test_curl_free_in_callback_aborts),
		cmocka_unit_test(test_curl_errno_table),
	};

	http_port = port && *port ? atoi(port) : 8390;
	if (!server_up(http_port)) {
		fprintf(stderr,
			"test_curl: nothing listens on 127.0.0.1:%d; start "
			"tests/adapters/httpd.py (ci/servers.sh start) or set "
			"COEV_HTTP_PORT\n",
			http_port);
		return 1;
	}
	/* libcurl's global state (and OpenSSL's fds) before the fd counts. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	tu_raise_nofile(4096, NULL);
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
