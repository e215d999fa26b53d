#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The aiohttp server of the http workload (bench/http/).

    aiohttp_http.py PORT

aiohttp's own web server on 127.0.0.1:PORT with one handler answering
"Hello, World!". It parses requests fully and adds its own headers (Date,
Server, a charset), so its responses are not byte-identical to the other
servers'; it shows what a complete Python web framework costs. It runs on
asyncio's default event loop (aiohttp's own choice; uvloop is measured
separately). Run with Debian's python3 (the python3-aiohttp package).
"""
import sys

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello, World!")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: aiohttp_http.py PORT")
    app = web.Application()
    app.router.add_get("/", hello)
    # No access log: one log line per request would dominate the cost.
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]),
                access_log=None, print=None, backlog=4096)
