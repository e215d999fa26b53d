/* SPDX-License-Identifier: MIT */
/*
 * tests/json.h — a small JSON parser (RFC 8259) for the test suites, so
 * that they can read back what coev writes (COEV_TRACE's trace-event JSON,
 * metrics) and check it field by field instead of matching text.
 *
 * json_parse() reads one complete JSON text into a tree (json_t nodes,
 * read with json_get, json_len, json_at, json_key, json_str, json_num);
 * json_free() frees it. Strict, because the point is to catch a writer's
 * mistakes that a forgiving reader (a browser) would hide:
 *   - the whole input must be one value with only JSON whitespace (space,
 *     tab, LF, CR) around it: trailing garbage, trailing commas, comments,
 *     single quotes, NaN/Infinity, a byte order mark are errors;
 *   - numbers follow the grammar (no leading zeros, no "1.", ".5", "+1")
 *     and must fit a double (1e999 is an error; underflow gives 0);
 *   - strings: no raw control characters (< 0x20), only the escapes
 *     \" \\ \/ \b \f \n \r \t \uXXXX; a \u escape of a surrogate must be a
 *     high one followed by a low one (a lone surrogate cannot become
 *     UTF-8); raw bytes must be valid UTF-8 (no overlong forms, no encoded
 *     surrogates, nothing above U+10FFFF). Strings are decoded to UTF-8
 *     and NUL-terminated; \u0000 is kept, so len may exceed strlen;
 *   - nesting deeper than JSON_MAX_DEPTH (256, may be defined before the
 *     include) is an error instead of a stack overflow.
 * Errors come back as NULL and "line L col C: reason" (columns count bytes
 * from 1), the position being where the parser stopped.
 *
 * Memory: a tree lives in an arena of malloc'ed blocks (4 KB doubling up
 * to 1 MB) that json_free() releases at once: no allocation per node, and
 * an error frees everything by dropping the arena. A container's children
 * are collected on a growing stack while it is parsed and copied into the
 * arena, exactly sized, when it closes. So json_free() takes only a root
 * returned by json_parse() (it aborts on anything else it can detect), and
 * the nodes may not be edited or freed one by one.
 *
 * Speed: one pass, no backtracking; the stack and the scratch buffer
 * double their capacity, so parsing is linear (on this machine a 47 MB
 * document of 400,000 trace events parses in about 0.3 s into a tree of
 * about 5 times its size). json_get() scans an object's keys in order
 * (objects in traces have a dozen keys); with duplicate keys it returns
 * the first. Numbers go through strtod(), so a test that calls setlocale()
 * with a comma decimal point would break them.
 *
 * Rejected: a malloc per node (13 times the input's size and 4 times
 * slower, most of it the kernel zeroing pages), a hash per object (not
 * worth it for small objects), keeping numbers as text (tests compare
 * doubles), and a streaming (SAX) interface (tests want random access; a
 * million-event tree fits in memory).
 *
 * Everything is static: several test files include this header.
 */
#ifndef COEV_TESTS_JSON_H
#define COEV_TESTS_JSON_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef JSON_MAX_DEPTH
#define JSON_MAX_DEPTH 256
#endif

#if defined(__GNUC__)
#define JSON_UNUSED __attribute__((unused))
#else
#define JSON_UNUSED
#endif

typedef enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
} json_type_t;

typedef struct json json_t;

struct json {
	json_type_t type;
	union {
		double number; /* JSON_NUMBER */
		struct {
			char *string; /* JSON_STRING: UTF-8, NUL-terminated */
			size_t len;   /* bytes in string, without the NUL */
		};
		struct {
			json_t **children; /* JSON_ARRAY, JSON_OBJECT */
			char **keys; /* JSON_OBJECT: keys[i] names children[i] */
			size_t count;
		};
	};
};

/* A block of the arena; its bytes follow the header. */
typedef struct json_block {
	struct json_block *next; /* the block allocated before this one */
	size_t used, cap;
} json_block_t;

