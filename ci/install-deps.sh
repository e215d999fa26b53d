#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages coev needs to build and test.
#   ci/install-deps.sh              install the build and test packages
#   ci/install-deps.sh --if-missing only when a header or tool is missing
#   ci/install-deps.sh --bench      also the benchmark peers (Go, tokio, gnuplot,
#                                   wrk, libuv, uvloop, aiohttp)
#   ci/install-deps.sh --cross [--if-missing]  the aarch64 cross compiler and
#                                   qemu-user, for make check-aarch64
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
need=0
case "${1:-}" in
--if-missing)
	# dnsmasq is in /usr/sbin, not in every user's PATH: checked as a file.
	for f in /usr/include/ev.h /usr/include/ck_ring.h /usr/include/cmocka.h \
		/usr/include/http_parser.h /usr/include/hiredis/hiredis.h \
		/usr/include/ares.h /usr/include/*/curl/curl.h /usr/sbin/dnsmasq \
		/usr/include/valgrind/valgrind.h /usr/include/jansson.h; do
		[ -f "$f" ] || need=1
	done
	command -v clang >/dev/null || need=1
	command -v python3 >/dev/null || need=1
	command -v redis-server >/dev/null || need=1
	command -v redis-benchmark >/dev/null || need=1
	/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need=1
	[ $need = 1 ] || exit 0
	;;
--bench) pkgs="$pkgs golang-go librust-tokio-dev cargo gnuplot-nox wrk libuv1-dev python3-uvloop python3-aiohttp" ;;
--cross)
	pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
	if [ "${2:-}" = --if-missing ] && command -v aarch64-linux-gnu-gcc \
		>/dev/null && command -v qemu-aarch64 >/dev/null; then
		exit 0
	fi
	;;
esac
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "coev: installing Debian packages: $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2
$sudo apt-get install -y -q --no-install-recommends $pkgs >&2
