/* SPDX-License-Identifier: MIT */
/*
 * tests/abi/abi_table.h — the recorded size and alignment of every public
 * struct whose layout programs compile in (docs/ABI.md): the ones callers
 * allocate (the synchronisation objects' opaque storage, the option and
 * statistics structs, select cases) and the ones they read fields of
 * through a pointer the library gives them (redis replies and messages).
 *
 * COEV_ABI_STRUCTS(X) calls X(type, size, align) once per struct. The
 * figures are those of the LP64 Linux ABIs coev supports (x86_64 and
 * aarch64, which agree here). tests/abi/test_abi.c compares them with
 * what the C compiler makes of the headers, and tests/cxx/test_cxx.cpp
 * asserts the same figures at compile time in C++, so C and C++ programs
 * see the same layouts. A row changes only together with the SONAME.
 */
#ifndef COEV_TESTS_ABI_TABLE_H
#define COEV_TESTS_ABI_TABLE_H

#include <coev.h>
#include <coev/ares.h>
#include <coev/redis.h>

#define COEV_ABI_STRUCTS(X)            \
	X(coev_mutex_t, 64, 8)         \
	X(coev_rwlock_t, 64, 8)        \
	X(coev_sem_t, 64, 8)           \
	X(coev_event_t, 64, 8)         \
	X(coev_cond_t, 64, 8)          \
	X(coev_wg_t, 64, 8)            \
	X(coev_barrier_t, 64, 8)       \
	X(coev_once_t, 64, 8)          \
	X(coev_sel_t, 32, 8)           \
	X(coev_any_t, 112, 8)          \
	X(coev_local_t, 8, 8)          \
	X(coev_siginfo_t, 16, 4)       \
	X(coev_process_opts_t, 32, 8)  \
	X(coev_config_t, 88, 8)        \
	X(coev_worker_stats_t, 160, 8) \
	X(coev_rt_stats_t, 176, 8)     \
	X(coev_task_info_t, 96, 8)     \
	X(coev_ares_config_t, 24, 8)   \
	X(coev_redis_reply_t, 48, 8)   \
	X(coev_redis_msg_t, 32, 8)

#endif
