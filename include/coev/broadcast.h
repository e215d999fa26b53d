/* SPDX-License-Identifier: MIT */
/*
 * coev/broadcast.h — the broadcast channel: every receiver sees every
 * value sent after it subscribed (tokio's sync::broadcast). The latest-value
 * channel, which keeps only the newest value, is in coev/latest.h.
 *
 * A broadcast channel keeps the last n values sent (its capacity), each a
 * fixed-size copy of elem_size bytes, as coev_chan does. A receiver is a
 * handle with its own position in that sequence.
 *
 * Rules:
 *  1. Sends never wait: a send over a full ring overwrites the oldest
 *     value. Any thread may send, also one outside the runtime.
 *  2. A receiver sees the values sent after its subscription, each once,
 *     in the order they were sent (one order for every receiver: sends
 *     are serialised). A receiver more than n values behind gets
 *     COEV_ELAGGED once, with coev_bcast_missed telling how many it
 *     skipped, and goes on from the oldest value kept.
 *  3. Close: sends fail with COEV_ECLOSED; receivers first get every value
 *     still kept for them, then COEV_ECLOSED.
 *  4. Receives follow coev/sync.h's waiting rules: a _dl form with an
 *     absolute deadline, -ETIMEDOUT, -ECANCELED, and nothing lost (a
 *     receiver already handed a value when its deadline passed succeeds).
 *     Tasks suspend, plain threads block; a worker thread outside a task
 *     may only use coev_bcast_try_recv.
 *  5. Lifetime: the channel lives while its creator has not freed it or
 *     any receiver is still subscribed. coev_bcast_free closes it; the
 *     receivers drain and unsubscribe at their own pace. One receiver is
 *     used by one task or thread at a time.
 *
 * Values are copies, not owned pointers with a free function: an
 * overwritten value then needs no destructor run under the channel's lock
 * or on the sender's thread, and a send never allocates. To broadcast
 * large objects, send pointers to immutable objects whose lifetime the
 * program manages (a reference count taken before the send).
 */
#ifndef COEV_BROADCAST_H
#define COEV_BROADCAST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_bcast coev_bcast_t;
typedef struct coev_bcast_rx coev_bcast_rx_t;

/*
 * coev_bcast_new — a broadcast channel for values of elem_size bytes (1 to
 * 65536) keeping the last capacity values (1 to 2^20). Stores it in *out
 * and returns 0, or -EINVAL (NULL out, a bad size or capacity), -ENOMEM.
 * Any thread; allocates the channel and its ring.
 * coev_bcast_free — close b (if open) and give up the creator's share: the
 * memory goes when the last receiver has unsubscribed too. NULL is
 * ignored. Any thread.
 */
COEV_API int coev_bcast_new(coev_bcast_t **out, size_t elem_size,
			    size_t capacity);
COEV_API void coev_bcast_free(coev_bcast_t *b);

/*
 * coev_bcast_send — copy elem_size bytes from msg into b as its newest
 * value, overwriting the oldest when the ring is full, and wake waiting
 * receivers. Never waits. Returns the number of receivers subscribed (0
 * or more, at most INT_MAX: the value is kept even with none), or
 * COEV_ECLOSED, -EINVAL (NULL argument). The caller keeps msg. Any thread.
 */
COEV_API int coev_bcast_send(coev_bcast_t *b, const void *msg);

/*
 * coev_bcast_close — close b (rule 3) and wake every waiting receiver.
 * Returns 0, COEV_ECLOSED if it was closed already, -EINVAL. Any thread.
 * coev_bcast_receivers — the receivers subscribed now (a snapshot); aborts
 * on a NULL b.
 */
COEV_API int coev_bcast_close(coev_bcast_t *b);
COEV_API size_t coev_bcast_receivers(coev_bcast_t *b);

/*
 * coev_bcast_subscribe — a new receiver of b, which will see the values
 * sent from now on. Stores it in *out and returns 0, or -EINVAL, -ENOMEM.
 * A receiver of a closed channel gets COEV_ECLOSED at once. Any thread;
 * allocates the receiver.
 * coev_bcast_unsubscribe — free rx (and b, if its creator freed it and rx
 * was the last receiver). rx must not be waiting (aborts otherwise); NULL
 * is ignored. Any thread.
 */
COEV_API int coev_bcast_subscribe(coev_bcast_t *b, coev_bcast_rx_t **out);
COEV_API void coev_bcast_unsubscribe(coev_bcast_rx_t *rx);

/*
 * coev_bcast_recv / _recv_dl — copy rx's next value into out (elem_size
 * bytes), waiting for one to be sent. Returns 0; COEV_ELAGGED when rx fell
 * more than the capacity behind (out untouched; coev_bcast_missed says how
 * many values it skipped, and the next receive returns the oldest kept);
 * COEV_ECLOSED (closed, and rx has seen every value kept); -ETIMEDOUT,
 * -ECANCELED, COEV_ENOTCORO, -EINVAL.
 * coev_bcast_try_recv — the same without waiting: -EAGAIN when rx has
 * seen everything sent and b is open. Any thread.
 */
COEV_API int coev_bcast_recv(coev_bcast_rx_t *rx, void *out);
COEV_API int coev_bcast_recv_dl(coev_bcast_rx_t *rx, void *out,
				coev_time_t deadline);
COEV_API int coev_bcast_try_recv(coev_bcast_rx_t *rx, void *out);

/*
 * coev_bcast_missed — how many values rx's last COEV_ELAGGED skipped (0
 * before any). coev_bcast_pending — the values kept that rx has not seen
 * yet (a snapshot; at most the capacity). Both abort on a NULL rx; call
 * them from rx's user, not while it waits.
 */
COEV_API uint64_t coev_bcast_missed(coev_bcast_rx_t *rx);
COEV_API size_t coev_bcast_pending(coev_bcast_rx_t *rx);

#ifdef __cplusplus
}
#endif

#endif
