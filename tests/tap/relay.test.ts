// `fdbroker tap` between real peers (tests/tap/peer.py, Python): bytes, fds and message boundaries pass unchanged
// for stream, seqpacket and datagram sockets; records show previews and fds; --swap moves a live server's socket
// file aside and back; MSG_CTRUNC is reported; tap holds no fd once a connection is over.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { C, close, closeAll, connect, encodeUnix, fstat, pipe, recvmsg, sendmsg, socket, waitFd, type SocketType } from "../../src/sys/index.ts";
import { fdCount, newFdsSince, fdSnapshot, run, tempDir, waitFor } from "../helpers.ts";
import { PYTHON, startPeer, startTap, stopAll } from "./harness.ts";

setDefaultTimeout(60_000);

let dir: ReturnType<typeof tempDir>;
let ownFds: string[];
beforeEach(() => {
  ownFds = fdSnapshot();
  dir = tempDir("fdbroker-tap-");
});
afterEach(async () => {
  await stopAll();
  dir.cleanup();
  expect(await newFdsSince(ownFds)).toEqual([]);
});

/** A blocking client socket of `type` connected to `path`. */
function dial(path: string, type: SocketType = "stream"): number {
  const fd = socket(C.AF_UNIX, type, false);
  connect(fd, encodeUnix(path), path, 10_000);
  return fd;
}

/** The next message on a blocking socket (bounded wait). */
function expectMessage(fd: number) {
  expect(waitFd(fd, C.POLLIN, 20_000)).not.toBe(0);
  return recvmsg(fd, 1 << 16, 8)!;
}

test("stream: bytes and fds pass both ways; records preview text and hex (--bytes), describe the fd, name the client", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["stream-echo", srv]);
  const tap = await startTap([join(dir.path, "tap.sock"), "--to", srv, "--bytes", "4"]);
  const file = join(dir.path, "f");
  writeFileSync(file, "x");
  const [r, w] = pipe();
  const c = dial(join(dir.path, "tap.sock"));
  try {
    sendmsg(c, new TextEncoder().encode("hello tap"), [r]);
    const back = expectMessage(c);
    expect(new TextDecoder().decode(back.data)).toBe("hello tap");
    expect(back.fds.map((fd) => fstat(fd).ino)).toEqual([fstat(r).ino]);
    closeAll(back.fds);
    expect(await server.next()).toEqual({ data: "hello tap", inodes: [fstat(r).ino] });
    sendmsg(c, new Uint8Array([0, 1, 2, 255, 7]));
    expect([...expectMessage(c).data]).toEqual([0, 1, 2, 255, 7]);

    const toServer = await tap.waitRecord((x) => x.event === "message" && x.dir === "c>s" && x.fds.length === 1);
    expect(toServer).toMatchObject({ bytes: 9, preview: { text: "hell" }, client: { pid: process.pid, uid: process.getuid!() } });
    expect(toServer.fds[0]).toMatchObject({ kind: "pipe", inode: fstat(r).ino, access: "r" });
    expect(await tap.waitRecord((x) => x.dir === "s>c" && x.fds.length === 1)).toMatchObject({ bytes: 9 });
    expect(await tap.waitRecord((x) => x.dir === "c>s" && x.bytes === 5)).toMatchObject({ preview: { hex: "000102ff" } });
    expect(tap.records().find((x) => x.event === "open")).toMatchObject({ client: { pid: process.pid, command: expect.any(String) } });
  } finally {
    closeAll([c, r, w]);
  }
  await tap.waitRecord((x) => x.event === "close");
  expect(await tap.stop()).toEqual({ code: 0, stderr: "" });
  expect(existsSync(join(dir.path, "tap.sock"))).toBe(false);
});

