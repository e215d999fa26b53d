/* SPDX-License-Identifier: MIT */
/*
 * examples/coev-trace-svg.c — draws a coev trace (COEV_TRACE=FILE, see
 * coev/debug.h) as an SVG timeline, for a look at what the workers did
 * without a browser to load the trace into Perfetto.
 *
 *   coev-trace-svg TRACE.json [-o OUT.svg] [--from US] [--to US]
 *                  [--width PX] [--arrows cross|all|none]
 *
 * One lane per worker; task runs as boxes, idle time in light grey,
 * wake-ups (black: from the waker to the woken task's run) and steals
 * (vermilion: from the victim to the thief) as thin arrows with heads; a
 * time axis in microseconds with 1, 2 or 5 x 10^k steps; a caption that
 * says what the picture shows; a legend. Every box and arrow has a
 * <title>: a viewer shows it on hover. --from/--to (microseconds, the
 * trace's clock) draw a window; --width sets the picture's width (default
 * 1200 px). --arrows chooses the flows drawn: cross (the default) only
 * those that go from one worker to another, which are the ones that say
 * something the lanes do not; all of them; or none. The SVG goes to
 * stdout or to -o.
 *
 * Colours are meant to be told apart by every reader: the six task names
 * that ran longest in the window get the six Okabe–Ito colours other than
 * vermilion and black (kept for the arrows), which stay distinct with
 * the common colour-vision deficiencies; every other name is mid grey,
 * and the legend names the six with their time.
 *
 * A million-event trace stays a picture of a few MB: in each lane, runs of
 * boxes narrower than a pixel are merged into one box of about a pixel
 * (coloured by its longest task, or grey if mostly idle; its title says
 * what it holds), so a lane holds at most a few boxes per pixel; and at
 * most 2,000 arrows are drawn, spread evenly over the window (the legend
 * says how many were left out). Arrows are drawn only when both ends are
 * inside the window. Not drawn: "i" (spawn) events and flows of categories
 * other than wake and steal.
 *
 * The format relied on is what coev writes: the first line is
 * {"traceEvents":[ , then ONE EVENT PER LINE, a JSON object followed by
 * "," on all but the last; then a closing line starting with "]" that
 * carries otherData (workers, dropped). Each line is parsed on its own by
 * jansson, so memory holds only the events kept (not a tree of the whole
 * file), errors name their line, and a trace cut short by a crash can
 * still be drawn. Task names are interned in a ck_hs set (ck is one of
 * coev's dependencies). Any other file is refused with the reason and the
 * line number.
 *
 * Exit status: 0 when the SVG was written (a trace without its closing
 * line, as a crash leaves it, is drawn with a warning), 2 for bad
 * arguments, an unreadable or malformed file, or a failed write.
 *
 * SVG, not PNG: text in, text out, no image library (none is in coev's
 * dependency list), hover titles come free, and browsers, image viewers
 * and rsvg-convert all show it.
 */
#include <ck_hs.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LANES 1024
#define MAX_ARROWS 2000
#define LEFT 100
#define RIGHT 40
#define TOP 78
#define LANE_H 26
#define LANE_GAP 8
#define IDLE_FILL "#e4e4e4"
#define OTHER_FILL "#8c8c8c"

/* Okabe–Ito: orange, sky blue, bluish green, yellow, blue, reddish purple
 * for the tasks; vermilion and black for the arrows. */
static const char *const palette[] = {"#e69f00", "#56b4e9", "#009e73",
				      "#f0e442", "#0072b2", "#cc79a7"};
#define NCOLOURS (int)(sizeof palette / sizeof palette[0])

enum { END_NONE, END_PARK, END_YIELD, END_EXIT, END_OTHER };
static const char *const end_words[] = {"", "park", "yield", "exit", "?"};
enum { CAT_WAKE, CAT_STEAL };
static const char *const cat_words[] = {"wake", "steal"};
static const char *const cat_colours[] = {"#000000", "#d55e00"};
enum { ARROWS_CROSS, ARROWS_ALL, ARROWS_NONE };

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
	double busy;	/* time in the window, for the colours and legend */
	uint32_t index; /* in trace.names */
	int colour;	/* index in palette, or -1: OTHER_FILL */
	char s[];	/* the name, and the key in trace.set */
};

