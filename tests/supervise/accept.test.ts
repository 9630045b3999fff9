// What `run --ready accept` reads from /proc, against real processes waiting on a real listener in each way a
// server can (tests/fixtures/listen_waiter.py): an epoll watching it and a blocked accept are seen, select is not.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { acceptingFd, epollInodes, listenerInodes, processTree, treeAccepts } from "../../src/supervise/accept.ts";
import { boundSocket, C, close, dupCloexec, encodeUnix, fstat, listen, pipe, socketpair } from "../../src/sys/index.ts";
import { fdCount, lineReader, ROOT, spawn, tempDir, waitFor } from "../helpers.ts";

const WAITER = join(ROOT, "tests/fixtures/listen_waiter.py");

/** A waiter started directly, or (`underShell`) as the child of a shell, so it is a grandchild of ours. */
async function startWaiter(mode: string, underShell = false) {
  const proc = spawn(underShell ? ["sh", "-c", `python3 ${WAITER} ${mode}; :`] : ["python3", WAITER, mode]);
  const lines = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  const [pid, ino] = (await lines.line()).split(" ").map(Number) as [number, number];
  await lines.next(/^waiting$/);
  return {
    root: proc.pid, pid, ino,
    async stop() {
      process.kill(pid, "SIGKILL");
      await proc.exited;
    },
  };
}

/** Sleeping in the kernel: past start-up and blocked in whatever it waits with. */
const asleep = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").startsWith("S");

test("an epoll's fdinfo names each watched file's inode in hex; a thread's syscall line names a blocked accept's fd", () => {
  const fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\ntfd:        3 events:       19 data:                3  pos:0 ino:7b2f5 sdev:9\ntfd:        5 events:       19 data:                5  pos:0 ino:10 sdev:8\n";
  expect(epollInodes(fdinfo)).toEqual([0x7b2f5, 0x10]);
  expect(epollInodes("pos:\t0\nflags:\t02\n")).toEqual([]);
  expect(acceptingFd(`${C.SYS_accept4} 0x3 0x7ffc8625cde0 0x7ffc8625cdd4 0x80000 0x0 0x0 0x7ffc8625cda8 0x7f2d99328f63\n`)).toBe(3);
  expect(acceptingFd(`${C.SYS_accept} 0xa 0x0 0x0 0x0 0x0 0x0 0x7ffc 0x7f2d`)).toBe(10);
  expect(acceptingFd("232 0x4 0x56010035b340 0x3ff 0x7530 0x0 0x0 0x7fff000d57f8 0x7f7b28726ef3")).toBeNull(); // epoll_wait
  expect(acceptingFd("running")).toBeNull();
  expect(acceptingFd("")).toBeNull();
});

for (const mode of ["epoll", "accept", "thread-accept"]) {
  test(`a process waiting with ${mode} is seen waiting on its listener, and on nothing else`, async () => {
    const w = await startWaiter(mode);
    try {
      await waitFor(`${mode} to be seen`, () => treeAccepts(w.pid, [w.ino]));
      expect(treeAccepts(w.pid, [w.ino, w.ino + 1])).toBe(false);
      // Another process's tree does not count, though the listener's inode is the same everywhere.
      const other = spawn(["sleep", "30"]);
      expect(treeAccepts(other.pid, [w.ino])).toBe(false);
      other.kill();
      await other.exited;
    } finally {
      await w.stop();
    }
  });
}

test("a process waiting in select is not seen (its fd set is in its own memory): notify or exec: it is", async () => {
  const w = await startWaiter("select");
  try {
    await waitFor("the waiter to block", () => asleep(w.pid));
    expect(treeAccepts(w.pid, [w.ino])).toBe(false);
  } finally {
    await w.stop();
  }
});

test("the tree is the child and its descendants: a server the child forked counts", async () => {
  const w = await startWaiter("epoll", true);
  try {
    expect(w.pid).not.toBe(w.root);
    expect(processTree(w.root)).toEqual([w.root, w.pid]);
    await waitFor("the grandchild's epoll to be seen", () => treeAccepts(w.root, [w.ino]));
  } finally {
    await w.stop();
  }
});

test("only listening sockets are waited on: a connected socket, a pipe and a duplicate of a listener add nothing", () => {
  const before = fdCount();
  const dir = tempDir();
  const path = `${dir.path}/l`;
  const lis = boundSocket(C.AF_UNIX, "stream", encodeUnix(path), path);
  listen(lis, 16);
  const unbound = boundSocket(C.AF_UNIX, "stream", encodeUnix(`${dir.path}/u`), `${dir.path}/u`);
  const [a, b] = socketpair();
  const [r, w] = pipe();
  const dup = dupCloexec(lis);
  try {
    expect(listenerInodes([lis, unbound, a, r, dup])).toEqual([fstat(lis).ino]);
    expect(listenerInodes([a, b, w])).toEqual([]);
  } finally {
    for (const fd of [lis, unbound, a, b, r, w, dup]) close(fd);
    dir.cleanup();
  }
  // Earlier tests' child pipes may still be closing: at most what there was.
  expect(fdCount()).toBeLessThanOrEqual(before);
});
