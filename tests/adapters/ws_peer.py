#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/adapters/ws_peer.py — the WebSocket peer that is not coev, for
tests/adapters/test_ws.c: Python's websockets (Debian's python3-websockets,
the asyncio library of the program coev's WebSocket example comes from).

  ws_peer.py client PORT [CAFILE]
                           connect to ws://127.0.0.1:PORT/chat?x=1 (with
                           CAFILE: wss://localhost:PORT/chat?x=1, trusting
                           the certificates CAFILE signed) offering
                           the subprotocols "v2.coev" and "v1.coev"; send a
                           text, a binary and a fragmented message and check
                           each echo; ping and await the pong; close with
                           1000 "bye". Prints "client ok" and exits 0, or
                           prints what differed and exits 1.
  ws_peer.py server        an echo server on 127.0.0.1, port chosen by the
                           kernel, printed as "port N" on stdout; it echoes
                           every message and, when a close arrives, prints
                           "closed CODE REASON" and flushes. It runs until
                           killed (the test ends it by its PID).

Run with /usr/bin/python3 (Debian's Python, which has Debian's modules).
"""
import asyncio
import ssl
import sys

import websockets


async def client(port, cafile):
    uri = "ws://127.0.0.1:%d/chat?x=1" % port
    ctx = None
    if cafile:
        uri = "wss://localhost:%d/chat?x=1" % port
        ctx = ssl.create_default_context(cafile=cafile)
    async with websockets.connect(uri, subprotocols=["v2.coev", "v1.coev"],
                                  max_size=None, ssl=ctx) as ws:
        if ws.subprotocol != "v1.coev":
            print("subprotocol", ws.subprotocol)
            return 1
        await ws.send("héllo")
        got = await ws.recv()
        if got != "héllo":
            print("text echo", repr(got))
            return 1
        await ws.send(bytes(range(256)) * 300)
        got = await ws.recv()
        if got != bytes(range(256)) * 300:
            print("binary echo differs", len(got))
            return 1
        await ws.send(["frag", "ment", "ed"])
        got = await ws.recv()
        if got != "fragmented":
            print("fragmented echo", repr(got))
            return 1
        pong = await ws.ping(b"p1")
        await asyncio.wait_for(pong, 5)
        await ws.close(1000, "bye")
    print("client ok")
    return 0


async def echo(ws):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.exceptions.ConnectionClosed:
        pass
    print("closed", ws.close_code, ws.close_reason, flush=True)


async def server():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("port", port, flush=True)
        await asyncio.Future()


def main():
    if len(sys.argv) in (3, 4) and sys.argv[1] == "client":
        cafile = sys.argv[3] if len(sys.argv) == 4 else None
        return asyncio.run(client(int(sys.argv[2]), cafile))
    if len(sys.argv) == 2 and sys.argv[1] == "server":
        return asyncio.run(server())
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
