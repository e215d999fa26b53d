/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_fd.c — the owned fds harness (sched/fd.c): edge-triggered
 * registrations, readiness remembered per direction, close and reuse.
 *
 * Program: workers (1-3); 1-2 connections, each a fake fd owned through
 * coev__fd_own, a writer task that writes 1-6 chunks of 1-8 bytes (each
 * write an arrival: sim_fd_set, one edge) with yields or sleeps between,
 * and a reader task that reads with sizes from the program; the first
 * connection may be closed (through coev, coev__fd_disown) once its reader
 * waits after the writer wrote part of its chunks, and its number reused at
 * once by a new owned fd with a writer and a reader of its own, before the
 * old reader has run again.
 *
 * The reader's read mirrors io/socket.c's IO_RETRY_N on a fake socket: it
 * reads the direction's seq, waits (coev__fd_wait) when the direction is
 * drained at that seq, and otherwise "reads" what the connection holds:
 * nothing is EAGAIN (drained), less than asked is a short read (drained).
 * The deadlock detector catches a lost edge: a reader waiting forever with
 * bytes there.
 *
 * Oracles: every byte written to a connection that stays open is read
 * exactly once (counts match, no read returns more than is there); a read
 * never returns 0 or an error on an open connection; the reader of the
 * closed connection ends with -EBADF, having read no more than was
 * written; the reused number's reader reads exactly its own writer's
 * bytes; nothing leaks.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"
#include "sched/internal.h"

#define CONNS 3 /* two, and the reuse of the first */
#define CHUNKS 6
#define NS 100

struct conn {
	int fd;
	unsigned nchunks, chunk[CHUNKS], want[CHUNKS * 8];
	unsigned pace;	  /* bit i: sleep (else yield) after chunk i */
	unsigned stop;	  /* the writer stops after this many chunks */
	unsigned avail;	  /* bytes written, not read */
	unsigned written; /* in all */
	unsigned got;	  /* read in all */
	bool closed;	  /* closed through coev */
	int reader_ret;	  /* 0, or the reader's error */
	/* Set when the reader is about to wait with every byte its writer
	 * will write read (a connection to be closed). */
	coev_event_t drained;
	coev_task_t *reader;
	const char *doing;
};

static struct state {
	unsigned workers, nconns, close_first;
	struct conn c[CONNS];
	int main_ret;
} st;

static unsigned total(const struct conn *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->stop; i++)
		n += c->chunk[i];
	return n;
}

static int writer(void *arg)
{
	struct conn *c = arg;

	for (unsigned i = 0; i < c->stop; i++) {
		c->avail += c->chunk[i];
		c->written += c->chunk[i];
		sim_fd_set(c->fd, COEV_READ);
		if (c->pace & (1u << i))
			coev_sleep(NS);
		else
			coev_yield();
	}
	return 0;
}

/* io/socket.c's IO_RETRY_N for a read, on the fake socket c. */
static ssize_t fake_read(struct conn *c, struct coev__fd *f, unsigned want)
{
	uint32_t gen = atomic_load_explicit(&f->gen, memory_order_relaxed);

	for (;;) {
		uint32_t s =
			atomic_load_explicit(&f->seq[0], memory_order_acquire);
		unsigned n;

		if (atomic_load_explicit(&f->drained[0],
					 memory_order_relaxed) == (s | 1)) {
			struct coev__fd_snap snap = {gen, {s, s}};

			if (c->stop < c->nchunks && c->got == total(c))
				coev_event_set(&c->drained);
			/* Descheduled between reading seq and the wait: the
			 * writer may run here, and the loop dispatch its
			 * edge (the sleep lets the worker poll). */
			if (c->pace & 0x80)
				coev_sleep(1);
			int r = coev__fd_wait(f, c->fd, COEV_READ, &snap,
					      COEV_FOREVER);

			if (r < 0)
				return r;
			continue;
		}
		coev_yield(); /* the writer may come between */
		if (c->closed)
			return -EBADF; /* the system call on a closed fd */
		if (!c->avail) {
			atomic_store_explicit(&f->drained[0], s | 1,
					      memory_order_relaxed);
			continue;
		}
		n = c->avail < want ? c->avail : want;
		c->avail -= n;
		if (!c->avail)
			sim_fd_set(c->fd, 0);
		atomic_store_explicit(&f->drained[0], n < want ? s | 1 : 0,
				      memory_order_relaxed);
		return n;
	}
}

