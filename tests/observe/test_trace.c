/* SPDX-License-Identifier: MIT */
/*
 * tests/observe/test_trace.c — COEV_TRACE (coev_config_t.trace; the writer
 * in observe/trace.c): the Chrome trace-event JSON a runtime writes when it
 * shuts down, read back with jansson and checked field by field.
 *
 * What is checked, on a workload of 2 workers (two named tasks "ping"
 * and "pong" passing messages through channels, a fan-out of short
 * tasks until some are stolen, sleeps that let the workers idle):
 *   - the document: a traceEvents array, displayTimeUnit, otherData with
 *     the worker count and no dropped records; a process name and a
 *     thread name per worker; one event per line, each with "ph" first
 *     (the line-oriented contract of observe/trace.c);
 *   - run slices ("X", cat "task") carry the task's id and why the run
 *     ended (park, yield, exit); ping's and pong's ids are the ones
 *     coev_task_id gave them; every task has exactly one "exit" run, its
 *     last; idle slices exist; slices on one track never overlap;
 *   - flows: every wake arrow's end ("f") has its start ("s", same id, no
 *     later) and sits on the run it caused; every steal has both halves
 *     on different tracks;
 *   - the trace agrees with the metrics read after the shutdown: one run
 *     slice per poll, one idle slice per park, one spawn instant per
 *     spawn, one steal arrow per steal operation, the stolen tasks added
 *     up;
 *   - a bounded ring (trace_events = 64): records are dropped, counted in
 *     otherData.dropped, and no worker keeps more than 64;
 *   - tracing off writes nothing; an unwritable path leaves the runtime
 *     working and logs "coev: trace: cannot write"; COEV_TRACE and
 *     COEV_TRACE_EVENTS are read by coev_config_init (a malformed count
 *     is -EINVAL).
 *
 * Design choices. Each test writes into its own private temporary
 * directory (tu_mkdtemp) and removes it. Timestamps are compared as the
 * file gives them: microseconds with 3 decimals of whole nanoseconds, so
 * they are exact and the overlap check needs only 0.001 us for the
 * addition of a start and a duration. Steal checks run only when the
 * runtime's stats say something was stolen: stealing depends on the
 * machine's scheduling, and the fan-out retries a few rounds to make it
 * likely, never asserting that it happened.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"
#include <jansson.h>

#include <pthread.h>

#define WORKERS 2
#define RING_SMALL 64

/* ---- reading JSON (jansson) -------------------------------------------- */

/*
 * The trace is parsed by jansson with duplicate keys rejected; jansson
 * is strict by itself (one value and nothing after it, no comments, no
 * NaN, valid UTF-8, no lone surrogates). Its lookups take NULL and give
 * NULL, so a chain of them fails once, at the assertion that reads it.
 */
#define JSON_FLAGS JSON_REJECT_DUPLICATES