/* What json_parse() returns is the root member of one of these, so that
 * json_free() finds the arena from the root. */
#define JSON_DOC_MAGIC 0x6a736f6e74726565ull
typedef struct json_doc {
	uint64_t magic;
	json_block_t *blocks;
	json_t root;
} json_doc_t;

/* A container's member while the container is being parsed. */
typedef struct json_slot {
	char *key;
	json_t *value;
} json_slot_t;

/* The parser's state; only json_parse() makes one. */
typedef struct json_parser {
	const char *start, *p, *end;
	int depth;
	char *err;
	size_t errlen;
	int failed;
	json_block_t *blocks; /* the arena, newest block first */
	json_slot_t *stack;   /* members of the open containers */
	size_t stacklen, stackcap;
	char *buf; /* scratch for a string being decoded */
	size_t buflen, bufcap;
} json_parser_t;

/* Records the first error, at position at, as "line L col C: reason". */
JSON_UNUSED static void json_fail(json_parser_t *P, const char *at,
				  const char *fmt, ...)
{
	size_t line = 1;
	const char *bol = P->start;

	if (P->failed)
		return;
	P->failed = 1;
	if (!P->err || P->errlen == 0)
		return;
	for (const char *q = P->start; q < at; q++) {
		if (*q == '\n') {
			line++;
			bol = q + 1;
		}
	}
	int n = snprintf(P->err, P->errlen, "line %zu col %zu: ", line,
			 (size_t)(at - bol) + 1);
	if (n < 0 || (size_t)n >= P->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(P->err + n, P->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

JSON_UNUSED static void json_free_blocks(json_block_t *b)
{
	while (b) {
		json_block_t *next = b->next;
		free(b);
		b = next;
	}
}

/* Frees a tree returned by json_parse(); NULL is ignored. Aborts when v
 * is recognisably not such a root (a node inside a tree, say). */
JSON_UNUSED static void json_free(json_t *v)
{
	if (!v)
		return;
	json_doc_t *d = (json_doc_t *)((char *)v - offsetof(json_doc_t, root));
	if (d->magic != JSON_DOC_MAGIC) {
		fprintf(stderr, "json_free: %p is not a tree from json_parse\n",
			(void *)v);
		abort();
	}
	d->magic = 0;
	json_free_blocks(d->blocks);
}

/* n bytes (8-aligned) from the arena, or NULL when out of memory. */
JSON_UNUSED static void *json_alloc(json_parser_t *P, size_t n)
{
	json_block_t *b = P->blocks;

	n = (n + 7) & ~(size_t)7;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? 2 * b->cap : 4096;
		if (cap > ((size_t)1 << 20))
			cap = (size_t)1 << 20;
		if (cap < n)
			cap = n;
		b = malloc(sizeof *b + cap);
		if (!b) {
			json_fail(P, P->p, "out of memory");
			return NULL;
		}
		b->next = P->blocks;
		b->used = 0;
		b->cap = cap;
		P->blocks = b;
	}
	void *p = (char *)(b + 1) + b->used;
	b->used += n;
	return p;
}

/* A zeroed node of type t with extra bytes after it (a string's), or
 * NULL. */
JSON_UNUSED static json_t *json_node(json_parser_t *P, json_type_t t,
				     size_t extra)
{
	json_t *v = json_alloc(P, sizeof *v + extra);

	if (v) {
		memset(v, 0, sizeof *v);
		v->type = t;
	}
	return v;
}

/* Pushes a member of the container being parsed (key NULL in arrays).
 * Returns 0 or -1. */
JSON_UNUSED static int json_push(json_parser_t *P, char *key, json_t *value)
{
	if (P->stacklen == P->stackcap) {
		size_t cap = P->stackcap ? 2 * P->stackcap : 64;
		json_slot_t *s = realloc(P->stack, cap * sizeof *s);
		if (!s) {
			json_fail(P, P->p, "out of memory");
			return -1;
		}
		P->stack = s;
		P->stackcap = cap;
	}
	P->stack[P->stacklen++] = (json_slot_t){key, value};
	return 0;
}

/* Moves the members pushed since base into container v, exactly sized.
 * Returns 0 or -1. */
JSON_UNUSED static int json_pop(json_parser_t *P, json_t *v, size_t base)
{
	size_t n = P->stacklen - base;

	v->count = n;
	if (n == 0)
		return 0;
	v->children = json_alloc(P, n * sizeof *v->children);
	if (v->type == JSON_OBJECT)
		v->keys = json_alloc(P, n * sizeof *v->keys);
	if (!v->children || (v->type == JSON_OBJECT && !v->keys))
		return -1;
	for (size_t i = 0; i < n; i++) {
		v->children[i] = P->stack[base + i].value;
		if (v->keys)
			v->keys[i] = P->stack[base + i].key;
	}
	P->stacklen = base;
	return 0;
}

/* True when the next byte is c. */
JSON_UNUSED static int json_is(const json_parser_t *P, char c)
{
	return P->p < P->end && *P->p == c;
}

JSON_UNUSED static void json_skip_ws(json_parser_t *P)
{
	while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' ||
				 *P->p == '\n' || *P->p == '\r'))
		P->p++;
}

