/* SPDX-License-Identifier: MIT */
/*
 * examples/coev-trace-svg.c — draws a coev trace (COEV_TRACE=FILE, see
 * coev/debug.h) as an SVG timeline, for a look at what the workers did
 * without a browser to load the trace into Perfetto.
 *
 *   coev-trace-svg TRACE.json [-o OUT.svg] [--from US] [--to US]
 *                  [--width PX]
 *
 * One lane per worker; task runs as boxes coloured by a hash of the task's
 * name (the same name, the same colour, in every picture), idle time in
 * light grey, wake-ups (blue: from the waker to the woken task's run) and
 * steals (red: from the victim to the thief) as arrows; a time axis with
 * 1, 2 or 5 x 10^k steps; a legend with the names that took the most time.
 * Every box and arrow has a <title>: a viewer shows it on hover.
 * --from/--to (microseconds, the trace's clock) draw a window; --width
 * sets the picture's width (default 1200 px). The SVG goes to stdout or
 * to -o.
 *
 * A million-event trace stays a picture of a few MB: in each lane, runs of
 * boxes narrower than a pixel are merged into one box of about a pixel
 * (coloured by its longest task, or grey if mostly idle; its title says
 * what it holds), so a lane holds at most a few boxes per pixel; and at
 * most 2,000 arrows are drawn, spread evenly over the window (the legend
 * says how many were left out). Arrows are drawn only when both ends are
 * inside the window. Not drawn: "i" (spawn) events and flows of categories
 * other than wake and steal. Memory: 40 bytes per slice and 24 per flow
 * end, plus each distinct task name once (about 50 MB for a million
 * events).
 *
 * The format relied on is exactly what coev writes: the first line is
 * {"traceEvents":[ , then ONE EVENT PER LINE, a flat JSON object (keys in
 * any order, no spaces) whose only nested object is "args", followed by
 * "," on all but the last; then a closing line starting with "]" that
 * carries otherData (workers, dropped). So the reader is line-based: each
 * line is scanned on its own, strings decoded (escapes, \uXXXX), numbers
 * read with strtod (ids are exact up to 2^53). That keeps memory to the events kept (not a tree of
 * the whole file) and lets errors name their line. Rejected: linking a
 * JSON library (none in the dependency list; tests/json.h is for the
 * tests), and a general JSON reader for a format only coev writes. Any
 * other file is refused with the reason and the line number.
 *
 * Exit status: 0 when the SVG was written (a trace without its closing
 * line, as a crash leaves it, is drawn with a warning), 2 for bad
 * arguments, an unreadable or malformed file, or a failed write.
 *
 * SVG, not PNG: text in, text out, no image library (none is in coev's
 * dependency list), hover titles come free, and browsers, image viewers
 * and rsvg-convert all show it.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LANES 1024
#define MAX_ARROWS 2000
#define TOP_NAMES 8
#define LEFT 100
#define RIGHT 20
#define TOP 52
#define LANE_H 26
#define LANE_GAP 8
#define IDLE_FILL "#dedede"

enum { END_NONE, END_PARK, END_YIELD, END_EXIT, END_OTHER };
static const char *const end_words[] = {"", "park", "yield", "exit", "?"};
enum { CAT_WAKE, CAT_STEAL };
static const char *const cat_words[] = {"wake", "steal"};
static const char *const cat_colours[] = {"#2166ac", "#d6404d"};

struct slice {
	double ts, dur;
	uint64_t task;
	uint32_t name; /* index in trace.names; idle slices: unused */
	uint16_t lane; /* tid: worker index + 1 */
	uint8_t idle, end;
};

struct flow {
	double ts;
	uint64_t id;
	uint16_t lane;
	uint8_t cat;
	char ph; /* 's' or 'f' */
};

struct name {
	char *s;
	uint64_t hash;
	double busy; /* time in the window, for the legend */
};

struct trace {
	struct slice *sl;
	size_t nsl, capsl;
	struct flow *fl;
	size_t nfl, capfl;
	struct name *names;
	size_t nnames, capnames;
	uint32_t *tab; /* open addressing: name index + 1, 0 when free */
	size_t tabcap;
	int lanes;    /* lanes to draw: highest tid, or otherData's workers */
	long dropped; /* from otherData, or -1 */
	int closed;   /* the closing line was seen */
};