test("human output: one line per message with a text or hex preview, then one line per fd", async () => {
  const srv = join(dir.path, "srv.sock");
  await startPeer(["stream-echo", srv]);
  const tap = await startTap([join(dir.path, "tap.sock"), "--to", srv, "--bytes", "3"], false);
  const [r, w] = pipe();
  const c = dial(join(dir.path, "tap.sock"));
  try {
    sendmsg(c, new TextEncoder().encode("abcdef"), [w]);
    closeAll(expectMessage(c).fds);
    sendmsg(c, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    expectMessage(c);
  } finally {
    closeAll([c, r, w]);
  }
  await waitFor("the close record", () => tap.lines.some((l) => / #1 close/.test(l)));
  await tap.stop();
  const text = tap.lines.join("\n");
  expect(text).toMatch(/ #1 open pid \d+ uid \d+ gid \d+ \S+/);
  expect(text).toMatch(/ #1 c>s 6 bytes 1 fd "abc"\.\.\.\n    fd 0: pipe w inode \d+ pipe:\[\d+\]/);
  expect(text).toMatch(/ #1 s>c 6 bytes 1 fd "abc"\.\.\./);
  expect(text).toMatch(/ #1 c>s 4 bytes hex deadbe\.\.\./);
});

test("stream, bulk: 8 MiB with an fd after every MiB (spliced while no fds wait): every byte in order, each fd never late", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["bulk-check", srv]);
  const tap = await startTap([join(dir.path, "tap.sock"), "--to", srv]);
  const file = join(dir.path, "f");
  writeFileSync(file, "x");
  const sent = await run([PYTHON, join(import.meta.dir, "peer.py"), "bulk-send", join(dir.path, "tap.sock"), file, "8"]);
  expect(sent.stderr).toBe("");
  const want = JSON.parse(sent.stdout) as { total: number; sha256: string; marks: number[] };
  const got = (await server.next()) as unknown as { total: number; sha256: string; fds: [number, number, number][] };
  expect({ total: got.total, sha256: got.sha256 }).toEqual({ total: want.total, sha256: want.sha256 });
  const ino = lstatSync(file).ino;
  expect(got.fds.map((f) => f[2])).toEqual(want.marks.map(() => ino));
  // The kernel may hand fds over with bytes sent before them (one read takes several sends), never after them.
  got.fds.forEach(([from, to], i) => {
    expect(from).toBeLessThanOrEqual(want.marks[i]!);
    expect(to).toBeGreaterThan(want.marks[i]!);
  });
  // Records are written after the turn that relayed their bytes: the last may come after the server has them all.
  const messages = () => tap.records().filter((x) => x.event === "message");
  await waitFor("every message recorded", () => messages().reduce((n, m) => n + m.bytes, 0) >= want.total, 10_000).catch(() => {});
  const msgs = messages();
  expect(msgs.reduce((n, m) => n + m.bytes, 0)).toBe(want.total);
  expect(msgs.filter((m) => m.fds.length > 0).length).toBe(8);
  expect(await tap.stop()).toEqual({ code: 0, stderr: "" });
});

test("seqpacket: message boundaries kept, an fd per message", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["seqpacket-echo", srv]);
  const tap = await startTap([join(dir.path, "tap.sock"), "--to", srv]);
  expect(tap.records()[0]).toMatchObject({ event: "listening", type: "seqpacket" });
  const [r, w] = pipe();
  const c = dial(join(dir.path, "tap.sock"), "seqpacket");
  try {
    for (const m of ["a", "bb", "ccc"]) sendmsg(c, new TextEncoder().encode(m), [r]);
    for (const m of ["a", "bb", "ccc"]) {
      const back = expectMessage(c);
      expect(new TextDecoder().decode(back.data)).toBe(m);
      closeAll(back.fds);
      expect(await server.next()).toEqual({ data: m, inodes: [fstat(r).ino] });
    }
  } finally {
    closeAll([c, r, w]);
  }
  await tap.stop();
});

test("datagram: a Python sender's fds reach a Python server through tap (same inode), one datagram each, answers come back", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["dgram-server", srv]);
  const tapPath = join(dir.path, "tap.sock");
  const tap = await startTap([tapPath, "--to", srv]);
  expect(tap.records()[0]).toMatchObject({ event: "listening", type: "dgram" });
  const file = join(dir.path, "passed");
  writeFileSync(file, "passed");
  const ino = lstatSync(file).ino;
  const client = await run([PYTHON, join(import.meta.dir, "peer.py"), "dgram-client", tapPath, join(dir.path, "client.sock"), file]);
  expect(client.stderr).toBe("");
  expect(client.code).toBe(0);
  expect(JSON.parse(client.stdout)).toEqual(["ok 1", "ok 2", "ok 0", "ok 0"]);
  expect(await server.next()).toEqual({ data: "one", inodes: [ino] });
  expect(await server.next()).toEqual({ data: "two two", inodes: [ino, ino] });
  expect(await server.next()).toEqual({ data: "three", inodes: [] });
  const msgs = tap.records().filter((x) => x.event === "message");
  expect(msgs.map((m) => `${m.dir} ${m.bytes} ${m.fds.length}`)).toEqual(["c>s 3 1", "s>c 4 0", "c>s 7 2", "s>c 4 0", "c>s 5 0", "s>c 4 0", "c>s 3 0", "s>c 4 0"]);
  expect(msgs[0]!.fds[0]).toMatchObject({ kind: "file", inode: ino, path: file });
  expect(tap.records().find((x) => x.event === "open")).toMatchObject({ client: { address: join(dir.path, "client.sock") } });
  expect(await tap.stop()).toEqual({ code: 0, stderr: "" });
});

test("--swap: clients of the original path go through tap; SIGTERM puts the server's own socket file back", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["stream-echo", srv]);
  const before = lstatSync(srv);
  const tap = await startTap(["--swap", srv]);
  expect(lstatSync(srv).ino).not.toBe(before.ino);
  expect(lstatSync(srv).mode).toBe(before.mode);
  const c = dial(srv);
  try {
    sendmsg(c, new TextEncoder().encode("via the original path"));
    expect(new TextDecoder().decode(expectMessage(c).data)).toBe("via the original path");
  } finally {
    close(c);
  }
  expect(await server.next()).toMatchObject({ data: "via the original path" });
  expect(await tap.waitRecord((x) => x.dir === "c>s")).toMatchObject({ preview: { text: "via the original path" } });
  expect(await tap.stop()).toEqual({ code: 0, stderr: "" });
  expect(lstatSync(srv).ino).toBe(before.ino);
  expect(readdirSync(dir.path).sort()).toEqual(["srv.sock"]);
  // Straight to the server again: no record appears anywhere now, and the answer comes.
  const d = dial(srv);
  try {
    sendmsg(d, new TextEncoder().encode("direct"));
    expect(new TextDecoder().decode(expectMessage(d).data)).toBe("direct");
  } finally {
    close(d);
  }
});

