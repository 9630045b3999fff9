// `fdbroker send` as a user runs it: order of --fd/--open, default fd 0, describing what goes, exit codes.
import { expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, existsSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fdbroker } from "../helpers.ts";
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
  const r = await fdbroker(["send", join(ctx.dir.path, "missing.sock"), "--open", "file:/dev/null"]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/^fdbroker: connect: ENOENT .*missing\.sock/);
  const plain = join(ctx.dir.path, "plain");
  writeFileSync(plain, "");
  const r2 = await fdbroker(["send", plain, "--open", "file:/dev/null"]);
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
    [["send", addr, "--fd", "-1"], /--fd/],
    [["send", addr, "--timeout", "soon"], /--timeout/],
    [["send"], /addr/],
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