/* One event line; strings point into a buffer the size of the line,
 * numbers are NAN when absent. */
struct ev {
	const char *ph, *name, *cat, *end;
	double ts, dur, tid, id, task;
};

struct scan {
	const char *p;
	char *out;
	const char *why;
};

static const char *prog = "coev-trace-svg";

static void *check_alloc(void *p)
{
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(2);
	}
	return p;
}

/* Array a (*cap elements of size bytes) with room for element n. */
static void *grow(void *a, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return a;
	*cap = *cap ? 2 * *cap : 256;
	return check_alloc(realloc(a, *cap * size));
}

/* FNV-1a, then a final mix so that close names get far-apart hues. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ h >> 33;
}

/* The index of name s in t->names, added if new. */
static uint32_t intern(struct trace *t, const char *s)
{
	uint64_t h = hash_str(s);

	if (2 * (t->nnames + 1) > t->tabcap) {
		size_t cap = t->tabcap ? 2 * t->tabcap : 1024;
		uint32_t *tab = check_alloc(calloc(cap, sizeof *tab));
		for (size_t i = 0; i < t->nnames; i++) {
			size_t j = t->names[i].hash & (cap - 1);
			while (tab[j])
				j = (j + 1) & (cap - 1);
			tab[j] = (uint32_t)i + 1;
		}
		free(t->tab);
		t->tab = tab;
		t->tabcap = cap;
	}
	size_t j = h & (t->tabcap - 1);
	for (; t->tab[j]; j = (j + 1) & (t->tabcap - 1)) {
		struct name *n = &t->names[t->tab[j] - 1];
		if (n->hash == h && strcmp(n->s, s) == 0)
			return t->tab[j] - 1;
	}
	t->names = grow(t->names, &t->capnames, t->nnames, sizeof *t->names);
	t->names[t->nnames] = (struct name){check_alloc(strdup(s)), h, 0};
	t->tab[j] = (uint32_t)++t->nnames;
	return (uint32_t)t->nnames - 1;
}

/* ---- reading: one event per line ---------------------------------------- */

static int fail(struct scan *s, const char *why)
{
	s->why = why;
	return -1;
}

static int hex4(const char *p, unsigned *cp)
{
	char h[5] = "";

	if (strspn(p, "0123456789abcdefABCDEF") < 4)
		return -1;
	memcpy(h, p, 4);
	*cp = (unsigned)strtoul(h, NULL, 16);
	return 0;
}

/* Appends code point cp as UTF-8 (a lone surrogate becomes U+FFFD). */
static char *put_utf8(char *o, unsigned cp)
{
	static const unsigned char lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
	int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

	if (cp >= 0xd800 && cp <= 0xdfff)
		return put_utf8(o, 0xfffd);
	for (int i = n - 1; i > 0; i--, cp >>= 6)
		o[i] = (char)(0x80 | (cp & 0x3f));
	o[0] = (char)(lead[n] | cp);
	return o + n;
}

/* Decodes the string at s->p (its opening quote) into s->out; *val is the
 * NUL-terminated result. The decoded text is never longer than the JSON. */
static int scan_string(struct scan *s, const char **val)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *p = s->p + 1, *e;
	unsigned cp, lo;

	*val = s->out;
	for (; *p != '"'; p++) {
		if (*p == '\0')
			return fail(s, "unterminated string");
		if (*p != '\\') {
			*s->out++ = *p;
		} else if (p[1] == 'u' && hex4(p + 2, &cp) == 0) {
			p += 5;
			if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' &&
			    p[2] == 'u' && hex4(p + 3, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				p += 6;
			}
			s->out = put_utf8(s->out, cp);
		} else if (p[1] && (e = strchr(from, p[1])) != NULL) {
			*s->out++ = to[e - from];
			p++;
		} else {
			return fail(s, "bad escape in a string");
		}
	}
	*s->out++ = '\0';
	s->p = p + 1;
	return 0;
}

static int scan_object(struct scan *s, struct ev *e, int depth);

/* Reads the value of key (depth 0: in the event; 1: in its args) into e
 * when the picture needs it. */
