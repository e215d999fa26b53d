#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when the shared library exports a symbol outside the coev_ namespace.
set -eu
bad=$(nm -D --defined-only "$1" | awk '{print $3}' | grep -v '^coev_' || true)
if [ -n "$bad" ]; then
	echo "check-exports: $1 exports symbols outside coev_*:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "check-exports: $(nm -D --defined-only "$1" | grep -c ' coev_') symbols, all coev_*"
