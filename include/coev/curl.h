/* SPDX-License-Identifier: MIT */
/*
 * coev/curl.h — libcurl for coev tasks: many HTTP (and other libcurl)
 * transfers at once on one multi handle, each awaited by the task that
 * started it (aiohttp's ClientSession for C).
 *
 *     coev_curl_t *m;
 *     char *body;
 *     size_t len;
 *     int status;
 *
 *     coev_curl_new(&m);                      // owned by this worker
 *     r = coev_curl_get(m, "http://127.0.0.1:8390/hello",
 *                       coev_deadline(COEV_SEC(5)), &body, &len, &status);
 *     if (r == 0) ... status, body[0..len) ...; free(body);
 *     coev_curl_free(m);
 *
 * Any number of tasks on any workers may share one coev_curl_t (and its
 * connection cache); a task waits only for its own transfer. Build with
 * -lcoev_curl -lcurl (the adapter is its own archive, libcoev_curl.a).
 *
 * Rules:
 *  1. A coev_curl_t belongs to the worker that created it (its owner): the
 *     multi handle, its sockets and its timer live on that worker's loop,
 *     and libcurl runs only on that worker's thread. Calls from elsewhere
 *     are handed over to it (coev_submit); a task on the owner's thread
 *     calls libcurl directly.
 *  2. While coev_curl_perform() runs, the easy handle is libcurl's and the
 *     owner's: the caller must not touch it (nor change its options), and
 *     callbacks set on it (CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION,
 *     CURLOPT_XFERINFOFUNCTION, ...) run on the owner's thread, outside any
 *     task, as libev callbacks do: they must not block, must not call coev
 *     calls that wait, and must not call libcurl on this multi handle.
 *     When the call returns, the handle is out of the multi handle and the
 *     caller's again, whatever the outcome: it may free or reuse it at
 *     once.
 *  3. The adapter borrows the easy handle's CURLOPT_PRIVATE during the
 *     transfer (to find its record when the transfer ends) and puts the
 *     caller's value back before returning; it sets CURLOPT_NOSIGNAL, as
 *     every multi-threaded libcurl program must.
 *  4. Errors are negative errno-style codes (coev_curl_errno's table
 *     below). An HTTP error status is not an error: the transfer worked,
 *     and the status is in CURLINFO_RESPONSE_CODE (or *status). For
 *     libcurl's own words about a failure, set CURLOPT_ERRORBUFFER.
 */
#ifndef COEV_CURL_H
#define COEV_CURL_H

#include <stddef.h>

#include <curl/curl.h>

#include "bridge.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_curl coev_curl_t;

/*
 * coev_curl_new — a multi handle owned by the calling worker, stored in
 * *out. Initialises libcurl (curl_global_init) the first time. Returns 0,
 * COEV_ENOTRT (not on a worker thread: call it from a task), -EINVAL (NULL
 * out), -ENOMEM. From a task (or a loop callback) on a worker; never
 * suspends; allocates the handle.
 */
COEV_API int coev_curl_new(coev_curl_t **out);

/*
 * coev_curl_free_dl — end every transfer in flight (their
 * coev_curl_perform calls return -ECANCELED, with their easy handles
 * removed), close the connections and free the multi handle. Waits until
 * the owner has done so or the deadline passes; cancellation does not
 * interrupt it. Returns 0, or -ETIMEDOUT when the owner has not done it by
 * the deadline (a long task holds its worker): it still does, when it
 * next runs between tasks, and m is no longer the caller's either way.
 * Calls of coev_curl_perform that are already running when it starts end
 * with -ECANCELED; starting one after it began is a use after free.
 * -EINVAL for NULL. From a task on any worker or a plain thread; calling it
 * from a loop callback (a libcurl callback of this handle included)
 * aborts. If the runtime has already stopped its workers (or stops before
 * the owner got to it), nothing can be freed and the handle is leaked.
 * coev_curl_free — coev_curl_free_dl with COEV_FOREVER; NULL is ignored.
 */
COEV_API int coev_curl_free_dl(coev_curl_t *m, coev_time_t deadline);
COEV_API void coev_curl_free(coev_curl_t *m);

/*
 * coev_curl_worker — the index of m's owner (for coev_pin_to or
 * coev_submit, e.g. to set multi options with curl_multi_setopt there).
 * A NULL m aborts, with a line naming the call.
 */
COEV_API unsigned coev_curl_worker(const coev_curl_t *m);

