// describeFd on this process's fds and describeProcFds on another's, over real kernel objects of every kind.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync, readSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeFd, describeProcFd, describeProcFds, listenUnix, connect, socketPair, UsageError } from "../../src/index.ts";
import { openSpec } from "../../src/open/spec.ts";
import { C, close, closeAll, connect as sysConnect, encodeInet, isSysError, pipe, socket } from "../../src/sys/index.ts";
import { fdSnapshot, lineReader, newFdsSince, run, spawn, tempDir } from "../helpers.ts";

setDefaultTimeout(60000);
let dir: ReturnType<typeof tempDir>;
let before: string[];
const held: number[] = [];
beforeEach(() => {
  dir = tempDir();
  before = fdSnapshot();
});
afterEach(async () => {
  closeAll(held.splice(0));
  dir.cleanup();
  expect(await newFdsSince(before)).toEqual([]);
});
const hold = (fd: number) => (held.push(fd), fd);

test("a regular file: path, offset after a read, size, inode, access and flags", () => {
  const path = join(dir.path, "f.txt");
  writeFileSync(path, "0123456789");
  const fd = hold(openSync(path, "r"));
  readSync(fd, Buffer.alloc(4));
  const d = describeFd(fd);
  expect(d).toMatchObject({ fd, kind: "file", path, deleted: false, access: "r", offset: 4, size: 10, inode: statSync(path).ino, socket: null });
  const a = hold(openSync(path, "a"));
  expect(describeFd(a)).toMatchObject({ access: "w", offset: 0 }); // O_APPEND moves the offset only on write
  expect(describeFd(a).flags).toContain("append");
  const rw = hold(openSync(path, "r+"));
  expect(describeFd(rw).access).toBe("rw");
});

test("a deleted file, a directory, /dev/null and a FIFO", async () => {
  const path = join(dir.path, "gone");
  writeFileSync(path, "x");
  const f = hold(openSync(path, "r"));
  unlinkSync(path);
  expect(describeFd(f)).toMatchObject({ kind: "file", path, deleted: true });
  expect(describeFd(hold(openSync(dir.path, "r")))).toMatchObject({ kind: "directory", path: dir.path, offset: 0 });
  expect(describeFd(hold(openSync("/dev/null", "w")))).toMatchObject({ kind: "chardev", path: "/dev/null", access: "w" });
  const fifo = join(dir.path, "fifo");
  expect((await run(["mkfifo", fifo])).code).toBe(0);
  // O_RDWR opens a FIFO without waiting for a writer.
  expect(describeFd(hold(openSync(fifo, "r+")))).toMatchObject({ kind: "fifo", path: fifo, offset: null });
});

test("pipe ends: kind, direction, no offset", () => {
  const [r, w] = pipe();
  hold(r);
  hold(w);
  const dr = describeFd(r);
  expect(dr).toMatchObject({ kind: "pipe", access: "r", offset: null, path: null });
  expect(dr.flags).toContain("cloexec");
  expect(dr.target).toBe(`pipe:[${dr.inode}]`);
  expect(describeFd(w)).toMatchObject({ kind: "pipe", access: "w", inode: dr.inode });
});

test("UNIX sockets: listening on a path and an abstract name, a connected pair, an unnamed socketpair", () => {
  const path = join(dir.path, "l.sock");
  const l = hold(listenUnix(path));
  expect(describeFd(l).socket).toEqual({
    family: "unix", type: "stream", local: path, peer: null, localAddress: { path }, peerAddress: null, listening: true,
  });
  const c = hold(connect(path));
  expect(describeFd(c).socket).toEqual({
    family: "unix", type: "stream", local: null, peer: path, localAddress: null, peerAddress: { path }, listening: false,
  });
  const abs = `@fdbroker-describe-${process.pid}`;
  expect(describeFd(hold(listenUnix(abs))).socket).toMatchObject({ local: abs, localAddress: { abstract: abs.slice(1) }, listening: true });
  const [a, b] = socketPair();
  hold(a);
  hold(b);
  expect(describeFd(a).socket).toEqual({
    family: "unix", type: "stream", local: null, peer: null, localAddress: null, peerAddress: null, listening: false,
  });
  expect(describeFd(a).flags).toEqual(["nonblock", "cloexec"]);
});

