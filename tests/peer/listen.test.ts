// Unlink only your own socket file (issue 8, finding 10): a broker, recv or send --listen whose file was removed
// while it ran, and whose path another one then took, leaves the newcomer's file alone when it stops.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startReady } from "../cli/peer-helpers.ts";
import { CLI, fdbroker, fdSnapshot, finish, newFdsSince, spawnReady, tempDir } from "../helpers.ts";

setDefaultTimeout(60000);
let dir: ReturnType<typeof tempDir>;
let path: string;
let before: string[];
beforeEach(() => {
  dir = tempDir();
  path = join(dir.path, "s.sock");
  before = fdSnapshot();
});
afterEach(async () => {
  dir.cleanup();
  expect(await newFdsSince(before)).toEqual([]);
});

const serve = () => spawnReady([...CLI, "serve", "-s", path, "--ready-fd", "3"], { stdio: ["ignore", "ignore", "pipe"] }).proc;

test("serve: A's file removed, B started on the path, SIGTERM to A: B is still reachable", async () => {
  const a = serve();
  rmSync(path);
  const b = serve();
  a.kill("SIGTERM");
  const stopped = await finish(a);
  expect(stopped.code).toBe(0);
  expect(stopped.stderr).toContain(" stop ok (the socket file is gone or no longer the one this broker bound: left alone)\n");
  const st = await fdbroker(["status", "--json", "-s", path]);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.stdout).pid).toBe(b.pid);
  b.kill("SIGTERM");
  expect(await b.exited).toBe(0);
  // B's file was its own: removed as before.
  expect(existsSync(path)).toBe(false);
});

test("recv: A's file removed, B listening on the path, SIGTERM to A: B still gets the peer", async () => {
  const a = startReady(["recv", path]);
  rmSync(path);
  const b = startReady(["recv", path, "-n", "1", "--json"]);
  a.proc.kill("SIGTERM");
  expect((await a.result()).code).toBe(143);
  expect((await fdbroker(["send", path, "--open", "file:/etc/hostname"])).code).toBe(0);
  const got = await b.result();
  expect(got.code).toBe(0);
  expect(JSON.parse(got.stdout)[0].fds[0]).toMatchObject({ path: "/etc/hostname" });
});

test("send --listen: A's file removed, B listening on the path, SIGTERM to A: B still serves its peer", async () => {
  const a = startReady(["send", path, "--listen", "--open", "file:/etc/hosts"]);
  rmSync(path);
  const b = startReady(["send", path, "--listen", "--open", "file:/etc/hostname"]);
  a.proc.kill("SIGTERM");
  expect((await a.result()).code).toBe(143);
  const got = await fdbroker(["recv", path, "--connect", "--json"]);
  expect(got.code).toBe(0);
  expect(JSON.parse(got.stdout)[0].fds[0]).toMatchObject({ path: "/etc/hostname" });
  expect((await b.result()).code).toBe(0);
});
