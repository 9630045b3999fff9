// `fdbroker recv` as a user runs it: real processes on both ends, output, exit codes, socket file cleanup.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { fdbroker } from "../helpers.ts";
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

test("--connect to nothing exits 3; a command that does not exist exits 127 after the fds arrived", async () => {
  const r = await fdbroker(["recv", join(ctx.dir.path, "nobody"), "--connect"]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/connect: ENOENT/);
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
