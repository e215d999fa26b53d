/* SPDX-License-Identifier: MIT */
/*
 * adapters/curl.c — the libcurl adapter (coev/curl.h): one CURLM multi
 * handle driven by one worker's loop through a coev_sockset_t, with each
 * transfer's end delivered to the task that waits for it by a future.
 *
 * The model. libcurl's multi socket API is shape (b) of coev/bridge.h: it
 * says through CURLMOPT_SOCKETFUNCTION which sockets it wants watched for
 * what (coev_sockset_watch) and through CURLMOPT_TIMERFUNCTION when it
 * wants to be called back (coev_sockset_timer); when a socket is ready or
 * the timer fires, on_ready() calls curl_multi_socket_action() and then
 * drains curl_multi_info_read(): each finished transfer is removed from
 * the multi handle and its record's future completed with the result.
 *
 * Owner. The multi handle is not thread-safe, and the sockset belongs to
 * the worker that made it, so every libcurl call on it runs on that worker
 * (the owner): in on_ready() (a loop callback), in functions posted with
 * coev_submit() (between tasks), or directly in a task that happens to run
 * on the owner's thread at that moment (between two of its waits it cannot
 * move, and no libcurl call of the owner is in progress while a task runs;
 * libcurl then runs on the task's stack, which the default 256 KiB suits).
 * Hand-over by coev_submit rather than coev_pin_to: pinning would move
 * every calling task onto the owner for its transfer's whole length (one
 * worker doing all HTTP-handling tasks, stealing undone), fail with -EBUSY
 * for a task pinned elsewhere, and not work for plain threads; a post
 * costs one small allocation and leaves the caller where it is, and the
 * result comes back through the transfer's future either way.
 *
 * The timer. libcurl forbids curl_multi_socket_action() inside its timer
 * callback, and calls that callback from curl_multi_add_handle(),
 * remove_handle() and socket_action() itself. So a timeout of 0 ("now") is
 * not run at once: the timer is armed for coev_now() and fires at the
 * loop's next turn, outside every libcurl call. (Rejected: a "pending
 * timeout" flag run after the outermost libcurl call returns — more state
 * for the same effect one loop turn later.)
 *
 * A transfer's record (struct xfer) has a state that only the owner reads
 * or writes: NEW (the add is posted), ADDED (in the multi handle, on the
 * owner's live list), OVER (finished, abandoned or never started). The
 * owner completes the record's future `done` only after moving it to OVER,
 * so a caller woken by `done` finds its easy handle out of the multi. A
 * caller that gives up (deadline, cancellation) runs remove_job() on the
 * owner and waits for it to have run, uninterruptibly (a shield for the
 * cancel; a yield loop should a pushed deadline keep ending the wait): it
 * takes the handle out if ADDED and makes it OVER, so an add still queued
 * (posts run in order, but a caller now on the owner's thread removes
 * directly) finds OVER and never touches the handle. The record is
 * reference-counted (the caller, plus a posted add not yet run), and holds
 * a reference on the coev_curl_t, whose memory (not its multi handle) thus
 * outlives every call in progress, coev_curl_free included.
 *
 * Finding a record from an easy handle: CURLOPT_PRIVATE, borrowed while
 * the transfer runs and restored after (rejected: a list search per
 * finished transfer, O(transfers in flight)).
 *
 * libcurl's global state is initialised once (pthread_once) and never torn
 * down: curl_global_cleanup() is not safe while another thread uses
 * libcurl, and a process has no moment at which the adapter knows it is
 * the last user. Names in URLs are resolved by libcurl's own resolver (a
 * thread per lookup in Debian's build); numeric addresses need none.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coev.h"
#include "coev/curl.h"

struct coev_curl {
	CURLM *multi;	    /* owner only */
	coev_sockset_t *ss; /* owner only */
	coev_rt_t *rt;	    /* immutable: the owner's runtime */
	unsigned owner;	    /* immutable: the owner's index */
	bool closed;	    /* owner only: coev_curl_free has run */
	struct xfer *live;  /* owner only: the ADDED transfers */
	atomic_uint refs;   /* the creator's, and one per record */
};

