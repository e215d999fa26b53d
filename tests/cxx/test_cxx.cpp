/* SPDX-License-Identifier: MIT */
/*
 * tests/cxx/test_cxx.cpp — coev used from C++17 as a C++ program outside
 * the tree would use it: only the public headers (their extern "C" blocks
 * give the calls C linkage) and libcoev.a.
 *
 * Task functions are captureless lambdas, which convert to coev_fn, or one
 * template trampoline that runs any callable (a lambda with captures)
 * through the void * argument. They are noexcept: an exception must not
 * leave a task function, since it would unwind through the runtime's C
 * frames and the coroutine's own stack, which no unwinder can cross.
 *
 * cmocka's assertions longjmp, which is wrong from a coroutine stack or
 * another thread, so the tasks record what they saw in plain variables
 * and each test asserts on them once coev_run has returned.
 */
#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <setjmp.h>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include <coev.h>

#include "../abi/abi_table.h"

/* The C++ compiler lays the public structs out as the C one does: the
 * same table tests/abi/test_abi.c checks at run time, here at compile
 * time (the sync objects' storage uses alignas in C++, _Alignas in C). */
#define CXX_ABI_ASSERT(type, size, align)                                 \
	static_assert(sizeof(type) == (size),                             \
		      #type ": size differs from tests/abi/abi_table.h, " \
			    "see docs/ABI.md");                           \
	static_assert(alignof(type) == (align),                           \
		      #type ": alignment differs from tests/abi/abi_table.h");
COEV_ABI_STRUCTS(CXX_ABI_ASSERT)
#undef CXX_ABI_ASSERT

namespace
{

/* Runs any callable as a task: arg points to the callable, which must
 * outlive the task (the callers below join before it goes). */
template <class F> int trampoline(void *arg) noexcept
{
	return (*static_cast<F *>(arg))();
}

template <class F> int spawn(F &fn, coev_task_t **out) noexcept
{
	return coev_spawn(trampoline<F>, &fn, out);
}

/* Runs fn as the main task of a fresh runtime of two workers. */
template <class F> int run(F &fn)
{
	coev_config_t cfg;
	if (coev_config_init(&cfg) != 0)
		return -1;
	cfg.workers = 2;
	return coev_run(trampoline<F>, &fn, &cfg);
}

} // namespace

/* Tasks spawned from lambdas with captures; each result comes back
 * through coev_join. */
static void test_cxx_spawn_and_join_lambdas(void **)
{
	constexpr int n = 16;
	std::vector<int> results(n, -1);
	std::atomic<int> ran{0};
	int errors = 0;
	auto main_task = [&]() noexcept -> int {
		/* One callable per task, alive until its join. */
		std::vector<std::function<int()>> jobs;
		for (int i = 0; i < n; i++)
			jobs.emplace_back([i, &ran]() noexcept {
				ran.fetch_add(1, std::memory_order_relaxed);
				coev_yield();
				return i * i;
			});
		std::vector<coev_task_t *> tasks(n);
		for (int i = 0; i < n; i++)
			if (spawn(jobs[i], &tasks[i]) != 0)
				return -1;
		for (int i = 0; i < n; i++)
			if (coev_join(tasks[i], &results[i]) != 0)
				errors++;
		return 7;
	};
	assert_int_equal(run(main_task), 7);
	assert_int_equal(errors, 0);
	assert_int_equal(ran.load(), n);
	for (int i = 0; i < n; i++)
		assert_int_equal(results[i], i * i);
}

/* A captureless lambda converts to coev_fn directly, as a static function
 * would. */
static void test_cxx_captureless_lambda_is_a_coev_fn(void **)
{
	static int seen;
	seen = 0;
	coev_fn fn = [](void *arg) noexcept -> int {
		seen = *static_cast<int *>(arg);
		return seen + 1;
	};
	int value = 41;
	assert_int_equal(coev_run(fn, &value, nullptr), 42);
	assert_int_equal(seen, 41);
}

/* A producer and a consumer on a bounded channel of a C++ struct; after
 * the close the consumer gets COEV_ECLOSED. */
static void test_cxx_channel_between_tasks(void **)
{
	struct msg {
		int seq;
		double half;
	};
	constexpr int count = 1000;
	long long sum = 0;
	int got = 0, last_recv = 0, bad = 0;
	auto main_task = [&]() noexcept -> int {
		coev_chan_t *ch = nullptr;
		if (coev_chan_new(&ch, sizeof(msg), 8) != 0)
			return -1;
		auto producer = [ch]() noexcept -> int {
			for (int i = 0; i < count; i++) {
				msg m{i, i / 2.0};
				int r = coev_chan_send(ch, &m);
				if (r != 0)
					return r;
			}
			return coev_chan_close(ch);
		};
		coev_task_t *p = nullptr;
		if (spawn(producer, &p) != 0)
			return -1;
		msg m{};
		while ((last_recv = coev_chan_recv(ch, &m)) == 0) {
			if (m.seq != got || m.half != m.seq / 2.0)
				bad++;
			sum += m.seq;
			got++;
		}
		int pres = -1;
		coev_join(p, &pres);
		coev_chan_free(ch);
		return pres;
	};
	assert_int_equal(run(main_task), 0);
	assert_int_equal(got, count);
	assert_int_equal(bad, 0);
	assert_int_equal(sum, (long long)count * (count - 1) / 2);
	assert_int_equal(last_recv, COEV_ECLOSED);
}

/* A mutex initialised with COEV_MUTEX_INIT in C++ guards a counter that
 * tasks on both workers increment, yielding while they hold it. */
static void test_cxx_mutex_guards_a_counter(void **)
{
	constexpr int tasks = 8, rounds = 500;
	coev_mutex_t mu = COEV_MUTEX_INIT;
	long counter = 0;
	int lock_errors = 0;
	auto main_task = [&]() noexcept -> int {
		auto worker = [&]() noexcept -> int {
			for (int i = 0; i < rounds; i++) {
				if (coev_mutex_lock(&mu) != 0)
					return -1;
				long seen = counter;
				coev_yield();
				counter = seen + 1;
				coev_mutex_unlock(&mu);
			}
			return 0;
		};
		coev_task_t *t[tasks];
		for (auto &h : t)
			if (spawn(worker, &h) != 0)
				return -1;
		for (auto *h : t) {
			int r = -1;
			if (coev_join(h, &r) != 0 || r != 0)
				lock_errors++;
		}
		return 0;
	};
	assert_int_equal(run(main_task), 0);
	assert_int_equal(lock_errors, 0);
	assert_int_equal(counter, (long)tasks * rounds);
	coev_mutex_destroy(&mu);
}

/* A future completed from a std::thread wakes the task that waits on it. */
static void test_cxx_future_completed_from_std_thread(void **)
{
	int wait_ret = -1, result = -1;
	auto main_task = [&]() noexcept -> int {
		coev_future_t *f = nullptr;
		if (coev_future_new(&f) != 0)
			return -1;
		coev_future_ref(f); /* the thread's reference */
		std::thread th([f] {
			coev_future_set(f, 42);
			coev_future_release(f);
		});
		wait_ret = coev_future_wait(f, &result);
		/* A blocking join on a worker: the thread has completed the
		 * future already, so it is at most returning. */
		th.join();
		coev_future_release(f);
		return 0;
	};
	assert_int_equal(run(main_task), 0);
	assert_int_equal(wait_ret, 0);
	assert_int_equal(result, 42);
}

/* Waits with deadlines: an event nobody sets and an empty channel both
 * give -ETIMEDOUT once the deadline has passed, not before. */
static void test_cxx_deadlines_time_out(void **)
{
	int ev_ret = 0, recv_ret = 0;
	coev_time_t ev_waited = 0, recv_waited = 0;
	const coev_time_t timeout = COEV_MSEC(20);
	auto main_task = [&]() noexcept -> int {
		coev_event_t ev = COEV_EVENT_INIT;
		coev_time_t start = coev_now();
		coev_time_t dl = coev_deadline(timeout);
		ev_ret = coev_event_wait_dl(&ev, dl);
		ev_waited = coev_now() - start;
		coev_event_destroy(&ev);

		coev_chan_t *ch = nullptr;
		if (coev_chan_new(&ch, sizeof(int), 1) != 0)
			return -1;
		int v = 0;
		start = coev_now();
		recv_ret = coev_chan_recv_dl(ch, &v, coev_deadline(timeout));
		recv_waited = coev_now() - start;
		coev_chan_free(ch);
		return 0;
	};
	assert_int_equal(run(main_task), 0);
	assert_int_equal(ev_ret, -ETIMEDOUT);
	assert_int_equal(recv_ret, -ETIMEDOUT);
	assert_true(ev_waited >= timeout);
	assert_true(recv_waited >= timeout);
}

/* The error codes as a C++ program meets them: negative returns, coev's
 * own codes as enumerators, and coev_strerror's text. */
static void test_cxx_error_codes(void **)
{
	assert_int_equal(coev_chan_new(nullptr, sizeof(int), 1), -EINVAL);
	assert_int_equal(
		coev_spawn([](void *) noexcept { return 0; }, nullptr, nullptr),
		COEV_ENOTCORO);
	assert_string_equal(coev_strerror(COEV_ECLOSED), "channel closed");
	assert_string_equal(coev_strerror(-ETIMEDOUT),
			    coev_strerror(ETIMEDOUT));
	enum coev_error e = COEV_ENOTRT;
	assert_true(e < COEV_ERR_BASE);

	int nested = 0;
	auto main_task = [&]() noexcept -> int {
		nested = coev_run([](void *) noexcept { return 0; }, nullptr,
				  nullptr);
		return 0;
	};
	assert_int_equal(run(main_task), 0);
	assert_int_equal(nested, COEV_ENOTRT);
}

/* The library a C++ program runs with reports the headers' version. */
static void test_cxx_version(void **)
{
	assert_string_equal(coev_version(), COEV_VERSION_STRING);
	assert_int_equal(coev_version_number(), COEV_VERSION_NUMBER);
	static_assert(COEV_VERSION_AT_LEAST(0, 1, 0), "0.1.0 or later");
	assert_true(std::string(coev_version()).find('.') != std::string::npos);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cxx_spawn_and_join_lambdas),
		cmocka_unit_test(test_cxx_captureless_lambda_is_a_coev_fn),
		cmocka_unit_test(test_cxx_channel_between_tasks),
		cmocka_unit_test(test_cxx_mutex_guards_a_counter),
		cmocka_unit_test(test_cxx_future_completed_from_std_thread),
		cmocka_unit_test(test_cxx_deadlines_time_out),
		cmocka_unit_test(test_cxx_error_codes),
		cmocka_unit_test(test_cxx_version),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
