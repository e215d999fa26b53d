/* SPDX-License-Identifier: MIT */
/*
 * observe/trace.c — recording what every worker runs, written as Chrome
 * trace-event JSON at shutdown (COEV_TRACE=FILE, coev_config_t.trace).
 *
 * Each worker appends fixed-size records to its own ring: no lock, no
 * atomic, no allocation while recording, and the ring is read only after
 * the workers have stopped. A full ring overwrites its oldest records (a
 * flight recorder: the end of a run is what one usually wants), and the
 * file says how many were dropped. Records:
 *   RUN    a task's run on this worker: start, duration, task id and name,
 *          why it stopped (park, yield, exit), and the wake flow that
 *          queued it, if a worker's task or loop callback did;
 *   IDLE   a sleep in the worker's loop;
 *   WAKE   this worker queued a parked task (the start of a flow arrow that
 *          ends at the woken task's next run, on whichever worker);
 *   STEAL  this worker took n tasks from a victim (an arrow from the
 *          victim's track to the thief's next run);
 *   SPAWN  a task spawned a child (an instant).
 * Off, each site costs one predictable branch on w->trace (COEV__TRACING);
 * the wake site, which has no worker at hand, first tests coev__trace_any.
 * Timestamps are the runtime's clock (coev__plat_now), written in
 * microseconds since the runtime started.
 *
 * The JSON has one event per line, in a fixed key order, so that simple
 * tools (examples/coev-trace-svg.c) can read it line by line.
 * Rejected: B/E event pairs (a ring that wraps would orphan halves; X
 * events carry their own duration); a shared ring with atomics (contention
 * on every run); writing while running (I/O on the workers' threads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

atomic_bool coev__trace_any;

enum { R_RUN, R_IDLE, R_WAKE, R_STEAL, R_SPAWN };

struct rec {
	int64_t ts, dur;
	uint64_t id;   /* task id (RUN, SPAWN) or tasks stolen (STEAL) */
	uint64_t flow; /* flow id, or 0 */
	uint8_t kind, end;
	uint16_t tid;  /* STEAL: the victim's index */
	char name[32]; /* the task's name, whole */
};

struct coev__trace_ring {
	struct rec *r;
	size_t cap, head; /* head: next slot to write */
	uint64_t total;	  /* records ever written */
	uint64_t flows;	  /* flow ids made here */
};

int coev__trace_init(struct coev_rt *rt)
{
	if (!rt->trace_path)
		return 0;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev__trace_ring *tr = calloc(1, sizeof *tr);
		size_t bytes;

		/* coev_rt_new bounds trace_events; the product is checked
		 * all the same, so that a wrapped size never makes a small
		 * ring that records run past. */
		if (tr && !__builtin_mul_overflow(rt->trace_events,
						  sizeof *tr->r, &bytes))
			tr->r = malloc(bytes);
		if (!tr || !tr->r) {
			free(tr);
			coev__trace_free(rt);
			return -ENOMEM;
		}
		tr->cap = rt->trace_events;
		rt->workers[i]->trace = tr;
	}
	atomic_store_explicit(&coev__trace_any, true, memory_order_relaxed);
	return 0;
}

void coev__trace_free(struct coev_rt *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];

		if (w && w->trace) {
			free(w->trace->r);
			free(w->trace);
			w->trace = NULL;
		}
	}
}

static struct rec *put(struct coev_worker *w, unsigned kind)
{
	struct coev__trace_ring *tr = w->trace;
	struct rec *r = &tr->r[tr->head];

	if (++tr->head == tr->cap)
		tr->head = 0;
	tr->total++;
	r->kind = (uint8_t)kind;
	r->flow = 0;
	r->dur = 0;
	r->id = 0;
	r->end = 0;
	r->tid = 0;
	return r;
}

static uint64_t new_flow(struct coev_worker *w)
{
	return ((uint64_t)(w->index + 1) << 40) | ++w->trace->flows;
}

static void set_name(struct rec *r, const coev_task_t *t)
{
	_Static_assert(sizeof r->name == sizeof t->name, "whole names");
	memcpy(r->name, t->name, sizeof r->name);
}

void coev__trace_run(struct coev_worker *w, coev_task_t *t, coev_time_t start,
		     unsigned why)
{
	struct rec *r = put(w, R_RUN);

	r->ts = start;
	r->dur = coev__plat_now() - start;
	r->id = t->id;
	r->end = (uint8_t)why;
	/* The flow that queued this run, once. */
	r->flow = t->trace_flow;
	t->trace_flow = 0;
	set_name(r, t);
}

void coev__trace_wake(struct coev_worker *w, coev_task_t *t)
{
	struct rec *r = put(w, R_WAKE);

	r->ts = coev__plat_now();
	r->flow = t->trace_flow = new_flow(w);
}

void coev__trace_steal(struct coev_worker *w, struct coev_worker *v, unsigned n)
{
	struct rec *r = put(w, R_STEAL);

	r->ts = coev__plat_now();
	r->id = n;
	r->tid = (uint16_t)v->index;
	r->flow = new_flow(w);
}

void coev__trace_idle(struct coev_worker *w, coev_time_t start)
{
	struct rec *r = put(w, R_IDLE);

	r->ts = start;
	r->dur = coev__plat_now() - start;
}

