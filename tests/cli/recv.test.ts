// `fdbroker recv` as a user runs it: real processes on both ends, output, exit codes, socket file cleanup.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { CLI, fdbroker, finish, lineReader, spawn } from "../helpers.ts";
import { startReady, tempDirAndFdCheck } from "./peer-helpers.ts";

setDefaultTimeout(60000);
const ctx = tempDirAndFdCheck();

test("describes each message as a table: text payload, fd kind, access, offset, inode, path", async () => {
  const addr = join(ctx.dir.path, "s");
  const r = startReady(["recv", addr]);
  const s = await fdbroker(["send", addr, "--open", "file:/etc/hostname", "--data", "hi there"]);
  expect(s.code).toBe(0);
  const { stdout, stderr, code } = await r.result();
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const lines = stdout.trimEnd().split("\n");
  expect(lines[0]).toBe('message 1: payload "hi there" (8 bytes), 1 fd');
  expect(lines[1]).toMatch(/^#\s+KIND\s+ACCESS\s+OFFSET\s+INODE\s+WHAT$/);
  expect(lines[2]).toMatch(/^0\s+file\s+r cloexec\s+0\s+\d+\s+\/etc\/hostname$/);
  expect(existsSync(addr)).toBe(false);
});

test("a binary payload shows as hex; the default payload is one NUL byte", async () => {
  const addr = `@fdbroker-cli-recv-${process.pid}-hex`;
  const r = startReady(["recv", addr]);
  expect((await fdbroker(["send", addr, "--open", "file:/dev/null"])).code).toBe(0);
  const { stdout } = await r.result();
  expect(stdout).toStartWith("message 1: payload hex 00 (1 byte), 1 fd\n");
});

test("--connect to a listening send, --json, --count stops early and closes the extra fds", async () => {
  const addr = join(ctx.dir.path, "l");
  const s = startReady(["send", addr, "--listen", "--open", "file:/etc/hostname", "--open", "tcp:127.0.0.1:0", "--data", "a:b"]);
  const r = await fdbroker(["recv", addr, "--connect", "--json", "--count", "1"]);
  expect(r.stderr).toBe("fdbroker: closed 1 fds past --count 1\n");
  expect(r.code).toBe(0);
  const msgs = JSON.parse(r.stdout);
  expect(msgs).toHaveLength(1);
  expect(msgs[0]).toMatchObject({ title: "message 1", bytes: 3, payload: { text: "a:b" } });
  expect(msgs[0].fds).toHaveLength(1);
  expect(msgs[0].fds[0]).toMatchObject({ id: 0, kind: "file", path: "/etc/hostname" });
  expect((await s.result()).code).toBe(0);
  expect(existsSync(addr)).toBe(false);
});

test("--names labels the fds from the payload; a count mismatch is an error", async () => {
  const addr = join(ctx.dir.path, "n");
  const r = startReady(["recv", addr, "--names", "--json"]);
  await fdbroker(["send", addr, "--open", "file:/etc/hostname", "--open", "file:/dev/null", "--data", "host:null"]);
  const out = await r.result();
  expect(out.code).toBe(0);
  expect(JSON.parse(out.stdout)[0].fds.map((f: { name: string }) => f.name)).toEqual(["host", "null"]);

  const r2 = startReady(["recv", addr, "--names"]);
  await fdbroker(["send", addr, "--open", "file:/dev/null", "--data", "a:b"]);
  const bad = await r2.result();
  expect(bad.code).toBe(2);
  expect(bad.stderr).toBe("fdbroker: --names: the payload names 2 fds but 1 arrived\n");
});

test("--timeout with no peer exits 3 and removes the socket file", async () => {
  const addr = join(ctx.dir.path, "t");
  const r = await fdbroker(["recv", addr, "--timeout", "300"]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/^fdbroker: accept4: ETIMEDOUT .*no peer connected in 300 ms\n$/);
  expect(existsSync(addr)).toBe(false);
});

test("a peer sending more than --max-bytes or --max-fds: exit 4, one line", async () => {
  const addr = join(ctx.dir.path, "m");
  const r = startReady(["recv", addr, "--max-bytes", "4"]);
  await fdbroker(["send", addr, "--open", "file:/dev/null", "--data", "too long"]);
  const out = await r.result();
  expect(out.code).toBe(4);
  expect(out.stderr).toMatch(/^fdbroker: recvmsg: EMSGSIZE .*limit of 4 payload bytes\n$/);
  // Two fds to a limit of one: an odd limit leaves the kernel room for one more (8-byte alignment); still refused.
  const addr2 = join(ctx.dir.path, "m2");
  const r2 = startReady(["recv", addr2, "--max-fds", "1"]);
  await fdbroker(["send", addr2, "--open", "file:/dev/null", "--open", "file:/dev/null"]);
  const out2 = await r2.result();
  expect(out2.code).toBe(4);
  expect(out2.stderr).toMatch(/^fdbroker: recvmsg: ENOBUFS .*more than the limit of 1 fds.*everything received was closed\n$/);
});

test("SIGTERM while waiting: the socket file is removed and the exit status is 128+15", async () => {
  const addr = join(ctx.dir.path, "sig");
  const r = startReady(["recv", addr]);
  expect(existsSync(addr)).toBe(true);
  r.proc.kill("SIGTERM");
  const out = await r.result();
  expect(out.code).toBe(143);
  expect(existsSync(addr)).toBe(false);
});

test("usage errors exit 2 with one line", async () => {
  for (const args of [["recv"], ["recv", "x", "--count", "zero"], ["recv", "x", "--count", "0"], ["recv", "x", "--bogus"], ["recv", ""], ["recv", "x", "--ready-fd", "77"]]) {
    const r = await fdbroker(args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toMatch(/^fdbroker: [^\n]+\n$/);
  }
});

test("--connect to nothing exits 3 after --timeout; a command that does not exist exits 127 after the fds arrived", async () => {
  const r = await fdbroker(["recv", join(ctx.dir.path, "nobody"), "--connect", "--timeout", "300ms"]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/^fdbroker: connect: ENOENT \(.*\/nobody\): no socket appeared in 300 ms\n$/);
  const addr = join(ctx.dir.path, "x");
  const rx = startReady(["recv", addr, "--", "/nonexistent/cmd"]);
  const nul = openSync("/dev/null", "r");
  try {
    await fdbroker(["send", addr, "--fd", "3"], { stdio: ["ignore", "pipe", "pipe", nul] });
  } finally {
    closeSync(nul);
  }
  const out = await rx.result();
  expect(out.code).toBe(127);
  expect(out.stderr).toMatch(/execve: ENOENT .*\/nonexistent\/cmd/);
});

test("--connect started before the peer listens waits for its socket; -v says what it waits for and who connected", async () => {
  const addr = join(ctx.dir.path, "later");
  const r = spawn([...CLI, "recv", addr, "--connect", "--timeout", "60s", "-v", "--json"]);
  const err = lineReader(r.stderr as ReadableStream<Uint8Array>);
  // Only once recv says it waits does the peer start: the wait is seen, not guessed with a sleep.
  expect((await err.next(/^fdbroker: waiting/)).input).toBe(`fdbroker: waiting up to 1m for a socket to appear at ${addr} (connect: ENOENT)`);
  const s = startReady(["send", addr, "--listen", "--open", "file:/etc/hostname"]);
  const [stdout, code] = await Promise.all([new Response(r.stdout as ReadableStream).text(), r.exited]);
  expect(code).toBe(0);
  expect(JSON.parse(stdout)[0].fds[0].path).toBe("/etc/hostname");
  const peer = new RegExp(`^fdbroker: peer pid ${s.proc.pid}, uid 0 \\(root\\), gid 0 \\(root\\), command \\S+\n$`);
  expect(await err.rest()).toMatch(peer);
  expect((await s.result()).code).toBe(0);
});

test("-v on the listening side says it listens and for how long; a stale socket file is waited on until someone listens", async () => {
  const addr = join(ctx.dir.path, "stale");
  Bun.spawnSync(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(addr)})`]);
  const timedOut = await fdbroker(["send", addr, "--timeout", "200ms", "--open", "file:/dev/null"]);
  expect(timedOut.code).toBe(3);
  expect(timedOut.stderr).toMatch(/^fdbroker: connect: ECONNREFUSED \(.*\/stale\): nobody accepted in 200 ms\n$/);

  const s = spawn([...CLI, "send", addr, "-v", "--timeout", "60s", "--open", "file:/etc/hostname"]);
  const err = lineReader(s.stderr as ReadableStream<Uint8Array>);
  await err.next(new RegExp(`^fdbroker: waiting up to 1m for a listener at .*/stale \\(connect: ECONNREFUSED\\)$`));
  const r = spawn([...CLI, "recv", addr, "-v", "--timeout", "60s"]);
  const out = await finish(r);
  expect(out.code).toBe(0);
  expect(out.stderr).toStartWith(`fdbroker: listening on ${addr}; waiting up to 1m for a peer\nfdbroker: peer pid ${s.pid}, uid 0 (root)`);
  expect(await s.exited).toBe(0);
  await err.rest();
});

test("--count 3 from a peer that sends one fd and closes normally: exit 1 naming what arrived, not ECONNRESET", async () => {
  const addr = join(ctx.dir.path, "short");
  const s = startReady(["send", addr, "--listen", "--open", "file:/etc/hostname"]);
  const r = await fdbroker(["recv", addr, "--connect", "--count", "3"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`the peer at ${addr} closed after 1 of the 3 fds --count asked for`);
  expect(r.stderr).not.toContain("ECONNRESET");
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect((await s.result()).code).toBe(0);
});
