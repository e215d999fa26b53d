/* SPDX-License-Identifier: MIT */
/*
 * io/file.c — file calls for tasks (coev_file_*), run on the blocking pool.
 *
 * Regular files are always "ready" to epoll, so a read that misses the
 * page cache would block the worker's thread: every call here is one
 * coev_blocking job instead, which the calling task waits for with its
 * deadline and cancellation. A job cut short before it ran never runs; one
 * already running is waited for, since its frame holds the buffers the
 * call reads and writes (sched/pool.c). Each call's result is the system
 * call's, or a negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coev.h"

struct file_op {
	int fd;
	const char *path;
	int flags;
	mode_t mode;
	void *buf;
	const void *cbuf;
	size_t n;
	off_t off;
	ssize_t r;   /* the call's result or -errno */
	char **data; /* read_all */
	size_t *len;
};

/* Run op's fn on the pool and give back its result: the call's, or the
 * pool's error when it never ran. */
static ssize_t file_call(coev_fn fn, struct file_op *op, coev_time_t dl)
{
	int r = coev_blocking(fn, op, dl, NULL);

	return r < 0 ? r : op->r;
}

static int do_open(void *arg)
{
	struct file_op *op = arg;
	int fd = open(op->path, op->flags | O_CLOEXEC, op->mode);

	op->r = fd < 0 ? -errno : fd;
	return 0;
}

static int do_pread(void *arg)
{
	struct file_op *op = arg;
	ssize_t n;

	do
		n = op->off < 0 ? read(op->fd, op->buf, op->n)
				: pread(op->fd, op->buf, op->n, op->off);
	while (n < 0 && errno == EINTR);
	op->r = n < 0 ? -errno : n;
	return 0;
}

static int do_pwrite(void *arg)
{
	struct file_op *op = arg;
	ssize_t n;

	do
		n = op->off < 0 ? write(op->fd, op->cbuf, op->n)
				: pwrite(op->fd, op->cbuf, op->n, op->off);
	while (n < 0 && errno == EINTR);
	op->r = n < 0 ? -errno : n;
	return 0;
}

static int do_fsync(void *arg)
{
	struct file_op *op = arg;

	op->r = fsync(op->fd) < 0 ? -errno : 0;
	return 0;
}

static int do_close(void *arg)
{
	struct file_op *op = arg;

	op->r = close(op->fd) < 0 && errno != EINTR ? -errno : 0;
	return 0;
}

int coev_file_open(const char *path, int flags, mode_t mode,
		   coev_time_t deadline)
{
	struct file_op op = {.path = path, .flags = flags, .mode = mode};

	if (!path)
		return -EINVAL;
	return (int)file_call(do_open, &op, deadline);
}

ssize_t coev_file_pread(int fd, void *buf, size_t n, off_t off,
			coev_time_t deadline)
{
	struct file_op op = {.fd = fd, .buf = buf, .n = n, .off = off};

	return file_call(do_pread, &op, deadline);
}

ssize_t coev_file_pwrite(int fd, const void *buf, size_t n, off_t off,
			 coev_time_t deadline)
{
	struct file_op op = {.fd = fd, .cbuf = buf, .n = n, .off = off};

	return file_call(do_pwrite, &op, deadline);
}

int coev_file_fsync(int fd, coev_time_t deadline)
{
	struct file_op op = {.fd = fd};

	return (int)file_call(do_fsync, &op, deadline);
}

int coev_file_close(int fd, coev_time_t deadline)
{
	struct file_op op = {.fd = fd};

	return (int)file_call(do_close, &op, deadline);
}

static int do_read_all(void *arg)
{
	struct file_op *op = arg;
	size_t cap = 4096, len = 0;
	struct stat st;
	char *buf, *nb;
	ssize_t n;
	int fd = open(op->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		op->r = -errno;
		return 0;
	}
	/* The size and its NUL in one object: at most PTRDIFF_MAX bytes
	 * (malloc's limit), checked before asking, and as the buffer grows. */
	if (fstat(fd, &st) == 0 && st.st_size > 0)
		cap = (uintmax_t)st.st_size < PTRDIFF_MAX
			      ? (size_t)st.st_size + 1
			      : 0;
	if (!cap || !(buf = malloc(cap))) {
		op->r = -ENOMEM;
		close(fd);
		return 0;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > PTRDIFF_MAX / 2 ||
			    !(nb = realloc(buf, cap * 2))) {
				op->r = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			op->r = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (op->r < 0) {
		free(buf);
		return 0;
	}
	buf[len] = '\0';
	*op->data = buf;
	*op->len = len;
	return 0;
}

static int do_write_all(void *arg)
{
	struct file_op *op = arg;
	const char *p = op->cbuf;
	size_t left = op->n;
	ssize_t n;
	int fd = open(op->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		op->r = -errno;
		return 0;
	}
	op->r = 0;
	while (left > 0) {
		n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			op->r = -errno;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	if (close(fd) < 0 && errno != EINTR && op->r == 0)
		op->r = -errno;
	return 0;
}

int coev_file_read_all(const char *path, char **data, size_t *len,
		       coev_time_t deadline)
{
	struct file_op op = {.path = path, .data = data, .len = len};

	if (!path || !data || !len)
		return -EINVAL;
	return (int)file_call(do_read_all, &op, deadline);
}

int coev_file_write_all(const char *path, const void *data, size_t n,
			coev_time_t deadline)
{
	struct file_op op = {.path = path, .cbuf = data, .n = n};

	if (!path || (!data && n))
		return -EINVAL;
	return (int)file_call(do_write_all, &op, deadline);
}