static int scan_value(struct scan *s, struct ev *e, const char *key, int depth)
{
	const char *str, **sp;
	double d, *dp;
	char *end;

	if (*s->p == '{')
		return depth == 0 && strcmp(key, "args") == 0
			       ? scan_object(s, e, 1)
			       : fail(s, "unexpected nested object");
	if (*s->p == '"') {
		if (scan_string(s, &str) != 0)
			return -1;
		sp = depth ? (!strcmp(key, "end") ? &e->end : NULL)
		     : !strcmp(key, "ph")   ? &e->ph
		     : !strcmp(key, "name") ? &e->name
		     : !strcmp(key, "cat")  ? &e->cat
					    : NULL;
		if (sp)
			*sp = str;
		return 0;
	}
	d = strtod(s->p, &end);
	if (end == s->p || (*s->p != '-' && (*s->p < '0' || *s->p > '9')) ||
	    !isfinite(d))
		return fail(s, "a string, number or object expected");
	s->p = end;
	dp = depth		   ? (!strcmp(key, "task") ? &e->task : NULL)
	     : !strcmp(key, "ts")  ? &e->ts
	     : !strcmp(key, "dur") ? &e->dur
	     : !strcmp(key, "tid") ? &e->tid
	     : !strcmp(key, "id")  ? &e->id
				   : NULL;
	if (dp)
		*dp = d;
	return 0;
}

static int scan_object(struct scan *s, struct ev *e, int depth)
{
	const char *key;

	if (*s->p++ != '{')
		return fail(s, "'{' expected");
	if (*s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (*s->p != '"')
			return fail(s, "a key expected");
		if (scan_string(s, &key) != 0)
			return -1;
		if (*s->p++ != ':')
			return fail(s, "':' expected after a key");
		if (scan_value(s, e, key, depth) != 0)
			return -1;
		if (*s->p == '}') {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return fail(s, "',' or '}' expected");
	}
}

/* Keeps what the picture needs of event e. Returns NULL or what is wrong. */
static const char *add_event(struct trace *t, const struct ev *e)
{
	char ph = e->ph && e->ph[0] && !e->ph[1] ? e->ph[0] : '?';
	int cat = !e->cat		     ? -1
		  : !strcmp(e->cat, "wake")  ? CAT_WAKE
		  : !strcmp(e->cat, "steal") ? CAT_STEAL
					     : -1;

	if (!e->ph)
		return "no \"ph\"";
	if (ph != 'X' && ph != 's' && ph != 'f')
		return NULL; /* metadata, instants (spawns), anything newer */
	if (!(e->tid >= 1 && e->tid <= MAX_LANES))
		return "no tid, or one out of 1..1024";
	if (isnan(e->ts))
		return "no ts";
	if ((int)e->tid > t->lanes)
		t->lanes = (int)e->tid;
	if (ph != 'X') {
		if (!(e->id >= 0 && e->id < 0x1p63))
			return "a flow event without a valid id";
		if (cat < 0)
			return NULL; /* a kind of flow this tool does not know */
		t->fl = grow(t->fl, &t->capfl, t->nfl, sizeof *t->fl);
		t->fl[t->nfl++] =
			(struct flow){e->ts, (uint64_t)e->id, (uint16_t)e->tid,
				      (uint8_t)cat, ph};
		return NULL;
	}
	if (!(e->dur >= 0))
		return "a slice without a valid dur";
	struct slice sl = {.ts = e->ts,
			   .dur = e->dur,
			   .lane = (uint16_t)e->tid,
			   .idle = e->cat && !strcmp(e->cat, "idle")};
	if (e->task >= 0 && e->task < 0x1p63)
		sl.task = (uint64_t)e->task;
	if (!sl.idle)
		sl.name = intern(t, e->name ? e->name : "task");
	for (int i = END_PARK; e->end && strcmp(e->end, "none") && !sl.end; i++)
		if (i == END_OTHER || !strcmp(e->end, end_words[i]))
			sl.end = (uint8_t)i;
	t->sl = grow(t->sl, &t->capsl, t->nsl, sizeof *t->sl);
	t->sl[t->nsl++] = sl;
	return NULL;
}

/* The closing line: ],"displayTimeUnit":...,"otherData":{...}}. */
static void read_trailer(struct trace *t, const char *line)
{
	const char *w = strstr(line, "\"workers\":");
	const char *d = strstr(line, "\"dropped\":");

	t->closed = 1;
	if (w) {
		long n = strtol(w + 10, NULL, 10);
		if (n > t->lanes && n <= MAX_LANES)
			t->lanes = (int)n;
	}
	if (d)
		t->dropped = strtol(d + 10, NULL, 10);
}

/* Scans one event line (its newline and trailing comma removed). */
static const char *read_event(struct trace *t, const char *line, char *buf)
{
	struct ev e = {NULL, NULL, NULL, NULL, NAN, NAN, NAN, NAN, NAN};
	struct scan s = {line, buf, NULL};

	if (scan_object(&s, &e, 0) != 0)
		return s.why;
	if (*s.p != '\0')
		return "text after the event's closing '}'";
	return add_event(t, &e);
}

static int read_trace(FILE *f, const char *path, struct trace *t)
{
	char *line = NULL, *buf = NULL;
	size_t cap = 0, bufcap = 0;
	ssize_t n;
	long lineno = 0;
	const char *why = NULL, *what = "";

	while (!why && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && strchr("\r\n \t", line[n - 1]))
			line[--n] = '\0';
		if (lineno == 1) {
			if (strcmp(line, "{\"traceEvents\":[") != 0)
				why = "not a coev trace (the first line must "
				      "be {\"traceEvents\":[ )";
		} else if (n == 0) {
			continue;
		} else if (t->closed) {
			why = "text after the closing line";
		} else if (line[0] == ']') {
			read_trailer(t, line);
		} else {
			if (line[n - 1] == ',')
				line[--n] = '\0';
			buf = grow(buf, &bufcap, (size_t)n + 1, 1);
			why = read_event(t, line, buf);
			what = "malformed event: ";
		}
	}
	if (why)
		fprintf(stderr, "%s: %s:%ld: %s%s\n", prog, path, lineno, what,
			why);
	else if (ferror(f) || lineno == 0)
		fprintf(stderr, "%s: %s: %s\n", prog, path,
			ferror(f) ? strerror(errno) : "empty file");
	else if (!t->closed)
		fprintf(stderr,
			"%s: %s: no closing line (a truncated trace?); "
			"drawing what is there\n",
			prog, path);
	free(line);
	free(buf);
	return why || ferror(f) || lineno == 0 ? -1 : 0;
}

