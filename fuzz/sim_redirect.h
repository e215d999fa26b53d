/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_redirect.h — forced into every library file of the simulation
 * build (-include): the runtime's pthread mutexes, condition variables and
 * sched_yield become the simulation's, which block a simulated thread by
 * switching to another one instead of blocking the one OS thread they all
 * share. The library's source is unchanged; only these names are.
 */
#ifndef COEV_FUZZ_SIM_REDIRECT_H
#define COEV_FUZZ_SIM_REDIRECT_H

#include <pthread.h>
#include <sched.h>
#include <time.h>

int coev__sim_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int coev__sim_mutex_destroy(pthread_mutex_t *m);
int coev__sim_mutex_lock(pthread_mutex_t *m);
int coev__sim_mutex_trylock(pthread_mutex_t *m);
int coev__sim_mutex_unlock(pthread_mutex_t *m);
int coev__sim_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int coev__sim_cond_destroy(pthread_cond_t *c);
int coev__sim_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int coev__sim_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
			     const struct timespec *abstime);
int coev__sim_cond_signal(pthread_cond_t *c);
int coev__sim_cond_broadcast(pthread_cond_t *c);
int coev__sim_sched_yield(void);

#define pthread_mutex_init coev__sim_mutex_init
#define pthread_mutex_destroy coev__sim_mutex_destroy
#define pthread_mutex_lock coev__sim_mutex_lock
#define pthread_mutex_trylock coev__sim_mutex_trylock
#define pthread_mutex_unlock coev__sim_mutex_unlock
#define pthread_cond_init coev__sim_cond_init
#define pthread_cond_destroy coev__sim_cond_destroy
#define pthread_cond_wait coev__sim_cond_wait
#define pthread_cond_timedwait coev__sim_cond_timedwait
#define pthread_cond_signal coev__sim_cond_signal
#define pthread_cond_broadcast coev__sim_cond_broadcast
#define sched_yield coev__sim_sched_yield

#endif