struct trace {
	struct slice *sl;
	size_t nsl, capsl;
	struct flow *fl;
	size_t nfl, capfl;
	struct name **names;
	size_t nnames, capnames;
	ck_hs_t set;  /* the names' strings */
	int lanes;    /* lanes to draw: highest tid, or otherData's workers */
	long dropped; /* from otherData, or -1 */
	int closed;   /* the closing line was seen */
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

/* FNV-1a of a task name, mixed with the set's seed (ck_hs's hash). */
static unsigned long name_hash(const void *key, unsigned long seed)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (const char *s = key; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (unsigned long)(h ^ h >> 32);
}

static bool name_eq(const void *a, const void *b)
{
	return strcmp(a, b) == 0;
}

static void *hs_malloc(size_t n)
{
	return malloc(n);
}

static void *hs_realloc(void *p, size_t old, size_t n, bool defer)
{
	(void)old;
	(void)defer;
	return realloc(p, n);
}

static void hs_free(void *p, size_t n, bool defer)
{
	(void)n;
	(void)defer;
	free(p);
}

static struct ck_malloc hs_alloc = {hs_malloc, hs_realloc, hs_free};

/* The index of name s in t->names, added if new. The set's keys are the
 * names' own strings (struct name's s), so a hit leads back to its name. */
static uint32_t intern(struct trace *t, const char *s)
{
	unsigned long h = CK_HS_HASH(&t->set, name_hash, s);
	const char *k = ck_hs_get(&t->set, h, s);
	size_t len = strlen(s);
	struct name *n;

	if (k)
		return ((const struct name *)(k - offsetof(struct name, s)))
			->index;
	n = check_alloc(malloc(sizeof *n + len + 1));
	*n = (struct name){.index = (uint32_t)t->nnames, .colour = -1};
	memcpy(n->s, s, len + 1);
	if (!ck_hs_put(&t->set, h, n->s))
		check_alloc(NULL);
	t->names = grow(t->names, &t->capnames, t->nnames, sizeof *t->names);
	t->names[t->nnames++] = n;
	return n->index;
}

/* ---- reading: one event per line, each parsed by jansson ------------------ */

static const char *str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The number at key, or NAN when it is absent or not a number. */
static double num_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Keeps a flow end ("s" or "f") of a kind the picture draws. */
static const char *add_flow(struct trace *t, const json_t *e, char ph,
			    double tid, double ts)
{
	const char *cat = str_of(e, "cat");
	double id = num_of(e, "id");
	int c = !cat			? -1
		: !strcmp(cat, "wake")	? CAT_WAKE
		: !strcmp(cat, "steal") ? CAT_STEAL
					: -1;

	if (!(id >= 0 && id < 0x1p63))
		return "a flow event without a valid id";
	if (c < 0)
		return NULL; /* a kind of flow this tool does not know */
	t->fl = grow(t->fl, &t->capfl, t->nfl, sizeof *t->fl);
	t->fl[t->nfl++] =
		(struct flow){ts, (uint64_t)id, (uint16_t)tid, (uint8_t)c, ph};
	return NULL;
}

/* Keeps what the picture needs of event e. Returns NULL or what is wrong. */
static const char *add_event(struct trace *t, const json_t *e)
{
	const char *ph = str_of(e, "ph"), *cat = str_of(e, "cat");
	const json_t *args = json_object_get(e, "args");
	const char *end = str_of(args, "end"), *name = str_of(e, "name");
	double tid = num_of(e, "tid"), ts = num_of(e, "ts");
	double dur = num_of(e, "dur"), task = num_of(args, "task");

	if (!ph)
		return "no \"ph\"";
	if (strcmp(ph, "X") && strcmp(ph, "s") && strcmp(ph, "f"))
		return NULL; /* metadata, instants (spawns), anything newer */
	if (!(tid >= 1 && tid <= MAX_LANES))
		return "no tid, or one out of 1..1024";
	if (isnan(ts))
		return "no ts";
	if ((int)tid > t->lanes)
		t->lanes = (int)tid;
	if (ph[0] != 'X')
		return add_flow(t, e, ph[0], tid, ts);
	if (!(dur >= 0))
		return "a slice without a valid dur";
	struct slice sl = {.ts = ts,
			   .dur = dur,
			   .lane = (uint16_t)tid,
			   .idle = cat && !strcmp(cat, "idle")};
	if (task >= 0 && task < 0x1p63)
		sl.task = (uint64_t)task;
	if (!sl.idle)
		sl.name = intern(t, name ? name : "task");
	for (int i = END_PARK; end && strcmp(end, "none") && !sl.end; i++)
		if (i == END_OTHER || !strcmp(end, end_words[i]))
			sl.end = (uint8_t)i;
	t->sl = grow(t->sl, &t->capsl, t->nsl, sizeof *t->sl);
	t->sl[t->nsl++] = sl;
	return NULL;
}

/* Parses n bytes at text as one JSON object; on error, NULL and jansson's
 * reason in why. */
static json_t *parse_object(const char *text, size_t n, char *why, size_t cap)
{
	json_error_t je;
	json_t *v = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);

