# SPDX-License-Identifier: MIT
# coev — one Makefile for the library, tests, examples and benchmarks.
#
#   make              libcoev.a and libcoev.so.0 in build/
#   make demo         build and run examples/tour.c, wrap_callback.c,
#                     examples/demo_sync.sh (pipeline, limit),
#                     examples/demo_http.sh and examples/demo_ws.sh
#   make check        the layout check (ci/check-layout.py), the public
#                     headers alone in C and C++ (check-headers) and the
#                     cmocka suites (installs missing deps first)
#   make check-headers  each public header compiled on its own as C11 and
#                     as C++17, with gcc and clang
#   make check-asan   the suites under ASan+UBSan (build-asan/)
#   make check-tsan   the suites under TSan (build-tsan/)
#   make check-tsan-migrate  TSan suites with every resume on another worker
#   make check-valgrind  a subset of the suites under valgrind's memcheck
#   make check-aarch64  the aarch64 context switch under qemu-user
#   make fuzz-check   the simulation's PCT and random schedules (in check)
#   make package-check  install into a stage, build and run C, C++, static
#                     and CMake consumers against it, uninstall (in check)
#   make fuzz         an AFL++ campaign on the simulation (FUZZ_SECONDS)
#   make bench        benchmarks against Go and tokio (WORKLOADS="spawn fib")
#   make bench-scale  the scaling curve: spawn, yield, fib on 1..nproc workers
#                     for coev, Go and tokio (SCALE=1 bench/run.sh)
#   make install      headers, libraries, .pc files and the CMake package
#                     (PREFIX=/usr/local LIBDIR=$(PREFIX)/lib
#                     INCLUDEDIR=$(PREFIX)/include DESTDIR=); make uninstall
#                     removes exactly what it installed
#
# Only check, demo, bench and the sanitizer suites install Debian packages
# (ci/install-deps.sh); every other target only probes for the headers it
# compiles against and, when one is missing, stops naming it and the
# apt-get line. CPPFLAGS, CFLAGS and LDFLAGS reach every compile and link.
#
# SAN=asan|tsan|valgrind selects a sanitizer build in its own directory.
# The context switch is chosen by architecture: sched/ctx_$(ARCH).S.

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/coev
DESTDIR ?=
SAN ?=
ARCH := $(shell uname -m)
# The version has one source, include/coev/version.h (docs/ABI.md).
VERSION := $(shell sed -n 's/^\#define COEV_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' \
	include/coev/version.h | paste -sd.)
SOVERSION := 0

ifeq ($(SAN),asan)
B := build-asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	    -fno-omit-frame-pointer -DCOEV_ASAN=1
else ifeq ($(SAN),tsan)
B := build-tsan
CC := clang
CXX := clang++
SANFLAGS := -fsanitize=thread -DCOEV_TSAN=1 -DCK_USE_CC_BUILTINS=1
else ifeq ($(SAN),valgrind)
B := build-valgrind
OPT ?= -O1
SANFLAGS := -DCOEV_VALGRIND=1
else
B := build
SANFLAGS :=
endif

OPT ?= -O2
# Frame pointers are kept: task dumps and slow-task reports walk them
# (observe/); the cost is one register, about 1% on the benchmarks.
# -fstack-clash-protection: a frame larger than a page touches each page
# as it grows, so it faults in a coroutine stack's guard region instead of
# stepping over it (sched/stack.c); coev.pc asks programs for it too.
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror \
	-fvisibility=hidden -fPIC -pthread -fno-omit-frame-pointer \
	-fstack-clash-protection \
	-Iinclude -I.
CFLAGS_ALL = $(CFLAGS_BASE) $(SANFLAGS) $(CPPFLAGS) $(CFLAGS)
# C++ programs (tests/*/test_*.cpp) see the public headers only.
CXXFLAGS_ALL = -std=c++17 -g $(OPT) -Wall -Wextra -Werror -pthread \
	-fno-omit-frame-pointer -Iinclude $(SANFLAGS) $(CPPFLAGS) $(CXXFLAGS)
LIBS := -lev -lck -lpthread -lm
TEST_LIBS := -lcmocka $(LIBS)