/* The number at v, or dflt when v is missing or not a number. */
static double jnum(const json_t *v, double dflt)
{
	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The first key of an object (jansson keeps the order of the text), or
 * NULL when it has none. */
static const char *first_key(json_t *o)
{
	return json_object_iter_key(json_object_iter(o));
}

/* Parses len bytes at text; on error, NULL and "line L col C: reason"
 * in err. */
static json_t *jparse(const char *text, size_t len, char *err, size_t cap)
{
	json_error_t je;
	json_t *v = json_loadb(text, len, JSON_FLAGS, &je);

	if (!v)
		snprintf(err, cap, "line %d col %d: %s", je.line, je.column,
			 je.text);
	return v;
}

/* ---- files ------------------------------------------------------------- */

/* The whole file at path, NUL-terminated (freed by the caller), or NULL
 * when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			char *nb = realloc(buf, cap + 65536 + 1);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		size_t k = fread(buf + n, 1, cap - n, f);

		n += k;
		if (k == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Entries in dir besides . and .. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* ---- reading a trace ------------------------------------------------------ */

typedef struct trace {
	char *text;
	size_t len;
	json_t *root;
	json_t *events; /* root.traceEvents */
	size_t n;
} trace_t;

/* Reads and parses the trace at path, and checks the document's frame. */
static void trace_load(const char *path, trace_t *tr, unsigned workers)
{
	char err[200];
	json_t *other;

	memset(tr, 0, sizeof *tr);
	tr->text = slurp(path, &tr->len);
	if (!tr->text)
		fail_msg("no trace file at %s", path);
	tr->root = jparse(tr->text, tr->len, err, sizeof err);
	if (!tr->root)
		fail_msg("the trace is not JSON: %s", err);
	assert_int_equal(tr->root->type, JSON_OBJECT);
	tr->events = json_object_get(tr->root, "traceEvents");
	assert_non_null(tr->events);
	assert_int_equal(tr->events->type, JSON_ARRAY);
	tr->n = json_array_size(tr->events);
	assert_non_null(json_string_value(
		json_object_get(tr->root, "displayTimeUnit")));
	other = json_object_get(tr->root, "otherData");
	assert_non_null(other);
	assert_int_equal(other->type, JSON_OBJECT);
	assert_true(jnum(json_object_get(other, "workers"), -1) == workers);
	assert_true(jnum(json_object_get(other, "dropped"), -1) >= 0);
	assert_non_null(json_string_value(json_object_get(other, "version")));
}

static void trace_free(trace_t *tr)
{
	json_decref(tr->root);
	free(tr->text);
}

static double dropped(const trace_t *tr)
{
	return jnum(json_object_get(json_object_get(tr->root, "otherData"),
				    "dropped"),
		    -1);
}

static const char *ev_str(const json_t *e, const char *key)
{
	return json_string_value(json_object_get(e, key));
}

static int ev_is(const json_t *e, const char *key, const char *want)
{
	const char *s = ev_str(e, key);

	return s && strcmp(s, want) == 0;
}

/* A number the event must have. */
static double ev_num(const json_t *e, const char *key)
{
	const json_t *v = json_object_get(e, key);

	if (!json_is_number(v))
		fail_msg("an event (ph %s) without the number %s",
			 ev_str(e, "ph") ? ev_str(e, "ph") : "?", key);
	return json_number_value(v);
}

static const json_t *ev_arg(const json_t *e, const char *key)
{
	return json_object_get(json_object_get(e, "args"), key);
}

/*
 * The line-oriented contract: the first line opens the array, then one
 * event per line (each a JSON object whose first key is "ph", followed
 * by a comma except the last), then the line that closes the array and
 * carries the rest. Each line's event is the array's element in order.
 */
static void check_lines(const trace_t *tr)
{
	const char *p = tr->text, *end = tr->text + tr->len;
	size_t line = 0, ev = 0;
	char err[200];

	assert_true(tr->len > 0 && end[-1] == '\n');
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(nl - p);

		if (line == 0) {
			if (n != 16 || memcmp(p, "{\"traceEvents\":[", 16) != 0)
				fail_msg("line 1 is not {\"traceEvents\":[");
		} else if (n >= 2 && p[0] == ']' && p[1] == ',') {
			if (nl + 1 != end)
				fail_msg("lines after the closing one");
		} else {
			size_t k = n;
			json_t *e;

			if (ev + 1 < tr->n) {
				if (n == 0 || p[n - 1] != ',')
					fail_msg("line %zu: no comma",
						 line + 1);
				k--;
			}
			e = jparse(p, k, err, sizeof err);
			if (!e)
				fail_msg("line %zu is not one event: %s",
					 line + 1, err);
			assert_int_equal(e->type, JSON_OBJECT);
			if (!first_key(e) || strcmp(first_key(e), "ph") != 0)
				fail_msg("line %zu: ph is not first", line + 1);
			assert_true(ev < tr->n);
			const json_t *d = json_array_get(tr->events, ev);
			assert_string_equal(ev_str(e, "ph"), ev_str(d, "ph"));
			assert_true(jnum(json_object_get(e, "ts"), -1) ==
				    jnum(json_object_get(d, "ts"), -1));
			assert_true(jnum(json_object_get(e, "tid"), -1) ==
				    jnum(json_object_get(d, "tid"), -1));
			json_decref(e);
			ev++;
		}
		line++;
		p = nl + 1;
	}
	assert_int_equal(ev, tr->n);
}

