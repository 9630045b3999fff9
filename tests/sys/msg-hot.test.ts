// src/sys/msg.ts hands libc addresses it took once, at load time. Bun has had pointers go stale after JIT
// tier-up (oven-sh/bun 9094, 32054), tens of thousands of calls in: run the path hot enough to catch that.
import { expect, test } from "bun:test";
import { recvFds, sendFds } from "../../src/peer/transfer.ts";
import { close, fstat, pipe, recvmsg, sendmsg, socketpair } from "../../src/sys/index.ts";
import { fdCount } from "../helpers.ts";

test("300,000 round trips keep every fd and payload byte right", () => {
  const before = fdCount();
  const [a, b] = socketpair("stream");
  const [r, w] = pipe();
  const ino = fstat(r).ino;
  const encoder = new TextEncoder();
  let wrong = 0;
  for (let i = 0; i < 300_000; i++) {
    const n = (i % 3) + 1;
    const text = `m${i}`;
    const fds = new Array<number>(n).fill(i % 2 ? r : w);
    if (i % 4 < 2) {
      sendFds(a, fds, text);
      using msg = recvFds(b, { maxBytes: text.length, maxFds: 3 });
      if (msg.fds.length !== n || new TextDecoder().decode(msg.data) !== text) wrong++;
      if (i % 1000 === 1 && msg.fds.some((fd) => fstat(fd).ino !== ino)) wrong++;
    } else {
      sendmsg(a, encoder.encode(text), fds);
      const got = recvmsg(b, text.length, 3);
      if (got === null || got.fds.length !== n || new TextDecoder().decode(got.data) !== text) wrong++;
      for (const fd of got?.fds ?? []) close(fd);
    }
  }
  for (const fd of [a, b, r, w]) close(fd);
  expect(wrong).toBe(0);
  expect(fdCount()).toBe(before);
}, 120_000);
