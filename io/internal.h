/* SPDX-License-Identifier: MIT */
/*
 * io/internal.h — what io/ shows its own tests and nobody else: state a
 * test must read to check a promise the public API cannot show.
 */
#ifndef COEV_IO_INTERNAL_H
#define COEV_IO_INTERNAL_H

#include <stddef.h>

#include "coev/stream.h"

/* The capacity of s's read buffer, in bytes (0 before its first read):
 * tests check that a buffer grown for one long line shrinks back to the
 * stream's bufsize once drained (coev/stream.h, coev_stream_new). */
size_t coev__stream_read_capacity(const coev_stream_t *s);

#endif