/* ---- checks on the events ------------------------------------------------ */

typedef struct slice {
	double tid, ts, dur;
} slice_t;

typedef struct runrec {
	uint64_t task;
	double ts;
	int exit;
} runrec_t;

typedef struct flow {
	uint64_t id;
	double ts, tid;
	int start; /* "s" */
	size_t at; /* index in traceEvents */
} flow_t;

static int cmp_slice(const void *a, const void *b)
{
	const slice_t *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const runrec_t *x = a, *y = b;

	if (x->task != y->task)
		return x->task < y->task ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->exit - y->exit;
}

static int cmp_flow(const void *a, const void *b)
{
	const flow_t *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return y->start - x->start; /* the start first */
}

/* What one pass over the events counted. */
typedef struct tally {
	size_t runs, idles, spawns, wake_s, wake_f, steal_s, steal_f;
	double stolen;		     /* steal "s" args.tasks added up */
	size_t steal_uncounted;	     /* steal "s" without args.tasks */
	size_t per_tid[WORKERS + 1]; /* records kept per worker ring */
	size_t named[2];	     /* runs of ping, pong */
	size_t named_exit[2];
} tally_t;

/*
 * Checks every event's own fields and counts them. Records per worker
 * ring: a run slice (its wake "f" rides on it), an idle slice, a spawn
 * instant, a wake "s", and a steal (its "s" is drawn on the victim's
 * track, its "f" on the thief's: counted once, on the thief's).
 */
static void scan_events(const trace_t *tr, tally_t *t, const uint64_t ids[2],
			unsigned workers)
{
	static const char *names[2] = {"ping", "pong"};
	int proc = 0, thread[WORKERS + 1] = {0};

	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < tr->n; i++) {
		const json_t *e = json_array_get(tr->events, i);
		const char *ph = ev_str(e, "ph");
		double tid;

		assert_int_equal(e->type, JSON_OBJECT);
		assert_non_null(ph);
		assert_non_null(ev_str(e, "name"));
		assert_true(ev_num(e, "pid") == 1);
		tid = ev_num(e, "tid");
		if (strcmp(ph, "M") == 0) {
			if (ev_is(e, "name", "process_name")) {
				assert_true(tid == 0);
				proc++;
			} else {
				char want[32];

				assert_true(ev_is(e, "name", "thread_name"));
				assert_true(tid >= 1 && tid <= workers);
				snprintf(want, sizeof want, "worker %u",
					 (unsigned)tid - 1);
				assert_string_equal(
					json_string_value(ev_arg(e, "name")),
					want);
				thread[(int)tid]++;
			}
			continue;
		}
		assert_true(tid >= 1 && tid <= workers);
		assert_true(ev_num(e, "ts") >= 0);
		if (strcmp(ph, "X") == 0) {
			assert_true(ev_num(e, "dur") >= 0);
			t->per_tid[(int)tid]++;
			if (ev_is(e, "cat", "idle")) {
				assert_true(ev_is(e, "name", "idle"));
				t->idles++;
				continue;
			}
			assert_true(ev_is(e, "cat", "task"));
			const char *end = json_string_value(ev_arg(e, "end"));
			double task = jnum(ev_arg(e, "task"), -1);

			assert_non_null(end);
			if (strcmp(end, "park") != 0 &&
			    strcmp(end, "yield") != 0 &&
			    strcmp(end, "exit") != 0)
				fail_msg("a run that ended with '%s'", end);
			assert_true(task >= 1);
			t->runs++;
			for (int k = 0; k < 2; k++) {
				if (!ev_is(e, "name", names[k]))
					continue;
				assert_true(task == (double)ids[k]);
				t->named[k]++;
				t->named_exit[k] += strcmp(end, "exit") == 0;
			}
		} else if (strcmp(ph, "i") == 0) {
			assert_true(ev_is(e, "cat", "spawn"));
			assert_true(jnum(ev_arg(e, "task"), -1) >= 1);
			t->per_tid[(int)tid]++;
			t->spawns++;
		} else if (strcmp(ph, "s") == 0 || strcmp(ph, "f") == 0) {
			int s = ph[0] == 's';

			assert_true(ev_num(e, "id") >= 1);
			if (ev_is(e, "cat", "wake")) {
				assert_true(ev_is(e, "name", "wake"));
				if (s) {
					t->wake_s++;
					t->per_tid[(int)tid]++;
				} else {
					assert_true(ev_is(e, "bp", "e"));
					t->wake_f++;
				}
			} else {
				assert_true(ev_is(e, "cat", "steal"));
				assert_true(ev_is(e, "name", "steal"));
				if (s) {
					/* args.tasks (how many were taken)
					 * is optional. */
					double k = jnum(ev_arg(e, "tasks"), -1);

					t->steal_s++;
					if (k == -1) {
						t->steal_uncounted++;
					} else {
						assert_true(k >= 1);
						t->stolen += k;
					}
				} else {
					t->steal_f++;
					t->per_tid[(int)tid]++;
				}
			}
		} else {
			fail_msg("an event of phase '%s'", ph);
		}
	}
	assert_int_equal(proc, 1);
	for (unsigned w = 1; w <= workers; w++)
		assert_int_equal(thread[w], 1);
}