test("MSG_CTRUNC: more fds than --max-fds is reported, the bytes pass on, and tap's fd count returns to where it was", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["stream-echo", srv]);
  const tap = await startTap([join(dir.path, "tap.sock"), "--to", srv, "--max-fds", "1"]);
  const base = fdCount(tap.proc.pid);
  const pipes = [pipe(), pipe(), pipe()];
  const c = dial(join(dir.path, "tap.sock"));
  try {
    sendmsg(c, new TextEncoder().encode("three fds"), pipes.map((p) => p[0]));
    const back = expectMessage(c);
    expect(new TextDecoder().decode(back.data)).toBe("three fds");
    expect(back.fds).toEqual([]);
    expect(await server.next()).toEqual({ data: "three fds", inodes: [] });
    expect(await tap.waitRecord((x) => x.dir === "c>s")).toMatchObject({ ctrunc: { closedFds: expect.any(Number) }, fds: [] });
    // Within the limit: one fd passes and is let go by tap once sent.
    sendmsg(c, new TextEncoder().encode("one"), [pipes[0]![0]]);
    closeAll(expectMessage(c).fds);
  } finally {
    closeAll([c, ...pipes.flat()]);
  }
  await tap.waitRecord((x) => x.event === "close");
  await waitFor("tap's fd count to settle", () => fdCount(tap.proc.pid) === base, 10_000).catch(() => {});
  expect(fdCount(tap.proc.pid)).toBe(base);
  await tap.stop();
});

test("usage: LISTEN without --to, or --swap with LISTEN, exit 2; an upstream nobody listens on, or --swap of a missing file, exit 3", async () => {
  const { fdbroker } = await import("../helpers.ts");
  expect((await fdbroker(["tap", join(dir.path, "t.sock")])).code).toBe(2);
  expect((await fdbroker(["tap", join(dir.path, "t.sock"), "--swap", join(dir.path, "x")])).code).toBe(2);
  const r = await fdbroker(["tap", join(dir.path, "t.sock"), "--to", join(dir.path, "nobody.sock")]);
  expect(r.code).toBe(3);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(existsSync(join(dir.path, "t.sock"))).toBe(false);
  // --swap of a path with no socket file: the same, not lstat's ENOENT as a system error (exit 4).
  const swap = await fdbroker(["tap", "--swap", join(dir.path, "nobody.sock")]);
  expect(swap).toMatchObject({ code: 3, stderr: expect.stringMatching(/^fdbroker: connect: ENOENT \(.*nobody\.sock\) \([^\n]*\)\n$/) });
});

