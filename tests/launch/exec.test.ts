// `fdbroker exec` end to end: real listeners, a real Python child that checks the LISTEN_FDS protocol and
// reports every fd it holds, inherited fds passed through, and the errors a user can make.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseUnixAddress } from "../../src/peer/address.ts";
import { isLive } from "../../src/peer/listen.ts";
import { closeAll } from "../../src/sys/index.ts";
import { CLI, fdbroker, fdSnapshot, newFdsSince, ROOT, run, spawn, tempDir, waitFor } from "../helpers.ts";

const REPORT = join(ROOT, "tests/fixtures/fd_report.py");
setDefaultTimeout(60000);

interface Report {
  pid: number;
  env: Record<string, string | null>;
  fds: Record<string, string>;
  sockets: Record<string, { family: string; type: string; listening: boolean; blocking: boolean; address: unknown }>;
  problems: string[];
}

test("--listen opens unix, tcp, file and udp specs in order; the child sees exactly 0-2 and them", async () => {
  const dir = tempDir();
  const before = fdSnapshot();
  try {
    const log = join(dir.path, "log");
    const proc = spawn([...CLI, "exec", "--listen", `api=unix:${dir.path}/api.sock`, "--listen", "tcp:127.0.0.1:0",
      "--listen", `log=file:${log}?mode=a`, "--listen", "dns=udp:127.0.0.1:0", "--", "python3", REPORT, "--check"]);
    const [out, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited]);
    const r: Report = JSON.parse(out);
    expect(r.problems).toEqual([]);
    expect(code).toBe(0);
    expect(r.pid).toBe(proc.pid); // exec keeps the pid
    expect(r.env).toEqual({ LISTEN_FDS: "4", LISTEN_PID: String(proc.pid), LISTEN_FDNAMES: "api:unknown:log:dns" });
    // Blocking, as systemd hands listeners out: a plain accept loop must not see EAGAIN.
    expect(r.sockets["3"]).toMatchObject({ family: "AF_UNIX", type: "stream", listening: true, blocking: true, address: `${dir.path}/api.sock` });
    expect(r.sockets["4"]).toMatchObject({ family: "AF_INET", type: "stream", listening: true, blocking: true });
    expect(r.fds["5"]).toBe(log);
    expect(r.sockets["6"]).toMatchObject({ family: "AF_INET", type: "dgram", listening: false, blocking: true });
  } finally {
    dir.cleanup();
  }
  expect(await newFdsSince(before)).toEqual([]);
});

test("--fd passes our own fds in command-line order: --fd 4 --fd 3 swaps them", async () => {
  const dir = tempDir();
  const a = join(dir.path, "a");
  const b = join(dir.path, "b");
  writeFileSync(a, "");
  writeFileSync(b, "");
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    const r = await run([...CLI, "exec", "--fd", "second=4", "--fd", "first=3", "--", "python3", REPORT, "--check"], {
      stdio: ["ignore", "pipe", "pipe", fa, fb],
    });
    const rep: Report = JSON.parse(r.stdout);
    expect(rep.problems).toEqual([]);
    expect(rep.fds["3"]).toBe(b);
    expect(rep.fds["4"]).toBe(a);
    expect(rep.env.LISTEN_FDNAMES).toBe("second:first");
  } finally {
    closeAll([fa, fb]);
    dir.cleanup();
  }
});

// The shim plays systemd: it sets LISTEN_PID to its own pid, which fdbroker inherits through exec.
const asActivated = (names: string, args: string[]) =>
  ["/bin/sh", "-c", `LISTEN_FDS=1 LISTEN_PID=$$ LISTEN_FDNAMES=${names} exec "$0" "$@"`, ...CLI, "exec", ...args];

test("inherited LISTEN_FDS come first, then --listen", async () => {
  const dir = tempDir();
  const inheritedPath = join(dir.path, "inherited");
  writeFileSync(inheritedPath, "");
  const fd = openSync(inheritedPath, "r");
  try {
    const r = await run(asActivated("sd", ["--listen", `mine=unix:${dir.path}/s`, "--", "python3", REPORT, "--check"]), {
      stdio: ["ignore", "pipe", "pipe", fd],
    });
    const rep: Report = JSON.parse(r.stdout);
    expect(rep.problems).toEqual([]);
    expect(rep.fds["3"]).toBe(inheritedPath);
    expect(rep.sockets["4"]?.address).toBe(`${dir.path}/s`);
    expect(rep.env.LISTEN_FDNAMES).toBe("sd:mine");
  } finally {
    closeAll([fd]);
    dir.cleanup();
  }
});

