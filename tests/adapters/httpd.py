#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The loopback HTTP/1.1 server of the adapter tests (python3 stdlib only).

  tests/adapters/httpd.py [PORT]     default: $COEV_HTTP_PORT or 8390

Listens on 127.0.0.1 with keep-alive; every response has a Content-Length.
  /hello          200 "hello\\n"
  /bytes/N        200, N bytes: byte i is 'a' + i % 26
  /slow/MS        sleeps MS ms before the headers, then 200 "slow\\n"
  /drip/N/MS      the headers (Content-Length N) at once, then the body (the
                  /bytes pattern) in ten chunks of N/10 bytes (the last takes
                  the rest), each after MS ms: for cancelling mid-body
  /status/CODE    that status (200..599) with a short body
  anything else   404
Clients that leave mid-response are ignored quietly. Started and stopped by
ci/servers.sh.
"""
import os
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# 26 * 2048 bytes: consecutive blocks continue the pattern.
BLOCK = bytes(ord("a") + i % 26 for i in range(26 * 2048))
QUIET = (ConnectionError, TimeoutError)  # BrokenPipe, ConnectionReset, ...


def pattern(start, n):
    """Bytes start .. start+n of the /bytes pattern."""
    off = start % 26
    out = []
    while n > 0:
        k = min(n, len(BLOCK) - off)
        out.append(BLOCK[off:off + k])
        n -= k
        off = 0
    return b"".join(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "coev-httpd"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def head(self, code, length, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def reply(self, code, body):
        if code in (204, 304):
            body = b""
        self.head(code, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        m = re.fullmatch(r"/(\w+)((?:/\d{1,12})*)", path)
        route, args = (m[1], [int(a) for a in m[2].split("/")[1:]]) if m else ("", [])
        if route == "hello" and not args:
            self.reply(200, b"hello\n")
        elif route == "bytes" and len(args) == 1:
            n = args[0]
            self.head(200, n, "application/octet-stream")
            for i in range(0, n if self.command != "HEAD" else 0, len(BLOCK)):
                self.wfile.write(pattern(i, min(len(BLOCK), n - i)))
        elif route == "slow" and len(args) == 1:
            time.sleep(args[0] / 1000)
            self.reply(200, b"slow\n")
        elif route == "drip" and len(args) == 2:
            n, ms = args
            self.head(200, n, "application/octet-stream")
            if self.command == "HEAD":
                return
            step, sent = n // 10, 0
            for k in range(10):
                time.sleep(ms / 1000)
                size = n - sent if k == 9 else step
                self.wfile.write(pattern(sent, size))
                sent += size
        elif route == "status" and len(args) == 1 and 200 <= args[0] <= 599:
            self.reply(args[0], b"status %d\n" % args[0])
        else:
            self.reply(404, b"not found\n")

    do_HEAD = do_GET

    def handle(self):
        try:
            super().handle()
        except QUIET:
            self.close_connection = True

    def log_message(self, fmt, *args):
        pass  # no access log: the benchmarks send many requests


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 200+ clients connecting at once

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], QUIET):
            super().handle_error(request, client_address)


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("COEV_HTTP_PORT", 8390))
    srv = Server(("127.0.0.1", port), Handler)
    print("httpd: listening on 127.0.0.1:%d" % port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