/* Makes room for n more bytes in the scratch buffer. Returns 0 or -1. */
JSON_UNUSED static int json_reserve(json_parser_t *P, size_t n)
{
	if (P->buflen + n <= P->bufcap)
		return 0;
	size_t cap = P->bufcap ? P->bufcap : 64;
	while (cap < P->buflen + n)
		cap *= 2;
	char *b = realloc(P->buf, cap);
	if (!b) {
		json_fail(P, P->p, "out of memory");
		return -1;
	}
	P->buf = b;
	P->bufcap = cap;
	return 0;
}

/* Appends code point cp (at most U+10FFFF) to the scratch buffer as
 * UTF-8 (room for 4 bytes reserved by the caller). */
JSON_UNUSED static void json_put_utf8(json_parser_t *P, uint32_t cp)
{
	unsigned char *o = (unsigned char *)P->buf + P->buflen;

	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		P->buflen += 1;
	} else if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		P->buflen += 2;
	} else if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		P->buflen += 3;
	} else {
		o[0] = (unsigned char)(0xf0 | cp >> 18);
		o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[3] = (unsigned char)(0x80 | (cp & 0x3f));
		P->buflen += 4;
	}
}

/* Reads the 4 hex digits at q into *cp. Returns 0, or -1 if there are
 * fewer than 4 or one is not a hex digit. */
