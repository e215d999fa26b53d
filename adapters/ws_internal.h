/* SPDX-License-Identifier: MIT */
/*
 * adapters/ws_internal.h — what the two halves of the WebSocket adapter
 * share: the connection (ws.c: wslay, receiving, sending, closing) and the
 * HTTP upgrade handshake (ws_handshake.c), which makes a connection once
 * the handshake has succeeded. The model is in ws.c's comment. Not
 * installed.
 */
#ifndef COEV_ADAPTERS_WS_INTERNAL_H
#define COEV_ADAPTERS_WS_INTERNAL_H

#include "coev.h"
#include "coev/ws.h"

/*
 * coev__ws_new — a connection over s after a successful handshake: server
 * (1) or client (0) framing, opts' limits, and copies of path and protocol
 * (either may be NULL: ""). Returns 0 or -ENOMEM; on success *out owns s.
 */
int coev__ws_new(coev_stream_t *s, int server, const coev_ws_opts_t *opts,
		 const char *path, const char *protocol, coev_ws_t **out);

#endif