/* ---- drawing ------------------------------------------------------------ */

struct view {
	FILE *o;
	double t0, t1; /* the window, in microseconds */
	double pw;     /* the plot's width in pixels */
	int width;
	size_t ntask, nidle, rects, merged, arrows, flows;
};

static double px(const struct view *v, double t)
{
	return LEFT + (t - v->t0) * v->pw / (v->t1 - v->t0);
}

static double lane_y(int lane)
{
	return TOP + (lane - 1) * (LANE_H + LANE_GAP);
}

/* The length of the UTF-8 sequence at p if it is valid and a character
 * XML allows, else 0 (the terminating NUL stops any sequence). */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0], cp;
	size_t n = c < 0x80		    ? 1
		   : c >= 0xc2 && c <= 0xdf ? 2
		   : c >= 0xe0 && c <= 0xef ? 3
		   : c >= 0xf0 && c <= 0xf4 ? 4
					    : 0;

	cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 &&
	     (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) || cp >= 0xfffe)) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Writes s as XML text, at most max bytes of it (0: all) and then "…":
 * & < > " escaped, control characters as spaces, invalid UTF-8 as U+FFFD,
 * so that the SVG stays well-formed whatever a task was named. */
static void put_text(FILE *o, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t done = 0, n; *p; p += n ? n : 1, done += n ? n : 1) {
		n = utf8_len(p);
		if (max && done + (n ? n : 1) > max) {
			fputs("\u2026", o);
			return;
		}
		if (n == 0)
			fputs("\ufffd", o);
		else if (n > 1)
			fwrite(p, 1, n, o);
		else if (*p == '&' || *p == '<' || *p == '>' || *p == '"')
			fputs(*p == '&'	  ? "&amp;"
			      : *p == '<' ? "&lt;"
			      : *p == '>' ? "&gt;"
					  : "&quot;",
			      o);
		else
			fputc(*p < 0x20 ? ' ' : *p, o);
	}
}