test("TCP and UDP sockets over IPv4 and IPv6, listening and connected", () => {
  const t4 = hold(openSpec("tcp:127.0.0.1:0"));
  const s4 = describeFd(t4).socket!;
  expect(s4).toMatchObject({ family: "inet", type: "stream", listening: true, peer: null });
  const port = Number(s4.local!.split(":")[1]);
  const client = hold(socket(C.AF_INET, "stream"));
  sysConnect(client, encodeInet("127.0.0.1", port), "test", 5000);
  expect(describeFd(client).socket).toMatchObject({ family: "inet", listening: false, peer: `127.0.0.1:${port}` });
  expect(describeFd(hold(openSpec("udp:127.0.0.1:0"))).socket).toMatchObject({ family: "inet", type: "dgram", listening: false });
  expect(describeFd(hold(openSpec("tcp:[::1]:0"))).socket).toMatchObject({ family: "inet6", type: "stream", listening: true });
  const s6 = describeFd(hold(openSpec("tcp:[::1]:0"))).socket!;
  expect(s6.local).toMatch(/^\[::1\]:\d+$/);
  // The same address in parts, so a script need not split "[::1]:80" on its last colon.
  expect(s6.localAddress).toEqual({ host: "::1", port: Number(s6.local!.split("]:")[1]) });
  expect(s4.localAddress).toEqual({ host: "127.0.0.1", port });
});

test("through /proc, this process's fds read the same as through syscalls", () => {
  const path = join(dir.path, "same.sock");
  const fds = [
    hold(listenUnix(path)),
    hold(openSpec("tcp:127.0.0.1:0")),
    hold(openSpec("udp:[::1]:0")),
    hold(openSpec("file:/etc/hostname")),
    ...pipe().map(hold),
  ];
  const tcpPort = describeFd(fds[1]!).socket!.local!.split(":")[1];
  const client = hold(socket(C.AF_INET, "stream"));
  sysConnect(client, encodeInet("127.0.0.1", Number(tcpPort)), "test", 5000);
  fds.push(client);
  const viaProc = describeProcFds(process.pid, fds);
  fds.forEach((fd, i) => expect(viaProc[i]).toEqual(describeFd(fd)));
  expect(describeProcFd(process.pid, fds[0]!).socket).toMatchObject({ local: path, listening: true });
});

test("another process's eventfd, epoll, pidfd, memfd and sockets, described through /proc", async () => {
  const script = `
import os, select, socket, json, sys
ev = os.eventfd(7)
ep = select.epoll(); ep.register(ev, select.EPOLLIN)
pid = os.pidfd_open(os.getpid())
mem = os.memfd_create("fdbroker-test"); os.write(mem, b"12345")
u = socket.socket(socket.AF_UNIX); u.bind("\\0fdbroker-py-${process.pid}"); u.listen()
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
c = socket.create_connection(t.getsockname())
print(json.dumps({"pid": os.getpid(), "ev": ev, "ep": ep.fileno(), "pidfd": pid, "mem": mem, "u": u.fileno(), "t": t.fileno(), "c": c.fileno(), "port": t.getsockname()[1]}), flush=True)
sys.stdin.read()
`;
  const py = spawn(["python3", "-c", script], { stdin: "pipe" });
  const fds = JSON.parse(await lineReader(py.stdout as ReadableStream<Uint8Array>).line());
  const d = (fd: number) => describeProcFd(fds.pid, fd);
  expect(d(fds.ev)).toMatchObject({ kind: "eventfd", details: { "eventfd-count": "7" } });
  expect(d(fds.ep)).toMatchObject({ kind: "epoll", details: { watches: String(fds.ev) } });
  expect(d(fds.pidfd)).toMatchObject({ kind: "pidfd", details: { Pid: String(fds.pid) } });
  expect(d(fds.mem)).toMatchObject({ kind: "memfd", path: "memfd:fdbroker-test", size: 5, offset: 5, deleted: false });
  expect(d(fds.u).socket).toEqual({
    family: "unix", type: "stream", local: `@fdbroker-py-${process.pid}`, peer: null,
    localAddress: { abstract: `fdbroker-py-${process.pid}` }, peerAddress: null, listening: true,
  });
  expect(d(fds.t).socket).toEqual({
    family: "inet", type: "stream", local: `127.0.0.1:${fds.port}`, peer: null,
    localAddress: { host: "127.0.0.1", port: fds.port }, peerAddress: null, listening: true,
  });
  expect(d(fds.c).socket).toMatchObject({ family: "inet", peer: `127.0.0.1:${fds.port}`, peerAddress: { host: "127.0.0.1", port: fds.port }, listening: false });
  const all = describeProcFds(fds.pid);
  expect(all.map((x) => x.fd)).toEqual(expect.arrayContaining([0, 1, 2, fds.ev, fds.ep, fds.pidfd, fds.mem]));
  (py.stdin as import("bun").FileSink).end();
  expect(await py.exited).toBe(0);
});

test("errors: a closed fd is EBADF, a missing process or fd is a usage error", () => {
  const [r, w] = pipe();
  close(r);
  close(w);
  let err: unknown;
  try {
    describeFd(r);
  } catch (e) {
    err = e;
  }
  expect(isSysError(err, "EBADF")).toBe(true);
  expect(() => describeProcFds(2 ** 22 + 12345)).toThrow(UsageError);
  expect(() => describeProcFd(process.pid, 99999)).toThrow(/fd 99999 is not open/);
});
