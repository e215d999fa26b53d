/* SPDX-License-Identifier: MIT */
/*
 * sched/post.c — functions posted to run on one worker's thread, between
 * tasks, in its scheduler context (bridge/'s coev_submit).
 *
 * The posts of a worker are a LIFO stack pushed with a compare-and-swap
 * from any thread; the worker takes the whole stack with one exchange and
 * runs it in posting order (the list reversed). A post rings the worker's
 * doorbell every time: a ring that another ring or a poll already consumed
 * must not leave the post behind. The worker looks at the stack after
 * every poll of its loop (worker.c, next_local), so a post pushed before
 * the poll is found then, and one pushed after rings again. When the
 * runtime is freed, posts never run are handed back to their owners
 * (fn(p, false)) so they can fail and free them.
 */
#include "sched.h"

void coev__worker_post(struct coev_worker *w, coev__post_t *p)
{
	coev__post_t *head =
		atomic_load_explicit(&w->posts, memory_order_relaxed);

	/* Release: p's contents happen before the worker runs it; pairs
	 * with the acquire exchange in take_posts (a later pusher's CAS
	 * continues the release sequence). */
	do
		p->next = head;
	while (!atomic_compare_exchange_weak_explicit(&w->posts, &head, p,
						      memory_order_release,
						      memory_order_relaxed));
	/* Every post rings: a ring that another ring or a poll already
	 * consumed must not leave this post behind. The doorbell costs a
	 * system call only while w sleeps in its loop (libev coalesces the
	 * rest); a running w finds the post at its next scheduling tick. */
	coev__plat_unpark(w);
}

/* Take every post and run them in the order they were posted. */
static coev__post_t *take_posts(struct coev_worker *w)
{
	/* Acquire: pairs with the release CAS of every push in
	 * coev__worker_post, so each post's contents are seen. */
	coev__post_t *p =
		atomic_exchange_explicit(&w->posts, NULL, memory_order_acquire);
	coev__post_t *fifo = NULL, *next;

	for (; p; p = next) {
		next = p->next;
		p->next = fifo;
		fifo = p;
	}
	return fifo;
}

void coev__worker_run_posts(struct coev_worker *w, bool run)
{
	coev__post_t *p, *next;

	for (p = take_posts(w); p; p = next) {
		next = p->next;
		p->fn(p, run);
	}
}
