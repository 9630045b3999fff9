// The arm64 ABI for real: Bun's linux-arm64 build under qemu-user (Debian's arm64 cross libraries as its root)
// runs the syscall layer's tests and a `recv` that an x86-64 `send` talks to. .ci/run installs qemu and the
// libraries and fetches that Bun (scripts/arm64-bun.sh); elsewhere the tests skip when they are missing.
// Not run here: the MSG_CTRUNC leak tests. qemu-user translates control messages through a host buffer larger
// than the guest's, and the fds that do not fit the guest's are left open by qemu, not by fdbroker.
import { expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, CLI, finish, ROOT, run, spawnReady, tempDir } from "../helpers.ts";

const SYSROOT = "/usr/aarch64-linux-gnu";
const QEMU = Bun.which("qemu-aarch64-static") ?? Bun.which("qemu-aarch64");
const ARM64_BUN = process.env.FDBROKER_ARM64_BUN ?? join(ROOT, "node_modules/.cache/fdbroker-arm64", Bun.version, "package/bin/bun");
const available = QEMU !== null && existsSync(join(SYSROOT, "lib/libc.so.6")) && existsSync(ARM64_BUN);
const arm64 = (args: string[]) => [QEMU!, "-L", SYSROOT, ARM64_BUN, ...args];

test("the arm64 toolchain is there when CI runs", () => {
  if (process.env.CI) expect({ qemu: QEMU, sysroot: existsSync(join(SYSROOT, "lib/libc.so.6")), bun: existsSync(ARM64_BUN) }).toEqual({ qemu: expect.any(String), sysroot: true, bun: true });
});

const FILES = ["tests/sys/abi.test.ts", "tests/sys/fstat.test.ts", "tests/sys/sockaddr.test.ts", "tests/sys/cmsg.test.ts", "tests/sys/msg-hot.test.ts", "tests/proto", "tests/describe"];

test.skipIf(!available)("syscall-layer, protocol and describe tests pass on arm64", async () => {
  const r = await run(arm64(["test", ...FILES]), { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", FDBROKER_UNDER_QEMU: "1" } });
  const summary = `${r.stdout}\n${r.stderr}`;
  expect(summary).toMatch(/^\s*0 fail$/m);
  expect(Number(/^\s*(\d+) pass$/m.exec(summary)?.[1] ?? 0)).toBeGreaterThanOrEqual(90);
  expect(r.code).toBe(0);
}, 240000);

test.skipIf(!available)("an arm64 recv takes a file and a TCP listener from an x86-64 send", async () => {
  const dir = tempDir();
  const sock = join(dir.path, "drop.sock");
  const file = join(dir.path, "data.txt");
  writeFileSync(file, "hello from x86-64\n");
  try {
    const { proc: recv } = spawnReady(arm64([BIN, "recv", sock, "--json", "--count", "2", "--timeout", "60000", "--ready-fd", "3"]), {}, 120000);
    const sent = await run([...CLI, "send", sock, "--open", `file:${file}`, "--open", "tcp:127.0.0.1:0", "--data", "arm"]);
    expect(sent.code).toBe(0);
    const { stdout: out, code } = await finish(recv);
    expect(code).toBe(0);
    const messages = JSON.parse(out);
    const fds = messages.flatMap((m: { fds: unknown[] }) => m.fds);
    expect(messages[0].payload).toEqual({ text: "arm" });
    expect(fds.map((f: { kind: string }) => f.kind)).toEqual(["file", "socket"]);
    expect(fds[0].path).toBe(file);
    expect(fds[1].socket).toMatchObject({ family: "inet", type: "stream", listening: true });
  } finally {
    dir.cleanup();
  }
}, 240000);

// The exec path on arm64: fd placement (close_range through syscall(), or its fallback), LISTEN_* and the signal
// reset (sigaction's arm64 layout), seen by the command itself.
test.skipIf(!available)("an arm64 recv -- CMD: CMD gets exactly 0-2 and the fds, LISTEN_* for itself, no signal ignored or blocked", async () => {
  const dir = tempDir();
  const sock = join(dir.path, "exec.sock");
  const report = join(ROOT, "tests/fixtures/fd_report.py");
  const cmd = `grep -E '^Sig(Ign|Blk):' /proc/self/status; exec python3 ${report} --check`;
  try {
    const { proc: recv } = spawnReady(arm64([BIN, "recv", sock, "--count", "2", "--timeout", "60000", "--ready-fd", "3", "--", "sh", "-c", cmd]), {}, 120000);
    const sent = await run([...CLI, "send", sock, "--open", "file:/etc/hostname", "--open", "tcp:127.0.0.1:0"]);
    expect(sent.code).toBe(0);
    const { stdout: out, stderr: err, code } = await finish(recv);
    expect(err).toBe("");
    expect(code).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines.slice(0, 2).sort()).toEqual(["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"]);
    const r = JSON.parse(lines[2]!);
    expect(r.problems).toEqual([]);
    expect(r.env).toEqual({ LISTEN_FDS: "2", LISTEN_PID: String(recv.pid), LISTEN_FDNAMES: "unknown:unknown" });
    expect(Object.keys(r.fds).map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    expect(r.fds["3"]).toBe("/etc/hostname");
    expect(r.sockets["4"]).toMatchObject({ family: "AF_INET", type: "stream", listening: true });
  } finally {
    dir.cleanup();
  }
}, 240000);