JSON_UNUSED static int json_hex4(const json_parser_t *P, const char *q,
				 uint32_t *cp)
{
	*cp = 0;
	if (P->end - q < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = q[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		*cp = *cp << 4 | (uint32_t)d;
	}
	return 0;
}

/* Decodes the \uXXXX escape at P->p (at the 'u'), and a following low
 * surrogate escape if it is a high surrogate. Returns 0 or -1. */
JSON_UNUSED static int json_unicode_escape(json_parser_t *P)
{
	const char *at = P->p - 1;
	uint32_t cp, lo;

	if (json_hex4(P, P->p + 1, &cp) != 0) {
		json_fail(P, at, "invalid \\u escape (4 hex digits expected)");
		return -1;
	}
	P->p += 5;
	if (cp >= 0xdc00 && cp <= 0xdfff) {
		json_fail(P, at, "lone low surrogate \\u%04x", (unsigned)cp);
		return -1;
	}
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (P->end - P->p < 2 || P->p[0] != '\\' || P->p[1] != 'u' ||
		    json_hex4(P, P->p + 2, &lo) != 0 || lo < 0xdc00 ||
		    lo > 0xdfff) {
			json_fail(P, at,
				  "high surrogate \\u%04x not followed by a "
				  "low one",
				  (unsigned)cp);
			return -1;
		}
		P->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	json_put_utf8(P, cp);
	return 0;
}

/* Checks the UTF-8 sequence at P->p (a byte >= 0x80) and copies it to the
 * scratch buffer. Returns 0 or -1. */
JSON_UNUSED static int json_utf8_copy(json_parser_t *P)
{
	const unsigned char *q = (const unsigned char *)P->p;
	size_t left = (size_t)(P->end - P->p);
	unsigned char c = q[0];
	size_t n = c >= 0xc2 && c <= 0xdf   ? 2
		   : c >= 0xe0 && c <= 0xef ? 3
		   : c >= 0xf0 && c <= 0xf4 ? 4
					    : 0;
	uint32_t cp = n == 2 ? c & 0x1fu : n == 3 ? c & 0x0fu : c & 0x07u;

	for (size_t i = 1; n && i < n; i++) {
		if (i >= left || (q[i] & 0xc0) != 0x80)
			n = 0;
		else
			cp = cp << 6 | (q[i] & 0x3fu);
	}
	/* Overlong three- and four-byte forms, encoded surrogates and code
	 * points past U+10FFFF (two-byte overlongs start with 0xc0/0xc1). */
	if (n == 0 ||
	    (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
		json_fail(P, P->p, "invalid UTF-8 in string");
		return -1;
	}
	memcpy(P->buf + P->buflen, P->p, n);
	P->buflen += n;
	P->p += n;
	return 0;
}

/* Decodes the string at P->p (at the opening quote) into the scratch
 * buffer, NUL-terminated, and moves past the closing quote. Returns 0 or
 * -1. */
JSON_UNUSED static int json_scan_string(json_parser_t *P)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *open = P->p++;

	P->buflen = 0;
	for (;;) {
		if (json_reserve(P, 5) != 0)
			return -1;
		if (P->p == P->end) {
			json_fail(P, open, "unterminated string");
			return -1;
		}
		unsigned char c = (unsigned char)*P->p;
		if (c == '"')
			break;
		if (c < 0x20) {
			json_fail(P, P->p, "control character 0x%02x in string",
				  c);
			return -1;
		}
		if (c >= 0x80) {
			if (json_utf8_copy(P) != 0)
				return -1;
			continue;
		}
		P->p++;
		if (c != '\\') {
			P->buf[P->buflen++] = (char)c;
			continue;
		}
		const char *e =
			P->p < P->end && *P->p ? strchr(from, *P->p) : NULL;
		if (json_is(P, 'u')) {
			if (json_unicode_escape(P) != 0)
				return -1;
		} else if (e) {
			P->buf[P->buflen++] = to[e - from];
			P->p++;
		} else {
			json_fail(P, P->p - 1, "invalid escape in string");
			return -1;
		}
	}
	P->p++;
	P->buf[P->buflen] = '\0';
	return 0;
}

JSON_UNUSED static json_t *json_parse_string(json_parser_t *P)
{
	if (json_scan_string(P) != 0)
		return NULL;
	json_t *v = json_node(P, JSON_STRING, P->buflen + 1);
	if (!v)
		return NULL;
	v->string = (char *)(v + 1);
	v->len = P->buflen;
	memcpy(v->string, P->buf, P->buflen + 1);
	return v;
}

/* Moves past a run of digits; returns how many there were. */
JSON_UNUSED static size_t json_digits(json_parser_t *P)
{
	const char *s = P->p;

	while (P->p < P->end && *P->p >= '0' && *P->p <= '9')
		P->p++;
	return (size_t)(P->p - s);
}

JSON_UNUSED static json_t *json_parse_number(json_parser_t *P)
{
	const char *s = P->p;

	if (*P->p == '-')
		P->p++;
	if (json_is(P, '0') && P->end - P->p > 1 && P->p[1] >= '0' &&
	    P->p[1] <= '9') {
		json_fail(P, P->p, "leading zero in number");
		return NULL;
	}
	if (json_digits(P) == 0) {
		json_fail(P, P->p, "digit expected in number");
		return NULL;
	}
	if (json_is(P, '.')) {
		P->p++;
		if (json_digits(P) == 0) {
			json_fail(P, P->p, "digit expected after '.'");
			return NULL;
		}
	}
	if (json_is(P, 'e') || json_is(P, 'E')) {
		P->p++;
		if (json_is(P, '+') || json_is(P, '-'))
			P->p++;
		if (json_digits(P) == 0) {
			json_fail(P, P->p, "digit expected in exponent");
			return NULL;
		}
	}
	/* strtod needs a NUL-terminated copy: the input may not have one. */
	P->buflen = 0;
	if (json_reserve(P, (size_t)(P->p - s) + 1) != 0)
		return NULL;
	memcpy(P->buf, s, (size_t)(P->p - s));
	P->buf[P->p - s] = '\0';
	double d = strtod(P->buf, NULL);
	if (isinf(d)) {
		json_fail(P, s, "number out of range");
		return NULL;
	}
	json_t *v = json_node(P, JSON_NUMBER, 0);
	if (v)
		v->number = d;
	return v;
}

JSON_UNUSED static json_t *json_parse_literal(json_parser_t *P)
{
	static const struct {
		const char *text;
		json_type_t type;
	} lits[] = {{"true", JSON_TRUE},
		    {"false", JSON_FALSE},
		    {"null", JSON_NULL}};

	for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
		size_t n = strlen(lits[i].text);
		if ((size_t)(P->end - P->p) >= n &&
		    memcmp(P->p, lits[i].text, n) == 0) {
			P->p += n;
			return json_node(P, lits[i].type, 0);
		}
	}
	json_fail(P, P->p, "invalid literal (true, false or null expected)");
	return NULL;
}

