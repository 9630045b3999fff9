// `fdbroker grab PID FD`: fds copied out of a running process nobody here wrote (a Python holder), through
// pidfd_getfd. A deleted 1 MiB file comes back byte for byte, the holder's offset untouched.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { get, openSession } from "../../src/client/index.ts";
import { closeAll, read } from "../../src/sys/index.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, fdCount, finish, lineReader, run, spawn, tempDir } from "../helpers.ts";
import { canSwitchUid } from "../hostile.ts";

const HOLDER = join(import.meta.dir, "../fixtures/hold_deleted.py");
const start = brokerPerTest();

/** A python3 holding a deleted 1 MiB file: its pid and the fd; stop() kills it. */
async function holder(mode: "read" | "append" = "read") {
  const dir = tempDir();
  const path = join(dir.path, "rescue-me.log");
  const proc = spawn(["python3", HOLDER, path, mode], { stdout: "pipe" });
  const fd = Number(await lineReader(proc.stdout as ReadableStream<Uint8Array>).next(/^\d+$/));
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    dir.cleanup();
  };
  return { pid: proc.pid, fd, path, stop };
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("a deleted 1 MiB file still open in another process: described as deleted, --cat gives every byte from offset 0, the holder's offset stays", async () => {
  const h = await holder();
  try {
    expect(existsSync(h.path)).toBe(false);
    const described = await fdbroker(["grab", String(h.pid), String(h.fd), "--json"]);
    expect(described.code).toBe(0);
    const desc = JSON.parse(described.stdout)[0].fds[0];
    expect(desc).toMatchObject({ id: h.fd, kind: "file", deleted: true, offset: 12345 });
    const cat = Bun.spawnSync([...CLI, "grab", String(h.pid), String(h.fd), "--cat"], { stdout: "pipe", stderr: "pipe" });
    expect(cat.exitCode).toBe(0);
    expect(cat.stdout.length).toBe(1 << 20);
    // The same bytes the holder reads from its own fd (through /proc: the file is gone from its directory).
    expect(sha(cat.stdout)).toBe(sha(readFileSync(`/proc/${h.pid}/fd/${h.fd}`)));
    expect(readFileSync(`/proc/${h.pid}/fdinfo/${h.fd}`, "utf8")).toMatch(/^pos:\s+12345$/m);
  } finally {
    await h.stop();
  }
});

test("a deleted log a daemon holds write-only (O_APPEND): --cat still gives every byte from offset 0, the holder's offset stays", async () => {
  const h = await holder("append");
  try {
    const cat = Bun.spawnSync([...CLI, "grab", String(h.pid), String(h.fd), "--cat"], { stdout: "pipe", stderr: "pipe" });
    expect({ code: cat.exitCode, stderr: cat.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    expect(cat.stdout.length).toBe(1 << 20);
    expect(sha(cat.stdout)).toBe(sha(readFileSync(`/proc/${h.pid}/fd/${h.fd}`)));
    expect(readFileSync(`/proc/${h.pid}/fdinfo/${h.fd}`, "utf8")).toMatch(/^pos:\s+12345$/m);
  } finally {
    await h.stop();
  }
});

test("--put stores the copy in the broker (--replace over a taken name); -- CMD gets it at fd 3 with LISTEN_FDS", async () => {
  const h = await holder();
  const b = await start([]);
  try {
    expect((await fdbroker(["grab", String(h.pid), String(h.fd), "--put", "rescued", "-s", b.sock])).code).toBe(0);
    using s = openSession({ socket: b.sock });
    const [got] = get(s, ["rescued"]);
    expect(got!.entry.what).toContain("(deleted)");
    closeAll([got!.fd]);
    // The name taken: the broker's answer says --replace, which grab takes as put does.
    const again = await fdbroker(["grab", String(h.pid), String(h.fd), "--put", "rescued", "-s", b.sock]);
    expect(again).toMatchObject({ code: 1, stderr: 'fdbroker: entry "rescued" exists (use --replace) [EEXIST]\n' });
    expect((await fdbroker(["grab", String(h.pid), String(h.fd), "--put", "rescued", "--replace", "-s", b.sock])).code).toBe(0);
    const r = await run([...CLI, "grab", String(h.pid), String(h.fd), "--", "sh", "-c", 'echo "$LISTEN_FDS $LISTEN_FDNAMES"; readlink /proc/self/fd/3']);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`1 fd${h.fd}`);
    expect(r.stdout.split("\n")[1]).toBe(`${h.path} (deleted)`);
  } finally {
    await h.stop();
  }
});

test("errors name what is missing: no such fd (EBADF), no such process (exit 2), no ptrace rights (EPERM, as uid 65534), one line each", async () => {
  const h = await holder();
  try {
    const none = await fdbroker(["grab", String(h.pid), "999"]);
    expect(none.code).toBe(4);
    expect(none.stderr).toBe(`fdbroker: pidfd_getfd: EBADF (fd 999 of pid ${h.pid}) (that process has no such fd; fdbroker inspect --pid lists its fds)\n`);
    const bad = await fdbroker(["grab", String(h.pid), String(h.fd), "--cat", "--put", "x"]);
    expect(bad.code).toBe(2);
    // A pid that is not running: as inspect --pid says it (a usage error), not pidfd_open's bare ESRCH.
    const gone = spawn(["true"]);
    await gone.exited;
    const noProcess = await fdbroker(["grab", String(gone.pid), "3"]);
    expect(noProcess).toMatchObject({ code: 2, stderr: `fdbroker: no process ${gone.pid}\n` });
    if (canSwitchUid) {
      const r = await run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", ...CLI, "grab", String(h.pid), String(h.fd)]);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain("pidfd_getfd: EPERM");
      expect(r.stderr).toContain("needs ptrace rights");
    }
  } finally {
    await h.stop();
  }
});

const BLOCKING = join(import.meta.dir, "../fixtures/hold_blocking.py");

/** A python3 holding a blocking pipe and a socket whose writers stay open, and a file with a hostile name. */
async function blockingHolder() {
  const dir = tempDir();
  const proc = spawn(["python3", BLOCKING, dir.path], { stdout: "pipe" });
  const fds = JSON.parse((await lineReader(proc.stdout as ReadableStream<Uint8Array>).next(/^\{.*\}$/))[0]) as { pipe: number; pipeWrite: number; fifo: number; socket: number; hostile: number };
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    dir.cleanup();
  };
  return { pid: proc.pid, fds, stop };
}