# Adapters for callback libraries (adapters/NAME.c and adapters/NAME_*.c,
# include/coev/NAME.h), written against the public API only: each is its own
# archive, libcoev_NAME.a, so that only programs using one link its library
# (hiredis, c-ares, libcurl, OpenSSL, wslay).
ADAPTERS := $(filter redis ares curl tls ws,$(basename $(notdir $(wildcard adapters/*.c))))
ADAPTER_LIBS := -lhiredis -lcares -lcurl -lssl -lwslay -lhttp_parser -lcrypto
LIB_SRC := $(wildcard sched/*.c sync/*.c io/*.c observe/*.c bridge/*.c)
LIB_ASM := sched/ctx_$(ARCH).S
# SIM=1: the deterministic simulation build (fuzz/sim.c in place of
# sched/plat_ev.c, the pthread calls redirected by fuzz/sim_redirect.h), in
# its own directory; the fuzz harnesses link it.
# Its run queues have 8 slots, so that a handful of tasks reaches the ring's
# wrap-around, overflow and the owner's batch claims (sched/worker.c).
# (override: a SANFLAGS given on the command line, as fuzz/plants.sh and
# ci/fuzz.sh give it, still gets them, so every simulation build is alike.)
ifeq ($(SIM),1)
B := $(B)-sim
override SANFLAGS += -DCOEV_SIM=1 -DCOEV_RUNQ_SIZE=8
SIM_INCLUDE := -include fuzz/sim_redirect.h -include fuzz/sim_io_redirect.h
LIB_SRC := $(filter-out sched/plat_ev.c,$(LIB_SRC)) fuzz/sim.c fuzz/sim_loop.c fuzz/sim_sync.c \
	fuzz/sim_dump.c fuzz/sim_fd.c
endif
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(LIB_ASM:%.S=$(B)/%.o)
HDRS := $(wildcard include/*.h include/coev/*.h sched/*.h sync/*.h io/*.h \
	observe/*.h bridge/*.h adapters/*.h fuzz/*.h)

TEST_SRC := $(wildcard tests/*/test_*.c)
TEST_CXX_SRC := $(wildcard tests/*/test_*.cpp)
TEST_BIN := $(TEST_SRC:%.c=$(B)/%) $(TEST_CXX_SRC:%.cpp=$(B)/%)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:%.c=$(B)/%)

.PHONY: all lib deps probe-lib probe-examples probe-tests check check-headers \
	check-asan \
	check-tsan check-aarch64 demo bench bench-scale \
	check-tsan-migrate check-valgrind \
	examples fuzz fuzz-check package-check \
	install uninstall clean format format-check

all: lib

lib: $(B)/libcoev.a $(B)/libcoev.so.$(SOVERSION) $(ADAPTERS:%=$(B)/libcoev_%.a)

# Installs the Debian packages when a header or tool is missing: only for
# the targets that say so (check, demo, bench, the sanitizer suites).
deps:
	@ci/install-deps.sh --if-missing

# Each probe runs once per make, before the first compile that needs it:
# a missing header stops the build with one message naming it and the
# apt-get line, instead of a compiler error per file. Under a target that
# installs, the installation comes first.
probe-lib probe-examples probe-tests:
	@ci/install-deps.sh --probe $(@:probe-%=%)
INSTALL_GOALS := deps check demo bench bench-scale
ifneq ($(filter $(INSTALL_GOALS),$(MAKECMDGOALS)),)
probe-lib probe-examples probe-tests: deps
endif

$(B)/%.o: %.c $(HDRS) | probe-lib
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SIM_INCLUDE) -c $< -o $@

$(B)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/libcoev.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libcoev_%.a: $(B)/adapters/%.o
	@rm -f $@
	ar rcs $@ $^
# An adapter in more than one file: its other objects.
$(B)/libcoev_redis.a: $(B)/adapters/redis_pubsub.o
$(B)/libcoev_ws.a: $(B)/adapters/ws_handshake.o
$(B)/libcoev_tls.a: $(B)/adapters/tls_stream.o

ADAPTER_AR = $(ADAPTERS:%=$(B)/libcoev_%.a)
# Kept: make would delete them as intermediates and rebuild every archive
# (and every test) on the next run.
.SECONDARY: $(patsubst %.c,$(B)/%.o,$(wildcard adapters/*.c))

$(B)/libcoev.so.$(SOVERSION): $(LIB_OBJ)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) -shared \
		-Wl,-soname,libcoev.so.$(SOVERSION) -o $@ $^ $(LIBS)
	ln -sf libcoev.so.$(SOVERSION) $(B)/libcoev.so

# Tests and examples link every adapter archive; --as-needed keeps the
# callback libraries out of programs that use none.
$(B)/tests/%: tests/%.c $(B)/libcoev.a $(ADAPTER_AR) tests/testutil.h \
		tests/sync/chan_util.h tests/sync/sync_util.h | probe-tests
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) $< -o $@ $(TEST_LDFLAGS) $(ADAPTER_AR) \
		$(B)/libcoev.a -Wl,--as-needed $(ADAPTER_LIBS) $(TEST_LIBS)

# C++ tests: the public headers and the static library, as a C++ program
# outside the tree would use them.
$(B)/tests/%: tests/%.cpp $(B)/libcoev.a | probe-tests
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ALL) $(LDFLAGS) $< -o $@ $(B)/libcoev.a $(TEST_LIBS)

# A suite may add link flags or targets of its own in tests/DIR/rules.mk
# (the fault-injection suite wraps malloc, mmap and friends there).
TEST_LDFLAGS :=
include $(wildcard tests/*/rules.mk)

# Examples may use Debian's http-parser (a callback library they wrap).
EXAMPLE_LIBS := -lhttp_parser $(LIBS)
# The trace-to-SVG tool reads the trace with Debian's jansson.
$(B)/examples/coev-trace-svg: EXAMPLE_LIBS += -ljansson

$(B)/examples/%: examples/%.c $(B)/libcoev.a $(ADAPTER_AR) | probe-examples
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) $< -o $@ $(ADAPTER_AR) $(B)/libcoev.a \
		-Wl,--as-needed $(ADAPTER_LIBS) $(EXAMPLE_LIBS)

examples: $(EXAMPLE_BIN)

# The fuzz harnesses (fuzz/): one binary, coev-fuzz, on the simulation
# build. The --wrap'ed allocation functions count and fail allocations.
FUZZ_SRC := $(wildcard fuzz/driver.c fuzz/h_*.c fuzz/sim_alloc.c)
FUZZ_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
	-Wl,--wrap=aligned_alloc,--wrap=free,--wrap=mmap,--wrap=munmap
# The planted bugs of the build (COEV_PLANT_X flags in SANFLAGS), which
# coev-fuzz prints and records for fuzz/replay.
FUZZ_PLANTS := $(strip $(foreach f,$(filter -DCOEV_PLANT_%,$(SANFLAGS)),\
	$(firstword $(subst =, ,$(f:-DCOEV_PLANT_%=%)))))
$(B)/fuzz/coev-fuzz: $(FUZZ_SRC) $(B)/libcoev.a fuzz/harness.h fuzz/sim.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) -DCOEV_FUZZ_PLANTS='"$(FUZZ_PLANTS)"' \
		$(FUZZ_SRC) -o $@ $(FUZZ_WRAP) $(B)/libcoev.a $(LIBS)

check: deps lib $(TEST_BIN) examples
	@ci/check-layout.py
	@$(MAKE) --no-print-directory check-headers
	@ci/check-exports.sh $(B)/libcoev.so.$(SOVERSION)
	@ci/run-tests.sh $(B) $(TEST_BIN)
	@examples/test_examples.sh $(B)
	@$(MAKE) --no-print-directory package-check
	@$(MAKE) --no-print-directory fuzz-check

# Each public header on its own (a program may include any one first):
# as C11 with -pedantic and as C++17, with gcc and clang, one stamp per
# header so only changed headers are compiled again. Every header that
# declares something must open an extern "C" block for C++ (coev.h only
# includes the others).
PUB_HDRS := include/coev.h $(wildcard include/coev/*.h)
HDR_STAMPS := $(PUB_HDRS:include/%.h=$(B)/headers/%.ok)
check-headers: $(HDR_STAMPS)
	@echo "check-headers: $(words $(PUB_HDRS)) headers, each alone as C11 and C++17 (gcc, clang)"
$(B)/headers/%.ok: include/%.h $(PUB_HDRS) | deps
	@mkdir -p $(dir $@)
	@[ $< = include/coev.h ] || grep -q '^extern "C" {$$' $< || \
		{ echo "check-headers: $< has no extern \"C\" block" >&2; exit 1; }
	@for cc in gcc clang; do \
		echo '#include <$*.h>' | $$cc -x c -std=c11 -Wall -Wextra -Werror \
			-pedantic -Iinclude -fsyntax-only - || exit 1; done
	@for cxx in g++ clang++; do \
		echo '#include <$*.h>' | $$cxx -x c++ -std=c++17 -Wall -Wextra \
			-Werror -pedantic -Iinclude -fsyntax-only - || exit 1; done
	@touch $@
# The installed-package test (tests/package/run.sh): make install into a
# stage under $(B), then a C, a C++, a static and a CMake consumer built
# against it and run, then make uninstall. Sanitizer builds skip it (each
# consumer would need the sanitizer's runtime too); the skip is shown.
package-check: lib
ifeq ($(SAN),)
	@tests/package/run.sh $(B)
else
	@echo "package: 0 passed, 0 failed, 1 skipped (SAN=$(SAN): the consumers are plain builds)"
endif

# The simulation's model tests (fuzz/check.sh): PCT and random schedules,
# 10,000 runs of each per harness, and the committed inputs replayed. The
# simulation runs every thread on one OS thread, so the TSan build has
# nothing to check there and skips it.
fuzz-check:
ifneq ($(SAN),tsan)
	@$(MAKE) --no-print-directory SIM=1 $(B)-sim/fuzz/coev-fuzz
	@fuzz/check.sh $(B)-sim/fuzz/coev-fuzz
endif

# An AFL++ campaign on the simulation (ci/fuzz.sh; FUZZ_SECONDS in total).
FUZZ_SECONDS ?= 300
fuzz:
	ci/fuzz.sh $(FUZZ_SECONDS)

check-asan:
	$(MAKE) SAN=asan check

# The aarch64 switch, cross-built and run under qemu-user (ci/install-deps.sh
# --cross installs gcc-aarch64-linux-gnu and qemu-user).
check-aarch64:
	@ci/install-deps.sh --cross --if-missing
	@mkdir -p build-aarch64
	aarch64-linux-gnu-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror \
		-I. -static tests/cross/ctx_aarch64.c sched/ctx.c \
		sched/ctx_aarch64.S -o build-aarch64/ctx_aarch64
	qemu-aarch64 build-aarch64/ctx_aarch64

check-tsan:
	$(MAKE) SAN=tsan check

# The TSan suites with COEV_DEBUG_MIGRATE=1 (include/coev/runtime.h): every
# task resumed after a wake or a yield runs on another worker, so every
# hand-off crosses threads where TSan sees it. Left out: test_affinity,
# whose tasks spin on a worker without yielding while a woken task would be
# queued there, and test_monitor, whose stuck workers do the same on purpose.
MIGRATE_TESTS := $(filter-out %/test_affinity.c %/test_monitor.c,\
	$(wildcard tests/sched/test_*.c tests/sync/test_*.c tests/bridge/test_*.c \
	tests/adapters/test_*.c tests/io/test_*.c tests/observe/test_symbol.c))
check-tsan-migrate:
	$(MAKE) SAN=tsan deps lib $(MIGRATE_TESTS:%.c=build-tsan/%)
	COEV_DEBUG_MIGRATE=1 ci/run-tests.sh build-tsan/migrate \
		$(MIGRATE_TESTS:%.c=build-tsan/%)

# A subset of the suites under valgrind's memcheck (build-valgrind/: -O1,
# coroutine stacks registered with valgrind, TU_SCALE's TSan counts); any
# valgrind error fails the binary. Left out: suites whose contention tests
# need threads running at once (valgrind runs one at a time: test_mutex
# alone takes over ten minutes), test_scope (asserts both workers got
# children) and test_ctx (valgrind does not model MXCSR rounding modes).
# Forked children (the abort tests) report nothing: they die with their
# runtime still running. --fair-sched=yes: valgrind's default lock lets a
# thread that spins without a syscall (a spawner refused by a shutdown)
# starve the others for tens of seconds; the ticket lock hands it round.
VALGRIND_TESTS := $(addprefix tests/sched/,test_task test_cancel test_block \
	test_runtime test_blocking test_stack_guard) \
	$(addprefix tests/sync/,test_chan_basic test_chan_close test_event \
	test_sem test_wg test_once test_select) \
	$(addprefix tests/bridge/,test_future test_watch) \
	tests/io/test_resolve
VALGRIND := valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,possible --child-silent-after-fork=yes
# test_stack_guard runs its suite again with COEV_STACK_GUARD=mprotect in
# a process valgrind does not trace: that run is made here directly.
check-valgrind:
	$(MAKE) SAN=valgrind deps lib $(VALGRIND_TESTS:%=build-valgrind/%)
	COEV_TEST_WRAPPER="$(VALGRIND)" ci/run-tests.sh build-valgrind \
		$(VALGRIND_TESTS:%=build-valgrind/%)
	COEV_STACK_GUARD=mprotect COEV_TEST_WRAPPER="$(VALGRIND)" \
		ci/run-tests.sh build-valgrind/fallback \
		build-valgrind/tests/sched/test_stack_guard

# The tour; a callback library wrapped with futures (wrap_callback);
# channels (pipeline) and a semaphore (limit); then the hello web server with
# fetch_many (libcurl adapter) as its client; then the WebSocket server with
# its many clients (ws_echo).
demo: deps $(B)/examples/tour $(B)/examples/pipeline $(B)/examples/limit \
	$(B)/examples/http_hello $(B)/examples/fetch_many \
	$(B)/examples/wrap_callback $(B)/examples/ws_echo
	$(B)/examples/tour
	$(B)/examples/wrap_callback
	examples/demo_sync.sh $(B)
	examples/demo_http.sh $(B)
	examples/demo_ws.sh $(B)

bench: deps lib
	@bench/run.sh

bench-scale: deps lib
	@SCALE=1 bench/run.sh

# The install: headers, the libraries (libcoev.so.N and its libcoev.so
# link, libcoev.a, an archive per adapter), a .pc file for coev and each
# adapter, and the CMake package (find_package(coev)), each generated from
# its template in ci/. The CMake files find everything relative to their
# own folder (the relative paths are computed here), so a DESTDIR stage or
# a moved tree still works; the .pc files hold the absolute paths, which
# pkg-config's PKG_CONFIG_SYSROOT_DIR moves into a stage.
PUBLIC_HDRS := $(notdir $(wildcard include/coev/*.h))
PC_FILES := coev $(ADAPTERS:%=coev-%)
CMAKE_FILES := coevConfig.cmake coevConfigVersion.cmake
INSTALL_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@SOVERSION@|$(SOVERSION)|g' \
	-e 's|@REL_LIBDIR@|$(shell realpath -m --relative-to=$(CMAKEDIR) $(LIBDIR))|g' \
	-e 's|@REL_INCLUDEDIR@|$(shell realpath -m --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|g'

install: lib
	install -d $(DESTDIR)$(INCLUDEDIR)/coev $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR)
	install -m 644 include/coev.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(PUBLIC_HDRS:%=include/coev/%) $(DESTDIR)$(INCLUDEDIR)/coev/
	install -m 644 $(B)/libcoev.a $(ADAPTER_AR) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/libcoev.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libcoev.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libcoev.so
	for f in $(PC_FILES); do \
		$(INSTALL_SUBST) ci/$$f.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/$$f.pc || exit 1; \
	done
	for f in $(CMAKE_FILES); do \
		$(INSTALL_SUBST) ci/$$f.in > $(DESTDIR)$(CMAKEDIR)/$$f || exit 1; \
	done

# Exactly what install put, then the two folders that are coev's own; the
# shared ones (lib, pkgconfig, include) stay.
uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/coev.h \
		$(PUBLIC_HDRS:%=$(DESTDIR)$(INCLUDEDIR)/coev/%) \
		$(DESTDIR)$(LIBDIR)/libcoev.a $(ADAPTERS:%=$(DESTDIR)$(LIBDIR)/libcoev_%.a) \
		$(DESTDIR)$(LIBDIR)/libcoev.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libcoev.so \
		$(PC_FILES:%=$(DESTDIR)$(PKGCONFIGDIR)/%.pc) \
		$(CMAKE_FILES:%=$(DESTDIR)$(CMAKEDIR)/%)
	rmdir --ignore-fail-on-non-empty $(DESTDIR)$(INCLUDEDIR)/coev \
		$(DESTDIR)$(CMAKEDIR) 2>/dev/null || true

# The files clang-format keeps in the project's style.
FORMAT_SRC = $(wildcard include/*.h include/coev/*.h sched/*.[ch] \
	sync/*.[ch] io/*.[ch] observe/*.[ch] bridge/*.[ch] adapters/*.[ch] \
	fuzz/*.[ch] tests/*/*.[ch] tests/*/*.cpp tests/*.h examples/*.c)

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run -Werror $(FORMAT_SRC)

clean:
	@ci/servers.sh stop >/dev/null 2>&1 || true
	rm -rf build build-asan build-tsan build-valgrind build-clang \
		build-aarch64 build-sim \
		build-asan-sim build-fuzz* build-plant-*
