// The standalone binary: build dist/fdbroker's twin into a temporary directory (or take FDBROKER_BIN), then run
// real operations through it. Catches what only a compiled binary gets wrong: a lazily imported subcommand left
// out of the bundle, a .env or bunfig.toml picked up from the working directory, bytecode that fails to load.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { build, commandNames } from "../../scripts/build.ts";
import { VERSION } from "../../src/version.ts";
import { BUN, fdSnapshot, finish, newFdsSince, ROOT, run, spawnReady, tempDir, waitFor } from "../helpers.ts";

// Generous: other test runs may share this machine's two cores.
setDefaultTimeout(60_000);
const names = commandNames();
let bin = "";
let buildDir: ReturnType<typeof tempDir> | undefined;
let work: ReturnType<typeof tempDir>;

beforeAll(async () => {
  work = tempDir("fdbroker-compiled-");
  if (process.env.FDBROKER_BIN) {
    bin = resolve(process.env.FDBROKER_BIN);
    return;
  }
  // A private output file: other test runs on the same tree may be building dist/fdbroker at the same time.
  buildDir = tempDir("fdbroker-build-");
  bin = await build({ outfile: join(buildDir.path, "fdbroker") });
}, 300_000);

afterAll(() => {
  buildDir?.cleanup();
  work?.cleanup();
});

/** Start `bin recv ADDR --ready-fd 3 ...` and return once it listens. */
function startRecv(args: string[], opts: { cwd?: string } = {}) {
  const { proc, said } = spawnReady([bin, "recv", "--ready-fd", "3", ...args], opts);
  expect(said).toBe("\n");
  return proc;
}

describe("compiled binary", () => {
  test("prints its version and lists every subcommand with the exit codes", async () => {
    expect(await run([bin, "--version"])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const help = await run([bin, "--help"]);
    expect(help.code).toBe(0);
    for (const name of names) expect(help.stdout).toContain(name);
    expect(help.stdout).toContain("Exit status:");
  });

  test.each(names)("has the %s subcommand built in", async (name) => {
    const r = await run([bin, name, "--help"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`Usage: fdbroker ${name} `);
  });

  test("usage errors exit 2 and an unreachable peer exits 3, with one line on stderr", async () => {
    const unknown = await run([bin, "frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toStartWith("fdbroker: unknown command");
    const badOption = await run([bin, "send", join(work.path, "x.sock"), "--no-such-option"]);
    expect(badOption.code).toBe(2);
    const missing = await run([bin, "send", join(work.path, "nobody.sock"), "--timeout", "300ms", "--open", "file:/dev/null"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(missing.stderr).toContain("connect");
  });

  test("send and recv, both compiled, pass a file; the receiver describes it", async () => {
    const before = fdSnapshot();
    const sock = join(work.path, "pass.sock");
    const file = join(work.path, "data.txt");
    writeFileSync(file, "0123456789");
    const recv = startRecv([sock, "--json", "--timeout", "60000"]);
    const send = await run([bin, "send", sock, "--open", `file:${file}?mode=a`, "--data", "hello"]);
    expect(send).toMatchObject({ code: 0, stderr: "" });
    const got = await finish(recv);
    expect(got.stderr).toBe("");
    expect(got.code).toBe(0);
    const [message] = JSON.parse(got.stdout);
    expect(message.payload).toEqual({ text: "hello" });
    expect(message.fds).toHaveLength(1);
    expect(message.fds[0]).toMatchObject({ kind: "file", path: file, access: "w" });
    expect(message.fds[0].flags).toContain("append");
    expect(await newFdsSince(before)).toEqual([]);
  });

  test("recv -- CMD execs with the fd at 3, LISTEN_* set, nothing else open, no .env or bunfig.toml from cwd", async () => {
    const before = fdSnapshot();
    const sock = join(work.path, "exec.sock");
    const file = join(work.path, "written.txt");
    writeFileSync(file, "");
    // A compiled Bun program loads these from its working directory unless built not to; fdbroker must not.
    writeFileSync(join(work.path, ".env"), "FDBROKER_TEST_LEAK=from-dotenv\n");
    writeFileSync(join(work.path, "bunfig.toml"), 'preload = ["./nonexistent.ts"]\n');
    const script = 'echo "pid=$$ listen_pid=$LISTEN_PID fds=$LISTEN_FDS leak=${FDBROKER_TEST_LEAK:-none}" >&3; ls /proc/$$/fd';
    const recv = startRecv([sock, "--timeout", "60000", "--", "sh", "-c", script], { cwd: work.path });
    const send = await run([bin, "send", sock, "--open", `file:${file}?mode=a`]);
    expect(send.code).toBe(0);
    const got = await finish(recv);
    expect(got.stderr).toBe("");
    expect(got.code).toBe(0);
    expect(got.stdout.trim().split(/\s+/).map(Number)).toEqual([0, 1, 2, 3]);
    const line = readFileSync(file, "utf8");
    expect(line).toBe(`pid=${recv.pid} listen_pid=${recv.pid} fds=1 leak=none\n`);
    expect(await newFdsSince(before)).toEqual([]);
  });

  test("serve describes and closes client fds on a Worker thread (its source is inlined), and stops on SIGTERM", async () => {
    const sock = join(work.path, "broker.sock");
    const file = join(work.path, "held.txt");
    writeFileSync(file, "held\n");
    const { proc } = spawnReady([bin, "serve", "-s", sock, "--ready-fd", "3"]);
    const threads = () => readdirSync(`/proc/${proc.pid}/task`).map((t) => readFileSync(`/proc/${proc.pid}/task/${t}/comm`, "utf8").trim());
    // The closer threads start with the first job (src/sys/offload.ts), not with the broker.
    expect(threads()).not.toContain("Worker");
    // A file has a path, so its fstat runs on the Worker; the put's reply waits for it.
    const put = await run([bin, "put", "f", "-s", sock, "--json"], { stdin: Bun.file(file) });
    expect(put).toMatchObject({ code: 0, stderr: "" });
    expect(threads()).toContain("Worker");
    expect(JSON.parse(put.stdout)).toMatchObject({ name: "f", kind: "file", what: `${file} (r)` });
    const held = () => readdirSync(`/proc/${proc.pid}/fd`).some((fd) => { try { return readlinkSync(`/proc/${proc.pid}/fd/${fd}`) === file; } catch { return false; } });
    expect(held()).toBe(true);
    expect(await run([bin, "rm", "f", "-s", sock])).toMatchObject({ code: 0, stderr: "" });
    await waitFor("the broker's copy closed", () => !held(), 10_000);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  test("the whole `npm start` demo (peer, broker, restart parts) runs through it", async () => {
    const r = await run([BUN, join(ROOT, "examples/demo.ts")], {
      env: { ...process.env, FDBROKER_BIN: bin, NO_COLOR: "1" },
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('payload "hello from the sender"');
    expect(r.stdout.trimEnd()).toEndWith("More: fdbroker --help, and the README.");
  });
});
