/* SPDX-License-Identifier: MIT */
/*
 * coev/error.h — error codes.
 *
 * Every coev call reports failure as a negative errno-style return value,
 * never through errno: a coroutine may resume on another thread, and a
 * compiler may keep a thread-local address (errno's included) across a call.
 * Codes that errno has no name for are coev's own, in the range below
 * COEV_ERR_BASE; coev_strerror() names both kinds.
 */
#ifndef COEV_ERROR_H
#define COEV_ERROR_H

#include <errno.h>

#if defined(__GNUC__)
#define COEV_API __attribute__((visibility("default")))
#else
#define COEV_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define COEV_ERR_BASE (-10000)

/* X(name, value, message): coev's own codes. */
#define COEV_OWN_ERRORS(X)                                                   \
	X(COEV_ENOTCORO, COEV_ERR_BASE - 1,                                  \
	  "operation must be called from inside a coev task")                \
	X(COEV_ENOTRT, COEV_ERR_BASE - 2,                                    \
	  "operation must be called from outside the runtime's worker "      \
	  "threads")                                                         \
	X(COEV_ESTACKMAP, COEV_ERR_BASE - 3,                                 \
	  "no memory mapping left for a coroutine stack")                    \
	X(COEV_EEOF, COEV_ERR_BASE - 4,                                      \
	  "end of stream before the requested number of bytes")              \
	X(COEV_ECLOSED, COEV_ERR_BASE - 5, "channel closed")                 \
	X(COEV_ENONAME, COEV_ERR_BASE - 6, "name not found")                 \
	X(COEV_ENOADDR, COEV_ERR_BASE - 7,                                   \
	  "name has no address of the requested family")                     \
	X(COEV_ETLS, COEV_ERR_BASE - 8, "TLS protocol error")                \
	X(COEV_ECERT, COEV_ERR_BASE - 9, "peer certificate not trusted")     \
	X(COEV_EHOSTNAME, COEV_ERR_BASE - 10,                                \
	  "peer certificate does not match the host name")                   \
	X(COEV_EWSCLOSED, COEV_ERR_BASE - 11, "WebSocket connection closed") \
	X(COEV_ELAGGED, COEV_ERR_BASE - 12,                                  \
	  "receiver fell behind; values were missed")

enum coev_error {
#define COEV_ERR_ENUM(name, value, msg) name = (value),
	COEV_OWN_ERRORS(COEV_ERR_ENUM)
#undef COEV_ERR_ENUM
};

/*
 * coev_strerror — a constant English description of err.
 * err: a negative code returned by any coev call (positive values are
 * treated as their negation). Returns a static string, never NULL; unknown
 * codes give "unknown error". Any thread; never suspends; never allocates.
 */
COEV_API const char *coev_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
