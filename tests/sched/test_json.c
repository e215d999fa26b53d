/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_json.c — tests/json.h, the JSON parser the suites use
 * to read back coev's traces: scalars, numbers with fractions and
 * exponents, every string escape with surrogate pairs and UTF-8,
 * containers and the accessors, whitespace, one invalid input for each
 * rule the parser enforces (with the reason and its line and column),
 * the depth limit (deep input fails cleanly instead of overflowing the
 * stack), input without a terminating NUL, json_free() refusing a node
 * that is not a root, the trace format coev writes,
 * and a large document (a few hundred thousand events: linear, never
 * asserted on speed).
 *
 * Inputs are copied into buffers of exactly their size, so that ASan sees
 * any read past the end.
 */
#include "tests/testutil.h"
#include "tests/json.h"

/* Parses the n bytes of text from an exact-size heap copy. */
static json_t *parse_n(const char *text, size_t n, char *err, size_t errlen)
{
	char *copy = malloc(n ? n : 1);

	assert_non_null(copy);
	memcpy(copy, text, n);
	json_t *v = json_parse(copy, n, err, errlen);
	free(copy);
	return v;
}

/* Parses text, which must be valid. */
static json_t *parse_ok(const char *text)
{
	char err[128];
	json_t *v = parse_n(text, strlen(text), err, sizeof err);

	if (!v)
		fail_msg("parsing %s failed: %s", text, err);
	return v;
}

/* Checks that text is rejected with a message containing want. */
static void expect_error(const char *text, size_t n, const char *want)
{
	char err[128] = "unchanged";
	json_t *v = parse_n(text, n, err, sizeof err);

	if (v) {
		json_free(v);
		fail_msg("%s was accepted (expected: %s)", text, want);
	}
	if (!strstr(err, want) || strncmp(err, "line ", 5) != 0)
		fail_msg("%s: error \"%s\", expected \"line L col C: ...%s\"",
			 text, err, want);
}

#define REJECT(text, want) expect_error(text, sizeof(text) - 1, want)

/* ---- values ------------------------------------------------------------ */

static void test_json_scalars(void **state)
{
	static const struct {
		const char *text;
		double want;
	} nums[] = {
		{"0", 0},
		{"-0", 0},
		{"7", 7},
		{"-12", -12},
		{"1.5", 1.5},
		{"-0.25", -0.25},
		{"1e3", 1000},
		{"1E+2", 100},
		{"25e-2", 0.25},
		{"-1.5e1", -15},
		{"0.000123", 1.23e-4},
		{"123456789", 123456789},
		{"1e-400", 0},
	};
	json_t *v;

	(void)state;
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		v = parse_ok(nums[i].text);
		assert_int_equal(v->type, JSON_NUMBER);
		assert_true(json_num(v, -1) == nums[i].want);
		json_free(v);
	}
	v = parse_ok("true");
	assert_int_equal(v->type, JSON_TRUE);
	assert_true(json_num(v, 42) == 42);
	assert_null(json_str(v));
	json_free(v);
	v = parse_ok("false");
	assert_int_equal(v->type, JSON_FALSE);
	json_free(v);
	v = parse_ok("null");
	assert_int_equal(v->type, JSON_NULL);
	assert_int_equal(json_len(v), 0);
	assert_null(json_at(v, 0));
	json_free(v);
	v = parse_ok("\"plain\"");
	assert_string_equal(json_str(v), "plain");
	assert_int_equal(v->len, 5);
	json_free(v);
}