/** grab ARGS, killed if it runs past `limitMs` (then `hung` is true): a --cat that never ends fails, it does not hang the suite. */
async function boundedGrab(args: string[], limitMs = 30000) {
  const started = Date.now();
  const proc = spawn([...CLI, "grab", ...args]);
  let hung = false;
  const timer = setTimeout(() => ((hung = true), proc.kill("SIGKILL")), limitMs);
  const r = await finish(proc);
  clearTimeout(timer);
  return { ...r, hung, ms: Date.now() - started };
}

test("--cat of a pipe, FIFO or socket whose writer never closes: what is queued, then exit 3 after --timeout (default 5s); the holder's fd stays blocking", async () => {
  const h = await blockingHolder();
  const holderFds = fdCount(h.pid);
  try {
    for (const [fd, data] of [[h.fds.pipe, "pipe-data\n"], [h.fds.fifo, "fifo-data\n"], [h.fds.socket, "sock-data\n"]] as const) {
      const r = await boundedGrab([String(h.pid), String(fd), "--cat", "--timeout", "300ms"]);
      expect({ hung: r.hung, code: r.code, stdout: r.stdout }).toEqual({ hung: false, code: 3, stdout: data });
      expect(r.stderr).toBe(`fdbroker: poll: ETIMEDOUT (fd ${fd} of pid ${h.pid}): nothing more in 300 ms, and its writer is still open (--timeout sets the wait)\n`);
      // Our copy's reads never touched the holder's file status flags: its fd is still blocking.
      const flags = Number.parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/${h.pid}/fdinfo/${fd}`, "utf8"))![1]!, 8);
      expect(flags & 0o4000).toBe(0);
    }
    // No --timeout: bounded all the same, by the default.
    const r = await boundedGrab([String(h.pid), String(h.fds.pipe), "--cat"]);
    expect({ hung: r.hung, code: r.code, stdout: r.stdout }).toEqual({ hung: false, code: 3, stdout: "" });
    expect(r.ms).toBeGreaterThanOrEqual(5000);
    expect((await fdbroker(["grab", String(h.pid), String(h.fds.pipe), "--cat", "--timeout", "soon"])).code).toBe(2);
    // A write end is refused rather than read through a description of our own (that would take the holder's data).
    const writeEnd = await fdbroker(["grab", String(h.pid), String(h.fds.pipeWrite), "--cat"]);
    expect(writeEnd.code).toBe(2);
    expect(writeEnd.stderr).toContain("is a pipe's write end");
    expect(fdCount(h.pid)).toBe(holderFds);
  } finally {
    await h.stop();
  }
}, 60000);

test("a path from the other process with a terminal escape and a line break is escaped in the table and in JSON", async () => {
  const h = await blockingHolder();
  try {
    const table = await fdbroker(["grab", String(h.pid), String(h.fds.hostile)]);
    expect(table.code).toBe(0);
    expect(table.stdout).not.toContain("\x1b");
    expect(table.stdout.trimEnd().split("\n")).toHaveLength(2);
    expect(table.stdout).toContain("\\x1b[31mred\\nFAKE 9 file");
    const json = await fdbroker(["grab", String(h.pid), String(h.fds.hostile), "--json"]);
    expect(json.stdout).not.toContain("\x1b");
    expect(JSON.parse(json.stdout)[0].fds[0].path).toEndWith("/\x1b[31mred\nFAKE 9 file");
  } finally {
    await h.stop();
  }
});