enum xfer_state { XFER_NEW, XFER_ADDED, XFER_OVER };

struct xfer {
	coev_curl_t *m; /* a reference */
	CURL *easy;
	coev_future_t *done;   /* completed by the owner, once OVER */
	char *user_private;    /* the caller's CURLOPT_PRIVATE, while ADDED */
	enum xfer_state state; /* owner only */
	struct xfer *prev, *next; /* owner only: m->live while ADDED */
	atomic_uint refs;	  /* the caller's, and a posted add's */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- references ----------------------------------------------------------- */

static void curl_release(coev_curl_t *m)
{
	/* acq_rel: the last release sees every other holder's writes. */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

static void xfer_release(struct xfer *x)
{
	if (atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) != 1)
		return;
	coev_future_release(x->done);
	curl_release(x->m);
	free(x);
}

/* True on m's owner's thread inside a task, where libcurl may be called
 * directly. */
static bool on_owner(const coev_curl_t *m)
{
	return coev_self() && coev_worker_id() == (int)m->owner &&
	       coev_rt_current() == m->rt;
}

/* --- the error table ------------------------------------------------------ */

int coev_curl_errno(CURLcode code)
{
	switch (code) {
	case CURLE_OK: return 0;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return COEV_ENONAME;
	case CURLE_SEND_ERROR: return -EPIPE;
	case CURLE_RECV_ERROR: return -ECONNRESET;
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: return COEV_EEOF;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_FAILED_INIT: return -EINVAL;
	case CURLE_UNSUPPORTED_PROTOCOL: return -EPROTONOSUPPORT;
	case CURLE_NOT_BUILT_IN: return -ENOTSUP;
	case CURLE_ABORTED_BY_CALLBACK: return -ECANCELED;
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR: return -EIO;
	case CURLE_TOO_MANY_REDIRECTS: return -ELOOP;
	case CURLE_FILESIZE_EXCEEDED: return -EFBIG;
	case CURLE_HTTP_RETURNED_ERROR: return -EREMOTEIO;
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_AUTH_ERROR: return -EACCES;
	case CURLE_RECURSIVE_API_CALL: return -EDEADLK;
	case CURLE_AGAIN: return -EAGAIN;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT: return -EPROTO;
	default: return -EIO;
	}
}

/* The result of a finished transfer: for the socket-level failures, the
 * socket's own error when libcurl kept it (ECONNREFUSED, ENETUNREACH,
 * ECONNRESET, ...), else the table's. */
static int transfer_result(CURL *easy, CURLcode code)
{
	long os_errno = 0;

	if ((code == CURLE_COULDNT_CONNECT || code == CURLE_SEND_ERROR ||
	     code == CURLE_RECV_ERROR) &&
	    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
	    os_errno > 0)
		return (int)-os_errno;
	return coev_curl_errno(code);
}

static int multi_errno(CURLMcode mc)
{
	switch (mc) {
	case CURLM_OK: return 0;
	case CURLM_ADDED_ALREADY: return -EBUSY;
	case CURLM_OUT_OF_MEMORY: return -ENOMEM;
	case CURLM_RECURSIVE_API_CALL: return -EDEADLK;
	case CURLM_BAD_HANDLE:
	case CURLM_BAD_EASY_HANDLE: return -EINVAL;
	default: return -EIO;
	}
}

/* --- the owner's side ----------------------------------------------------- */

/* Owner: complete x's future (x is OVER and unlinked). The reference held
 * across the call keeps the future alive should the woken caller release
 * x at once. */
static void xfer_finish(struct xfer *x, int result)
{
	coev_future_t *f = coev_future_ref(x->done);

	coev_future_set(f, result);
	coev_future_release(f);
}

/* Owner: take an ADDED x out of the multi handle and make it OVER. */
static void xfer_detach(struct xfer *x)
{
	coev_curl_t *m = x->m;

	curl_multi_remove_handle(m->multi, x->easy);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x->user_private);
	if (x->prev)
		x->prev->next = x->next;
	else
		m->live = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	x->state = XFER_OVER;
}

