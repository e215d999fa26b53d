/* SPDX-License-Identifier: MIT */
/*
 * coev/time.h — the runtime's clock.
 *
 * All deadlines in coev are absolute times on one monotonic clock, in
 * nanoseconds, read by coev_now(). A call that can wait takes such a
 * deadline (its _dl form) or a relative timeout; COEV_FOREVER waits without
 * limit and a deadline at or before coev_now() only tries.
 */
#ifndef COEV_TIME_H
#define COEV_TIME_H

#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t coev_time_t;

#define COEV_FOREVER INT64_MAX
#define COEV_NSEC(n) ((coev_time_t)(n))
#define COEV_USEC(n) ((coev_time_t)(n)*1000)
#define COEV_MSEC(n) ((coev_time_t)(n)*1000000)
#define COEV_SEC(n) ((coev_time_t)(n)*1000000000)

/*
 * coev_now — the current time of the runtime's monotonic clock, in ns.
 * Any thread; never suspends; never allocates. Comparable only with other
 * values of coev_now(), not with wall-clock time.
 */
COEV_API coev_time_t coev_now(void);

/*
 * coev_deadline — coev_now() + timeout, saturating at COEV_FOREVER; a
 * negative timeout gives coev_now(). Any thread; never suspends.
 */
COEV_API coev_time_t coev_deadline(coev_time_t timeout);

#ifdef __cplusplus
}
#endif

#endif
