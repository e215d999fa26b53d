#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Probes for ci/servers.sh (python3 stdlib only; exit 0 = success).

  ci/probe.py free tcp|udp PORT        127.0.0.1:PORT can be bound (nobody has it)
  ci/probe.py dns PORT NAME [A|AAAA] [tcp]
                                       prints the rcode and the addresses, e.g.
                                       "NOERROR 127.0.0.1" or "NXDOMAIN";
                                       fails on no answer within 1 s
  ci/probe.py http PORT PATH           GET http://127.0.0.1:PORT/PATH; prints the
                                       status line; fails on no answer in 2 s
"""
import http.client
import random
import socket
import struct
import sys

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


def free(proto, port):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        # Like the servers: a TIME_WAIT left by our last run is no conflict.
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def skip_name(msg, i):
    while msg[i]:
        if msg[i] & 0xC0 == 0xC0:
            return i + 2
        i += 1 + msg[i]
    return i + 1


def dns(port, name, qtype="A", proto="udp"):
    qt = {"A": 1, "AAAA": 28}[qtype]
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack(">HH", qt, 1)
    if proto == "tcp":
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(struct.pack(">H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("connection closed")
                buf += chunk
            msg = buf[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            s.sendto(q, ("127.0.0.1", port))
            msg = s.recv(4096)
    rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if rid != qid:
        raise OSError("wrong id")
    i = 12
    for _ in range(qd):
        i = skip_name(msg, i) + 4
    addrs = []
    for _ in range(an):
        i = skip_name(msg, i)
        typ, _, _, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
        rdata = msg[i + 10:i + 10 + rdlen]
        if typ == 1:
            addrs.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif typ == 28:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
        i += 10 + rdlen
    return " ".join([RCODES.get(flags & 0xF, str(flags & 0xF))] + addrs)


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return "%d %s" % (r.status, r.reason)


def main(argv):
    try:
        if argv[0] == "free":
            return 0 if free(argv[1], int(argv[2])) else 1
        if argv[0] == "dns":
            print(dns(int(argv[1]), *argv[2:]))
        elif argv[0] == "http":
            print(get(int(argv[1]), argv[2]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, ValueError, IndexError, struct.error,
            http.client.HTTPException) as e:
        print("probe: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
