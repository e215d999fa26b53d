/* SPDX-License-Identifier: MIT */
/*
 * adapters/ws_handshake.c — the HTTP/1.1 upgrade that opens a WebSocket
 * (RFC 6455, section 4), server side (coev_ws_accept) and client side
 * (coev_ws_connect), over a coev stream.
 *
 * The request or answer is read whole with coev_stream_read_until up to
 * the blank line (at most COEV_WS_MAX_HANDSHAKE bytes), so bytes after it
 * (a first frame sent at once) stay buffered in the stream for the
 * connection. It is parsed by Debian's http-parser in one call: since the
 * buffer is contiguous, each header name and value arrives as one span
 * of it, recorded without copying. Sec-WebSocket-Accept is
 * base64(SHA-1(key + the RFC's GUID)), computed with libcrypto (EVP), as
 * is the client's random key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ws_internal.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_HEADERS 64

struct span {
	const char *p;
	size_t n;
};

/* What the parser saw: the target and the header spans. */
struct head {
	struct span url;
	struct span name[MAX_HEADERS], value[MAX_HEADERS];
	int nh;
	int in_value; /* the last callback was a value */
	int complete;
};

/* Spans are extended when a callback continues the last one. */
static void extend(struct span *sp, const char *at, size_t n)
{
	if (!sp->p)
		sp->p = at;
	sp->n = (size_t)(at + n - sp->p);
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	extend(&((struct head *)p->data)->url, at, n);
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct head *h = p->data;

	if (h->in_value || h->nh == 0) {
		if (h->nh == MAX_HEADERS)
			return 1;
		h->nh++;
		h->in_value = 0;
	}
	extend(&h->name[h->nh - 1], at, n);
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct head *h = p->data;

	if (h->nh == 0)
		return 1;
	h->in_value = 1;
	extend(&h->value[h->nh - 1], at, n);
	return 0;
}

static int on_done(http_parser *p)
{
	((struct head *)p->data)->complete = 1;
	return 1; /* no body: stop here */
}

/* Parse the n bytes of buf as a request or an answer. 0 or -EPROTO. */
static int parse(char *buf, size_t n, enum http_parser_type type,
		 http_parser *p, struct head *h)
{
	http_parser_settings st;

	memset(&st, 0, sizeof(st));
	memset(h, 0, sizeof(*h));
	st.on_url = on_url;
	st.on_header_field = on_field;
	st.on_header_value = on_value;
	st.on_headers_complete = on_done;
	http_parser_init(p, type);
	p->data = h;
	http_parser_execute(p, &st, buf, n);
	return h->complete ? 0 : -EPROTO;
}

/* The value of header name (the first one), or NULL. */
static const struct span *header(const struct head *h, const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 0; i < h->nh; i++)
		if (h->name[i].n == len &&
		    strncasecmp(h->name[i].p, name, len) == 0)
			return &h->value[i];
	return NULL;
}

/* Whether the comma-separated list v holds tok (case-insensitive). */
static int has_token(const struct span *v, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (v && i < v->n) {
		size_t b, e;

		while (i < v->n && (v->p[i] == ' ' || v->p[i] == '\t'))
			i++;
		b = i;
		while (i < v->n && v->p[i] != ',')
			i++;
		e = i;
		while (e > b && (v->p[e - 1] == ' ' || v->p[e - 1] == '\t'))
			e--;
		if (e - b == tl && strncasecmp(v->p + b, tok, tl) == 0)
			return 1;
		i++;
	}
	return 0;
}

/* base64(SHA-1(key GUID)) into out (29 bytes with the NUL). */
static int accept_value(const char *key, size_t klen, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char in[64 + sizeof(WS_GUID)];

	if (klen > 64)
		return -EPROTO;
	memcpy(in, key, klen);
	memcpy(in + klen, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(in, klen + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(),
		       NULL) != 1 ||
	    mdlen != 20)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return 0;
}

/* Read the head up to the blank line into buf (NUL-terminated). */
static ssize_t read_head(coev_stream_t *s, char *buf, coev_time_t deadline)
{
	ssize_t n = coev_stream_read_until(s, "\r\n\r\n", 4, buf,
					   COEV_WS_MAX_HANDSHAKE - 1, deadline);

	if (n >= 0)
		buf[n] = 0;
	return n;
}