JSON_UNUSED static json_t *json_parse_value(json_parser_t *P);

/* Parses an object member's key and the ':' after it into *key (in the
 * arena). Returns 0 or -1. */
JSON_UNUSED static int json_parse_key(json_parser_t *P, char **key)
{
	if (!json_is(P, '"')) {
		json_fail(P, P->p, "string key expected");
		return -1;
	}
	if (json_scan_string(P) != 0)
		return -1;
	*key = json_alloc(P, P->buflen + 1);
	if (!*key)
		return -1;
	memcpy(*key, P->buf, P->buflen + 1);
	json_skip_ws(P);
	if (!json_is(P, ':')) {
		json_fail(P, P->p, "':' expected after key");
		return -1;
	}
	P->p++;
	return 0;
}

/* Parses an array or an object (P->p at its '[' or '{'). On an error the
 * members pushed are left on the stack: json_parse() drops it all. */
JSON_UNUSED static json_t *json_parse_container(json_parser_t *P)
{
	int is_obj = *P->p == '{';
	char close = is_obj ? '}' : ']';
	size_t base = P->stacklen;
	json_t *v;

	if (++P->depth > JSON_MAX_DEPTH) {
		json_fail(P, P->p, "nesting deeper than %d", JSON_MAX_DEPTH);
		return NULL;
	}
	v = json_node(P, is_obj ? JSON_OBJECT : JSON_ARRAY, 0);
	if (!v)
		return NULL;
	P->p++;
	json_skip_ws(P);
	int more = !json_is(P, close);
	while (more) {
		char *key = NULL;
		json_t *child;

		if (is_obj && json_parse_key(P, &key) != 0)
			return NULL;
		child = json_parse_value(P);
		if (!child || json_push(P, key, child) != 0)
			return NULL;
		json_skip_ws(P);
		if (json_is(P, ',')) {
			P->p++;
			json_skip_ws(P);
			if (!json_is(P, close))
				continue;
			json_fail(P, P->p, "trailing comma");
			return NULL;
		}
		if (!json_is(P, close)) {
			json_fail(P, P->p, "',' or '%c' expected", close);
			return NULL;
		}
		more = 0;
	}
	P->p++;
	P->depth--;
	return json_pop(P, v, base) == 0 ? v : NULL;
}

