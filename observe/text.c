/* SPDX-License-Identifier: MIT */
/*
 * observe/text.c — the text of reports and dumps: a growing string, how
 * durations and task names are written, and handing a report to the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "observe.h"

void coev__sb_printf(coev__sb_t *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		size_t room = b->cap - b->n;

		va_start(ap, fmt);
		k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if ((size_t)k < room) {
			b->n += (size_t)k;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap - b->n <= (size_t)k)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return;
		b->p = np;
		b->cap = cap;
	}
}

void coev__sb_log(struct coev_rt *rt, coev__sb_t *b)
{
	if (b->p)
		rt->log(rt->log_arg, b->p);
	free(b->p);
}

void coev__fmt_dur(char *buf, size_t len, coev_time_t ns)
{
	if (ns < 0)
		ns = 0;
	if (ns < 10000)
		snprintf(buf, len, "%lld ns", (long long)ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
}

const char *coev__task_label(const char *name)
{
	return name[0] ? name : "(unnamed)";
}
