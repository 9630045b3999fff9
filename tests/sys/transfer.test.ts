// sendmsg/recvmsg through the library on real sockets: a long stress run that would catch pointers gone stale
// after JIT tier-up, MSG_CTRUNC closing what arrived, and fd counts equal before and after every test.
import { expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { recvFds, sendFds, socketPair } from "../../src/index.ts";
import { close, closeAll, fstat, isSysError, pipe, recvmsg, sendmsg, write, read } from "../../src/sys/index.ts";
import { join } from "node:path";
import { fdCount, fdSnapshot, newFdsSince, spawn } from "../helpers.ts";

setDefaultTimeout(300000);

/** Garbage-collector traffic: what moves a small typed array's storage under a pointer taken earlier. Without it
 * a stale-pointer bug can hide for a whole run. */
function gcChurn() {
  const kept: Uint8Array[][] = [];
  return (i: number) => {
    if (i % 1000 === 0) kept.push(Array.from({ length: 200 }, () => new Uint8Array(16)));
    if (kept.length > 20) kept.length = 0;
    if (i % 50000 === 0) Bun.gc(true);
  };
}

/** Message i of a stress run: the 4-byte counter i, and 1 + i % 3 fds whose inodes rotate through `inodes`. */
function isMessage(msg: { data: Uint8Array; fds: number[] }, i: number, inodes: number[]): boolean {
  return (
    msg.data.length === 4 && new DataView(msg.data.buffer, msg.data.byteOffset).getUint32(0, true) === i &&
    msg.fds.length === 1 + (i % 3) && msg.fds.every((fd, j) => fstat(fd).ino === inodes[(i + j) % 3])
  );
}

/** A connected socket pair, and three different kernel objects to send: a pipe's two ends and /dev/null. */
function stressFds() {
  const [a, b] = socketPair();
  const [pr, pw] = pipe();
  const nul = openSync("/dev/null", "r");
  const sources = [pr, nul, pw];
  return { a, b, pr, pw, nul, sources, inodes: sources.map((fd) => fstat(fd).ino) };
}

test("300,000 send+recv+close round trips deliver the right fds and payload every time", () => {
  const before = fdCount();
  const { a, b, pr, pw, nul, sources, inodes } = stressFds();
  const payload = new Uint8Array(4);
  const view = new DataView(payload.buffer);
  let wrong = 0;
  let firstWrong = -1;
  const churn = gcChurn();
  try {
    for (let i = 0; i < 300000; i++) {
      // 1 to 3 fds, rotating, so both the payload and the control length change from one call to the next.
      const k = 1 + (i % 3);
      const fds = Array.from({ length: k }, (_, j) => sources[(i + j) % 3]!);
      view.setUint32(0, i, true);
      sendFds(a, fds, payload);
      const msg = recvFds(b, { timeoutMs: 10000, maxBytes: 64 });
      if (!isMessage(msg, i, inodes) && wrong++ === 0) firstWrong = i;
      msg.close();
      churn(i);
    }
  } finally {
    closeAll([a, b, pr, pw]);
    closeSync(nul);
  }
  expect({ wrong, firstWrong }).toEqual({ wrong: 0, firstWrong: -1 });
  expect(fdCount()).toBe(before);
});

test("300,000 messages each way with a Python peer: nothing stale on either side of the wire", async () => {
  const before = fdSnapshot();
  const { a, b, pr, pw, nul, sources, inodes } = stressFds();
  const N = 300000;
  const peer = spawn(["python3", join(import.meta.dir, "stress_peer.py"), String(N), ...inodes.map(String)], {
    stdio: ["ignore", "pipe", "pipe", b, ...sources],
  });
  close(b);
  const payload = new Uint8Array(4);
  const view = new DataView(payload.buffer);
  const churn = gcChurn();
  let wrong = 0;
  let firstWrong = -1;
  try {
    for (let i = 0; i < N; i++) {
      view.setUint32(0, i, true);
      sendFds(a, Array.from({ length: 1 + (i % 3) }, (_, j) => sources[(i + j) % 3]!), payload, { timeoutMs: 60000 });
      churn(i);
    }
    for (let i = 0; i < N; i++) {
      const msg = recvFds(a, { timeoutMs: 60000, maxBytes: 64 });
      if (!isMessage(msg, i, inodes) && wrong++ === 0) firstWrong = i;
      msg.close();
      churn(i);
    }
    const [out, code] = await Promise.all([new Response(peer.stdout as ReadableStream).text(), peer.exited]);
    expect(code).toBe(0);
    expect({ pythonSaw: JSON.parse(out), bunSaw: { wrong, first: firstWrong } }).toEqual({
      pythonSaw: { wrong: 0, first: -1 },
      bunSaw: { wrong: 0, first: -1 },
    });
  } finally {
    closeAll([a, pr, pw]);
    closeSync(nul);
  }
  expect(await newFdsSince(before)).toEqual([]);
});

test("a received pipe end is the same pipe: bytes written to the original are read through the copy", () => {
  const before = fdCount();
  const [a, b] = socketPair();
  const [pr, pw] = pipe();
  try {
    sendFds(a, [pr], "x");
    using msg = recvFds(b, { timeoutMs: 10000 });
    expect(new TextDecoder().decode(msg.data)).toBe("x");
    write(pw, new TextEncoder().encode("through the copy"));
    expect(new TextDecoder().decode(read(msg.fds[0]!, 100)!)).toBe("through the copy");
  } finally {
    closeAll([a, b, pr, pw]);
  }
  expect(fdCount()).toBe(before);
});

test("MSG_CTRUNC: fds beyond the receiver's buffer are dropped by the kernel, the rest closed, nothing leaks", () => {
  const before = fdCount();
  const [a, b] = socketPair();
  const nul = openSync("/dev/null", "r");
  try {
    // [2, 1] and [4, 3]: an odd limit leaves room for one fd more in the aligned control buffer; still refused.
    for (const [sent, accepted] of [[10, 2], [253, 1], [5, 4], [3, 0], [2, 1], [4, 3]] as const) {
      const countBefore = fdCount();
      sendFds(a, Array(sent).fill(nul), "!");
      let err: unknown;
      try {
        recvFds(b, { maxFds: accepted, timeoutMs: 10000 }).close();
      } catch (e) {
        err = e;
      }
      expect(isSysError(err, "ENOBUFS")).toBe(true);
      expect(String(err)).toMatch(/MSG_CTRUNC/);
      expect(fdCount()).toBe(countBefore);
    }
    // The raw layer reports what it closed: room for two fds (CMSG_SPACE(8)), three sent.
    const countBefore = fdCount();
    sendmsg(a, new Uint8Array([1]), [nul, nul, nul]);
    const got = recvmsg(b, 16, 2);
    expect(got).toMatchObject({ truncated: true, fds: [], closedFds: 2 });
    expect(fdCount()).toBe(countBefore);
  } finally {
    closeAll([a, b]);
    closeSync(nul);
  }
  expect(fdCount()).toBe(before);
});

test("600 fds in one sendFds arrive as messages of at most 253, payload intact", () => {
  const before = fdCount();
  const [a, b] = socketPair();
  const nul = openSync("/dev/null", "r");
  const received: number[] = [];
  const bytes: number[] = [];
  try {
    sendFds(a, Array(600).fill(nul), "names:go:here");
    while (received.length < 600) {
      const m = recvFds(b, { timeoutMs: 10000 });
      expect(m.fds.length).toBeLessThanOrEqual(253);
      received.push(...m.fds);
      bytes.push(...m.data);
    }
    expect(received).toHaveLength(600);
    expect(new TextDecoder().decode(new Uint8Array(bytes))).toBe("names:go:here");
  } finally {
    closeAll([a, b, ...received]);
    closeSync(nul);
  }
  expect(fdCount()).toBe(before);
});

test("more than 253 fds in one raw sendmsg is refused before the kernel sees it", () => {
  const [a, b] = socketPair();
  try {
    expect(() => sendmsg(a, new Uint8Array(1), Array(254).fill(0))).toThrow(/E2BIG.*at most 253/);
    expect(() => sendmsg(a, new Uint8Array(0), [0])).toThrow(/EINVAL/);
  } finally {
    close(a);
    close(b);
  }
});
