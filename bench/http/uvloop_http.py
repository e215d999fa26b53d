#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The uvloop server of the http and c10k workloads (bench/http/).

    uvloop_http.py PORT

A keep-alive HTTP/1.1 server on 127.0.0.1:PORT: asyncio streams on uvloop's
event loop, asyncio.start_server with one handler coroutine per
connection. As in coev_http.c, a request ends at its blank line (CRLFCRLF),
every request gets the same fixed "Hello, World!" response, and pipelined
requests are answered in one write. Run with Debian's python3 (the
python3-uvloop package).
"""
import asyncio
import sys

import uvloop

REQ_BUF = 2048
BATCH = 16
RESPONSE = (b"HTTP/1.1 200 OK\r\n"
            b"Content-Length: 13\r\n"
            b"Content-Type: text/plain\r\n"
            b"\r\n"
            b"Hello, World!")
# The answers to 1..BATCH pipelined requests, built once.
ANSWERS = [RESPONSE * k for k in range(BATCH + 1)]


async def serve(reader, writer):
    buf = b""
    try:
        while True:
            data = await reader.read(REQ_BUF - len(buf))
            if not data:
                break
            buf += data
            n, used = 0, 0
            while True:
                end = buf.find(b"\r\n\r\n", used)
                if end < 0:
                    break
                used = end + 4
                n += 1
            while n > 0:
                k = min(n, BATCH)
                writer.write(ANSWERS[k])
                n -= k
            # drain() only waits when the transport's buffer is full.
            await writer.drain()
            # A request larger than the buffer is not one of ours.
            if used == 0 and len(buf) >= REQ_BUF:
                break
            buf = buf[used:]
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port):
    # asyncio's streams set TCP_NODELAY on TCP sockets, as every server
    # here does.
    server = await asyncio.start_server(serve, "127.0.0.1", port,
                                        backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: uvloop_http.py PORT")
    uvloop.install()
    asyncio.run(main(int(sys.argv[1])))
