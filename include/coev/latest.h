/* SPDX-License-Identifier: MIT */
/*
 * coev/latest.h — the latest-value channel: one value that senders replace
 * and receivers wait to see change (tokio's sync::watch).
 *
 * Named coev_latest_t because coev_watch_t is the bridge's fd watcher
 * (coev/bridge.h), and because the name says what it holds: the latest
 * value, not a queue. Every change may be missed but the newest never is.
 *
 * The channel holds one value of elem_size bytes, copied in and out, and a
 * version that every send raises by one (the initial value is version 0).
 * A receiver is a handle that remembers the version it saw last.
 *
 * Rules:
 *  1. Sends never wait and replace the value. Any thread may send, also
 *     one outside the runtime.
 *  2. A receive returns the current value once its version is newer than
 *     the receiver's last one (at once if it already is, else after the
 *     next send), and remembers that version: a receiver never sees an
 *     older version after a newer one, and sees each version at most once.
 *     Versions between two receives are skipped (only the latest counts).
 *  3. Close: sends fail with COEV_ECLOSED; a receiver first gets the value
 *     it has not seen yet, if any, then COEV_ECLOSED. The value stays
 *     readable with coev_latest_get and coev_latest_borrow.
 *  4. Receives follow coev/sync.h's waiting rules: a _dl form with an
 *     absolute deadline, -ETIMEDOUT, -ECANCELED, and nothing lost (a
 *     receiver already handed a value when its deadline passed succeeds).
 *     Tasks suspend, plain threads block; a worker thread outside a task
 *     may only use the calls that never wait.
 *  5. Lifetime: the channel lives while its creator has not freed it or
 *     any receiver is still subscribed; coev_latest_free closes it. One
 *     receiver is used by one task or thread at a time.
 */
#ifndef COEV_LATEST_H
#define COEV_LATEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_latest coev_latest_t;
typedef struct coev_latest_rx coev_latest_rx_t;

/*
 * coev_latest_new — a latest-value channel for values of elem_size bytes
 * (1 to 65536), holding a copy of init (all zero bytes when init is NULL)
 * as version 0. Stores it in *out and returns 0, or -EINVAL (NULL out, a
 * bad size), -ENOMEM. Any thread; allocates.
 * coev_latest_free — close w (if open) and give up the creator's share:
 * the memory goes when the last receiver has unsubscribed too. NULL is
 * ignored. Any thread.
 */
COEV_API int coev_latest_new(coev_latest_t **out, size_t elem_size,
			     const void *init);
COEV_API void coev_latest_free(coev_latest_t *w);

/*
 * coev_latest_send — replace w's value with a copy of elem_size bytes from
 * msg, raise the version and wake every waiting receiver. Never waits.
 * Returns 0, COEV_ECLOSED, -EINVAL. Any thread.
 * coev_latest_get — copy the current value into out, without touching any
 * receiver (tokio's Sender::borrow). Returns 0 (also once closed), -EINVAL.
 * Any thread.
 * coev_latest_close — close w (rule 3) and wake every waiting receiver.
 * Returns 0, COEV_ECLOSED if it was closed already, -EINVAL. Any thread.
 */
COEV_API int coev_latest_send(coev_latest_t *w, const void *msg);
COEV_API int coev_latest_get(coev_latest_t *w, void *out);
COEV_API int coev_latest_close(coev_latest_t *w);

/*
 * coev_latest_subscribe — a new receiver of w, which counts the current
 * version as seen (it waits for the next send). Stores it in *out and
 * returns 0, or -EINVAL, -ENOMEM. Any thread; allocates the receiver.
 * coev_latest_unsubscribe — free rx (and w, if its creator freed it and rx
 * was the last receiver). rx must not be waiting (aborts otherwise); NULL
 * is ignored. Any thread.
 */
COEV_API int coev_latest_subscribe(coev_latest_t *w, coev_latest_rx_t **out);
COEV_API void coev_latest_unsubscribe(coev_latest_rx_t *rx);

/*
 * coev_latest_recv / _recv_dl — wait until w's version is newer than the
 * one rx saw last (rule 2), then copy the value into out and remember its
 * version (tokio's changed() then borrow_and_update()). Returns 0,
 * COEV_ECLOSED (closed, and rx has seen the last version), -ETIMEDOUT,
 * -ECANCELED, COEV_ENOTCORO, -EINVAL.
 * coev_latest_try_recv — the same without waiting: -EAGAIN when rx has
 * seen the current version and w is open. Any thread.
 * coev_latest_borrow — copy the current value into out and remember its
 * version, new or not; never waits. Returns 0, -EINVAL. Any thread.
 */
COEV_API int coev_latest_recv(coev_latest_rx_t *rx, void *out);
COEV_API int coev_latest_recv_dl(coev_latest_rx_t *rx, void *out,
				 coev_time_t deadline);
COEV_API int coev_latest_try_recv(coev_latest_rx_t *rx, void *out);
COEV_API int coev_latest_borrow(coev_latest_rx_t *rx, void *out);

/*
 * coev_latest_seen — the version of the value rx saw last: until it
 * receives one, the version current at its subscription. Aborts on a NULL
 * rx; call it from rx's user, not while it waits.
 */
COEV_API uint64_t coev_latest_seen(coev_latest_rx_t *rx);

#ifdef __cplusplus
}
#endif

#endif