test("--no-inherit drops inherited fds, and LISTEN_FDS meant for another pid is ignored", async () => {
  const dir = tempDir();
  const fd = openSync(dir.path, "r");
  try {
    const dropped = await run(asActivated("sd", ["--no-inherit", "--", "python3", REPORT, "--check"]), {
      stdio: ["ignore", "pipe", "pipe", fd],
    });
    expect(Object.keys(JSON.parse(dropped.stdout).fds)).toEqual(["0", "1", "2"]);
    const other = await run([...CLI, "exec", "--", "python3", REPORT], {
      stdio: ["ignore", "pipe", "pipe", fd],
      env: { ...process.env, LISTEN_FDS: "1", LISTEN_PID: "1" },
    });
    const rep: Report = JSON.parse(other.stdout);
    expect(Object.keys(rep.fds)).toEqual(["0", "1", "2"]);
    expect(rep.env).toEqual({ LISTEN_FDS: null, LISTEN_PID: null, LISTEN_FDNAMES: null });
  } finally {
    closeAll([fd]);
    dir.cleanup();
  }
});

test("a LISTEN_FDS claiming more than was passed is refused: the runtime's own fds are never handed on", async () => {
  for (const command of ["exec", "run"]) {
    const r = await run(["/bin/sh", "-c", 'LISTEN_FDS=2 LISTEN_PID=$$ exec "$0" "$@"', ...CLI, command, "--", "true"]);
    expect(r.stderr).toBe("fdbroker: LISTEN_FDS is 2, but fd 3 was not inherited\n");
    expect(r.code).toBe(2);
  }
});

test("usage errors exit 2 with one line; no broker exits 3; a missing command 127, a non-executable one 126, a taken address 4", async () => {
  const bad = await fdbroker(["exec", "--listen", "tcp:nowhere", "--", "true"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/^fdbroker: bad address in tcp:nowhere.*\n$/);
  const badName = await fdbroker(["exec", "--fd", "a:b=3", "--", "true"]);
  expect(badName.code).toBe(2);
  const noBroker = await fdbroker(["exec", "--get", "web", "-s", "/nonexistent/broker.sock", "--", "true"]);
  expect(noBroker.code).toBe(3);
  expect(noBroker.stderr).toContain("ENOENT");
  // fd 9 is not inherited (but the runtime may well have one open there): refused, never passed on.
  for (const args of [["--fd", "9"], ["--listen", "fd:9"]]) {
    const notOurs = await fdbroker(["exec", ...args, "--", "true"]);
    expect(notOurs.code).toBe(2);
    expect(notOurs.stderr).toBe("fdbroker: fd 9: not an fd this process inherited\n");
  }
  const missing = await fdbroker(["exec", "--", "/no/such/program"]);
  expect(missing.code).toBe(127);
  expect(missing.stderr).toContain("/no/such/program");
  const dir = tempDir();
  try {
    writeFileSync(join(dir.path, "not-executable"), "");
    const notExecutable = await fdbroker(["exec", "--", join(dir.path, "not-executable")]);
    expect(notExecutable.code).toBe(126);
    expect(notExecutable.stderr).toContain("EACCES");
    const holder = spawn([...CLI, "exec", "--listen", `unix:${dir.path}/s`, "--", "sleep", "30"]);
    // The file alone appears at bind(), before listen(): wait for something that accepts connections.
    await waitFor("a listener at s", () => existsSync(`${dir.path}/s`) && isLive(parseUnixAddress(`${dir.path}/s`)));
    const taken = await fdbroker(["exec", "--listen", `unix:${dir.path}/s`, "--", "true"]);
    expect(taken.code).toBe(4);
    expect(taken.stderr).toContain("EADDRINUSE");
    holder.kill();
    await holder.exited;
  } finally {
    dir.cleanup();
  }
});

// Bun ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: CMD must start as a shell would start it.
// The parent here also ignores SIGHUP and SIGUSR1 and blocks SIGUSR2 (as nohup and some supervisors do).
test("CMD starts with no signal ignored and none blocked, whatever fdbroker's runtime or parent did", async () => {
  const parent = "import os, signal, sys\n"
    + "signal.signal(signal.SIGHUP, signal.SIG_IGN); signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
    + "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])\n"
    + "os.execvp(sys.argv[1], sys.argv[1:])";
  const r = await run(["python3", "-c", parent, ...CLI, "exec", "--", "cat", "/proc/self/status"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const field = (name: string) => new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m").exec(r.stdout)?.[1];
  expect(BigInt(`0x${field("SigIgn")}`)).toBe(0n);
  expect(BigInt(`0x${field("SigBlk")}`)).toBe(0n);
});
