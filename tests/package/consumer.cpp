// SPDX-License-Identifier: MIT
/*
 * tests/package/consumer.cpp — a C++17 program using an installed coev as
 * a C++ user writes it: a plain #include <coev.h>, a lambda as the task,
 * built with g++ -std=c++17 -Wall -Wextra -Werror by tests/package/run.sh.
 * The main task spawns one task per element of a vector and gathers their
 * answers; the printed sum is what the script checks.
 */
#include <coev.h>

#include <cstdio>
#include <vector>

namespace
{

int square(void *arg)
{
	int n = *static_cast<int *>(arg);

	coev_yield();
	return n * n;
}

int main_task(void *)
{
	std::vector<int> in{1, 2, 3, 4};
	std::vector<coev_task_t *> tasks;
	std::vector<int> res(in.size());

	for (int &n : in) {
		coev_task_t *t = nullptr;
		int r = coev_spawn(square, &n, &t);
		if (r != 0) {
			std::fprintf(stderr, "consumer++: %s\n",
				     coev_strerror(r));
			return 1;
		}
		tasks.push_back(t);
	}
	if (coev_gather(tasks.data(), tasks.size(), res.data()) != 0)
		return 1;
	int sum = 0;
	for (int v : res)
		sum += v;
	std::printf("consumer++: tasks ran, answer %d\n", sum);
	return 0;
}

} // namespace

int main()
{
	return coev_run(main_task, nullptr, nullptr);
}
