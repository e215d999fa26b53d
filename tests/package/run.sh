#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/package/run.sh — the installed-package test (make check): coev as a
# distribution or a user's project sees it.
#
# Installs the build into a stage under the build folder (make install
# DESTDIR=BUILD/package/stage PREFIX=/usr/local, with the multiarch
# LIBDIR a Debian package uses), then, against that stage only:
#   1. consumer.c with pkg-config (PKG_CONFIG_PATH and
#      PKG_CONFIG_SYSROOT_DIR into the stage), run with LD_LIBRARY_PATH
#      into it;
#   2. consumer.cpp with g++ -std=c++17 -Wall -Wextra -Werror;
#   3. consumer.c linked statically with libcoev (the README's --static
#      line): ldd must show no libcoev.so, and it runs without the stage;
#   4. redis_consumer.c with coev-redis.pc;
#   5. the CMake project of this folder with Debian's cmake
#      (CMAKE_PREFIX_PATH into the stage): coev::coev, coev::coev_static,
#      a C++ target and coev::redis, each run;
#   6. make uninstall DESTDIR=...: the stage must hold no file.
# Each program must print its line (a task ran). A step whose tool (g++,
# cmake) is missing is shown as skipped and counted. Closes with
# "package: N passed, N failed, N skipped"; exits 1 on any failure.
#
#   tests/package/run.sh [BUILD_DIR]      BUILD_DIR: build (default)
set -u
# The makes and cmake below are the user's, not the calling make's
# children: its flags and jobserver (make check) stay out.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "$root" && mkdir -p "${1:-build}" && cd "${1:-build}" && pwd)
brel=$(realpath --relative-to="$root" "$build")
work=$build/package
stage=$work/stage
prefix=/usr/local
multiarch=$(gcc -print-multiarch 2>/dev/null)
libdir=$prefix/lib${multiarch:+/$multiarch}
pass=0; fail=0; skip=0; start=$(date +%s)
rm -rf "$work"
mkdir -p "$work"

# step NAME CMD...: runs CMD with its output in a log; shows and counts it.
step() {
	local name=$1 log="$work/$1.log" t0
	shift
	t0=$(date +%s)
	if "$@" >"$log" 2>&1; then
		pass=$((pass + 1))
		printf '%-40s ok  %ss\n' "package $name" "$(($(date +%s) - t0))"
	else
		fail=$((fail + 1))
		printf '%-40s FAIL  %ss\n' "package $name" "$(($(date +%s) - t0))"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
}
skipped() {
	skip=$((skip + 1))
	printf '%-40s skipped: %s\n' "package $1" "$2"
}

# expect PROG LINE [ENV...]: PROG prints LINE and exits 0.
expect() {
	local prog=$1 line=$2 out
	shift 2
	out=$(env "$@" "$prog") || { echo "$prog exited $?: $out"; return 1; }
	echo "$out"
	grep -qxF "$line" <<<"$out" || { echo "no line: $line"; return 1; }
}
C_LINE="consumer: tasks ran, answer 42"
CXX_LINE="consumer++: tasks ran, answer 30"
REDIS_LINE="redis consumer: task ran, connect refused"
RUN_ENV=(LD_LIBRARY_PATH="$stage$libdir")
export PKG_CONFIG_PATH="$stage$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$stage"

install_stage() {
	make -C "$root" --no-print-directory B="$brel" install \
		DESTDIR="$stage" PREFIX="$prefix" LIBDIR="$libdir"
}
step install install_stage

c_pkgconfig() {
	# shellcheck disable=SC2046 # pkg-config's words are the flags
	cc "$here/consumer.c" -o "$work/consumer" \
		$(pkg-config --cflags --libs coev) &&
		expect "$work/consumer" "$C_LINE" "${RUN_ENV[@]}" &&
		env "${RUN_ENV[@]}" ldd "$work/consumer" |
		grep -F "$stage$libdir/libcoev.so.0"
}
step c-pkg-config c_pkgconfig

cxx_pkgconfig() {
	# shellcheck disable=SC2046
	g++ -std=c++17 -Wall -Wextra -Werror "$here/consumer.cpp" \
		-o "$work/consumer_cxx" $(pkg-config --cflags --libs coev) &&
		expect "$work/consumer_cxx" "$CXX_LINE" "${RUN_ENV[@]}"
}
if command -v g++ >/dev/null; then
	step c++-pkg-config cxx_pkgconfig
else
	skipped c++-pkg-config "no g++ (ci/install-deps.sh installs it)"
fi

# libcoev alone is linked statically (the README says why not -static):
# -l:libcoev.a in place of -lcoev, its private libraries as they are.
c_static() {
	# shellcheck disable=SC2046
	cc "$here/consumer.c" -o "$work/consumer_static" \
		$(pkg-config --cflags coev) \
		$(pkg-config --libs --static coev | sed 's/-lcoev\b/-l:libcoev.a/') &&
		no_libcoev_so "$work/consumer_static" &&
		expect "$work/consumer_static" "$C_LINE"
}
# no_libcoev_so PROG: ldd (shown in the log) names no libcoev.so.
no_libcoev_so() {
	local deps
	deps=$(ldd "$1") || return 1
	echo "ldd $1:"
	echo "$deps"
	if grep -q libcoev <<<"$deps"; then
		echo "linked with libcoev.so"
		return 1
	fi
}
step c-static c_static

redis_pkgconfig() {
	# shellcheck disable=SC2046
	cc "$here/redis_consumer.c" -o "$work/redis_consumer" \
		$(pkg-config --cflags --libs coev-redis) &&
		expect "$work/redis_consumer" "$REDIS_LINE" "${RUN_ENV[@]}"
}
step redis-pkg-config redis_pkgconfig

cmake_project() {
	cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$stage$prefix" \
		-DCMAKE_BUILD_TYPE=Release \
		-DCOEV_VERSION="$(pkg-config --modversion coev)" &&
		cmake --build "$work/cmake" -j 2 &&
		expect "$work/cmake/consumer" "$C_LINE" "${RUN_ENV[@]}" &&
		expect "$work/cmake/consumer_static" "$C_LINE" &&
		no_libcoev_so "$work/cmake/consumer_static" &&
		expect "$work/cmake/consumer_cxx" "$CXX_LINE" "${RUN_ENV[@]}" &&
		expect "$work/cmake/redis_consumer" "$REDIS_LINE" "${RUN_ENV[@]}"
}
if command -v cmake >/dev/null && command -v g++ >/dev/null; then
	step cmake cmake_project
else
	skipped cmake "no cmake or g++ (ci/install-deps.sh installs them)"
fi

uninstall_stage() {
	make -C "$root" --no-print-directory B="$brel" uninstall \
		DESTDIR="$stage" PREFIX="$prefix" LIBDIR="$libdir" || return 1
	left=$(find "$stage" ! -type d)
	[ -z "$left" ] || { echo "left in the stage:"; echo "$left"; return 1; }
}
step uninstall uninstall_stage

echo "package: $pass passed, $fail failed, $skip skipped ($(($(date +%s) - start))s)"
[ "$fail" = 0 ]