/* Slices on one track never overlap: sorted by start, each starts at or
 * after the end of the one before (0.001 us for the rounding of a sum). */
static void check_no_overlap(const trace_t *tr)
{
	slice_t *s = calloc(tr->n + 1, sizeof *s);
	size_t n = 0;

	assert_non_null(s);
	for (size_t i = 0; i < tr->n; i++) {
		const json_t *e = json_array_get(tr->events, i);

		if (!ev_is(e, "ph", "X"))
			continue;
		s[n++] = (slice_t){ev_num(e, "tid"), ev_num(e, "ts"),
				   ev_num(e, "dur")};
	}
	qsort(s, n, sizeof *s, cmp_slice);
	for (size_t i = 1; i < n; i++) {
		if (s[i].tid != s[i - 1].tid)
			continue;
		if (s[i].ts + 0.001 < s[i - 1].ts + s[i - 1].dur)
			fail_msg("track %g: a slice at %.3f us starts before "
				 "the one at %.3f us (%.3f us long) ends",
				 s[i].tid, s[i].ts, s[i - 1].ts, s[i - 1].dur);
	}
	free(s);
}

/* Every task that ran has exactly one "exit" run, and it is its last. */
static void check_exits(const trace_t *tr, size_t *tasks)
{
	runrec_t *r = calloc(tr->n + 1, sizeof *r);
	size_t n = 0;

	assert_non_null(r);
	for (size_t i = 0; i < tr->n; i++) {
		const json_t *e = json_array_get(tr->events, i);

		if (!ev_is(e, "ph", "X") || !ev_is(e, "cat", "task"))
			continue;
		r[n++] = (runrec_t){(uint64_t)jnum(ev_arg(e, "task"), 0),
				    ev_num(e, "ts"),
				    strcmp(json_string_value(ev_arg(e, "end")),
					   "exit") == 0};
	}
	qsort(r, n, sizeof *r, cmp_run);
	*tasks = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i, exits = 0;

		while (j < n && r[j].task == r[i].task)
			exits += r[j++].exit;
		if (exits != 1)
			fail_msg("task %llu has %zu exit runs",
				 (unsigned long long)r[i].task, exits);
		if (!r[j - 1].exit)
			fail_msg("task %llu ran after its exit",
				 (unsigned long long)r[i].task);
		(*tasks)++;
		i = j;
	}
	free(r);
}

