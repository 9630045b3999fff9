// `haproxy:PATH` against stats sockets that lie (tests/fixtures/fake_haproxy.py): too many fds announced, fds that
// are not sockets, a hang-up halfway, a stall, and a "HAProxy" of another uid. Each is refused with a one-line
// reason, and no fd that arrived is left open.
import { expect, test } from "bun:test";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { takeHaproxySockets } from "../../src/peer/haproxy.ts";
import { closeAll } from "../../src/sys/index.ts";
import { CLI, fdCount, lineReader, ROOT, run, spawn, tempDir } from "../helpers.ts";
import { asNobody, canSwitchUid, PY, SKIP_REASON } from "../hostile.ts";

const FAKE = join(ROOT, "tests/fixtures/fake_haproxy.py");

async function fake(mode: string, dir: string, nobody = false, file = `${mode}.sock`) {
  const path = join(dir, file);
  const cmd = [PY, FAKE, mode, path];
  const proc = spawn(nobody ? asNobody(cmd) : cmd, { stderr: "inherit" });
  await lineReader(proc.stdout as ReadableStream<Uint8Array>).next(/^ready$/);
  expect(existsSync(path)).toBe(true);
  return { path, stop: async () => (proc.kill("SIGKILL"), await proc.exited) };
}

const cases: [string, RegExp][] = [
  ["huge", /announced 1073741824 fds \(at most 4096 accepted\)/],
  ["pipes", /which is not a socket/],
  ["hangup", /hung up after 1 of 3 fds/],
  ["stall", /ETIMEDOUT/],
];

for (const [mode, message] of cases) {
  test(`a stats socket that answers "${mode}": refused, every fd that arrived closed`, async () => {
    const dir = tempDir();
    const before = fdCount();
    try {
      const f = await fake(mode, dir.path);
      try {
        expect(() => closeAll(takeHaproxySockets(f.path, { timeoutMs: 1000 }).map((t) => t.fd))).toThrow(message);
      } finally {
        await f.stop();
      }
    } finally {
      dir.cleanup();
    }
    expect(fdCount()).toBe(before);
  });
}

test.skipIf(!canSwitchUid)(`an "HAProxy" of another uid is refused before anything is read (${SKIP_REASON})`, async () => {
  const dir = tempDir();
  chmodSync(dir.path, 0o777);
  try {
    const f = await fake("good", dir.path, true);
    const r = await run([...CLI, "recv", `haproxy:${f.path}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("runs as uid 65534");
    await f.stop();
    const g = await fake("good", dir.path, true, "again.sock");
    const trusted = await run([...CLI, "recv", `haproxy:${g.path}`, "--peer-uid", "65534", "--json"]);
    expect(trusted.code).toBe(0);
    await g.stop();
  } finally {
    dir.cleanup();
  }
});