/* Owner: start x, unless its caller gave up first or m was freed. */
static void xfer_add(struct xfer *x)
{
	coev_curl_t *m = x->m;
	CURLMcode mc;

	if (x->state != XFER_NEW)
		return;
	x->state = XFER_OVER;
	if (m->closed) {
		xfer_finish(x, -ECANCELED);
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_PRIVATE, &x->user_private);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	/* The handle's PRIVATE is set only once it is ours: a handle busy
	 * in another transfer (CURLM_ADDED_ALREADY) keeps its record. */
	if ((mc = curl_multi_add_handle(m->multi, x->easy)) != CURLM_OK) {
		xfer_finish(x, multi_errno(mc));
		return;
	}
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
	x->state = XFER_ADDED;
	x->prev = NULL;
	x->next = m->live;
	if (m->live)
		m->live->prev = x;
	m->live = x;
}

/* Owner, posted: the add, then the post's reference goes. Returns 1 so
 * that add_dropped can tell a run post from a dropped one. */
static int add_job(void *arg)
{
	struct xfer *x = arg;

	xfer_add(x);
	xfer_release(x);
	return 1;
}

/* Whoever completes the add post's future: a post dropped without running
 * (the runtime stopped) never added x, so its caller is told so and the
 * post's reference given back here. */
static void add_dropped(coev_future_t *f, void *arg)
{
	struct xfer *x = arg;
	int r = 0;

	coev_future_poll(f, &r);
	if (r >= 0)
		return;
	coev_future_set(x->done, r);
	xfer_release(x);
}

/* Owner: the caller gave up on x. */
static int remove_job(void *arg)
{
	struct xfer *x = arg;

	if (x->state == XFER_ADDED)
		xfer_detach(x);
	x->state = XFER_OVER;
	return 0;
}

/* Owner: deliver every finished transfer. */
static void drain(coev_curl_t *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;
		struct xfer *x;
		char *p = NULL;
		int r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
		x = (struct xfer *)p;
		r = transfer_result(easy, code);
		xfer_detach(x); /* msg is invalid from here */
		xfer_finish(x, r);
	}
}

/* Owner, loop callback: a socket is ready or the timer fired. A failing
 * socket_action (out of memory) leaves its transfers to their deadlines. */
static void on_ready(coev_sockset_t *ss, int fd, unsigned events, void *arg)
{
	coev_curl_t *m = arg;
	int running, mask = 0;

	(void)ss;
	if (fd == COEV_SOCKSET_TIMER) {
		curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0,
					 &running);
	} else {
		if (events & COEV_READ)
			mask |= CURL_CSELECT_IN;
		if (events & COEV_WRITE)
			mask |= CURL_CSELECT_OUT;
		curl_multi_socket_action(m->multi, fd, mask, &running);
	}
	drain(m);
}

/* CURLMOPT_SOCKETFUNCTION (owner): watch s for what libcurl says. -1 makes
 * libcurl fail the transfers on s. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg,
		     void *sockp)
{
	coev_curl_t *m = arg;
	unsigned ev = 0;

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= COEV_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= COEV_WRITE;
	return coev_sockset_watch(m->ss, s, ev) < 0 ? -1 : 0;
}

/* CURLMOPT_TIMERFUNCTION (owner): -1 stops the timer; 0 fires it at the
 * loop's next turn (see the top of this file). */
static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
	coev_curl_t *m = arg;
	coev_time_t dl = COEV_FOREVER;

	(void)multi;
	if (timeout_ms >= 0)
		dl = coev_deadline(COEV_MSEC(timeout_ms));
	return coev_sockset_timer(m->ss, dl) < 0 ? -1 : 0;
}

