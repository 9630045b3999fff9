"""Python reference for bench/roundtrip.ts: socket.send_fds / socket.recv_fds over an AF_UNIX socketpair, every
received fd closed. Usage: roundtrip.py BATCH ITERATIONS ROUNDS -> one line per round: ns per fd."""
import os
import socket
import sys
import time


def roundtrip(a, b, fds, batch):
    socket.send_fds(a, [b"\0"], fds)
    _, got, flags, _ = socket.recv_fds(b, 1, batch)
    if len(got) != batch or flags & socket.MSG_CTRUNC:
        sys.exit(f"received {len(got)} fds, expected {batch}")
    for fd in got:
        os.close(fd)


def main():
    batch, iterations, rounds = (int(x) for x in sys.argv[1:4])
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, _w = os.pipe()
    fds = [r] * batch
    for _ in range(iterations // 10):
        roundtrip(a, b, fds, batch)
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(iterations):
            roundtrip(a, b, fds, batch)
        print(f"{(time.perf_counter_ns() - t0) / (iterations * batch):.1f}", flush=True)


main()