static int reader(void *arg)
{
	struct conn *c = arg;
	struct coev__fd *f = coev__fd_owned(c->fd);
	unsigned i = 0;

	H_CHECK(f != NULL, "fd %d not owned", c->fd);
	c->doing = "reading";
	while (c->got < total(c) || c->stop < c->nchunks) {
		ssize_t n = fake_read(c, f, c->want[i++ % (CHUNKS * 8)]);

		if (n < 0) {
			c->reader_ret = (int)n;
			break;
		}
		H_CHECK(n > 0, "a read returned 0 on an open fd");
		c->got += (unsigned)n;
		H_CHECK(c->got <= c->written, "read %u of %u written", c->got,
			c->written);
	}
	c->doing = "done";
	return 0;
}

static void conn_start(struct conn *c, coev_task_t **w)
{
	H_CHECK(coev_event_init(&c->drained) == 0, "event");
	c->fd = sim_fd_new();
	H_CHECK(c->fd >= 0, "sim_fd_new");
	H_CHECK(coev__fd_own(c->fd, true) == 0, "own");
	H_CHECK(coev_spawn(writer, c, w) == 0, "spawn writer");
	H_CHECK(coev_spawn(reader, c, &c->reader) == 0, "spawn reader");
}

static void conn_end(struct conn *c)
{
	coev__fd_disown(c->fd);
	sim_fd_close(c->fd);
	c->closed = true;
}

static void conn_free(struct conn *c)
{
	if (c->reader)
		coev_event_destroy(&c->drained);
}

static int main_task(void *arg)
{
	coev_task_t *w[CONNS];
	struct conn *old = &st.c[0], *fresh = &st.c[2];

	(void)arg;
	for (unsigned i = 0; i < st.nconns; i++)
		conn_start(&st.c[i], &w[i]);
	if (st.close_first) {
		/* Once the writer is done and the reader is about to wait
		 * for more: before its wait arms (the generation then
		 * refuses it), while it waits, or woken by an edge. */
		H_CHECK(coev_join(w[0], NULL) == 0, "join writer");
		H_CHECK(coev_event_wait(&old->drained) == 0, "event");
		conn_end(old);
		conn_start(fresh, &w[2]);
		H_CHECK(fresh->fd == old->fd, "the number %d is not reused",
			old->fd);
		H_CHECK(coev_join(old->reader, NULL) == 0, "join reader");
		H_CHECK(old->reader_ret == -EBADF,
			"the closed fd's reader ended with %d",
			old->reader_ret);
		H_CHECK(coev_join(w[2], NULL) == 0, "join writer");
		H_CHECK(coev_join(fresh->reader, NULL) == 0, "join reader");
		conn_end(fresh);
	}
	for (unsigned i = st.close_first; i < st.nconns; i++) {
		H_CHECK(coev_join(w[i], NULL) == 0, "join writer");
		H_CHECK(coev_join(st.c[i].reader, NULL) == 0, "join reader");
		conn_end(&st.c[i]);
	}
	for (unsigned i = 0; i < CONNS; i++) {
		struct conn *c = &st.c[i];

		if (!c->reader || (st.close_first && c == old))
			continue;
		H_CHECK(c->reader_ret == 0, "conn %u: reader ended with %d", i,
			c->reader_ret);
		H_CHECK(c->got == c->written && c->written == total(c),
			"conn %u: read %u, written %u of %u", i, c->got,
			c->written, total(c));
	}
	return 0;
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	h_config(&cfg, st.workers);
	st.main_ret = coev_run(main_task, NULL, &cfg);
	for (unsigned i = 0; i < CONNS; i++)
		conn_free(&st.c[i]);
	/* The owned fds' table is the process's: give its pages back. */
	coev__fd_table_free();
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < CONNS; i++)
		fprintf(out, "  conn %u (fd %d): reader %s, %u/%u read\n", i,
			st.c[i].fd,
			st.c[i].doing ? st.c[i].doing : "not started",
			st.c[i].got, st.c[i].written);
}

static void conn_prog(struct prog *g, struct conn *c, bool part)
{
	c->nchunks = 1 + prog_byte(g) % CHUNKS;
	for (unsigned i = 0; i < c->nchunks; i++)
		c->chunk[i] = 1 + prog_byte(g) % 8;
	for (unsigned i = 0; i < CHUNKS * 8; i++)
		c->want[i] = 1 + (prog_byte(g) ^ i) % 8;
	c->pace = prog_byte(g);
	/* A connection to be closed stops early: its reader ends up
	 * waiting for bytes that never come, until the close. */
	c->stop = part ? prog_byte(g) % c->nchunks : c->nchunks;
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.nconns = 1 + prog_byte(&g) % 2;
	st.close_first = prog_byte(&g) % 2;
	for (unsigned i = 0; i < CONNS; i++)
		conn_prog(&g, &st.c[i], i == 0 && st.close_first);
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
}

const struct harness h_fd = {
	"fd",
	"owned fds: edges, drained reads, close and reuse under a waiter",
	run,
};