/* Owner: coev_curl_free's work. */
static int free_job(void *arg)
{
	coev_curl_t *m = arg;

	m->closed = true;
	while (m->live) {
		struct xfer *x = m->live;

		xfer_detach(x);
		xfer_finish(x, -ECANCELED);
	}
	/* Closing the cached connections may still call on_socket. */
	curl_multi_cleanup(m->multi);
	coev_sockset_free(m->ss);
	m->multi = NULL;
	m->ss = NULL;
	return 0;
}

/* --- the callers' side ---------------------------------------------------- */

/* Run fn(arg) on m's owner and wait until it has run, whatever happens to
 * the caller meanwhile, or until the deadline. Returns 0 once fn ran,
 * -ETIMEDOUT when it has not yet (it still will), or -ESHUTDOWN when it
 * never will (the runtime stopped). A task or a plain thread. */
static int owner_run_dl(coev_curl_t *m, coev_fn fn, void *arg,
			coev_time_t deadline)
{
	bool task = coev_self() != NULL;
	coev_future_t *f;
	int r, res = -ESHUTDOWN;

	if (on_owner(m))
		return fn(arg);
	/* A post is a few bytes; should even that fail, try again rather
	 * than break the caller's guarantee. */
	while ((r = coev_submit(m->rt, m->owner, fn, arg, &f)) == -ENOMEM) {
		if (task)
			coev_yield();
		else
			sched_yield();
	}
	if (r < 0)
		return r;
	if (task)
		coev_shield_begin();
	/* A pushed deadline that has passed ends every wait at once. */
	while ((r = coev_future_wait_dl(f, deadline, &res)) < 0 && task &&
	       coev_now() < deadline)
		coev_yield();
	if (task)
		coev_shield_end();
	coev_future_release(f);
	return r < 0 ? -ETIMEDOUT : res;
}

static void owner_run(coev_curl_t *m, coev_fn fn, void *arg)
{
	owner_run_dl(m, fn, arg, COEV_FOREVER);
}

/* Start x on the owner: directly when there, else by a post. Returns 0 or
 * the post's error. */
static int xfer_start(struct xfer *x)
{
	coev_curl_t *m = x->m;
	coev_future_t *f;
	int r;

	if (on_owner(m)) {
		xfer_add(x);
		return 0;
	}
	atomic_fetch_add_explicit(&x->refs, 1, memory_order_relaxed);
	if ((r = coev_submit(m->rt, m->owner, add_job, x, &f)) < 0) {
		atomic_fetch_sub_explicit(&x->refs, 1, memory_order_relaxed);
		return r;
	}
	/* Without the callback (out of memory) a dropped post would leave
	 * the caller to its deadline; the post itself still runs. */
	coev_future_on_done(f, add_dropped, x);
	coev_future_release(f);
	return 0;
}

int coev_curl_perform(coev_curl_t *m, CURL *easy, coev_time_t deadline)
{
	struct xfer *x;
	int r, res = 0;

	if (!m || !easy)
		return -EINVAL;
	if (!coev_self() && coev_worker_id() >= 0)
		return COEV_ENOTCORO;
	if (!(x = calloc(1, sizeof *x)))
		return -ENOMEM;
	if ((r = coev_future_new(&x->done)) < 0) {
		free(x);
		return r;
	}
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	x->m = m;
	x->easy = easy;
	x->state = XFER_NEW;
	atomic_init(&x->refs, 1);
	if ((r = xfer_start(x)) < 0) {
		xfer_release(x);
		return r;
	}
	r = coev_future_wait_dl(x->done, deadline, &res);
	if (r < 0) {
		owner_run(m, remove_job, x);
		/* A transfer that ended before the removal is delivered. */
		if (coev_future_poll(x->done, &res) == 0)
			r = 0;
	}
	xfer_release(x);
	return r < 0 ? r : res;
}

/* --- coev_curl_fetch's body ----------------------------------------------- */

struct body {
	char *data;
	size_t len, cap;
	bool nomem;
};

/* CURLOPT_WRITEFUNCTION (owner): append; a short count stops the
 * transfer (CURLE_WRITE_ERROR) when memory runs out. */