/* A colour from a name's hash: any hue, mid saturation and lightness. */
static void colour(uint64_t h, char out[8])
{
	double hue = (double)(h % 360) / 60;
	double s = 0.45 + (double)(h >> 20 & 31) / 100;
	double l = 0.48 + (double)(h >> 40 & 15) / 100;
	double c = (1 - fabs(2 * l - 1)) * s, m = l - c / 2;
	double x = c * (1 - fabs(fmod(hue, 2) - 1));
	const double rgb[6][3] = {{c, x, 0}, {x, c, 0}, {0, c, x},
				  {0, x, c}, {x, 0, c}, {c, 0, x}};
	const double *k = rgb[(int)hue % 6];

	snprintf(out, 8, "#%02x%02x%02x", (int)lround((k[0] + m) * 255),
		 (int)lround((k[1] + m) * 255), (int)lround((k[2] + m) * 255));
}

static void open_rect(struct view *v, double x, int lane, double w,
		      const char *fill)
{
	fprintf(v->o,
		"<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" "
		"fill=\"%s\"><title>",
		x, lane_y(lane), w, LANE_H, fill);
	v->rects++;
}

static void slice_rect(struct view *v, const struct trace *t,
		       const struct slice *s, double x, double w)
{
	char fill[8] = IDLE_FILL;

	if (!s->idle)
		colour(t->names[s->name].hash, fill);
	open_rect(v, x, s->lane, w, fill);
	if (s->idle) {
		fputs("idle", v->o);
	} else {
		put_text(v->o, t->names[s->name].s, 0);
		fprintf(v->o, " (task %llu)", (unsigned long long)s->task);
	}
	fprintf(v->o, "\nstart %.3f \u00b5s, duration %.3f \u00b5s", s->ts,
		s->dur);
	if (s->end)
		fprintf(v->o, "\nend: %s", end_words[s->end]);
	fputs("</title></rect>\n", v->o);
}

/* Boxes narrower than a pixel, side by side in one lane. */
struct run {
	double x0, x1, busy, idle;
	size_t n;
	const struct slice *first, *top; /* top: the longest task run */
};

/* One box for a run of n > 1 boxes narrower than a pixel. */
static void merged_rect(struct view *v, const struct trace *t,
			const struct run *r)
{
	char fill[8] = IDLE_FILL;

	if (r->top && r->busy > r->idle)
		colour(t->names[r->top->name].hash, fill);
	open_rect(v, r->x0, r->first->lane, fmax(r->x1 - r->x0, 1), fill);
	fprintf(v->o,
		"%zu runs merged (each under a pixel) from %.3f \u00b5s\n"
		"busy %.3f \u00b5s, idle %.3f \u00b5s",
		r->n, r->first->ts, r->busy, r->idle);
	if (r->top) {
		fputs("\nlongest: ", v->o);
		put_text(v->o, t->names[r->top->name].s, 0);
		fprintf(v->o, " (task %llu) %.3f \u00b5s",
			(unsigned long long)r->top->task, r->top->dur);
	}
	fputs("</title></rect>\n", v->o);
	v->merged += r->n;
}

/* Draws the run (if any) and starts a new one. A lone narrow box is
 * drawn a pixel wide, so that it can be seen. */
static void flush_run(struct view *v, const struct trace *t, struct run *r)
{
	if (r->n == 1)
		slice_rect(v, t, r->first, r->x0, fmax(r->x1 - r->x0, 1));
	else if (r->n > 1)
		merged_rect(v, t, r);
	memset(r, 0, sizeof *r);
}

/* Draws the n slices of one lane, sorted by start. */
static void draw_lane(struct view *v, struct trace *t, const struct slice *s,
		      size_t n)
{
	struct run r = {0};

	for (; n > 0; n--, s++) {
		double a = fmax(s->ts, v->t0), b = fmin(s->ts + s->dur, v->t1);
		if (b < a)
			continue; /* outside the window */
		if (s->idle) {
			v->nidle++;
		} else {
			v->ntask++;
			t->names[s->name].busy += b - a;
		}
		double x0 = px(v, a), x1 = px(v, b);
		if (x1 - x0 >= 1) {
			flush_run(v, t, &r);
			slice_rect(v, t, s, x0, x1 - x0);
			continue;
		}
		if (r.n && x0 - r.x1 >= 1)
			flush_run(v, t, &r);
		if (r.n++ == 0) {
			r.first = s;
			r.x0 = x0;
		}
		r.x1 = fmax(r.x1, x1);
		if (s->idle)
			r.idle += b - a;
		else
			r.busy += b - a;
		if (!s->idle && (!r.top || s->dur > r.top->dur))
			r.top = s;
		if (r.x1 - r.x0 >= 1)
			flush_run(v, t, &r);
	}
	flush_run(v, t, &r);
}

