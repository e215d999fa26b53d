/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/switch.c — the raw context switch, with no scheduler around it.
 *
 * Two contexts bounce control back and forth through coev__ctx_switch():
 * the thread's own stack and one mmap'd stack. One switch is one call of
 * coev__ctx_switch(); a round trip is two. Prints
 *   BENCH switch coev workers=1 switches=<n> ns_per_switch=<x>
 * Built by bench/run.sh against build/libcoev.a (the switch symbols are
 * hidden in the shared library but present in the archive).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "sched/ctx.h"

#define ROUND_TRIPS 20000000L /* 40 million switches */
#define WARMUP 1000000L
#define STACK_SIZE ((size_t)64 * 1024)

static coev__ctx_t main_ctx, peer_ctx;
static volatile long peer_count;

static void peer(void *arg)
{
	(void)arg;
	for (;;) {
		peer_count++;
		coev__ctx_switch(&peer_ctx, &main_ctx);
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(void)
{
	void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (stack == MAP_FAILED) {
		perror("coev switch bench: mmap");
		return 1;
	}
	coev__ctx_init(&peer_ctx, stack, STACK_SIZE, peer, NULL);

	for (long i = 0; i < WARMUP; i++)
		coev__ctx_switch(&main_ctx, &peer_ctx);

	int64_t t0 = now_ns();
	for (long i = 0; i < ROUND_TRIPS; i++)
		coev__ctx_switch(&main_ctx, &peer_ctx);
	int64_t t1 = now_ns();

	if (peer_count != WARMUP + ROUND_TRIPS) {
		fprintf(stderr, "coev switch bench: peer ran %ld times, "
				"expected %ld\n",
			(long)peer_count, WARMUP + ROUND_TRIPS);
		return 1;
	}
	long switches = 2 * ROUND_TRIPS;
	printf("BENCH switch coev workers=1 switches=%ld ns_per_switch=%.3f\n",
	       switches, (double)(t1 - t0) / (double)switches);
	return 0;
}
