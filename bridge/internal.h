/* SPDX-License-Identifier: MIT */
/*
 * bridge/internal.h — what bridge/'s files share, private to bridge/: the
 * future as a source of the select over mixed sources
 * (bridge/select_any.c). Not installed.
 */
#ifndef COEV_BRIDGE_INTERNAL_H
#define COEV_BRIDGE_INTERNAL_H

#include "coev/future.h"
#include "sync/internal.h"

/*
 * coev__future_arm — queue node n (its waiter set) on f to be granted and
 * signalled once when f completes (the wait-queue protocol of
 * sync/internal.h). Returns 1 when f is already complete (nothing
 * queued), 0 when queued.
 * coev__future_disarm — take n back: 0 when it was still queued (no
 * signal will come), 1 when f's completion granted it (its signal has
 * come or is on its way).
 */
int coev__future_arm(coev_future_t *f, coev__wnode_t *n);
int coev__future_disarm(coev_future_t *f, coev__wnode_t *n);

#endif