static size_t body_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;

	if (n >= b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 1024;
		char *d;

		while (n >= cap - b->len)
			cap *= 2;
		if (!(d = realloc(b->data, cap))) {
			b->nomem = true;
			return 0;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* The outputs of a fetch that brought nothing. */
static void no_body(char **body, size_t *len, int *status)
{
	if (body)
		*body = NULL;
	if (len)
		*len = 0;
	if (status)
		*status = 0;
}

int coev_curl_fetch(coev_curl_t *m, CURL *easy, coev_time_t deadline,
		    char **body, size_t *len, int *status)
{
	struct body b = {0};
	long code = 0;
	int r;

	no_body(body, len, status);
	if (!m || !easy)
		return -EINVAL;
	if (curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, body_write) !=
		    CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b) != CURLE_OK)
		r = -EINVAL;
	else
		r = coev_curl_perform(m, easy, deadline);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, NULL);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, stdout);
	if (r == -EIO && b.nomem)
		r = -ENOMEM;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (status)
		*status = (int)code;
	if (r == 0 && body && !b.data && !(b.data = calloc(1, 1)))
		r = -ENOMEM;
	if (r == 0 && body) {
		*body = b.data;
		b.data = NULL;
	}
	if (r == 0 && len)
		*len = b.len;
	free(b.data);
	return r;
}

int coev_curl_get(coev_curl_t *m, const char *url, coev_time_t deadline,
		  char **body, size_t *len, int *status)
{
	CURL *easy;
	int r;

	no_body(body, len, status);
	if (!m || !url)
		return -EINVAL;
	pthread_once(&global_once, global_init);
	if (!(easy = curl_easy_init()))
		return -ENOMEM;
	if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK)
		r = -ENOMEM;
	else
		r = coev_curl_fetch(m, easy, deadline, body, len, status);
	curl_easy_cleanup(easy);
	return r;
}

/* --- life ----------------------------------------------------------------- */

int coev_curl_new(coev_curl_t **out)
{
	coev_curl_t *m;
	int r;

	if (coev_worker_id() < 0)
		return COEV_ENOTRT;
	if (!out)
		return -EINVAL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return coev_curl_errno(global_rc);
	if (!(m = calloc(1, sizeof *m)))
		return -ENOMEM;
	m->rt = coev_rt_current();
	m->owner = (unsigned)coev_worker_id();
	atomic_init(&m->refs, 1);
	if ((r = coev_sockset_new(on_ready, m, &m->ss)) < 0) {
		free(m);
		return r;
	}
	if (!(m->multi = curl_multi_init()) ||
	    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket) ||
	    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m) ||
	    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer) ||
	    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m)) {
		curl_multi_cleanup(m->multi);
		coev_sockset_free(m->ss);
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

/* Owner: free_job for a caller that may have stopped waiting; the post
 * held a reference on m. */
static int free_post(void *arg)
{
	free_job(arg);
	curl_release(arg);
	return 0;
}

int coev_curl_free_dl(coev_curl_t *m, coev_time_t deadline)
{
	int r;

	if (!m)
		return -EINVAL;
	if (!coev_self() && coev_worker_id() >= 0) {
		fprintf(stderr, "coev: coev_curl_free called from a loop "
				"callback (a libcurl callback?): it must wait, "
				"so call it from a task\n");
		abort();
	}
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	r = owner_run_dl(m, free_post, m, deadline);
	if (r < 0 && r != -ETIMEDOUT) /* free_post never runs: leaked */
		atomic_fetch_sub_explicit(&m->refs, 1, memory_order_relaxed);
	curl_release(m);
	return r == -ETIMEDOUT ? r : 0;
}

void coev_curl_free(coev_curl_t *m)
{
	if (m)
		coev_curl_free_dl(m, COEV_FOREVER);
}

unsigned coev_curl_worker(const coev_curl_t *m)
{
	if (!m) {
		fprintf(stderr, "coev: fatal: coev_curl_worker: NULL handle\n");
		abort();
	}
	return m->owner;
}
