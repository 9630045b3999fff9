#!/usr/bin/env python3
"""The far end of the transfer stress test: a separate process, so a stale buffer on the Bun side cannot cancel
out (in one process, the same stale buffer would serve both the send and the receive).

  stress_peer.py N INO...   (socket on fd 3)
Receives N messages, message i carrying the 4-byte little-endian counter i and k = 1 + i % 3 fds whose inodes
must be INO[(i + j) % len(INO)]; then sends N such messages itself, passing its own fds 4, 5, 6 (whose inodes are
the INO list). Prints one JSON line: how many messages were wrong, and the first wrong one."""
import json
import os
import socket
import struct
import sys

n = int(sys.argv[1])
inos = [int(x) for x in sys.argv[2:]]
s = socket.socket(fileno=3)
s.setblocking(True)
wrong, first = 0, -1
for i in range(n):
    k = 1 + i % 3
    msg, fds, flags, _ = socket.recv_fds(s, 64, 8)
    ok = msg == struct.pack("<I", i) and len(fds) == k and not flags & socket.MSG_CTRUNC
    ok = ok and all(os.fstat(fd).st_ino == inos[(i + j) % len(inos)] for j, fd in enumerate(fds))
    for fd in fds:
        os.close(fd)
    if not ok:
        wrong += 1
        if first < 0:
            first = i
own = [4, 5, 6]
for i in range(n):
    k = 1 + i % 3
    socket.send_fds(s, [struct.pack("<I", i)], [own[(i + j) % 3] for j in range(k)])
s.shutdown(socket.SHUT_WR)
print(json.dumps({"wrong": wrong, "first": first}), flush=True)