void coev__trace_spawn(struct coev_worker *w, coev_task_t *t)
{
	struct rec *r = put(w, R_SPAWN);

	r->ts = coev__plat_now();
	r->id = t->id;
}

/* --- writing ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static int utf8_len(const unsigned char *s)
{
	unsigned c = s[0], n, min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	for (unsigned i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return (int)n + 1;
}

/* A JSON string body: quotes, backslashes and control characters escaped,
 * valid UTF-8 passed through, and any byte that is not part of valid
 * UTF-8 written as U+FFFD (a task name is bytes). */
static void put_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = utf8_len(p);

		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
		} else if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else {
			fwrite(p, 1, (size_t)n, f);
			p += n;
		}
	}
}

static double us(const struct coev_rt *rt, int64_t t)
{
	return (double)(t - rt->started) / 1e3;
}

/* One end of a flow arrow: ph "s" (start) or "f" (finish); bind_enclosing
 * ties a finish to the slice around it rather than the next one. */
static void put_flow(FILE *f, const struct coev_rt *rt, const char *ph,
		     const char *cat, uint64_t id, unsigned tid, int64_t ts,
		     bool bind_enclosing)
{
	fprintf(f,
		"{\"ph\":\"%s\",\"name\":\"%s\",\"cat\":\"%s\",%s\"id\":%llu,"
		"\"pid\":1,\"tid\":%u,\"ts\":%.3f}",
		ph, cat, cat, bind_enclosing ? "\"bp\":\"e\"," : "",
		(unsigned long long)id, tid, us(rt, ts));
}

static void put_rec(FILE *f, const struct coev_rt *rt, unsigned tid,
		    const struct rec *r, bool *first)
{
	static const char *ends[] = {"none", "yield", "park", "exit"};

#define SEP() (fputs(*first ? "\n" : ",\n", f), *first = false)
	switch (r->kind) {
	case R_RUN:
		if (r->flow) {
			SEP();
			put_flow(f, rt, "f", "wake", r->flow, tid, r->ts, true);
		}
		SEP();
		fputs("{\"ph\":\"X\",\"name\":\"", f);
		put_str(f, r->name[0] ? r->name : "task");
		fprintf(f,
			"\",\"cat\":\"task\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
			"\"dur\":%.3f,\"args\":{\"task\":%llu,\"end\":\"%s\"}}",
			tid, us(rt, r->ts), (double)r->dur / 1e3,
			(unsigned long long)r->id, ends[r->end & 3]);
		break;
	case R_IDLE:
		SEP();
		fprintf(f,
			"{\"ph\":\"X\",\"name\":\"idle\",\"cat\":\"idle\","
			"\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f}",
			tid, us(rt, r->ts), (double)r->dur / 1e3);
		break;
	case R_WAKE:
		SEP();
		put_flow(f, rt, "s", "wake", r->flow, tid, r->ts, false);
		break;
	case R_STEAL:
		/* From the victim's track to the thief's next run. */
		SEP();
		put_flow(f, rt, "s", "steal", r->flow, r->tid + 1u, r->ts,
			 false);
		SEP();
		put_flow(f, rt, "f", "steal", r->flow, tid, r->ts, false);
		break;
	case R_SPAWN:
		SEP();
		fprintf(f,
			"{\"ph\":\"i\",\"name\":\"spawn\",\"cat\":\"spawn\","
			"\"s\":\"t\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
			"\"args\":{\"task\":%llu}}",
			tid, us(rt, r->ts), (unsigned long long)r->id);
		break;
	default: break;
	}
#undef SEP
}

/* Write the trace file; once, after the workers stopped. */
void coev__trace_flush(struct coev_rt *rt)
{
	uint64_t dropped = 0;
	bool first = true;
	FILE *f;

	if (!rt->trace_path || !rt->workers[0]->trace)
		return;
	f = fopen(rt->trace_path, "w");
	if (!f) {
		coev__logf(rt, "coev: trace: cannot write %s: %s\n",
			   rt->trace_path, strerror(errno));
		coev__trace_free(rt);
		return;
	}
	fputs("{\"traceEvents\":[", f);
	fputs("\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,"
	      "\"args\":{\"name\":\"coev\"}}",
	      f);
	first = false;
	for (unsigned i = 0; i < rt->nworkers; i++)
		fprintf(f,
			",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,"
			"\"tid\":%u,\"args\":{\"name\":\"worker %u\"}}",
			i + 1, i);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev__trace_ring *tr = rt->workers[i]->trace;
		size_t n = tr->total < tr->cap ? tr->total : tr->cap;
		size_t at = tr->total < tr->cap ? 0 : tr->head;

		dropped += tr->total - n;
		for (size_t k = 0; k < n; k++)
			put_rec(f, rt, i + 1, &tr->r[(at + k) % tr->cap],
				&first);
	}
	fprintf(f,
		"\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"version\":"
		"\"coev %s\",\"workers\":%u,\"dropped\":%llu}}\n",
		COEV_VERSION_STRING, rt->nworkers, (unsigned long long)dropped);
	if (fclose(f) != 0)
		coev__logf(rt, "coev: trace: writing %s failed: %s\n",
			   rt->trace_path, strerror(errno));
	coev__trace_free(rt);
}
