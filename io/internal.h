/* SPDX-License-Identifier: MIT */
/*
 * io/internal.h — what io/'s files share, and what io/ shows its own
 * tests and nobody else: state a test must read to check a promise the
 * public API cannot show.
 */
#ifndef COEV_IO_INTERNAL_H
#define COEV_IO_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>

#include "coev/stream.h"

/* The calling task's cancellation (-ECANCELED), COEV_ENOTCORO outside a
 * task, or 0: the first step of every call that may wait. */
int coev__io_enter(void);
/* A numeric host (NULL: any IPv4 address) and port as a socket address:
 * 0, or -EINVAL for a host that is not a numeric address or a port above
 * 65535. */
int coev__numeric_addr(const char *host, unsigned port,
		       struct sockaddr_storage *ss, socklen_t *len);

/* The capacity of s's read buffer, in bytes (0 before its first read):
 * tests check that a buffer grown for one long line shrinks back to the
 * stream's bufsize once drained (coev/stream.h, coev_stream_new). */
size_t coev__stream_read_capacity(const coev_stream_t *s);

#endif