/*
 * Flows. A wake's "f" has exactly one "s" of the same id, no later, and
 * is the line right before the run slice it starts (same track and
 * time). A steal's two halves have the same id and time, on different
 * tracks. unmatched_s: wake starts whose run is not in the trace.
 */
static void check_flows(const trace_t *tr, size_t *unmatched_s)
{
	flow_t *f = calloc(tr->n + 1, sizeof *f);
	size_t n = 0;

	assert_non_null(f);
	*unmatched_s = 0;
	for (size_t i = 0; i < tr->n; i++) {
		const json_t *e = json_array_get(tr->events, i);
		int s = ev_is(e, "ph", "s");

		if (!s && !ev_is(e, "ph", "f"))
			continue;
		/* Wake and steal ids come from one counter per worker: they
		 * never collide, and the category must match too. */
		f[n++] = (flow_t){(uint64_t)ev_num(e, "id"), ev_num(e, "ts"),
				  ev_num(e, "tid"), s, i};
		if (!s && ev_is(e, "cat", "wake")) {
			const json_t *x = json_array_get(tr->events, i + 1);

			assert_non_null(x);
			assert_true(ev_is(x, "ph", "X") &&
				    ev_is(x, "cat", "task"));
			assert_true(ev_num(x, "tid") == ev_num(e, "tid"));
			assert_true(ev_num(x, "ts") == ev_num(e, "ts"));
		}
	}
	qsort(f, n, sizeof *f, cmp_flow);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && f[j].id == f[i].id)
			j++;
		const json_t *a = json_array_get(tr->events, f[i].at);
		int steal = ev_is(a, "cat", "steal");

		if (j - i == 1 && f[i].start && !steal) {
			(*unmatched_s)++;
			i = j;
			continue;
		}
		if (j - i != 2 || !f[i].start || f[i + 1].start)
			fail_msg("flow %llu has %zu events, not one s and one "
				 "f",
				 (unsigned long long)f[i].id, j - i);
		const json_t *b = json_array_get(tr->events, f[i + 1].at);

		assert_string_equal(ev_str(a, "cat"), ev_str(b, "cat"));
		if (steal) {
			assert_true(f[i].ts == f[i + 1].ts);
			assert_true(f[i].tid != f[i + 1].tid);
		} else if (f[i].ts > f[i + 1].ts) {
			fail_msg("wake %llu: its run at %.3f us starts before "
				 "the wake at %.3f us",
				 (unsigned long long)f[i].id, f[i + 1].ts,
				 f[i].ts);
		}
		i = j;
	}
	free(f);
}

/* ---- the workload -------------------------------------------------------- */

#define ROUNDS TU_SCALE(200, 100, 50)
#define FAN 200
#define FAN_TRIES 10

typedef struct work {
	coev_chan_t *a, *b;
	int rounds;
	int fan;	      /* fan-out rounds (until something is stolen) */
	uint64_t ids[2];      /* ping's and pong's */
	uint64_t stolen_seen; /* coev_rt_stats().stolen after the fan-out */
} work_t;

static int ping(void *arg)
{
	work_t *w = arg;
	int x;

	w->ids[0] = coev_task_id(coev_self());
	for (int r = 0; r < w->rounds; r++) {
		TU_CHECK_EQ(coev_chan_send(w->a, &r), 0);
		TU_CHECK_EQ(coev_chan_recv(w->b, &x), 0);
		TU_CHECK_EQ(x, r + 1);
	}
	return 0;
}

static int pong(void *arg)
{
	work_t *w = arg;
	int x;

	w->ids[1] = coev_task_id(coev_self());
	for (int r = 0; r < w->rounds; r++) {
		TU_CHECK_EQ(coev_chan_recv(w->a, &x), 0);
		x++;
		TU_CHECK_EQ(coev_chan_send(w->b, &x), 0);
	}
	return 0;
}

