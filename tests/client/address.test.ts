// The default broker address is never a name in a world-writable directory that another uid can take first
// (issue 8, finding 1): root uses /run (or systemd's RUNTIME_DIRECTORY), others XDG_RUNTIME_DIR or a private
// /tmp/fdbroker-UID/ that serve creates 0700 and every command checks.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkPrivateDir, defaultAddress } from "../../src/client/address.ts";
import { UsageError } from "../../src/errors.ts";
import { CLI, fdbroker, fdSnapshot, newFdsSince, readyPipe, run, spawn, tempDir } from "../helpers.ts";
import { asNobody, asUid, canSwitchUid, hostile, SKIP_REASON } from "../hostile.ts";

setDefaultTimeout(60000);
let dir: ReturnType<typeof tempDir>;
let before: string[];
beforeEach(() => {
  dir = tempDir();
  before = fdSnapshot();
});
afterEach(async () => {
  dir.cleanup();
  expect(await newFdsSince(before)).toEqual([]);
});

test("the default address for each uid and environment", () => {
  const table: [Record<string, string>, number, string, string | null][] = [
    [{ FDBROKER_SOCKET: "@mine" }, 0, "@mine", null],
    [{ FDBROKER_SOCKET: "/x.sock" }, 1000, "/x.sock", null],
    [{}, 0, "/run/fdbroker.sock", null],
    // root ignores XDG_RUNTIME_DIR: `sudo -E` would carry the invoking user's directory.
    [{ XDG_RUNTIME_DIR: "/run/user/1000" }, 0, "/run/fdbroker.sock", null],
    [{ RUNTIME_DIRECTORY: "/run/web/" }, 0, "/run/web/fdbroker.sock", null],
    [{ RUNTIME_DIRECTORY: "/run/a:/run/b" }, 0, "/run/a/fdbroker.sock", null],
    [{ XDG_RUNTIME_DIR: "/run/user/1000/" }, 1000, "/run/user/1000/fdbroker.sock", null],
    [{ RUNTIME_DIRECTORY: "/run/web" }, 1000, "/tmp/fdbroker-1000/fdbroker.sock", "/tmp/fdbroker-1000"],
    [{}, 1000, "/tmp/fdbroker-1000/fdbroker.sock", "/tmp/fdbroker-1000"],
  ];
  for (const [env, uid, socket, privateDir] of table) expect({ env, uid, ...defaultAddress(env, uid) }).toEqual({ env, uid, socket, privateDir });
});

test("checkPrivateDir: only a real directory, owned by the uid, with no group or other bits", () => {
  const d = join(dir.path, "private");
  const reason = (uid = 0): string => {
    try {
      checkPrivateDir(d, uid);
      return "ok";
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return (e as Error).message;
    }
  };
  expect(reason()).toBe("ok"); // missing: nobody can be listening in it
  mkdirSync(d, 0o700);
  expect(reason()).toBe("ok");
  expect(reason(1000)).toBe(`${d}/ is owned by uid 0, not 1000: not safe for the default broker socket (remove it, or give -s or $FDBROKER_SOCKET)`);
  chmodSync(d, 0o710);
  expect(reason()).toStartWith(`${d}/ has mode 0710, not 0700:`);
  chmodSync(d, 0o1777);
  expect(reason()).toStartWith(`${d}/ has mode 0777, not 0700:`);
  rmSync(d, { recursive: true });
  mkdirSync(join(dir.path, "elsewhere"), 0o700);
  symlinkSync(join(dir.path, "elsewhere"), d);
  expect(reason()).toStartWith(`${d}/ is a symlink:`);
  rmSync(d);
  writeFileSync(d, "");
  expect(reason()).toStartWith(`${d}/ is not a directory:`);
});

/** The environment of a login-less process (cron, sudo, a container) with no address of its own. */
function bareEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { ...process.env, FDBROKER_SOCKET: undefined, XDG_RUNTIME_DIR: undefined, RUNTIME_DIRECTORY: undefined, ...extra };
}