JSON_UNUSED static json_t *json_parse_value(json_parser_t *P)
{
	json_skip_ws(P);
	if (P->p == P->end) {
		json_fail(P, P->p, "unexpected end of input");
		return NULL;
	}
	unsigned char c = (unsigned char)*P->p;
	if (c == '{' || c == '[')
		return json_parse_container(P);
	if (c == '"')
		return json_parse_string(P);
	if (c == '-' || (c >= '0' && c <= '9'))
		return json_parse_number(P);
	if (c == 't' || c == 'f' || c == 'n')
		return json_parse_literal(P);
	if (c >= 0x20 && c < 0x7f)
		json_fail(P, P->p, "unexpected character '%c'", c);
	else
		json_fail(P, P->p, "unexpected byte 0x%02x", c);
	return NULL;
}

/*
 * Parses the n bytes at s (no NUL needed) as one JSON text. Returns the
 * tree (free it with json_free), or NULL with "line L col C: reason" in
 * err (errlen bytes, truncated to fit; err may be NULL) when s is not
 * valid JSON by the rules above or memory ran out. Allocates; any thread.
 */
JSON_UNUSED static json_t *json_parse(const char *s, size_t n, char *err,
				      size_t errlen)
{
	json_parser_t P = {
		.start = s, .p = s, .end = s + n, .err = err, .errlen = errlen};
	json_doc_t *d = NULL;

	if (err && errlen)
		err[0] = '\0';
	json_t *v = json_parse_value(&P);
	json_skip_ws(&P);
	if (v && P.p != P.end)
		json_fail(&P, P.p, "trailing garbage after the value");
	else if (v)
		d = json_alloc(&P, sizeof *d);
	free(P.buf);
	free(P.stack);
	if (!d) {
		json_free_blocks(P.blocks);
		return NULL;
	}
	/* The root moves into the doc; nothing points at its old place (a
	 * root string's bytes stay where they are, in the arena). */
	d->magic = JSON_DOC_MAGIC;
	d->blocks = P.blocks;
	d->root = *v;
	return &d->root;
}

/* The value of key in object obj (the first, if the key is repeated), or
 * NULL when obj is NULL or not an object or has no such key. */
JSON_UNUSED static json_t *json_get(const json_t *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->count; i++) {
		if (strcmp(obj->keys[i], key) == 0)
			return obj->children[i];
	}
	return NULL;
}

/* Elements of an array or members of an object; 0 for anything else. */
JSON_UNUSED static size_t json_len(const json_t *v)
{
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->count
								      : 0;
}

/* Element i of an array (or the value of member i of an object), or NULL
 * when out of range or v is not one. */
JSON_UNUSED static json_t *json_at(const json_t *v, size_t i)
{
	return i < json_len(v) ? v->children[i] : NULL;
}

/* The key of member i of an object, or NULL. */
JSON_UNUSED static const char *json_key(const json_t *obj, size_t i)
{
	return obj && obj->type == JSON_OBJECT && i < obj->count ? obj->keys[i]
								 : NULL;
}

/* A string's decoded text (see len for embedded NULs), or NULL when v is
 * NULL or not a string. */
JSON_UNUSED static const char *json_str(const json_t *v)
{
	return v && v->type == JSON_STRING ? v->string : NULL;
}

/* A number's value, or dflt when v is NULL or not a number. */
JSON_UNUSED static double json_num(const json_t *v, double dflt)
{
	return v && v->type == JSON_NUMBER ? v->number : dflt;
}

#endif
