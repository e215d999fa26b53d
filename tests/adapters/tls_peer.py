#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/adapters/tls_peer.py — a TLS peer that is not coev, for
tests/adapters/test_tls.c: Python's ssl module (OpenSSL underneath, but
none of coev's code), on 127.0.0.1, for one connection.

    tls_peer.py server MODE cert=PEM key=PEM [alpn=a,b]
        prints the port it listens on, accepts one connection and:
        echo      echoes every byte until the client's close_notify, then
                  answers with its own (a missing close_notify fails)
        sni       first sends "SNI=<name seen> ALPN=<protocol>\\n", then echo
        truncate  sends "partial" and closes TCP without close_notify
        refused   expects the client to refuse the handshake
    tls_peer.py client echo ca=PEM port=N name=HOST [size=N]
        connects, verifies the server against ca for name, sends size
        bytes of a pattern (or a line), checks the echo, then sends
        close_notify and waits for the server's.

Exits 0 when the peer saw what it expected, 1 otherwise (the reason on
stderr). Every socket has a timeout, so a broken coev side never leaves it
running for long; the test kills it by PID in any case.
"""
import socket
import ssl
import sys

TIMEOUT = 30


def fail(why):
    print("tls_peer: " + why, file=sys.stderr)
    sys.exit(1)


def pattern(n):
    return bytes((i * 7 + 3) % 251 for i in range(n))


def echo(s):
    while True:
        d = s.recv(65536)
        if not d:
            break
        s.sendall(d)
    s.unwrap()


def serve(mode, a):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.settimeout(TIMEOUT)
    print(ls.getsockname()[1], flush=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a["cert"], a["key"])
    seen = []
    ctx.sni_callback = lambda sock, name, c: seen.append(name)
    if "alpn" in a:
        ctx.set_alpn_protocols(a["alpn"].split(","))
    conn, _ = ls.accept()
    conn.settimeout(TIMEOUT)
    try:
        s = ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
    except (ssl.SSLError, OSError) as e:
        if mode == "refused":
            return
        fail("handshake failed: %s" % e)
    if mode == "refused":
        fail("the client accepted the certificate")
    if mode == "sni":
        s.sendall(("SNI=%s ALPN=%s\n" % (seen[0] if seen else "",
                                        s.selected_alpn_protocol())).encode())
    if mode in ("echo", "sni"):
        echo(s)
    elif mode == "truncate":
        s.sendall(b"partial")
        # The TCP connection ends with no TLS alert: a truncation.
        s.shutdown(socket.SHUT_RDWR)
    s.close()


def client(a):
    ctx = ssl.create_default_context(cafile=a["ca"])
    raw = socket.create_connection(("127.0.0.1", int(a["port"])), TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname=a["name"],
                        suppress_ragged_eofs=False)
    msg = pattern(int(a["size"])) if "size" in a else b"hello from python\n"
    s.sendall(msg)
    got = bytearray()
    while len(got) < len(msg):
        d = s.recv(65536)
        if not d:
            break
        got += d
    if bytes(got) != msg:
        fail("echo differs: %d bytes back of %d" % (len(got), len(msg)))
    s.unwrap()
    s.close()


def main():
    role, mode = sys.argv[1], sys.argv[2]
    a = dict(arg.split("=", 1) for arg in sys.argv[3:])
    if role == "server":
        serve(mode, a)
    else:
        client(a)


if __name__ == "__main__":
    main()