static int write_all(coev_stream_t *s, const char *txt, coev_time_t deadline)
{
	ssize_t w = coev_stream_write(s, txt, strlen(txt), NULL, deadline);

	if (w < 0)
		return (int)w;
	return coev_stream_flush(s, deadline);
}

/* --- server --------------------------------------------------------------- */

/* Answer a refused request with status and why; returns err. */
static int refuse(coev_stream_t *s, int status, const char *why, int err,
		  coev_time_t deadline)
{
	char txt[512];

	snprintf(txt, sizeof(txt),
		 "HTTP/1.1 %d %s\r\nConnection: close\r\n%s"
		 "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n",
		 status,
		 status == 426	 ? "Upgrade Required"
		 : status == 431 ? "Request Header Fields Too Large"
				 : "Bad Request",
		 status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
		 strlen(why) + 1, why);
	(void)write_all(s, txt, deadline);
	return err;
}

/* The request's problem, or NULL; *status: 400 or 426. */
static const char *check_request(const http_parser *p, const struct head *h,
				 int *status)
{
	const struct span *ver = header(h, "Sec-WebSocket-Version");
	const struct span *key = header(h, "Sec-WebSocket-Key");
	unsigned char raw[20];

	*status = 400;
	if (p->method != HTTP_GET || p->http_major != 1 || p->http_minor < 1)
		return "a WebSocket upgrade must be an HTTP/1.1 GET";
	if (!has_token(header(h, "Upgrade"), "websocket"))
		return "no Upgrade: websocket";
	if (!has_token(header(h, "Connection"), "upgrade"))
		return "no Connection: upgrade";
	if (!ver || ver->n != 2 || memcmp(ver->p, "13", 2) != 0) {
		*status = 426;
		return "only Sec-WebSocket-Version 13 is supported";
	}
	/* 16 bytes in base64: 24 characters, the last two "==" (18 decoded,
	 * two of them padding). */
	if (!key || key->n != 24 || key->p[22] != '=' || key->p[23] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key->p, 24) != 18)
		return "Sec-WebSocket-Key is not 16 bytes in base64";
	return NULL;
}

/* The first of ours that the client offered, or NULL. */
static const char *choose_protocol(const struct head *h,
				   const coev_ws_opts_t *opts)
{
	const struct span *offered = header(h, "Sec-WebSocket-Protocol");
	const char *const *p;

	if (!offered || !opts || !opts->protocols)
		return NULL;
	for (p = opts->protocols; *p; p++)
		if (has_token(offered, *p))
			return *p;
	return NULL;
}

static int answer_101(coev_stream_t *s, const struct span *key,
		      const char *proto, coev_time_t deadline)
{
	char acc[29], txt[512];
	int r = accept_value(key->p, key->n, acc);

	if (r < 0)
		return r;
	snprintf(txt, sizeof(txt),
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
		 "%s%s%s\r\n",
		 acc, proto ? "Sec-WebSocket-Protocol: " : "",
		 proto ? proto : "", proto ? "\r\n" : "");
	return write_all(s, txt, deadline);
}

int coev_ws_accept(coev_stream_t *s, const coev_ws_opts_t *opts,
		   coev_ws_t **out, coev_time_t deadline)
{
	char *buf, *path = NULL;
	const char *why, *proto;
	http_parser p;
	struct head h;
	ssize_t n;
	int status, r;

	if (!s || !out)
		return -EINVAL;
	buf = malloc(COEV_WS_MAX_HANDSHAKE);
	if (!buf)
		return -ENOMEM;
	n = read_head(s, buf, deadline);
	if (n == -EMSGSIZE)
		r = refuse(s, 431, "request too long", -EMSGSIZE, deadline);
	else if (n < 0)
		r = (int)n;
	else if (parse(buf, (size_t)n, HTTP_REQUEST, &p, &h) < 0)
		r = refuse(s, 400, "malformed HTTP request", -EPROTO, deadline);
	else if ((why = check_request(&p, &h, &status)))
		r = refuse(s, status, why, -EPROTO, deadline);
	else {
		proto = choose_protocol(&h, opts);
		path = strndup(h.url.p ? h.url.p : "/", h.url.p ? h.url.n : 1);
		r = path ? answer_101(s, header(&h, "Sec-WebSocket-Key"), proto,
				      deadline)
			 : -ENOMEM;
		if (r == 0)
			r = coev__ws_new(s, 1, opts, path, proto, out);
	}
	free(path);
	free(buf);
	return r;
}