static int fan_child(void *arg)
{
	(void)arg;
	tu_spin_ns(COEV_USEC(TU_SCALE(200, 200, 400)));
	return 0;
}

static int work_main(void *arg)
{
	work_t *w = arg;
	coev_task_t *t[FAN];
	int rets[FAN];
	coev_rt_stats_t st;

	TU_CHECK_EQ(coev_chan_new(&w->a, sizeof(int), 0), 0);
	TU_CHECK_EQ(coev_chan_new(&w->b, sizeof(int), 0), 0);
	TU_CHECK_EQ(coev_spawn_named("ping", ping, w, &t[0]), 0);
	TU_CHECK_EQ(coev_spawn_named("pong", pong, w, &t[1]), 0);
	TU_CHECK_EQ(coev_gather(t, 2, rets), 0);
	coev_chan_free(w->a);
	coev_chan_free(w->b);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(5)), 0);

	for (int round = 0; round < w->fan; round++) {
		for (int i = 0; i < FAN; i++)
			TU_CHECK_EQ(
				coev_spawn_named("fan", fan_child, NULL, &t[i]),
				0);
		TU_CHECK_EQ(coev_gather(t, FAN, rets), 0);
		TU_CHECK_EQ(coev_rt_stats(coev_rt_current(), &st), 0);
		w->stolen_seen = st.stolen;
		if (st.stolen > 0)
			break;
	}
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(5)), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(5)), 0);
	return 0;
}

/* Runs the workload on a fresh runtime made from cfg, shuts it down and
 * returns its stats read after the shutdown (every counter frozen). */