const setpriv = Bun.which("setpriv");
const asNobody = (cmd: string[]) => ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", ...cmd];
const CONNECT = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); s.sendall(b'hi'); print(s.recv(10))\nexcept OSError as e: print(e.errno)";

test.skipIf(!setpriv)("who may connect: tap's socket is 0600; with --mode 0666 another uid is still refused unless --any-uid (the server would see tap's uid)", async () => {
  const srv = join(dir.path, "srv.sock");
  const server = await startPeer(["stream-echo", srv]);
  const tapSock = join(dir.path, "tap.sock");
  const tap = await startTap([tapSock, "--to", srv]);
  expect(lstatSync(tapSock).mode & 0o777).toBe(0o600);
  const { chmodSync } = await import("node:fs");
  chmodSync(dir.path, 0o755);
  // EACCES (13): the socket file is root's, 0600.
  expect((await run(asNobody([PYTHON, "-c", CONNECT, tapSock]))).stdout.trim()).toBe("13");
  await tap.stop();

  const open = await startTap([tapSock, "--to", srv, "--mode", "0666"]);
  const refused = await run(asNobody([PYTHON, "-c", CONNECT, tapSock]));
  // Closed at once, unread: an empty answer, ECONNRESET (104) when its bytes were still queued, or EPIPE (32) when
  // tap closed it before they were sent.
  expect(refused.stdout.trim()).toMatch(/^(b''|104|32)$/);
  expect(await open.waitRecord((x) => x.event === "error")).toMatchObject({ message: expect.stringContaining("uid 65534 refused") });
  await open.stop();

  const any = await startTap([tapSock, "--to", srv, "--mode", "0666", "--any-uid"]);
  expect((await run(asNobody([PYTHON, "-c", CONNECT, tapSock]))).stdout.trim()).toBe("b'hi'");
  expect(await server.next()).toMatchObject({ data: "hi" });
  expect(await any.waitRecord((x) => x.event === "open")).toMatchObject({ client: { uid: 65534 } });
  await any.stop();
});

test.skipIf(!setpriv)("--swap needs write access to the socket's directory (and its file, under protected_hardlinks): refused (exit 4), the server's file untouched", async () => {
  const srv = join(dir.path, "srv.sock");
  await startPeer(["stream-echo", srv]);
  const { chmodSync } = await import("node:fs");
  chmodSync(dir.path, 0o755);
  chmodSync(srv, 0o777);
  const before = lstatSync(srv).ino;
  const { CLI } = await import("../helpers.ts");
  const r = await run(asNobody([...CLI, "tap", "--swap", srv]));
  expect(r.code).toBe(4);
  // EPERM when fs.protected_hardlinks refuses the link first (the file is not the caller's), else EACCES.
  expect(r.stderr).toMatch(/^fdbroker: link: (EACCES|EPERM) /);
  expect(lstatSync(srv).ino).toBe(before);
  expect(readdirSync(dir.path).sort()).toEqual(["srv.sock"]);
});

test("--swap with its output closed (tap ... | head -1): the next record ends the tap, and the server's file is put back", async () => {
  const srv = join(dir.path, "srv.sock");
  await startPeer(["stream-echo", srv]);
  const before = lstatSync(srv).ino;
  const { CLI, spawn, finish } = await import("../helpers.ts");
  const quoted = [...CLI, "tap", "--swap", srv].map((a) => `'${a}'`).join(" ");
  const sh = spawn(["sh", "-c", `${quoted} | head -1; echo "tap $?"`]);
  await waitFor("tap to take the socket's place", () => lstatSync(srv).ino !== before);
  // A connection's open record meets the closed pipe once head has gone: tap stops and puts the file back.
  await waitFor("tap to meet its closed output", () => {
    close(dial(srv));
    return sh.exitCode !== null;
  });
  const r = await finish(sh);
  expect(r.stdout).toMatch(/listening at .*\ntap 0\n$/);
  expect(lstatSync(srv).ino).toBe(before);
  expect(readdirSync(dir.path).sort()).toEqual(["srv.sock"]);
});