	if (!v) {
		snprintf(why, cap, "%s (column %d)", je.text, je.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		snprintf(why, cap, "not a JSON object");
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Scans one event line (its newline and trailing comma removed). */
static const char *read_event(struct trace *t, const char *line, size_t n,
			      char *why, size_t cap)
{
	json_t *e = parse_object(line, n, why, cap);
	const char *bad;

	if (!e)
		return why;
	bad = add_event(t, e);
	json_decref(e);
	return bad;
}

/* The closing line, ],"displayTimeUnit":...,"otherData":{...}} : its
 * members are read as the object {"displayTimeUnit":...}. */
static const char *read_trailer(struct trace *t, const char *line, size_t n,
				char *why, size_t cap)
{
	json_t *o, *other;
	double w, d;

	t->closed = 1;
	if (n == 1 || (n == 2 && line[1] == '}'))
		return NULL;
	if (line[1] != ',')
		return "the closing line is not ], followed by members";
	char *text = check_alloc(malloc(n));
	text[0] = '{';
	memcpy(text + 1, line + 2, n - 2);
	o = parse_object(text, n - 1, why, cap);
	free(text);
	if (!o)
		return why;
	other = json_object_get(o, "otherData");
	w = num_of(other, "workers");
	d = num_of(other, "dropped");
	if (w > t->lanes && w <= MAX_LANES)
		t->lanes = (int)w;
	if (d >= 0)
		t->dropped = (long)d;
	json_decref(o);
	return NULL;
}

static int read_trace(FILE *f, const char *path, struct trace *t)
{
	char *line = NULL, why[200];
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	const char *bad = NULL, *what = "";

	while (!bad && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && strchr("\r\n \t", line[n - 1]))
			line[--n] = '\0';
		if (lineno == 1) {
			if (strcmp(line, "{\"traceEvents\":[") != 0)
				bad = "not a coev trace (the first line must "
				      "be {\"traceEvents\":[ )";
		} else if (n == 0) {
			continue;
		} else if (t->closed) {
			bad = "text after the closing line";
		} else if (line[0] == ']') {
			bad = read_trailer(t, line, (size_t)n, why, sizeof why);
			what = "malformed closing line: ";
		} else {
			if (line[n - 1] == ',')
				line[--n] = '\0';
			bad = read_event(t, line, (size_t)n, why, sizeof why);
			what = "malformed event: ";
		}
	}
	if (bad)
		fprintf(stderr, "%s: %s:%ld: %s%s\n", prog, path, lineno, what,
			bad);
	else if (ferror(f) || lineno == 0)
		fprintf(stderr, "%s: %s: %s\n", prog, path,
			ferror(f) ? strerror(errno) : "empty file");
	else if (!t->closed)
		fprintf(stderr,
			"%s: %s: no closing line (a truncated trace?); "
			"drawing what is there\n",
			prog, path);
	free(line);
	return bad || ferror(f) || lineno == 0 ? -1 : 0;
}

/* ---- drawing ------------------------------------------------------------ */

struct view {
	FILE *o;
	double t0, t1; /* the window, in microseconds */
	double pw;     /* the plot's width in pixels */
	int width;
	size_t ntask, nidle, rects, merged, arrows, flows;
	int mode; /* which flows: ARROWS_CROSS, _ALL or _NONE */
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

/* The fill of a task name's boxes: its palette colour, or OTHER_FILL. */
static const char *name_fill(const struct trace *t, uint32_t name)
{
	int c = t->names[name]->colour;

	return c >= 0 ? palette[c] : OTHER_FILL;
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
	open_rect(v, x, s->lane, w,
		  s->idle ? IDLE_FILL : name_fill(t, s->name));
	if (s->idle) {
		fputs("idle", v->o);
	} else {
		put_text(v->o, t->names[s->name]->s, 0);
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
	const char *fill = IDLE_FILL;

	if (r->top && r->busy > r->idle)
		fill = name_fill(t, r->top->name);
	open_rect(v, r->x0, r->first->lane, fmax(r->x1 - r->x0, 1), fill);
	fprintf(v->o,
		"%zu runs merged (each under a pixel) from %.3f \u00b5s\n"
		"busy %.3f \u00b5s, idle %.3f \u00b5s",
		r->n, r->first->ts, r->busy, r->idle);
	if (r->top) {
		fputs("\nlongest: ", v->o);
		put_text(v->o, t->names[r->top->name]->s, 0);
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
		if (s->idle)
			v->nidle++;
		else
			v->ntask++;
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
		"stroke=\"%s\" stroke-width=\"%s\" stroke-opacity=\"0.8\" "
		"marker-end=\"url(#m%d)\">"
		"<title>%s %llu: worker %d at %.3f \u00b5s \u2192 worker %d "
		"at %.3f \u00b5s</title></line>\n",
		px(v, s->ts), lane_y(s->lane) + LANE_H / 2.0, px(v, f->ts),
		lane_y(f->lane) + LANE_H / 2.0, cat_colours[s->cat],
		s->cat == CAT_STEAL ? "1.2" : "0.6", s->cat, cat_words[s->cat],
		(unsigned long long)s->id, s->lane - 1, s->ts, f->lane - 1,
		f->ts);
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
			    f->ts < v->t0 || f->ts > v->t1 ||
			    v->mode == ARROWS_NONE ||
			    (v->mode == ARROWS_CROSS && s->lane == f->lane))
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

/* A legend entry: a swatch (a box, or an arrow of category cat) and its
 * text, at (x, y) of the text's baseline. */
static void legend_box(FILE *o, double x, double y, const char *fill)
{
	fprintf(o,
		"<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"10\" "
		"fill=\"%s\" stroke=\"#555555\" stroke-width=\"0.5\"/>",
		x, y - 9, fill);
}

static void legend_arrow(FILE *o, double x, double y, int cat)
{
	fprintf(o,
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
		"stroke=\"%s\" stroke-width=\"1.2\" marker-end=\"url(#m%d)\"/>",
		x, y - 4, x + 20, y - 4, cat_colours[cat], cat);
}

/* The legend: what the colours and arrows mean, the names that took the
 * most time, and what was merged or left out. */
static void draw_legend(struct view *v, struct trace *t, double y)
{
	FILE *o = v->o;
	double colw = (v->width - LEFT - RIGHT) / 4.0;
	int shown = 0;

	legend_box(o, LEFT, y, IDLE_FILL);
	fprintf(o, "<text x=\"%d\" y=\"%.0f\">idle</text>\n", LEFT + 18, y);
	legend_box(o, LEFT + colw, y, OTHER_FILL);
	fprintf(o, "<text x=\"%.0f\" y=\"%.0f\">other tasks</text>\n",
		LEFT + colw + 18, y);
	legend_arrow(o, LEFT + 2 * colw, y, CAT_WAKE);
	fprintf(o,
		"<text x=\"%.0f\" y=\"%.0f\">wake: waker \u2192 the woken "
		"task's run</text>\n",
		LEFT + 2 * colw + 26, y);
	legend_arrow(o, LEFT + 3 * colw, y, CAT_STEAL);
	fprintf(o,
		"<text x=\"%.0f\" y=\"%.0f\">steal: victim \u2192 "
		"thief</text>\n",
		LEFT + 3 * colw + 26, y);
	for (int c = 0; c < NCOLOURS; c++) {
		for (size_t i = 0; i < t->nnames; i++) {
			const struct name *n = t->names[i];
			double x = LEFT + colw * (double)(shown % 4);
			double ny = y + 20 + 18 * (double)(shown / 4);
			if (n->colour != c)
				continue;
			legend_box(o, x, ny, palette[c]);
			fprintf(o, "<text x=\"%.0f\" y=\"%.0f\">", x + 18, ny);
			put_text(o, n->s,
				 colw > 120 ? (size_t)(colw - 80) / 7 : 6);
			fprintf(o, " %.3f %s</text>\n",
				n->busy / (n->busy >= 1e5 ? 1e3 : 1),
				n->busy >= 1e5 ? "ms" : "\u00b5s");
			shown++;
		}
	}
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

/* What the arrows show, by --arrows mode. */
static const char *const arrows_said[] = {
	("An arrow goes from the worker where a task was woken (black) or "
	 "stolen (vermilion) to the other worker where it ran next; wakes "
	 "within one worker are not drawn."),
	("An arrow goes from where a task was woken (black) or stolen "
	 "(vermilion) to where it ran next."),
	"Wake and steal arrows are not drawn (--arrows none)."};

/* The title and a sentence on how to read the picture. */
static void draw_caption(struct view *v, struct trace *t, const char *path)
{
	fprintf(v->o,
		"<text x=\"%d\" y=\"20\" font-size=\"15\" "
		"font-weight=\"bold\">coev trace ",
		LEFT);
	put_text(v->o, path, 0);
	fprintf(v->o,
		": %d workers, %.3f to %.3f \u00b5s</text>\n"
		"<text x=\"%d\" y=\"38\">Each row is one worker thread, time "
		"runs left to right; a box is one run of a task, coloured by "
		"the task's name; light grey is idle (parked), blank is "
		"the worker between runs.</text>\n"
		"<text x=\"%d\" y=\"53\">%s</text>\n"
		"<text x=\"8\" y=\"%d\" "
		"font-style=\"italic\">time \u2192</text>\n",
		t->lanes, v->t0, v->t1, LEFT, LEFT, arrows_said[v->mode],
		TOP - 10);
}

static void draw_head(struct view *v, int height)
{
	fprintf(v->o,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n<defs>\n",
		v->width, height, v->width, height);
	for (int c = CAT_WAKE; c <= CAT_STEAL; c++)
		fprintf(v->o,
			"<marker id=\"m%d\" viewBox=\"0 0 10 10\" refX=\"10\" "
			"refY=\"5\" markerWidth=\"5\" markerHeight=\"5\" "
			"orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" "
			"fill=\"%s\"/></marker>\n",
			c, cat_colours[c]);
	fputs("</defs>\n<rect width=\"100%\" height=\"100%\" "
	      "fill=\"#ffffff\"/>\n",
	      v->o);
}

static void draw(struct view *v, struct trace *t, const char *path)
{
	double bottom = t->lanes ? lane_y(t->lanes) + LANE_H : TOP;
	int height = (int)bottom + 30 + 90;

	draw_head(v, height);
	draw_caption(v, t, path);
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

static int busy_cmp(const void *a, const void *b)
{
	double x = (*(struct name *const *)a)->busy;
	double y = (*(struct name *const *)b)->busy;

	return (x < y) - (x > y);
}

/* Each name's time in the window; the NCOLOURS longest get the palette,
 * in order. */
static void rank_names(const struct view *v, struct trace *t)
{
	struct name **rk = check_alloc(malloc((t->nnames + 1) * sizeof *rk));

	for (size_t i = 0; i < t->nsl; i++) {
		const struct slice *s = &t->sl[i];
		double a = fmax(s->ts, v->t0), b = fmin(s->ts + s->dur, v->t1);
		if (!s->idle && b > a)
			t->names[s->name]->busy += b - a;
	}
	if (t->nnames)
		memcpy(rk, t->names, t->nnames * sizeof *rk);
	qsort(rk, t->nnames, sizeof *rk, busy_cmp);
	for (size_t i = 0; i < t->nnames && i < NCOLOURS; i++)
		if (rk[i]->busy > 0)
			rk[i]->colour = (int)i;
	free(rk);
}

/* The window: --from/--to where given, else the events' extent. */
static void set_window(struct view *v, struct trace *t, double from, double to)
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
	rank_names(v, t);
}

static int usage(FILE *f)
{
	fprintf(f,
		"usage: %s TRACE.json [-o OUT.svg] [--from US] [--to US] "
		"[--width PX]\n"
		"       [--arrows cross|all|none]\n"
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

static int arrows_mode(const char *s, int *mode)
{
	static const char *const words[] = {"cross", "all", "none"};

	for (int i = ARROWS_CROSS; i <= ARROWS_NONE; i++)
		if (strcmp(s, words[i]) == 0) {
			*mode = i;
			return 0;
		}
	return -1;
}

static int bad_option(int c, const char *arg)
{
	fprintf(stderr, "%s: bad --%s value '%s'\n", prog,
		c == 'f'   ? "from"
		: c == 't' ? "to"
		: c == 'a' ? "arrows (cross, all or none)"
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
		{"arrows", required_argument, NULL, 'a'},
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
		else if (c == 'a' && arrows_mode(optarg, &v.mode) == 0)
			continue;
		else if (c == 'f' || c == 't' || c == 'w' || c == 'a')
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
	if (!ck_hs_init(&t.set, CK_HS_MODE_SPMC | CK_HS_MODE_OBJECT, name_hash,
			name_eq, &hs_alloc, 1024, 0x9e3779b97f4a7c15ul))
		check_alloc(NULL);
	if (read_trace(f, argv[optind], &t) == 0) {
		set_window(&v, &t, from, to);
		rc = write_svg(&t, &v, argv[optind], out);
	}
	fclose(f);
	ck_hs_destroy(&t.set);
	for (size_t i = 0; i < t.nnames; i++)
		free(t.names[i]);
	free(t.names);
	free(t.sl);
	free(t.fl);
	return rc == 0 ? 0 : 2;
}
