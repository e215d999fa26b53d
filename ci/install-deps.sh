#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages coev needs to build and test, and tells a
# build what is missing without installing anything.
#   ci/install-deps.sh              install the build and test packages
#   ci/install-deps.sh --if-missing only when a header or tool is missing
#   ci/install-deps.sh --probe lib|examples|tests
#                                   never installs: when a header that part
#                                   of the build compiles against is missing,
#                                   names it and the apt-get line, exits 1
#                                   (every plain make, make lib, make install)
#   ci/install-deps.sh --bench      also the benchmark peers (Go, tokio, gnuplot,
#                                   wrk, libuv, uvloop, aiohttp, gorilla/websocket,
#                                   websockets, perf)
#   ci/install-deps.sh --cross [--if-missing]  the aarch64 cross compiler and
#                                   qemu-user, for make check-aarch64
# Installing needs root or a working sudo; without either the exact
# apt-get line is printed and the script exits 1 (nothing is attempted).
set -eu
pkgs="build-essential clang clang-format libev-dev libck-dev libcmocka-dev libhttp-parser-dev pkg-config python3 valgrind"
# The bridge's callback libraries and the loopback servers of ci/servers.sh
# (dnsmasq-base: the binary without the system service).
pkgs="$pkgs libhiredis-dev libc-ares-dev libcurl4-openssl-dev redis-server redis-tools dnsmasq-base"
# The tests read coev's trace JSON with jansson (and the trace-to-SVG
# example parses it with jansson too).
pkgs="$pkgs libjansson-dev"
# The metrics tests parse the Prometheus text with the reference parser,
# run as /usr/bin/python3 (Debian's Python, which has Debian's modules).
pkgs="$pkgs python3-prometheus-client"
# The TLS adapter links OpenSSL; its tests make certificates and talk to
# a peer with the openssl CLI.
pkgs="$pkgs libssl-dev openssl"
# The WebSocket adapter: wslay frames, http-parser reads the upgrade,
# libcrypto (OpenSSL, above) computes the accept value; its tests talk to
# Python's websockets, run as /usr/bin/python3.
pkgs="$pkgs libwslay-dev python3-websockets"
# The installed-package test (tests/package/): a C++ consumer and a CMake
# consumer built against a staged make install.
pkgs="$pkgs cmake g++"

# The headers each part of the build compiles against and the package that
# holds each ("header package"): the probe's table. lib is the library and
# its adapter archives, examples and tests add their own.
probe_lib="ev.h:libev-dev ck_ring.h:libck-dev hiredis/hiredis.h:libhiredis-dev
	ares.h:libc-ares-dev */curl/curl.h:libcurl4-openssl-dev
	openssl/ssl.h:libssl-dev wslay/wslay.h:libwslay-dev
	http_parser.h:libhttp-parser-dev"
probe_examples="$probe_lib http_parser.h:libhttp-parser-dev jansson.h:libjansson-dev"
probe_tests="$probe_lib cmocka.h:libcmocka-dev jansson.h:libjansson-dev"

# apt_line PKG...: the command a root user runs to install them. Callers
# pass the package lists unquoted: each package is one word.
apt_line() { echo "apt-get install --no-install-recommends $*"; }

# probe PART: exits 1 with one message when a header of PART is missing.
probe() {
	local table what missing="" names="" entry hdr pkg f found
	case "$1" in
	lib) table=$probe_lib; what="library and its adapters" ;;
	examples) table=$probe_examples; what="examples" ;;
	tests) table=$probe_tests; what="tests" ;;
	*) echo "ci/install-deps.sh: --probe lib|examples|tests" >&2; exit 2 ;;
	esac
	# The table's words are split but not globbed (set -f); the curl
	# header sits in a multiarch folder, so its pattern is expanded below.
	set -f
	for entry in $table; do
		set +f
		hdr=${entry%%:*}; pkg=${entry#*:}; found=0
		for f in /usr/include/$hdr; do [ -f "$f" ] && found=1; done
		[ $found = 1 ] && continue
		missing="$missing $pkg"; names="$names <$hdr>"
	done
	[ -n "$missing" ] || exit 0
	{
		echo "coev: cannot build the $what: missing header(s)${names}."
		echo "coev: install them as root with:"
		echo "    $(apt_line $missing)"
	} >&2
	exit 1
}

need=0
case "${1:-}" in
--probe) probe "${2:-}" ;;
--if-missing)
	# dnsmasq is in /usr/sbin, not in every user's PATH: checked as a file.
	for f in /usr/include/ev.h /usr/include/ck_ring.h /usr/include/cmocka.h \
		/usr/include/http_parser.h /usr/include/hiredis/hiredis.h \
		/usr/include/ares.h /usr/include/*/curl/curl.h /usr/sbin/dnsmasq \
		/usr/include/valgrind/valgrind.h /usr/include/jansson.h \
		/usr/include/openssl/ssl.h /usr/include/wslay/wslay.h; do
		[ -f "$f" ] || need=1
	done
	command -v clang >/dev/null || need=1
	command -v python3 >/dev/null || need=1
	command -v redis-server >/dev/null || need=1
	command -v redis-benchmark >/dev/null || need=1
	/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need=1
	command -v openssl >/dev/null || need=1
	/usr/bin/python3 -c 'import websockets' 2>/dev/null || need=1
	command -v cmake >/dev/null || need=1
	command -v g++ >/dev/null || need=1
	[ $need = 1 ] || exit 0
	;;
--bench)
	# The benchmark peers; ws-echo and https (bench/net/) add the Go
	# WebSocket library (built GOPATH-style from /usr/share/gocode), the
	# Python one, libcrypto's headers for the load client, the openssl tool
	# for the test certificate, and perf for the system call counts.
	pkgs="$pkgs golang-go librust-tokio-dev cargo gnuplot-nox wrk libuv1-dev python3-uvloop python3-aiohttp"
	pkgs="$pkgs golang-github-gorilla-websocket-dev python3-websockets libssl-dev openssl linux-perf"
	;;
--cross)
	pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
	if [ "${2:-}" = --if-missing ] && command -v aarch64-linux-gnu-gcc \
		>/dev/null && command -v qemu-aarch64 >/dev/null; then
		exit 0
	fi
	;;
esac
# Root installs directly; anyone else through sudo, but only a sudo that
# works here: without a password (sudo -n) or with a terminal to ask on.
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null &&
		{ sudo -n true 2>/dev/null || [ -t 0 ]; }; then
		sudo="sudo"
	else
		{
			echo "coev: Debian packages are missing and this user is not root"
			echo "coev: and has no working sudo. Install them as root with:"
			echo "    apt-get update && $(apt_line $pkgs)"
		} >&2
		exit 1
	fi
fi
echo "coev: installing Debian packages: $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2
$sudo apt-get install -y -q --no-install-recommends $pkgs >&2
