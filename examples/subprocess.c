/* SPDX-License-Identifier: MIT */
/*
 * examples/subprocess.c — run a command and stream its output line by
 * line as it comes, with a deadline on the whole run. asyncio's version:
 *
 *   proc = await asyncio.create_subprocess_exec(
 *       *argv, stdout=asyncio.subprocess.PIPE)
 *   async for line in proc.stdout:
 *       print(f"{n:4} | {line.decode()}", end="")
 *   status = await proc.wait()
 *
 * Usage: subprocess [-t SECS] COMMAND [ARG...]
 *   -t SECS  stop the command (SIGTERM, then SIGKILL a second later)
 *            when it runs longer than this (default: no limit)
 *
 *   make examples
 *   build/examples/subprocess ls -l /
 *   build/examples/subprocess -t 2 sh -c 'while :; do date; sleep 0.5; done'
 *
 * Each output line is printed with its number as soon as the command
 * writes it (the command's stdout is a pipe, read through a stream with
 * coev_stream_read_line); the command's stderr is left as this program's.
 * The exit status is this program's: the command's exit code, or 128 + the
 * signal that ended it. A command that cannot be started is reported by
 * the spawn itself (for example "No such file or directory"), with 127 as
 * a shell does.
 */
#include <coev.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096 /* a longer line is printed in pieces */

struct run {
	char **argv;
	coev_time_t limit; /* COEV_FOREVER: none */
};

/* Print every line of out, numbered, until the command closes its end,
 * or the deadline. Returns 0, or a negative code. */
static int print_lines(coev_stream_t *out, coev_time_t deadline)
{
	char line[LINE_MAX_BYTES];
	unsigned long n = 0;
	ssize_t r;

	for (;;) {
		r = coev_stream_read_line(out, line, sizeof line, deadline);
		if (r == -EMSGSIZE) /* no newline within the buffer */
			r = coev_stream_read(out, line, sizeof line, deadline);
		if (r == COEV_EEOF) /* a last line without a newline */
			r = coev_stream_read(out, line, sizeof line, deadline);
		if (r <= 0)
			return (int)r;
		printf("%4lu | %.*s", ++n, (int)r, line);
		if (line[r - 1] != '\n')
			putchar('\n');
	}
}

/* Stop a command that ran out of time: SIGTERM, and SIGKILL if it has not
 * ended a second later. Returns its wait status. */
static int stop(coev_process_t *p)
{
	int st = 0;

	fprintf(stderr, "subprocess: time is up, stopping %d\n",
		(int)coev_process_pid(p));
	coev_process_signal(p, SIGTERM);
	if (coev_process_wait(p, &st, coev_deadline(COEV_SEC(1))) ==
	    -ETIMEDOUT) {
		coev_process_signal(p, SIGKILL);
		coev_process_wait(p, &st, COEV_FOREVER);
	}
	return st;
}

static int run_main(void *arg)
{
	struct run *run = arg;
	coev_process_opts_t opts = {.stdio = {COEV_STDIO_INHERIT,
					      COEV_STDIO_PIPE,
					      COEV_STDIO_INHERIT}};
	coev_time_t deadline = run->limit == COEV_FOREVER
				       ? COEV_FOREVER
				       : coev_deadline(run->limit);
	coev_process_t *p;
	coev_stream_t *out;
	int r, st = 0;

	r = coev_process_spawn(run->argv, &opts, &p);
	if (r < 0) {
		fprintf(stderr, "subprocess: %s: %s\n", run->argv[0],
			coev_strerror(r));
		return 127;
	}
	if ((r = coev_process_stream(p, 1, 0, &out)) < 0) {
		fprintf(stderr, "subprocess: stream: %s\n", coev_strerror(r));
		coev_process_free(p); /* kills and reaps it */
		return 1;
	}
	r = print_lines(out, deadline);
	if (r == 0)
		r = coev_process_wait(p, &st, deadline);
	if (r == -ETIMEDOUT)
		st = stop(p);
	else if (r < 0)
		fprintf(stderr, "subprocess: %s\n", coev_strerror(r));
	coev_stream_close(out);
	coev_process_free(p);
	if (r < 0 && r != -ETIMEDOUT)
		return 1;
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "subprocess: ended by %s\n",
			strsignal(WTERMSIG(st)));
		return 128 + WTERMSIG(st);
	}
	return WEXITSTATUS(st);
}

static void usage(void)
{
	fprintf(stderr, "usage: subprocess [-t SECS] COMMAND [ARG...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct run run = {.limit = COEV_FOREVER};
	int opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "+t:h")) != -1) {
		char *end;
		double secs;

		if (opt != 't')
			usage();
		secs = strtod(optarg, &end);
		if (end == optarg || *end || !(secs > 0 && secs < 1e6))
			usage();
		run.limit = (coev_time_t)(secs * (double)COEV_SEC(1));
	}
	if (optind >= argc)
		usage();
	run.argv = argv + optind;
	return coev_run(run_main, &run, NULL);
}
