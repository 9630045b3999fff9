// src/sys/offload.ts with real kernel objects: closes that return at once, and closes that block in the kernel
// (TCP sockets lingering 30 s on a full send queue, made by tests/broker/fixtures/stall_client.py). The pool is one
// per process, so these tests run in order and share it.
import { expect, test } from "bun:test";
import { openSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { acceptOne } from "../../src/peer/endpoint.ts";
import { listenUnix } from "../../src/peer/listen.ts";
import { recvFds } from "../../src/peer/transfer.ts";
import { close, fstat, isOpen, isSysError, pipe } from "../../src/sys/index.ts";
import {
  closeAllOffThread, closeOffThread, fstatOffThread, offloadBacklogged, offloadCheckInMs, offloadStats, offloadWakeFd, startOffload,
  tendOffload,
} from "../../src/sys/offload.ts";
import { fdSnapshot, newFdsSince, spawn, tempDir, waitFor } from "../helpers.ts";

const GIVE = join(import.meta.dir, "../broker/fixtures/stall_client.py");

const targetOf = (fd: number) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
};

/** Whether `fd` still is what it was when `opened` was taken (its number may be reused once closed). */
const stillOpen = (opened: Map<number, string | null>) => (fd: number) => targetOf(fd) === opened.get(fd);
const opened = (fds: number[]) => new Map(fds.map((fd) => [fd, targetOf(fd)]));

/** Tend the pool the way the broker's loop does, until `cond` holds. */
async function tendUntil(what: string, cond: () => boolean, timeoutMs = 10000): Promise<void> {
  await waitFor(what, () => {
    tendOffload(true);
    return cond();
  }, timeoutMs);
}

/** `n` TCP sockets whose close() lingers until `release()` (the fixture's listeners reset them when it dies). */
async function lingeringSockets(n: number) {
  const dir = tempDir();
  const path = join(dir.path, "give.sock");
  const lfd = listenUnix(path);
  const proc = spawn(["python3", GIVE, path, "give", String(n)]);
  try {
    const conn = acceptOne(lfd, 30000);
    try {
      const msg = recvFds(conn, { timeoutMs: 30000 });
      expect(msg.fds.length).toBe(n);
      await (proc.stdout as ReadableStream<Uint8Array>).getReader().read(); // "done": its own copies are closed, ours are the last
      return { fds: msg.fds, release: async () => (proc.kill("SIGKILL"), await proc.exited) };
    } finally {
      close(conn);
    }
  } finally {
    close(lfd);
    dir.cleanup();
  }
}

test("before startOffload nothing runs off-thread: closes happen at once, and there is no wake fd", () => {
  expect(offloadWakeFd()).toBeNull();
  const [r, w] = pipe();
  closeAllOffThread([r, w]);
  expect(isOpen(r) || isOpen(w)).toBe(false);
});

test("no worker starts before the first job, which starts one", async () => {
  // fdSnapshot leaves out epolls and eventfds: the runtime's, and each worker's own.
  const count = () => fdSnapshot().length;
  const before = count();
  startOffload({ maxThreads: 2, maxQueued: 1 });
  expect(offloadStats().threads).toBe(0);
  expect(offloadWakeFd()).toBeNull();
  const held = count();
  expect(held).toBeGreaterThan(before);
  const [r, w] = pipe();
  const was = opened([r, w]);
  closeAllOffThread([r, w]);
  expect(offloadStats().threads).toBe(1);
  expect(offloadWakeFd()).not.toBeNull();
  await tendUntil("the pipe closed by the first worker", () => !stillOpen(was)(r) && !stillOpen(was)(w));
  expect(count()).toBe(held);
});

test("closes and fstats run off this thread; fstat agrees with fstat here; no fd is left open", async () => {
  const before = fdSnapshot();
  const pipes = Array.from({ length: 200 }, () => pipe()).flat();
  const was = opened(pipes);
  closeAllOffThread(pipes);
  await tendUntil("200 pipes closed", () => !pipes.some(stillOpen(was)));
  const file = openSync(import.meta.path, "r");
  const job = fstatOffThread(file);
  await tendUntil("the fstat", () => job.settled);
  expect(job.result).toEqual(fstat(file));
  const bad = fstatOffThread(file + 10000);
  await tendUntil("the failed fstat", () => bad.settled);
  expect(isSysError(bad.result, "EBADF")).toBe(true);
  close(file);
  expect(await newFdsSince(before)).toEqual([]);
});

test("a close stuck in the kernel holds up nothing: the pool grows to its cap, then queues, and says so", async () => {
  const lingering = await lingeringSockets(2);
  try {
    const [r1, w1] = pipe();
    const was = opened([r1, w1]);
    // One batch: the worker lingers on its first fd; after STUCK_MS r1 is taken back, a second worker starts and
    // closes it.
    closeAllOffThread([lingering.fds[0]!, r1]);
    await tendUntil("r1 closed beside a lingering close", () => !stillOpen(was)(r1), 5000);
    expect(offloadStats()).toMatchObject({ threads: 2, queued: 0 });
    closeOffThread(lingering.fds[1]!);
    await tendUntil("both workers stuck", () => offloadStats().stuck === 2, 5000);
    closeOffThread(w1);
    tendOffload(true);
    // At the cap (2): the job waits, the fd stays open, the queue (max 1) is full, and no growth is pending.
    expect(offloadStats()).toMatchObject({ threads: 2, stuck: 2, queued: 1 });
    expect(stillOpen(was)(w1)).toBe(true);
    expect(offloadBacklogged()).toBe(true);
    expect(offloadCheckInMs()).toBe(Infinity);
    // A queued fstat can be withdrawn: it never runs.
    const file = openSync(import.meta.path, "r");
    const job = fstatOffThread(file);
    job.cancel();
    expect(offloadStats().queued).toBe(1);
    close(file);
    await lingering.release();
    await tendUntil("the queued close done once a worker returns", () => !stillOpen(was)(w1), 10000);
    expect(offloadBacklogged()).toBe(false);
    expect(job.settled).toBe(false);
    expect(offloadStats().failures).toBe(0);
  } finally {
    await lingering.release();
  }
}, 30000);

test("workers beyond the first retire once idle", async () => {
  expect(offloadStats().threads).toBe(2);
  expect(offloadCheckInMs()).toBeLessThanOrEqual(5000);
  await tendUntil("the idle worker to retire", () => offloadStats().threads === 1, 15000);
  expect(offloadCheckInMs()).toBe(Infinity);
  // Its exit is not a failure: the pool still closes off this thread (a worker ending with self.close(), which
  // Bun's workers lack, threw, and the pool fell back to closing everything on the caller's thread).
  await tendUntil("the retired worker to exit", () => offloadStats().retired === 1, 15000);
  expect(offloadStats().broken).toBe(false);
}, 40000);
