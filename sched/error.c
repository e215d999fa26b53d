/* SPDX-License-Identifier: MIT */
/*
 * sched/error.c — coev_strerror, coev__panic and the runtime's log.
 *
 * One table names every code a coev call returns: coev's own codes (from
 * the X-macro in coev/error.h) and the errno codes coev uses. strerror() is
 * not used: its buffer is shared between threads and its wording varies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched.h"

static const struct {
	int code;
	const char *msg;
} errors[] = {
#define COEV_ERR_ROW(name, value, msg) {value, msg},
	COEV_OWN_ERRORS(COEV_ERR_ROW)
#undef COEV_ERR_ROW
		{-EPERM, "operation not permitted"},
	{-ENOENT, "no such file or directory"},
	{-EINTR, "interrupted"},
	{-EIO, "input/output error"},
	{-EBADF, "bad file descriptor"},
	{-EAGAIN, "resource temporarily unavailable"},
	{-ENOMEM, "out of memory"},
	{-EACCES, "permission denied"},
	{-EBUSY, "resource busy"},
	{-EEXIST, "already exists"},
	{-EINVAL, "invalid argument"},
	{-ENFILE, "too many open files in the system"},
	{-EMFILE, "too many open files"},
	{-ENOSPC, "no space left"},
	{-EPIPE, "broken pipe"},
	{-ERANGE, "result out of range"},
	{-EDEADLK, "operation would deadlock"},
	{-ENOSYS, "not implemented"},
	{-ENOTSUP, "not supported"},
	{-ECONNREFUSED, "connection refused"},
	{-ECONNRESET, "connection reset by peer"},
	{-ETIMEDOUT, "timed out"},
	{-ESHUTDOWN, "runtime is shutting down"},
	{-ECANCELED, "cancelled"},
	{-EALREADY, "already completed or in progress"},
	{-EINPROGRESS, "in progress"},
};

const char *coev_strerror(int err)
{
	const char *msg;

	if (err > 0)
		err = -err;
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		if (errors[i].code == err)
			return errors[i].msg;
	if (err == 0)
		return "success";
	/* Other errno codes (an I/O call can return any of them): glibc's
	 * own description, a static string safe from any thread. */
	if (err > COEV_ERR_BASE && (msg = strerrordesc_np(-err)) != NULL)
		return msg;
	return "unknown error";
}

void coev__panic(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "coev: fatal: %s\n", buf);
	fflush(stderr);
	abort();
}

/* --- the log: where runtime reports go (coev_config_t.log) ---------- */

void coev__write_all(int fd, const char *p, size_t n, int *err)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (err)
				*err = -errno;
			return;
		}
		p += k;
		n -= (size_t)k;
	}
}

void coev__log_stderr(void *arg, const char *text)
{
	(void)arg;
	coev__write_all(2, text, strlen(text), NULL);
}

void coev__logf(struct coev_rt *rt, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	rt->log(rt->log_arg, buf);
}
