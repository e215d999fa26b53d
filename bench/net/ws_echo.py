#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/net/ws_echo.py — the Python server of the ws-echo workload.

    /usr/bin/python3 ws_echo.py PORT

A WebSocket echo server on 127.0.0.1:PORT with Debian's python3-websockets
(the asyncio library the WebSocket programs coev grew from are written
with), on asyncio's default event loop, one thread: one handler coroutine
per connection, `async for message in websocket` and every message sent
back unchanged. Compression is switched off, as the load client does not
offer it anyway; no message size limit is lowered or raised.
"""
import asyncio
import sys

import websockets


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, compression=None):
        await asyncio.Future()  # serve until killed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1])))
