# SPDX-License-Identifier: MIT
# The fault-injection suite (tests/fault/). Every call that coev (and the
# test) makes to these functions goes to __wrap_NAME in tests/fault/fault.c
# (GNU ld's --wrap), which counts the calls and can make the Nth fail.
# Calls made inside shared libraries (libc, libev, cmocka) are not caught.
FAULT_WRAP := malloc calloc realloc aligned_alloc posix_memalign strdup free \
	mmap munmap mprotect pthread_create eventfd epoll_create1 socket \
	ev_loop_new

$(B)/tests/fault/test_fault: TEST_LDFLAGS = \
	$(FAULT_WRAP:%=-Wl,--wrap=%) $(B)/tests/fault/fault.o
$(B)/tests/fault/test_fault: $(B)/tests/fault/fault.o tests/fault/fault.h
$(B)/tests/fault/fault.o: tests/fault/fault.h
