#!/usr/bin/env python3
"""A reference SCM_RIGHTS peer built on Python's socket.send_fds / recv_fds, for the interop tests.

  peer.py send ADDR [--listen] [--data TEXT] [--chunk N] ITEM...
      ITEM: file:PATH | pipe:TEXT (read end sent; TEXT written to the write end, which is then closed)
            | tcp (a listener on 127.0.0.1:0) | null:N (N fds for /dev/null)
      All fds go in one send_fds call unless --chunk N splits them. Prints one JSON line describing what was sent
      ("ready" first on its own line when --listen is listening).
  peer.py recv ADDR [--listen] [--max N]
      Receives until EOF and prints one JSON line: payload, and for each fd what it is (pipes are read to EOF).
ADDR is a path or @abstract. Standard library only."""
import json
import os
import socket
import sys


def address(a):
    return "\0" + a[1:] if a.startswith("@") else a


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def peer_socket(addr, listen):
    if not listen:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(address(addr))
        return s
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(address(addr))
    l.listen(1)
    print("ready", flush=True)
    s, _ = l.accept()
    l.close()
    if not addr.startswith("@"):
        os.unlink(addr)
    return s


def describe(fd):
    target = os.readlink(f"/proc/self/fd/{fd}")
    d = {"target": target, "ino": os.fstat(fd).st_ino}
    if target.startswith("socket:"):
        s = socket.socket(fileno=os.dup(fd))
        d["sockname"] = s.getsockname() if s.family != socket.AF_UNIX else str(s.getsockname())
        d["listening"] = bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        s.close()
    elif target.startswith("pipe:"):
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        d["content"] = b"".join(chunks).decode()
    return d


def send(addr, items):
    fds, writes, shown = [], [], []
    for it in items:
        kind, _, rest = it.partition(":")
        if kind == "file":
            fds.append(os.open(rest, os.O_RDONLY))
        elif kind == "pipe":
            r, w = os.pipe()
            fds.append(r)
            writes.append((w, rest))
        elif kind == "tcp":
            t = socket.socket()
            t.bind(("127.0.0.1", 0))
            t.listen(8)
            fds.append(t.detach())
        elif kind == "null":
            fds.extend(os.open("/dev/null", os.O_RDONLY) for _ in range(int(rest)))
        else:
            sys.exit(f"bad item {it}")
    shown = [describe(fd) if not os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") else {"ino": os.fstat(fd).st_ino} for fd in fds]
    s = peer_socket(addr, "--listen" in sys.argv)
    data = arg("--data", "x").encode()
    chunk = int(arg("--chunk", "0")) or max(1, len(fds))
    for i in range(0, max(1, len(fds)), chunk):
        part = fds[i:i + chunk]
        socket.send_fds(s, [data if i == 0 else b"\0"], part)
    s.close()
    for w, text in writes:
        os.write(w, text.encode())
        os.close(w)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"sent": shown}), flush=True)


def recv(addr):
    s = peer_socket(addr, "--listen" in sys.argv)
    most = int(arg("--max", "253"))
    payload, got, truncated = b"", [], False
    while True:
        msg, fds, flags, _ = socket.recv_fds(s, 65536, most)
        truncated |= bool(flags & socket.MSG_CTRUNC)
        if not msg and not fds:
            break
        payload += msg
        got.extend(fds)
    s.close()
    out = {"payload": payload.decode(errors="replace"), "fds": [describe(fd) for fd in got], "truncated": truncated}
    for fd in got:
        os.close(fd)
    print(json.dumps(out), flush=True)


def main():
    mode, addr = sys.argv[1], sys.argv[2]
    rest = [a for a in sys.argv[3:]]
    items, skip = [], False
    for a in rest:
        if skip:
            skip = False
        elif a in ("--data", "--chunk", "--max"):
            skip = True
        elif not a.startswith("--"):
            items.append(a)
    send(addr, items) if mode == "send" else recv(addr)


main()