/* --- client --------------------------------------------------------------- */

static int clean(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

/* The request with a fresh key; the key's accept value into acc. */
static int send_request(coev_stream_t *s, const char *host, const char *path,
			const coev_ws_opts_t *opts, char acc[29],
			coev_time_t deadline)
{
	unsigned char raw[16];
	char key[25], offer[512] = "", *txt;
	const char *const *p;
	int r, len;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	if ((r = accept_value(key, 24, acc)) < 0)
		return r;
	for (p = opts && opts->protocols ? opts->protocols : NULL; p && *p;
	     p++) {
		size_t used = strlen(offer);
		if (!clean(*p) || used + strlen(*p) + 3 >= sizeof(offer))
			return -EINVAL;
		snprintf(offer + used, sizeof(offer) - used, "%s%s",
			 used ? ", " : "", *p);
	}
	len = asprintf(&txt,
		       "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		       "Sec-WebSocket-Version: 13\r\n%s%s%s%s\r\n",
		       path, host, key,
		       offer[0] ? "Sec-WebSocket-Protocol: " : "", offer,
		       offer[0] ? "\r\n" : "",
		       opts && opts->headers ? opts->headers : "");
	if (len < 0)
		return -ENOMEM;
	r = write_all(s, txt, deadline);
	free(txt);
	return r;
}

/* The answer's chosen protocol (copied into proto), or -EPROTO. */
static int check_answer(const http_parser *p, const struct head *h,
			const char acc[29], const coev_ws_opts_t *opts,
			char *proto, size_t size)
{
	const struct span *a = header(h, "Sec-WebSocket-Accept");
	const struct span *pr = header(h, "Sec-WebSocket-Protocol");
	const char *const *o;

	if (p->status_code != 101 ||
	    !has_token(header(h, "Upgrade"), "websocket") ||
	    !has_token(header(h, "Connection"), "upgrade") || !a ||
	    a->n != 28 || memcmp(a->p, acc, 28) != 0)
		return -EPROTO;
	proto[0] = 0;
	if (!pr)
		return 0;
	for (o = opts && opts->protocols ? opts->protocols : NULL; o && *o; o++)
		if (strlen(*o) == pr->n && memcmp(*o, pr->p, pr->n) == 0 &&
		    pr->n < size) {
			memcpy(proto, pr->p, pr->n);
			proto[pr->n] = 0;
			return 0;
		}
	return -EPROTO; /* a protocol we did not offer */
}

int coev_ws_connect(coev_stream_t *s, const char *host, const char *path,
		    const coev_ws_opts_t *opts, coev_ws_t **out,
		    coev_time_t deadline)
{
	char acc[29], proto[256], *buf;
	http_parser p;
	struct head h;
	ssize_t n;
	int r;

	if (!s || !out || !clean(host) || !clean(path) ||
	    (opts && opts->headers && strstr(opts->headers, "\r\n\r\n")))
		return -EINVAL;
	buf = malloc(COEV_WS_MAX_HANDSHAKE);
	if (!buf)
		return -ENOMEM;
	r = send_request(s, host, path, opts, acc, deadline);
	if (r == 0) {
		n = read_head(s, buf, deadline);
		r = n < 0 ? (int)n
			  : parse(buf, (size_t)n, HTTP_RESPONSE, &p, &h);
	}
	if (r == 0)
		r = check_answer(&p, &h, acc, opts, proto, sizeof(proto));
	if (r == 0)
		r = coev__ws_new(s, 0, opts, path, proto, out);
	free(buf);
	return r;
}