test.skipIf(!canSwitchUid)(`root's default is not the old /tmp/fdbroker-0.sock: a uid-65534 squatter there gets nothing [${SKIP_REASON}]`, async () => {
  const old = "/tmp/fdbroker-0.sock";
  if (existsSync(old) && lstatSync(old).isSocket()) rmSync(old);
  const squatter = await hostile("listen", old);
  try {
    // RUNTIME_DIRECTORY, so the test never reaches a real broker at /run/fdbroker.sock.
    const env = bareEnv({ RUNTIME_DIRECTORY: dir.path });
    const put = await run([...CLI, "put", "secret"], { env, stdin: Bun.file("/etc/hostname") });
    expect(put).toMatchObject({ code: 3, stderr: expect.stringContaining(`(${dir.path}/fdbroker.sock)`) });
    // And root's own serve is where its clients look.
    const ready = readyPipe();
    const serve = spawn([...CLI, "serve", "--ready-fd", "3"], { env, stdio: ["ignore", "ignore", "pipe", ready.writeEnd] });
    ready.closeWriteEnd();
    try {
      ready.wait();
    } finally {
      ready.close();
    }
    expect((await run([...CLI, "put", "secret"], { env, stdin: Bun.file("/etc/hostname") })).code).toBe(0);
    expect(JSON.parse((await fdbroker(["ls", "--json"], { env })).stdout).map((e: { name: string }) => e.name)).toEqual(["secret"]);
    serve.kill("SIGTERM");
    expect(await serve.exited).toBe(0);
  } finally {
    const reports = await squatter.stop();
    rmSync(old, { force: true });
    expect(reports).toEqual([]);
  }
});

test.skipIf(!canSwitchUid)(`a non-root user without XDG_RUNTIME_DIR: serve makes /tmp/fdbroker-UID/ 0700; one another uid made first is refused (exit 2) [${SKIP_REASON}]`, async () => {
  const priv = "/tmp/fdbroker-65534";
  if (existsSync(priv)) return void console.warn(`skipped: ${priv} exists (a real one of uid 65534?)`);
  const env = bareEnv();
  try {
    // Another uid (65533) gets there first, with a directory anyone may write into, or a symlink to its own.
    const squat = await run(asUid(65533, ["sh", "-c", `mkdir -m 1777 ${priv}`]));
    expect(squat.code).toBe(0);
    for (const args of [["serve"], ["ls"], ["put", "x"], ["get", "x", "--", "true"]]) {
      const r = await run(asNobody([...CLI, ...args]), { env, stdin: Bun.file("/etc/hostname") });
      expect({ args, ...r }).toEqual({ args, code: 2, stdout: "", stderr: `fdbroker: ${priv}/ is owned by uid 65533, not 65534: not safe for the default broker socket (remove it, or give -s or $FDBROKER_SOCKET)\n` });
    }
    rmSync(priv, { recursive: true });
    mkdirSync(join(dir.path, "theirs"));
    chownSync(join(dir.path, "theirs"), 65533, 65533);
    symlinkSync(join(dir.path, "theirs"), priv);
    const viaLink = await run(asNobody([...CLI, "serve"]), { env });
    expect(viaLink).toMatchObject({ code: 2, stderr: expect.stringContaining(`${priv}/ is a symlink:`) });
    rmSync(priv);

    // Uid 65534's own serve creates it, and its clients find the broker there by default.
    const ready = readyPipe();
    const serve = spawn(asNobody([...CLI, "serve", "--ready-fd", "3"]), { env, stdio: ["ignore", "ignore", "pipe", ready.writeEnd] });
    ready.closeWriteEnd();
    try {
      ready.wait();
    } finally {
      ready.close();
    }
    const st = lstatSync(priv);
    expect({ dir: st.isDirectory(), uid: st.uid, mode: st.mode & 0o777 }).toEqual({ dir: true, uid: 65534, mode: 0o700 });
    expect(lstatSync(join(priv, "fdbroker.sock")).isSocket()).toBe(true);
    expect((await run(asNobody([...CLI, "put", "x"]), { env, stdin: Bun.file("/etc/hostname") })).code).toBe(0);
    const ls = await run(asNobody([...CLI, "ls", "--json"]), { env });
    expect(JSON.parse(ls.stdout).map((e: { name: string }) => e.name)).toEqual(["x"]);
    serve.kill("SIGTERM");
    expect(await serve.exited).toBe(0);
  } finally {
    rmSync(priv, { recursive: true, force: true });
  }
});