static int slice_cmp(const void *a, const void *b)
{
	const struct slice *x = a, *y = b;

	if (x->lane != y->lane)
		return x->lane < y->lane ? -1 : 1;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

static int flow_cmp(const void *a, const void *b)
{
	const struct flow *x = a, *y = b;

	if (x->cat != y->cat)
		return x->cat < y->cat ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->ph != y->ph)
		return x->ph == 's' ? -1 : 1;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

static void arrow(struct view *v, const struct flow *s, const struct flow *f)
{
	fprintf(v->o,
		"<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" "
		"stroke=\"%s\" stroke-width=\"0.8\" marker-end=\"url(#m%d)\">"
		"<title>%s %llu: worker %d at %.3f \u00b5s \u2192 worker %d "
		"at %.3f \u00b5s</title></line>\n",
		px(v, s->ts), lane_y(s->lane) + LANE_H / 2.0, px(v, f->ts),
		lane_y(f->lane) + LANE_H / 2.0, cat_colours[s->cat], s->cat,
		cat_words[s->cat], (unsigned long long)s->id, s->lane - 1,
		s->ts, f->lane - 1, f->ts);
	v->arrows++;
}

/* Pairs each "s" with its "f" (same cat and id) and draws the pairs with
 * both ends in the window: all of them, or MAX_ARROWS spread evenly. */
static void draw_flows(struct view *v, struct trace *t)
{
	size_t k = 0;

	if (t->nfl)
		qsort(t->fl, t->nfl, sizeof *t->fl, flow_cmp);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i + 1 < t->nfl; i++) {
			const struct flow *s = &t->fl[i], *f = s + 1;
			if (s->ph != 's' || f->ph != 'f' || s->cat != f->cat ||
			    s->id != f->id || s->ts < v->t0 || s->ts > v->t1 ||
			    f->ts < v->t0 || f->ts > v->t1)
				continue;
			if (pass == 0) {
				v->flows++;
				continue;
			}
			size_t at = k * MAX_ARROWS / v->flows;
			k++;
			if (v->flows <= MAX_ARROWS ||
			    at != k * MAX_ARROWS / v->flows)
				arrow(v, s, f);
		}
	}
}