static void test_json_string_escapes(void **state)
{
	json_t *v;

	(void)state;
	v = parse_ok("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"");
	assert_string_equal(json_str(v), "q\" b\\ s/ \b\f\n\r\t");
	json_free(v);
	/* One, two, three and four UTF-8 bytes from \u escapes, upper and
	 * lower case hex; the last is a surrogate pair (U+1F600). */
	v = parse_ok("\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"");
	assert_string_equal(json_str(v),
			    "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	json_free(v);
	/* Raw UTF-8 passes through unchanged. */
	v = parse_ok("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	assert_string_equal(json_str(v),
			    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	json_free(v);
	/* \u0000 is kept: len counts past it. */
	v = parse_ok("\"a\\u0000b\"");
	assert_int_equal(v->len, 3);
	assert_memory_equal(json_str(v), "a\0b", 4);
	json_free(v);
	v = parse_ok("\"\"");
	assert_string_equal(json_str(v), "");
	assert_int_equal(v->len, 0);
	json_free(v);
	/* Escaped keys are decoded too. */
	v = parse_ok("{\"k\\u00e9y\\\"\":1}");
	assert_true(json_num(json_get(v, "k\xc3\xa9y\""), 0) == 1);
	json_free(v);
}

static void test_json_containers(void **state)
{
	json_t *v;

	(void)state;
	v = parse_ok("{\"a\":[1,\"two\",{\"x\":null},[]],\"b\":{},"
		     "\"c\":true,\"a\":5}");
	assert_int_equal(v->type, JSON_OBJECT);
	assert_int_equal(json_len(v), 4);
	assert_string_equal(json_key(v, 1), "b");
	assert_null(json_key(v, 4));
	json_t *a = json_get(v, "a"); /* the first of the two "a" */
	assert_non_null(a);
	assert_int_equal(a->type, JSON_ARRAY);
	assert_int_equal(json_len(a), 4);
	assert_true(json_num(json_at(a, 0), 0) == 1);
	assert_string_equal(json_str(json_at(a, 1)), "two");
	assert_int_equal(json_get(json_at(a, 2), "x")->type, JSON_NULL);
	assert_int_equal(json_len(json_at(a, 3)), 0);
	assert_null(json_at(a, 4));
	assert_null(json_key(a, 0));
	assert_null(json_get(a, "x")); /* not an object */
	assert_int_equal(json_len(json_get(v, "b")), 0);
	assert_int_equal(json_get(v, "c")->type, JSON_TRUE);
	assert_null(json_get(v, "missing"));
	assert_null(json_get(NULL, "a"));
	assert_null(json_str(NULL));
	assert_true(json_num(NULL, 3) == 3);
	assert_true(json_num(json_at(a, 1), -1) == -1);
	assert_int_equal(json_len(NULL), 0);
	json_free(v);
	json_free(NULL);
}

static void test_json_whitespace(void **state)
{
	json_t *v;

	(void)state;
	v = parse_ok(" \t\r\n[ 1 ,\n\t2 ] \r\n ");
	assert_int_equal(json_len(v), 2);
	json_free(v);
	v = parse_ok("{ \"k\" : \"v\" , \"n\" : -1 }");
	assert_string_equal(json_str(json_get(v, "k")), "v");
	json_free(v);
}

/* ---- invalid input --------------------------------------------------- */

static void test_json_rejects_structure(void **state)
{
	(void)state;
	REJECT("", "unexpected end of input");
	REJECT(" \n ", "unexpected end of input");
	REJECT("[1] x", "trailing garbage");
	REJECT("{}{}", "trailing garbage");
	REJECT("[1]]", "trailing garbage");
	REJECT("[1,]", "trailing comma");
	REJECT("{\"a\":1,}", "trailing comma");
	REJECT("[,1]", "unexpected character ','");
	REJECT("[1 2]", "',' or ']' expected");
	REJECT("{\"a\":1 \"b\":2}", "',' or '}' expected");
	REJECT("{\"a\" 1}", "':' expected");
	REJECT("{a:1}", "string key expected");
	REJECT("{1:1}", "string key expected");
	REJECT("['a']", "unexpected character");
	REJECT("[", "unexpected end of input");
	REJECT("{\"a\":", "unexpected end of input");
	REJECT("[1,", "unexpected end of input");
	REJECT("{", "string key expected");
	REJECT("tru", "invalid literal");
	REJECT("nul", "invalid literal");
	REJECT("True", "unexpected character 'T'");
	REJECT("NaN", "unexpected character 'N'");
	REJECT("Infinity", "unexpected character 'I'");
	REJECT("[1] // c", "trailing garbage");
	REJECT("/* c */ 1", "unexpected character '/'");
	REJECT("\xef\xbb\xbf[]", "unexpected byte 0xef");
	REJECT("\f1", "unexpected byte 0x0c");
	REJECT("[1]\0", "trailing garbage");
}

static void test_json_rejects_numbers(void **state)
{
	(void)state;
	REJECT("01", "leading zero");
	REJECT("-01", "leading zero");
	REJECT("[00]", "leading zero");
	REJECT("1.", "digit expected after '.'");
	REJECT("1.e3", "digit expected after '.'");
	REJECT(".5", "unexpected character '.'");
	REJECT("+1", "unexpected character '+'");
	REJECT("-", "digit expected in number");
	REJECT("-a", "digit expected in number");
	REJECT("1e", "digit expected in exponent");
	REJECT("1e+", "digit expected in exponent");
	REJECT("0x10", "trailing garbage");
	REJECT("1e999", "number out of range");
	REJECT("-1e999", "number out of range");
}

static void test_json_rejects_strings(void **state)
{
	(void)state;
	REJECT("\"abc", "unterminated string");
	REJECT("\"abc\\\"", "unterminated string");
	REJECT("\"a\nb\"", "control character 0x0a");
	REJECT("\"a\tb\"", "control character 0x09");
	REJECT("\"\x01\"", "control character 0x01");
	REJECT("\"\\x\"", "invalid escape");
	REJECT("\"\\'\"", "invalid escape");
	REJECT("\"\\", "invalid escape");
	REJECT("\"\\u12\"", "invalid \\u escape");
	REJECT("\"\\u12g4\"", "invalid \\u escape");
	REJECT("\"\\u", "invalid \\u escape");
	REJECT("\"\\ud800\"", "not followed by a low one");
	REJECT("\"\\ud800\\u0041\"", "not followed by a low one");
	REJECT("\"\\ud800\\ud800\"", "not followed by a low one");
	REJECT("\"\\udc00\"", "lone low surrogate");
	REJECT("\"\xff\"", "invalid UTF-8");
	REJECT("\"\x80\"", "invalid UTF-8");
	REJECT("\"\xc0\xaf\"", "invalid UTF-8");	 /* overlong '/' */
	REJECT("\"\xe0\x80\xaf\"", "invalid UTF-8");	 /* overlong '/' */
	REJECT("\"\xed\xa0\x80\"", "invalid UTF-8");	 /* U+D800 */
	REJECT("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* U+110000 */
	REJECT("\"\xc3\"", "invalid UTF-8");		 /* truncated */
	REJECT("\"\xe2\x82", "invalid UTF-8");		 /* at the end */
}

/* The position names the line and the column (in bytes, from 1). */
static void test_json_error_position(void **state)
{
	char err[128];
	json_t *v;

	(void)state;
	v = parse_n("[1,\n  2,\n  ]", 12, err, sizeof err);
	assert_null(v);
	assert_string_equal(err, "line 3 col 3: trailing comma");
	v = parse_n("{\"a\": tx}", 9, err, sizeof err);
	assert_null(v);
	assert_string_equal(err, "line 1 col 7: invalid literal (true, false "
				 "or null expected)");
	v = parse_n("\n\n\"abc", 6, err, sizeof err);
	assert_string_equal(err, "line 3 col 1: unterminated string");
	/* A short buffer truncates the message; a NULL one is allowed. */
	char tiny[8];
	assert_null(parse_n("[1,]", 4, tiny, sizeof tiny));
	assert_string_equal(tiny, "line 1 ");
	assert_null(parse_n("[1,]", 4, NULL, 0));
}

/* ---- limits ------------------------------------------------------------ */

static char *nested(size_t depth, size_t *n)
{
	char *s = malloc(2 * depth + 1);

	assert_non_null(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	*n = 2 * depth;
	return s;
}

static void test_json_depth_limit(void **state)
{
	char err[128];
	size_t n;
	char *s;

	(void)state;
	s = nested(JSON_MAX_DEPTH, &n);
	json_t *v = parse_n(s, n, err, sizeof err);
	assert_non_null(v);
	json_t *inner = v;
	for (int i = 1; i < JSON_MAX_DEPTH; i++)
		inner = json_at(inner, 0);
	assert_int_equal(inner->type, JSON_ARRAY);
	assert_int_equal(json_len(inner), 0);
	json_free(v);
	free(s);

	s = nested(JSON_MAX_DEPTH + 1, &n);
	assert_null(parse_n(s, n, err, sizeof err));
	assert_non_null(strstr(err, "nesting deeper than 256"));
	assert_non_null(strstr(err, "col 257"));
	free(s);

	/* Far deeper than any stack would take, objects and arrays mixed. */
	size_t deep = 1000000;
	s = malloc(5 * deep);
	assert_non_null(s);
	for (size_t i = 0; i < deep; i++)
		memcpy(s + 5 * i, i % 2 ? "[    " : "{\"a\":", 5);
	assert_null(parse_n(s, 5 * deep, err, sizeof err));
	assert_non_null(strstr(err, "nesting deeper"));
	free(s);
}

/* Only the n bytes given are read: no NUL needed, none looked for. */
static void test_json_length_not_nul(void **state)
{
	char err[128];
	json_t *v;

	(void)state;
	v = parse_n("[1,2]xyz", 5, err, sizeof err);
	assert_non_null(v);
	assert_int_equal(json_len(v), 2);
	json_free(v);
	v = parse_n("12345", 2, err, sizeof err);
	assert_true(json_num(v, 0) == 12);
	json_free(v);
	v = parse_n("\"ab\"", 3, err, sizeof err);
	assert_null(v);
	assert_non_null(strstr(err, "unterminated"));
	v = parse_n("true", 3, err, sizeof err);
	assert_null(v);
	v = parse_n("-1.5e-3", 7, err, sizeof err);
	assert_true(json_num(v, 0) == -1.5e-3);
	json_free(v);
}

static void free_inner_node(void *arg)
{
	json_t *v = parse_ok("{\"a\":[1,2]}");

	(void)arg;
	json_free(json_at(json_get(v, "a"), 1));
}

/* json_free() takes only a root; a node inside a tree is refused loudly
 * (its memory belongs to the tree's arena). */
static void test_json_free_inner_node_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(free_inner_node, NULL, res), 0);
	if (!tu_child_signaled(res, SIGABRT) ||
	    !strstr(res->out, "not a tree from json_parse"))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "not a tree from json_parse"));
	free(res);
}

/* ---- coev's trace format ------------------------------------------------ */

static const char trace_sample[] =
	"{\"traceEvents\":[\n"
	"{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,"
	"\"args\":{\"name\":\"coev\"}},\n"
	"{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":1,"
	"\"args\":{\"name\":\"worker 0\"}},\n"
	"{\"ph\":\"X\",\"name\":\"fib \\\"x\\\" \\\\ "
	"\\u00e9\",\"cat\":\"task\","
	"\"pid\":1,\"tid\":1,\"ts\":12.345,\"dur\":0.250,"
	"\"args\":{\"task\":17,\"end\":\"park\"}},\n"
	"{\"ph\":\"X\",\"name\":\"idle\",\"cat\":\"idle\",\"pid\":1,\"tid\":1,"
	"\"ts\":13.000,\"dur\":40.125},\n"
	"{\"ph\":\"s\",\"name\":\"wake\",\"cat\":\"wake\",\"id\":42,\"pid\":1,"
	"\"tid\":1,\"ts\":12.500},\n"
	"{\"ph\":\"f\",\"name\":\"wake\",\"cat\":\"wake\",\"bp\":\"e\",\"id\":"
	"42,"
	"\"pid\":1,\"tid\":2,\"ts\":13.000},\n"
	"{\"ph\":\"i\",\"name\":\"spawn\",\"cat\":\"spawn\",\"s\":\"t\","
	"\"pid\":1,"
	"\"tid\":1,\"ts\":12.400,\"args\":{\"task\":18}}\n"
	"],\"displayTimeUnit\":\"ns\",\"otherData\":{\"version\":\"coev "
	"0.1.0\","
	"\"workers\":2,\"dropped\":0}}\n";

static void test_json_coev_trace(void **state)
{
	json_t *v;

	(void)state;
	v = parse_ok(trace_sample);
	json_t *ev = json_get(v, "traceEvents");
	assert_int_equal(json_len(ev), 7);
	json_t *slice = json_at(ev, 2);
	assert_string_equal(json_str(json_get(slice, "ph")), "X");
	assert_string_equal(json_str(json_get(slice, "name")),
			    "fib \"x\" \\ \xc3\xa9");
	assert_true(json_num(json_get(slice, "ts"), 0) == 12.345);
	assert_true(json_num(json_get(slice, "dur"), 0) == 0.25);
	json_t *args = json_get(slice, "args");
	assert_true(json_num(json_get(args, "task"), 0) == 17);
	assert_string_equal(json_str(json_get(args, "end")), "park");
	assert_true(json_num(json_get(json_at(ev, 5), "id"), 0) == 42);
	assert_string_equal(json_str(json_get(v, "displayTimeUnit")), "ns");
	json_t *other = json_get(v, "otherData");
	assert_true(json_num(json_get(other, "workers"), 0) == 2);
	json_free(v);
}

/* A trace-sized document: many events, one per line. Checks the counts
 * and a few values; the time is printed, never asserted on. */
static void test_json_large_document(void **state)
{
	size_t events = TU_SCALE(400000, 100000, 50000);
	size_t cap = events * 160 + 64, n = 0;
	char *s = malloc(cap);

	(void)state;
	assert_non_null(s);
	n += (size_t)sprintf(s + n, "{\"traceEvents\":[\n");
	for (size_t i = 0; i < events; i++) {
		n += (size_t)sprintf(
			s + n,
			"{\"ph\":\"X\",\"name\":\"t%zu\",\"cat\":\"task\","
			"\"pid\":1,\"tid\":%zu,\"ts\":%zu.125,\"dur\":0.250,"
			"\"args\":{\"task\":%zu,\"end\":\"park\"}}%s\n",
			i % 97, i % 2 + 1, i, i, i + 1 < events ? "," : "");
	}
	n += (size_t)sprintf(s + n, "],\"displayTimeUnit\":\"ns\"}\n");
	assert_true(n < cap);

	char err[128];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_t *v = json_parse(s, n, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!v)
		fail_msg("%s", err);
	json_t *ev = json_get(v, "traceEvents");
	assert_int_equal(json_len(ev), events);
	json_t *last = json_at(ev, events - 1);
	assert_true(json_num(json_get(last, "ts"), 0) ==
		    (double)(events - 1) + 0.125);
	assert_true(json_num(json_get(json_get(last, "args"), "task"), 0) ==
		    (double)(events - 1));
	print_message("  parsed %zu events (%.1f MB) in %.3f s\n", events,
		      (double)n / 1e6,
		      (double)(t1.tv_sec - t0.tv_sec) +
			      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	json_free(v);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_scalars),
		cmocka_unit_test(test_json_string_escapes),
		cmocka_unit_test(test_json_containers),
		cmocka_unit_test(test_json_whitespace),
		cmocka_unit_test(test_json_rejects_structure),
		cmocka_unit_test(test_json_rejects_numbers),
		cmocka_unit_test(test_json_rejects_strings),
		cmocka_unit_test(test_json_error_position),
		cmocka_unit_test(test_json_depth_limit),
		cmocka_unit_test(test_json_length_not_nul),
		cmocka_unit_test(test_json_free_inner_node_aborts),
		cmocka_unit_test(test_json_coev_trace),
		cmocka_unit_test(test_json_large_document),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
