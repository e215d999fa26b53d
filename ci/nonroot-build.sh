#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ci/nonroot-build.sh — building and installing coev needs no root (.ci/run).
#
# Clones the repository afresh, then, as a user without root and without
# sudo, runs the README's `make && make install DESTDIR=STAGE
# PREFIX=/usr/local` in the clone, then tests/package/run.sh there (a C,
# a C++, a static and a CMake consumer built against a staged install and
# run). Under root (CI on Debian 12) that user
# is made with useradd when missing (COEV_BUILD_USER, default coev-build)
# and the commands run through runuser; under any other user they run as
# that user. Either way sudo, apt-get and apt are shadowed on PATH by
# stubs that record their call and fail: the build passes only when none
# was called and the stage holds the headers, the libraries, the .pc files
# and the CMake package. The clone and stage live in a temporary folder,
# removed on exit.
#
#   ci/nonroot-build.sh           exits 0 when the build and install pass
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
user=${COEV_BUILD_USER:-coev-build}
work=$(mktemp -d "${TMPDIR:-/tmp}/coev-nonroot.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage

# The stubs: any call is written to $work/called and fails the command.
mkdir -p "$work/stubs"
for c in sudo apt-get apt; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/called"\nexit 1\n' "$c" "$work" \
		>"$work/stubs/$c"
	chmod 755 "$work/stubs/$c"
done

git clone -q --no-hardlinks "$root" "$work/coev"
build="cd '$work/coev' && make && make install DESTDIR='$stage' PREFIX=/usr/local"
# Then, as the same user, the C, C++, static and CMake consumers against
# a staged install of that build (the test make check runs).
build="$build && tests/package/run.sh build"
status=0
if [ "$(id -u)" = 0 ]; then
	id "$user" >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
	chown -R "$user:" "$work"
	chmod 755 "$work"
	echo "building the fresh clone as $user (uid $(id -u "$user")), no sudo"
	runuser -u "$user" -- env PATH="$work/stubs:$PATH" HOME="$work" \
		bash -c "$build" || status=$?
else
	echo "building the fresh clone as $(id -un) (not root), no sudo"
	env PATH="$work/stubs:$PATH" bash -c "$build" || status=$?
fi

[ $status = 0 ] || echo "nonroot-build: make or make install failed (exit $status)"
if [ -s "$work/called" ]; then
	echo "nonroot-build: the build called:"
	sed 's/^/    /' "$work/called"
	status=1
fi
for f in include/coev.h include/coev/runtime.h lib/libcoev.so.0 lib/libcoev.so \
	lib/libcoev.a lib/libcoev_redis.a lib/pkgconfig/coev.pc \
	lib/pkgconfig/coev-curl.pc lib/cmake/coev/coevConfig.cmake; do
	[ -e "$stage/usr/local/$f" ] || {
		echo "nonroot-build: not installed: /usr/local/$f"
		status=1
	}
done
[ $status = 0 ] && echo "nonroot-build: built and installed without root or sudo"
exit $status