/* A round step (1, 2 or 5 x 10^k) of at least raw. */
static double nice_step(double raw)
{
	double p = pow(10, floor(log10(raw))), m = raw / p;

	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* Ticks with labels above the lanes and grid lines down to bottom. */
static void draw_axis(struct view *v, double bottom)
{
	double step = nice_step((v->t1 - v->t0) / fmax(v->pw / 110, 1));
	double div = step >= 1e6 ? 1e6 : step >= 1e3 ? 1e3 : 1;
	const char *unit = div == 1e6 ? "s" : div == 1e3 ? "ms" : "\u00b5s";
	int dec = step / div >= 1 ? 0 : (int)ceil(-log10(step / div) - 1e-9);

	/* (Bounded: far from 0, k + 1 may round to k.) */
	for (double k = ceil(v->t0 / step), i = 0; i < 1000; k++, i++) {
		if (k * step > v->t1)
			break;
		double x = px(v, k * step);
		fprintf(v->o,
			"<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.0f\" "
			"stroke=\"#e0e0e0\"/>\n<text x=\"%.2f\" y=\"%d\" "
			"text-anchor=\"middle\">%.*f %s</text>\n",
			x, TOP - 6, x, bottom, x, TOP - 10, dec,
			k * step / div + 0.0, unit);
	}
}

struct rank {
	double busy;
	uint32_t name;
};

static int rank_cmp(const void *a, const void *b)
{
	double x = ((const struct rank *)a)->busy;
	double y = ((const struct rank *)b)->busy;

	return (x < y) - (x > y);
}

/* The legend: what the colours mean, the names that took the most time,
 * and what was merged or left out. */
static void draw_legend(struct view *v, struct trace *t, double y)
{
	FILE *o = v->o;
	struct rank *rk = check_alloc(malloc((t->nnames + 1) * sizeof *rk));
	double colw = (v->width - LEFT - RIGHT) / 4.0;

	fprintf(o,
		"<rect x=\"%d\" y=\"%.0f\" width=\"14\" height=\"10\" "
		"fill=\"" IDLE_FILL "\"/>"
		"<text x=\"%d\" y=\"%.0f\">idle</text>\n",
		LEFT, y - 9, LEFT + 18, y);
	for (int c = CAT_WAKE; c <= CAT_STEAL; c++)
		fprintf(o,
			"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
			"stroke=\"%s\" marker-end=\"url(#m%d)\"/>"
			"<text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
			LEFT + colw * (c + 1), y - 4,
			LEFT + colw * (c + 1) + 20, y - 4, cat_colours[c], c,
			LEFT + colw * (c + 1) + 26, y,
			c == CAT_WAKE
				? "wake: waker \u2192 the woken task's run"
				: "steal: victim \u2192 thief");
	for (size_t i = 0; i < t->nnames; i++)
		rk[i] = (struct rank){t->names[i].busy, (uint32_t)i};
	qsort(rk, t->nnames, sizeof *rk, rank_cmp);
	for (size_t i = 0; i < t->nnames && i < TOP_NAMES; i++) {
		const struct name *n = &t->names[rk[i].name];
		double x = LEFT + colw * (double)(i % 4);
		double ny = y + 20 + 18 * (double)(i / 4);
		char fill[8];
		if (n->busy <= 0)
			break;
		colour(n->hash, fill);
		fprintf(o,
			"<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" "
			"height=\"10\" fill=\"%s\"/>"
			"<text x=\"%.0f\" y=\"%.0f\">",
			x, ny - 9, fill, x + 18, ny);
		put_text(o, n->s, colw > 120 ? (size_t)(colw - 80) / 7 : 6);
		fprintf(o, " %.3f %s</text>\n",
			n->busy / (n->busy >= 1e5 ? 1e3 : 1),
			n->busy >= 1e5 ? "ms" : "\u00b5s");
	}
	free(rk);
	fprintf(o,
		"<text x=\"%d\" y=\"%.0f\">%zu task runs and %zu idle slices; "
		"%zu boxes (%zu runs under a pixel merged)</text>\n"
		"<text x=\"%d\" y=\"%.0f\">%zu flow arrows drawn of %zu",
		LEFT, y + 60, v->ntask, v->nidle, v->rects, v->merged, LEFT,
		y + 78, v->arrows, v->flows);
	if (v->arrows < v->flows)
		fprintf(o, " (%zu omitted: at most %d)", v->flows - v->arrows,
			MAX_ARROWS);
	if (t->dropped > 0)
		fprintf(o, "; %ld events dropped by coev (ring full)",
			t->dropped);
	fputs("</text>\n", o);
}

static void draw(struct view *v, struct trace *t, const char *path)
{
	double bottom = t->lanes ? lane_y(t->lanes) + LANE_H : TOP;
	int height = (int)bottom + 30 + 90;

	fprintf(v->o,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n<defs>\n",
		v->width, height, v->width, height);
	for (int c = CAT_WAKE; c <= CAT_STEAL; c++)
		fprintf(v->o,
			"<marker id=\"m%d\" viewBox=\"0 0 10 10\" refX=\"10\" "
			"refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
			"orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" "
			"fill=\"%s\"/></marker>\n",
			c, cat_colours[c]);
	fprintf(v->o,
		"</defs>\n<rect width=\"100%%\" height=\"100%%\" "
		"fill=\"#ffffff\"/>\n<text x=\"%d\" y=\"18\" font-size=\"13\">"
		"coev trace ",
		LEFT);
	put_text(v->o, path, 0);
	fprintf(v->o, ": %d workers, %.3f to %.3f \u00b5s</text>\n", t->lanes,
		v->t0, v->t1);
	draw_axis(v, bottom);
	for (int l = 1; l <= t->lanes; l++) {
		fprintf(v->o,
			"<rect x=\"%d\" y=\"%.0f\" width=\"%.0f\" "
			"height=\"%d\" fill=\"#f7f7f7\"/>\n"
			"<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">",
			LEFT, lane_y(l), v->pw, LANE_H, LEFT - 8,
			lane_y(l) + LANE_H / 2.0 + 4);
		fprintf(v->o, "worker %d</text>\n", l - 1);
	}
	if (t->nsl) /* (qsort's array may not be NULL, even when empty) */
		qsort(t->sl, t->nsl, sizeof *t->sl, slice_cmp);
	for (size_t i = 0, j; i < t->nsl; i = j) {
		for (j = i; j < t->nsl && t->sl[j].lane == t->sl[i].lane; j++)
			;
		draw_lane(v, t, &t->sl[i], j - i);
	}
	draw_flows(v, t);
	draw_legend(v, t, bottom + 30);
	fputs("</svg>\n", v->o);
}

/* The window: --from/--to where given, else the events' extent. */
static void set_window(struct view *v, const struct trace *t, double from,
		       double to)
{
	double lo = INFINITY, hi = -INFINITY;

	for (size_t i = 0; i < t->nsl; i++) {
		lo = fmin(lo, t->sl[i].ts);
		hi = fmax(hi, t->sl[i].ts + t->sl[i].dur);
	}
	for (size_t i = 0; i < t->nfl; i++) {
		lo = fmin(lo, t->fl[i].ts);
		hi = fmax(hi, t->fl[i].ts);
	}
	v->t0 = !isnan(from) ? from : lo < INFINITY ? lo : 0;
	v->t1 = !isnan(to) ? to : hi;
	if (!(v->t1 > v->t0))
		v->t1 = v->t0 + 1;
	v->pw = v->width - LEFT - RIGHT;
}

static int usage(FILE *f)
{
	fprintf(f,
		"usage: %s TRACE.json [-o OUT.svg] [--from US] [--to US] "
		"[--width PX]\n"
		"Draws a coev trace (COEV_TRACE=FILE) as an SVG timeline.\n",
		prog);
	return f == stdout ? 0 : 2;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return end != s && *end == '\0' && errno == 0 && *out >= lo &&
			       *out <= hi
		       ? 0
		       : -1;
}

static int bad_option(int c, const char *arg)
{
	fprintf(stderr, "%s: bad --%s value '%s'\n", prog,
		c == 'f'   ? "from"
		: c == 't' ? "to"
			   : "width (300 to 100000)",
		arg);
	return 2;
}

static int write_svg(struct trace *t, struct view *v, const char *path,
		     const char *out)
{
	v->o = out ? fopen(out, "w") : stdout;
	if (!v->o) {
		fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
		return -1;
	}
	draw(v, t, path);
	int bad = ferror(v->o);
	if ((out ? fclose(v->o) : fflush(v->o)) != 0 || bad) {
		fprintf(stderr, "%s: writing %s failed\n", prog,
			out ? out : "stdout");
		if (out)
			remove(out);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"width", required_argument, NULL, 'w'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct trace t = {.dropped = -1};
	struct view v = {.width = 1200};
	double from = NAN, to = NAN, width;
	const char *out = NULL;
	int c, rc = -1;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 'h')
			return usage(stdout);
		else if (c == 'f' && parse_num(optarg, 0, 1e15, &from) == 0)
			continue;
		else if (c == 't' && parse_num(optarg, 0, 1e15, &to) == 0)
			continue;
		else if (c == 'w' &&
			 parse_num(optarg, 300, 100000, &width) == 0)
			v.width = (int)width;
		else if (c == 'f' || c == 't' || c == 'w')
			return bad_option(c, optarg);
		else
			return usage(stderr);
	}
	if (optind != argc - 1)
		return usage(stderr);
	if (!isnan(from) && !isnan(to) && to <= from) {
		fprintf(stderr, "%s: --to must be after --from\n", prog);
		return 2;
	}
	FILE *f = fopen(argv[optind], "r");
	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
			strerror(errno));
		return 2;
	}
	if (read_trace(f, argv[optind], &t) == 0) {
		set_window(&v, &t, from, to);
		rc = write_svg(&t, &v, argv[optind], out);
	}
	fclose(f);
	for (size_t i = 0; i < t.nnames; i++)
		free(t.names[i].s);
	free(t.names);
	free(t.tab);
	free(t.sl);
	free(t.fl);
	return rc == 0 ? 0 : 2;
}
