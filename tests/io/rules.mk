# SPDX-License-Identifier: MIT
# tests/io/test_resolve: coev's calls of getaddrinfo and freeaddrinfo go to
# the test's __wrap_NAME (GNU ld's --wrap), which makes chosen lookups slow
# and counts the frees of their answers.
$(B)/tests/io/test_resolve: TEST_LDFLAGS = \
	-Wl,--wrap=getaddrinfo -Wl,--wrap=freeaddrinfo