static void run_traced(coev_config_t *cfg, work_t *w, coev_rt_stats_t *st)
{
	coev_rt_t *rt = NULL;
	coev_task_t *t;
	int ret = -1;

	assert_int_equal(coev_rt_new(cfg, &rt), 0);
	assert_int_equal(coev_rt_spawn(rt, "main", work_main, w, &t), 0);
	assert_int_equal(coev_join_dl(t, tu_guard(), &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	assert_int_equal(coev_rt_stats(rt, st), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* A config with WORKERS workers, tracing to dir/name. */
static coev_config_t traced_cfg(char *path, size_t size, const char *dir,
				const char *name)
{
	coev_config_t cfg = tu_config(WORKERS);

	snprintf(path, size, "%s/%s", dir, name);
	cfg.trace = path;
	return cfg;
}

/* ---- tests ------------------------------------------------------------- */

static void test_trace_workload_file(void **state)
{
	char dir[128], path[256];
	work_t w = {.rounds = ROUNDS, .fan = FAN_TRIES};
	coev_rt_stats_t st;
	coev_config_t cfg;
	trace_t tr;
	tally_t t;
	size_t tasks, unmatched;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	cfg = traced_cfg(path, sizeof path, dir, "trace.json");
	run_traced(&cfg, &w, &st);
	assert_true(w.ids[0] >= 1 && w.ids[1] >= 1 && w.ids[0] != w.ids[1]);

	trace_load(path, &tr, WORKERS);
	assert_true(dropped(&tr) == 0);
	check_lines(&tr);
	scan_events(&tr, &t, w.ids, WORKERS);
	check_no_overlap(&tr);
	check_exits(&tr, &tasks);
	check_flows(&tr, &unmatched);

	/* ping and pong: a run per message at least, one exit each. */
	for (int k = 0; k < 2; k++) {
		assert_true(t.named[k] >= (size_t)ROUNDS);
		assert_int_equal(t.named_exit[k], 1);
	}
	assert_true(t.idles > 0);
	assert_true(t.wake_f > 0);
	/* Nothing was dropped, so the trace and the metrics agree. */
	assert_int_equal(t.runs, st.polls);
	assert_int_equal(t.idles, st.parks);
	assert_int_equal(t.spawns, st.spawned);
	assert_int_equal(tasks, st.finished);
	assert_int_equal(t.steal_s, t.steal_f);
	assert_int_equal(t.steal_f, st.steal_ops);
	if (t.steal_uncounted == 0)
		assert_true(t.stolen == (double)st.stolen);
	/* Every wake's run is in the trace too: all tasks ran to the end. */
	assert_int_equal(unmatched, 0);
	assert_int_equal(t.wake_s, t.wake_f);
	if (w.stolen_seen > 0)
		assert_true(t.steal_s > 0);
	print_message("%zu events: %zu runs of %zu tasks, %zu idle, %zu "
		      "wakes, %zu steals (%.0f tasks), %zu spawns\n",
		      tr.n, t.runs, tasks, t.idles, t.wake_f, t.steal_f,
		      t.stolen, t.spawns);
	trace_free(&tr);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_trace_bounded_ring_drops_oldest(void **state)
{
	char dir[128], path[256];
	work_t w = {.rounds = TU_SCALE(2000, 1000, 500), .fan = 1};
	coev_rt_stats_t st;
	coev_config_t cfg;
	trace_t tr;
	tally_t t;
	size_t kept = 0, full = 0;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	cfg = traced_cfg(path, sizeof path, dir, "small.json");
	cfg.trace_events = RING_SMALL;
	run_traced(&cfg, &w, &st);

	trace_load(path, &tr, WORKERS);
	check_lines(&tr);
	scan_events(&tr, &t, w.ids, WORKERS);
	check_no_overlap(&tr);
	assert_true(dropped(&tr) > 0);
	for (unsigned i = 1; i <= WORKERS; i++) {
		assert_true(t.per_tid[i] <= RING_SMALL);
		full += t.per_tid[i] == RING_SMALL;
		kept += t.per_tid[i];
	}
	/* A ring that dropped records is full. */
	assert_true(full >= 1);
	/* Every record was kept or dropped; wakes are not in the stats. */
	assert_true((double)kept + dropped(&tr) >=
		    (double)(st.polls + st.parks + st.spawned + st.steal_ops));
	print_message("kept %zu records, dropped %.0f, of at least %llu\n",
		      kept, dropped(&tr),
		      (unsigned long long)(st.polls + st.parks + st.spawned +
					   st.steal_ops));
	trace_free(&tr);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_trace_off_writes_nothing(void **state)
{
	char dir[128], cwd[4096];
	work_t w = {.rounds = 10, .fan = 1};
	coev_config_t cfg = tu_config(WORKERS);
	coev_rt_stats_t st;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	assert_null(cfg.trace);
	/* A file under a relative name would land in dir. */
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0);
	run_traced(&cfg, &w, &st);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(dir_entries(dir), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A thread-safe log function that keeps what it is given. */
typedef struct logbuf {
	pthread_mutex_t mu;
	char text[16384];
	size_t n;
} logbuf_t;

static void log_keep(void *arg, const char *text)
{
	logbuf_t *b = arg;
	size_t k = strlen(text);

	pthread_mutex_lock(&b->mu);
	if (k > sizeof b->text - 1 - b->n)
		k = sizeof b->text - 1 - b->n;
	memcpy(b->text + b->n, text, k);
	b->n += k;
	b->text[b->n] = '\0';
	pthread_mutex_unlock(&b->mu);
}

static void test_trace_unwritable_path_is_logged(void **state)
{
	char dir[128], path[256];
	work_t w = {.rounds = 20, .fan = 1};
	logbuf_t *log = calloc(1, sizeof *log);
	coev_rt_stats_t st;
	coev_config_t cfg;

	(void)state;
	assert_non_null(log);
	pthread_mutex_init(&log->mu, NULL);
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	cfg = traced_cfg(path, sizeof path, dir, "missing/trace.json");
	cfg.log = log_keep;
	cfg.log_arg = log;
	/* The runtime works as usual; only the file is missing. */
	run_traced(&cfg, &w, &st);
	assert_true(st.finished >= 2 + FAN + 1);
	if (!strstr(log->text, "coev: trace: cannot write"))
		fail_msg("the log says: '%s'", log->text);
	assert_non_null(strstr(log->text, path));
	assert_int_equal(dir_entries(dir), 0);
	pthread_mutex_destroy(&log->mu);
	free(log);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_trace_environment(void **state)
{
	char dir[128], path[256];
	work_t w = {.rounds = 20, .fan = 1};
	coev_rt_stats_t st;
	coev_config_t cfg;
	trace_t tr;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/env.json", dir);

	/* COEV_TRACE names the file; COEV_TRACE_EVENTS sizes the rings. */
	assert_int_equal(setenv("COEV_TRACE", path, 1), 0);
	assert_int_equal(setenv("COEV_TRACE_EVENTS", "100", 1), 0);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_non_null(cfg.trace);
	assert_string_equal(cfg.trace, path);
	assert_int_equal(cfg.trace_events, 100);
	cfg.workers = WORKERS;
	run_traced(&cfg, &w, &st);
	trace_load(path, &tr, WORKERS);
	check_lines(&tr);
	trace_free(&tr);

	/* Malformed or out of range: -EINVAL, the default kept, the rest
	 * set. */
	static const char *bad[] = {"abc", "", "8", "12x", "-5"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(setenv("COEV_TRACE_EVENTS", bad[i], 1), 0);
		assert_int_equal(coev_config_init(&cfg), -EINVAL);
		assert_int_equal(cfg.trace_events, 0);
		assert_string_equal(cfg.trace, path);
	}
	/* An empty COEV_TRACE is no trace. */
	assert_int_equal(unsetenv("COEV_TRACE_EVENTS"), 0);
	assert_int_equal(setenv("COEV_TRACE", "", 1), 0);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_null(cfg.trace);
	assert_int_equal(unsetenv("COEV_TRACE"), 0);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_null(cfg.trace);
	assert_int_equal(cfg.trace_events, 0);

	/* Debug mode's variables: COEV_DEBUG is 0 or 1, COEV_SLOW_TASK_MS
	 * 1..3600000 milliseconds; anything else is -EINVAL with the
	 * default kept. */
	assert_int_equal(setenv("COEV_DEBUG", "1", 1), 0);
	assert_int_equal(setenv("COEV_SLOW_TASK_MS", "250", 1), 0);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_true(cfg.debug & COEV_DEBUG_CHECKS);
	assert_int_equal(cfg.slow_task, COEV_MSEC(250));
	static const char *bad_debug[] = {"2", "yes", "", "-1"};
	for (size_t i = 0; i < sizeof bad_debug / sizeof bad_debug[0]; i++) {
		assert_int_equal(setenv("COEV_DEBUG", bad_debug[i], 1), 0);
		assert_int_equal(coev_config_init(&cfg), -EINVAL);
		assert_false(cfg.debug & COEV_DEBUG_CHECKS);
	}
	assert_int_equal(unsetenv("COEV_DEBUG"), 0);
	static const char *bad_slow[] = {"0", "3600001", "1s", "abc"};
	for (size_t i = 0; i < sizeof bad_slow / sizeof bad_slow[0]; i++) {
		assert_int_equal(setenv("COEV_SLOW_TASK_MS", bad_slow[i], 1),
				 0);
		assert_int_equal(coev_config_init(&cfg), -EINVAL);
		assert_int_equal(cfg.slow_task, COEV_MSEC(100));
	}
	assert_int_equal(unsetenv("COEV_SLOW_TASK_MS"), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_trace_workload_file),
		TU_FD_TEST(test_trace_bounded_ring_drops_oldest),
		TU_FD_TEST(test_trace_off_writes_nothing),
		TU_FD_TEST(test_trace_unwritable_path_is_logged),
		TU_FD_TEST(test_trace_environment),
	};

	/* The tests choose their own traces and debug settings. */
	unsetenv("COEV_TRACE");
	unsetenv("COEV_TRACE_EVENTS");
	unsetenv("COEV_DEBUG");
	unsetenv("COEV_SLOW_TASK_MS");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
