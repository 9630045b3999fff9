// receiveFrom / sendTo in one process: both sides yield while they wait, so they can talk to each other.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { connect, listenUnix, receiveFrom, sendFds, sendTo, socketPair, UsageError } from "../../src/index.ts";
import { closeAll, fstat, isSysError } from "../../src/sys/index.ts";
import { fdCount, tempDir } from "../helpers.ts";

setDefaultTimeout(60000);
let dir: ReturnType<typeof tempDir>;
let before: number;
let nul: number;
beforeEach(() => {
  dir = tempDir();
  before = fdCount();
  nul = openSync("/dev/null", "r");
});
afterEach(() => {
  closeSync(nul);
  dir.cleanup();
  expect(fdCount()).toBe(before);
});

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** Start a receiver listening, then run the sender once it is ready. */
function pair(addr: string, recvOpts: Parameters<typeof receiveFrom>[1], send: () => Promise<void>) {
  let started: Promise<void> = Promise.resolve();
  const got = receiveFrom(addr, { ...recvOpts, onReady: () => void (started = send()) });
  return { got, sent: () => started };
}

test("600 fds and a payload cross in one sendTo; the listener's socket file is gone afterwards", async () => {
  const addr = join(dir.path, "a.sock");
  const p = pair(addr, { timeoutMs: 20000 }, () => sendTo(addr, Array(600).fill(nul), { connect: true, payload: "p" }));
  const got = await p.got;
  await p.sent();
  try {
    expect(got.fds).toHaveLength(600);
    expect(got.messages.map((m) => m.fds.length)).toEqual([253, 253, 94]);
    expect(Buffer.concat(got.messages.map((m) => m.data)).toString()).toBe("p\0\0");
    expect(got.fds.every((fd) => fstat(fd).ino === fstat(nul).ino)).toBe(true);
    expect(existsSync(addr)).toBe(false);
  } finally {
    got.close();
  }
});

test("--count keeps exactly N fds and closes the rest of the message", async () => {
  const addr = `@fdbroker-session-${process.pid}-count`;
  const p = pair(addr, { count: 2, timeoutMs: 20000 }, () => sendTo(addr, [nul, nul, nul, nul, nul], { connect: true }));
  const got = await p.got;
  await p.sent();
  using held = got; // a Reception is disposable like a message: its fds close at the end of the block
  expect(held.fds).toHaveLength(2);
  expect(held.extraClosed).toBe(3);
});

test("more fds than maxFds: ENOBUFS, and every fd received so far is closed", async () => {
  const addr = join(dir.path, "max.sock");
  const p = pair(addr, { maxFds: 300, timeoutMs: 20000 }, () => sendTo(addr, Array(400).fill(nul), { connect: true }).catch(() => {}));
  const err = await caught(p.got);
  await p.sent();
  expect(isSysError(err, "ENOBUFS")).toBe(true);
  expect(String(err)).toMatch(/limit of 300 fds/);
});

test("more payload than maxBytes is refused with EMSGSIZE", async () => {
  const addr = join(dir.path, "bytes.sock");
  const p = pair(addr, { maxBytes: 10, timeoutMs: 20000 }, () => sendTo(addr, [nul], { connect: true, payload: "x".repeat(11) }));
  const err = await caught(p.got);
  await p.sent();
  expect(isSysError(err, "EMSGSIZE")).toBe(true);
});

test("waits are bounded: no peer, and a peer that sends nothing, time out with ETIMEDOUT", async () => {
  const addr = join(dir.path, "t.sock");
  expect(isSysError(await caught(receiveFrom(addr, { timeoutMs: 200 })), "ETIMEDOUT")).toBe(true);
  expect(existsSync(addr)).toBe(false);
  // Listening with sendTo and no peer ever connecting:
  expect(isSysError(await caught(sendTo(addr, [nul], { timeoutMs: 200 })), "ETIMEDOUT")).toBe(true);
});

test("an aborted signal ends the wait and removes the socket file", async () => {
  const addr = join(dir.path, "abort.sock");
  const ctl = new AbortController();
  const p = receiveFrom(addr, { signal: ctl.signal, onReady: () => setTimeout(() => ctl.abort(new Error("stop")), 50) });
  expect(String(await caught(p))).toMatch(/stop/);
  expect(existsSync(addr)).toBe(false);
});

test("bad input: an empty address, an fd that is not open", async () => {
  expect(await caught(receiveFrom("", {}))).toBeInstanceOf(UsageError);
  expect(await caught(sendTo(join(dir.path, "x"), [987654], { connect: true }))).toBeInstanceOf(UsageError);
  // Nothing appears there within the timeout: the connect error names the call, the errno and the address.
  const err = await caught(sendTo(join(dir.path, "x"), [nul], { connect: true, timeoutMs: 200 }));
  expect(isSysError(err, "ENOENT")).toBe(true);
  expect((err as Error).message).toBe(`connect: ENOENT (${join(dir.path, "x")}): no socket appeared in 200 ms`);
});

test("a listener whose queue is full is live: its socket file is not replaced, and connecting times out (ETIMEDOUT)", async () => {
  const addr = join(dir.path, "busy.sock");
  const lfd = listenUnix(addr, { backlog: 0 });
  const waiting: number[] = [];
  try {
    // Fill the queue: a UNIX listener answers EAGAIN (turned into ETIMEDOUT at the deadline) once it is full.
    let err: unknown;
    while (err === undefined && waiting.length < 100) {
      try {
        waiting.push(connect(addr, 50));
      } catch (e) {
        err = e;
      }
    }
    expect(isSysError(err, "ETIMEDOUT")).toBe(true);
    expect(() => listenUnix(addr)).toThrow(/EADDRINUSE.*another process is listening/);
    expect(existsSync(addr)).toBe(true);
  } finally {
    closeAll([lfd, ...waiting]);
  }
});

test("sendFds refuses a chunk size below one fd per message", () => {
  const [a, b] = socketPair();
  try {
    expect(() => sendFds(a, [nul, nul], "x", { chunk: 0 })).toThrow(RangeError);
  } finally {
    closeAll([a, b]);
  }
});

test("an onReady that throws after connecting closes the socket: the peer sees the end, nothing leaks", async () => {
  const addr = join(dir.path, "ready.sock");
  let sendErr: unknown;
  const fail = () => {
    throw new Error("ready failed");
  };
  const p = pair(addr, { timeoutMs: 20000 }, () => sendTo(addr, [nul], { connect: true, onReady: fail }).catch((e) => void (sendErr = e)));
  using got = await p.got;
  await p.sent();
  expect(String(sendErr)).toMatch(/ready failed/);
  expect(got.fds).toHaveLength(0);
});
