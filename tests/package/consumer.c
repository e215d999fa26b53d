/* SPDX-License-Identifier: MIT */
/*
 * tests/package/consumer.c — a program as a user of an installed coev
 * writes it: only <coev.h>, built against a staged make install by
 * tests/package/run.sh (pkg-config, shared and static, and CMake). Its
 * main task spawns two tasks that sleep and answer, gathers them and prints
 * the sum, which the script checks: the line appears only when the
 * runtime ran every task.
 */
#include <coev.h>
#include <stdio.h>

static int answer(void *arg)
{
	coev_sleep(COEV_MSEC(5)); /* the other task runs meanwhile */
	return (int)(long)arg;
}

static int main_task(void *arg)
{
	coev_task_t *t[2];
	int res[2];
	int r;

	(void)arg;
	r = coev_spawn(answer, (void *)40L, &t[0]);
	if (r == 0 && (r = coev_spawn(answer, (void *)2L, &t[1])) != 0)
		coev_join(t[0], NULL);
	if (r == 0)
		r = coev_gather(t, 2, res);
	if (r != 0) {
		fprintf(stderr, "consumer: %s\n", coev_strerror(r));
		return 1;
	}
	printf("consumer: tasks ran, answer %d\n", res[0] + res[1]);
	return 0;
}

int main(void)
{
	return coev_run(main_task, NULL, NULL);
}
