// `fdbroker send` as a user runs it: order of --fd/--open, default fd 0, describing what goes, exit codes.
import { expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, existsSync, openSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectTo } from "../../src/peer/endpoint.ts";
import { listenUnix } from "../../src/peer/listen.ts";
import { closeAll, isSysError } from "../../src/sys/index.ts";
import { CLI, fdbroker, spawn, waitFor } from "../helpers.ts";
import { startReady, tempDirAndFdCheck } from "./peer-helpers.ts";

setDefaultTimeout(60000);
const ctx = tempDirAndFdCheck();

test("fds go in command-line order, --fd and --open mixed; without either, fd 0 goes", async () => {
  const addr = join(ctx.dir.path, "o");
  const a = join(ctx.dir.path, "a");
  writeFileSync(a, "A");
  const r = startReady(["recv", addr, "--json"]);
  const f = openSync(a, "r");
  try {
    const s = await fdbroker(["send", addr, "--open", "file:/etc/hostname", "--fd", "3", "--open", "tcp:127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe", f] });
    expect(s).toMatchObject({ code: 0, stdout: "", stderr: "" });
  } finally {
    closeSync(f);
  }
  const got = JSON.parse((await r.result()).stdout)[0];
  expect(got.fds.map((x: { kind: string; path: string | null }) => x.path ?? x.kind)).toEqual(["/etc/hostname", a, "socket"]);

  const r2 = startReady(["recv", addr, "--json"]);
  const stdin = openSync(a, "r");
  try {
    expect((await fdbroker(["send", addr], { stdio: [stdin, "pipe", "pipe"] })).code).toBe(0);
  } finally {
    closeSync(stdin);
  }
  expect(JSON.parse((await r2.result()).stdout)[0].fds[0].path).toBe(a);
});

test("-v describes what is sent; --json the same as JSON, with the port a tcp:HOST:0 listener got", async () => {
  const addr = join(ctx.dir.path, "v");
  const r = startReady(["recv", addr, "--json"]);
  const s = await fdbroker(["send", addr, "--open", "tcp:127.0.0.1:0", "--json"]);
  expect(s.code).toBe(0);
  const sent = JSON.parse(s.stdout)[0].fds[0];
  const got = JSON.parse((await r.result()).stdout)[0].fds[0];
  expect(sent.socket.local).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(got.socket.local).toBe(sent.socket.local);
  expect(got.inode).toBe(sent.inode);

  const r2 = startReady(["recv", addr]);
  const v = await fdbroker(["send", addr, "--open", "file:/etc/hostname", "-v"]);
  expect(v.stdout).toMatch(/^#\s+KIND.*\n0\s+file\s+r cloexec\s+0\s+\d+\s+\/etc\/hostname\n$/);
  expect((await r2.result()).code).toBe(0);
});

test("unreachable: nothing at the path, or not a socket, exits 3 naming connect", async () => {
  const r = await fdbroker(["send", join(ctx.dir.path, "missing.sock"), "--timeout", "300ms", "--open", "file:/dev/null"]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/^fdbroker: connect: ENOENT \(.*missing\.sock\): no socket appeared in 300 ms\n$/);
  const plain = join(ctx.dir.path, "plain");
  writeFileSync(plain, "");
  // Not a socket: no wait would change that, so it fails at once, well inside the default 5 s.
  const started = Date.now();
  const r2 = await fdbroker(["send", plain, "--open", "file:/dev/null"]);
  expect(Date.now() - started).toBeLessThan(4000);
  expect(r2.code).toBe(3);
  expect(r2.stderr).toMatch(/^fdbroker: connect: ECONNREFUSED/);
});

test("--listen with no peer times out with exit 3 and leaves no socket file", async () => {
  const addr = join(ctx.dir.path, "lt");
  const r = await fdbroker(["send", addr, "--listen", "--timeout", "300", "--open", "file:/dev/null"]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/ETIMEDOUT/);
  expect(existsSync(addr)).toBe(false);
});

test("usage errors exit 2: bad spec, an fd not inherited, bad numbers, no address", async () => {
  const addr = join(ctx.dir.path, "u");
  const cases: [string[], RegExp][] = [
    [["send", addr, "--open", "bogus:1"], /bad spec: bogus:1/],
    [["send", addr, "--open", "file:/x?mode=z"], /bad mode/],
    [["send", addr, "--fd", "200"], /--fd 200: not an fd this process inherited/],
    // Given only 0-2, fdbroker's 3 and 4 are the runtime's own (its event loop): open, but nobody's to send.
    [["send", addr, "--fd", "3"], /--fd 3: not an fd this process inherited/],
    [["send", addr, "--open", "fd:4"], /--open fd:4: not an fd this process inherited/],
    [["send", addr, "--fd", "-1"], /--fd/],
    [["send", addr, "--timeout", "soon"], /--timeout/],
    [["send"], /missing required argument .ADDR./],
    [["send", "@"], /empty socket address/],
  ];
  for (const [args, msg] of cases) {
    const r = await fdbroker(args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.split("\n")).toHaveLength(2);
  }
});

test("a file that cannot be opened is a system error (exit 4) before anything is sent", async () => {
  const r = await fdbroker(["send", join(ctx.dir.path, "nobody"), "--open", `file:${ctx.dir.path}/no/such/file`]);
  expect(r.code).toBe(4);
  expect(r.stderr).toMatch(/ENOENT/);
});

test("SIGINT while waiting for a listener whose queue is full ends send at once with 130, not at --timeout", async () => {
  const addr = join(ctx.dir.path, "busy");
  const lfd = listenUnix(addr, { backlog: 0 });
  const queued: number[] = [];
  try {
    // Fill the listen queue: the next connect gets EAGAIN, and send keeps retrying until its timeout. Linux
    // queues backlog + 1 connections; the bound only keeps a kernel that queues more from looping forever.
    for (;;) {
      if (queued.length >= 64) throw new Error(`the listen queue took ${queued.length} connections and is not full`);
      try {
        queued.push(connectTo(addr, 50));
      } catch (e) {
        if (isSysError(e, "ETIMEDOUT")) break;
        throw e;
      }
    }
    const proc = spawn([...CLI, "send", addr, "--timeout", "20000", "--open", "file:/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
    // A socket above 2 (Bun's stdio pipes are sockets too) exists once the SIGINT handler is in place and the
    // connect attempts have begun.
    const connecting = () => readdirSync(`/proc/${proc.pid}/fd`).some((n) => {
      try {
        return Number(n) > 2 && readlinkSync(`/proc/${proc.pid}/fd/${n}`).startsWith("socket:");
      } catch {
        return false;
      }
    });
    await waitFor("send to start connecting", connecting);
    const t0 = Date.now();
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(130);
    // Exited on its own, as a shell expects (128 + 2), rather than killed by the signal.
    expect(proc.signalCode).toBeNull();
    // Not a timing assertion: waiting out the connect attempts, it would end only at the 20 s --timeout.
    expect(Date.now() - t0).toBeLessThan(15_000);
  } finally {
    closeAll([lfd, ...queued]);
  }
});