/*
 * coev_curl_perform — run the transfer that the caller configured on easy
 * (CURLOPT_URL, its write callback, ...) on m and wait until it ends.
 * Returns 0 when the transfer completed (the HTTP status in
 * CURLINFO_RESPONSE_CODE), libcurl's failure mapped by coev_curl_errno
 * (-ECONNREFUSED, -ETIMEDOUT for CURLOPT_TIMEOUT_MS, ...), or:
 *   -ETIMEDOUT   deadline (absolute, COEV_FOREVER for none) passed first,
 *                or a deadline pushed with coev_deadline_push;
 *   -ECANCELED   the calling task was cancelled, or coev_curl_free(m) ran;
 *   -EBUSY       easy is in a transfer on m already (passing a handle
 *                that another thread is using is a bug the call cannot
 *                always see);
 *   -EINVAL      NULL m or easy;
 *   -ENOMEM, -ESHUTDOWN (the runtime is stopping);
 *   COEV_ENOTCORO from a loop callback (a libcurl callback included).
 * On -ETIMEDOUT and -ECANCELED the transfer is abandoned (its connection
 * closed), and easy is out of m before the call returns. A transfer that
 * ended just as the caller gave up is reported as it ended (0 or its
 * error), as coev_future_await does. From a task on any worker (it
 * suspends) or a plain thread (it blocks); allocates a small record.
 */
COEV_API int coev_curl_perform(coev_curl_t *m, CURL *easy,
			       coev_time_t deadline);

/*
 * coev_curl_fetch — coev_curl_perform with the body collected: easy's
 * CURLOPT_WRITEFUNCTION and CURLOPT_WRITEDATA are set to a write callback
 * that appends to a growing buffer, for the caller's own requests
 * (headers, a POST, ...). On 0, *body (if body is not NULL) is the body,
 * NUL-terminated (the NUL not counted in *len), malloc'ed and now the
 * caller's (free()), and *status (if not NULL) the HTTP status. On failure
 * *body is NULL, *len 0, *status whatever status came (0 if none). Either
 * way easy's write callback is libcurl's default again afterwards (fwrite
 * to stdout). Returns coev_curl_perform's codes, and -ENOMEM when the body
 * did not fit in memory. The whole body is held in memory: for large
 * downloads use coev_curl_perform with a write callback of your own.
 * Threads as coev_curl_perform.
 * coev_curl_get — coev_curl_fetch of a new easy handle with CURLOPT_URL
 * url and libcurl's defaults otherwise (no redirects followed: a 3xx is a
 * status like any other), freed before returning; -EINVAL for NULL url.
 */
COEV_API int coev_curl_fetch(coev_curl_t *m, CURL *easy, coev_time_t deadline,
			     char **body, size_t *len, int *status);
COEV_API int coev_curl_get(coev_curl_t *m, const char *url,
			   coev_time_t deadline, char **body, size_t *len,
			   int *status);

/*
 * coev_curl_errno — the negative errno-style code for a CURLcode (0 for
 * CURLE_OK), as coev_curl_perform returns it:
 *
 *   CURLE_COULDNT_CONNECT            the socket's error (CURLINFO_OS_ERRNO
 *                                    when perform maps it), else
 *                                    -ECONNREFUSED
 *   CURLE_OPERATION_TIMEDOUT         -ETIMEDOUT
 *   CURLE_COULDNT_RESOLVE_HOST/PROXY COEV_ENONAME (as coev_resolve)
 *   CURLE_SEND_ERROR                 the socket's error, else -EPIPE
 *   CURLE_RECV_ERROR                 the socket's error, else -ECONNRESET
 *   CURLE_GOT_NOTHING, PARTIAL_FILE  COEV_EEOF (the server closed early)
 *   CURLE_OUT_OF_MEMORY              -ENOMEM
 *   CURLE_URL_MALFORMAT, BAD_FUNCTION_ARGUMENT, UNKNOWN_OPTION,
 *   FAILED_INIT                      -EINVAL
 *   CURLE_UNSUPPORTED_PROTOCOL       -EPROTONOSUPPORT
 *   CURLE_NOT_BUILT_IN               -ENOTSUP
 *   CURLE_ABORTED_BY_CALLBACK        -ECANCELED (a progress callback said
 *                                    stop)
 *   CURLE_WRITE_ERROR, READ_ERROR    -EIO (a data callback said stop)
 *   CURLE_TOO_MANY_REDIRECTS         -ELOOP
 *   CURLE_FILESIZE_EXCEEDED          -EFBIG
 *   CURLE_HTTP_RETURNED_ERROR        -EREMOTEIO (CURLOPT_FAILONERROR)
 *   CURLE_LOGIN_DENIED, REMOTE_ACCESS_DENIED, AUTH_ERROR -EACCES
 *   CURLE_RECURSIVE_API_CALL         -EDEADLK
 *   CURLE_AGAIN                      -EAGAIN
 *   CURLE_WEIRD_SERVER_REPLY, HTTP2, HTTP2_STREAM, HTTP3, QUIC_CONNECT_ERROR,
 *   BAD_CONTENT_ENCODING, the TLS failures (SSL_*, PEER_FAILED_VERIFICATION)
 *                                    -EPROTO
 *   anything else                    -EIO
 *
 * Any thread; never suspends; never allocates.
 */
COEV_API int coev_curl_errno(CURLcode code);

#ifdef __cplusplus
}
#endif

#endif
