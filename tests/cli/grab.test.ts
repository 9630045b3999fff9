// `fdbroker grab PID FD`: fds copied out of a running process nobody here wrote (a Python holder), through
// pidfd_getfd. A deleted 1 MiB file comes back byte for byte, the holder's offset untouched.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { get, openSession } from "../../src/client/index.ts";
import { closeAll, read } from "../../src/sys/index.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, lineReader, run, spawn, tempDir } from "../helpers.ts";
import { canSwitchUid } from "../hostile.ts";

const HOLDER = join(import.meta.dir, "../fixtures/hold_deleted.py");
const start = brokerPerTest();

/** A python3 holding a deleted 1 MiB file: its pid and the fd; stop() kills it. */
async function holder() {
  const dir = tempDir();
  const path = join(dir.path, "rescue-me.log");
  const proc = spawn(["python3", HOLDER, path], { stdout: "pipe" });
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

test("--put stores the copy in the broker; -- CMD gets it at fd 3 with LISTEN_FDS", async () => {
  const h = await holder();
  const b = await start([]);
  try {
    expect((await fdbroker(["grab", String(h.pid), String(h.fd), "--put", "rescued", "-s", b.sock])).code).toBe(0);
    using s = openSession({ socket: b.sock });
    const [got] = get(s, ["rescued"]);
    expect(got!.entry.what).toContain("(deleted)");
    closeAll([got!.fd]);
    const r = await run([...CLI, "grab", String(h.pid), String(h.fd), "--", "sh", "-c", 'echo "$LISTEN_FDS $LISTEN_FDNAMES"; readlink /proc/self/fd/3']);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`1 fd${h.fd}`);
    expect(r.stdout.split("\n")[1]).toBe(`${h.path} (deleted)`);
  } finally {
    await h.stop();
  }
});

test("errors name what is missing: no such fd (EBADF), no ptrace rights (EPERM, as uid 65534), one line each", async () => {
  const h = await holder();
  try {
    const none = await fdbroker(["grab", String(h.pid), "999"]);
    expect(none.code).toBe(4);
    expect(none.stderr).toBe(`fdbroker: pidfd_getfd: EBADF (fd 999 of pid ${h.pid}) (that process has no such fd; fdbroker inspect --pid lists its fds)\n`);
    const bad = await fdbroker(["grab", String(h.pid), String(h.fd), "--cat", "--put", "x"]);
    expect(bad.code).toBe(2);
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
