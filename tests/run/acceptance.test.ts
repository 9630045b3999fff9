// Acceptance: a socket-activated HTTP server under a steady client load while `fdbroker run` reloads it again
// and again. Every request must succeed, and each reload must bring a new server process.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../broker/harness.ts";
import { fdCount, tempDir } from "../helpers.ts";
import { clientLoop, HTTP_SERVER, reload, startRun, type Supervisor, type Target } from "./harness.ts";

setDefaultTimeout(180000);

/**
 * Keep 4 clients busy on `target` while `run` reloads 10 times (each server answers at least 50 requests
 * first), until 2000 requests in all. Checks zero failures, 11 distinct pids that all answered, and that run's
 * own fd count is what it was with one generation. Returns the pids in order of start.
 */
async function reloadUnderLoad(run: Supervisor, target: Target, first: number): Promise<number[]> {
  const runFds = fdCount(run.proc.pid);
  const client = clientLoop(target, 4);
  const pids = [first];
  for (let i = 0; i < 10; i++) {
    const old = pids[pids.length - 1]!;
    await client.until(() => (client.byPid.get(old) ?? 0) >= 50);
    pids.push(await reload(run, old));
  }
  const last = pids[pids.length - 1]!;
  await client.until(() => client.total() >= 2000 && (client.byPid.get(last) ?? 0) >= 50);
  await client.stop();
  expect(client.failures).toEqual([]);
  expect(client.total()).toBeGreaterThanOrEqual(2000);
  expect(new Set(pids).size).toBe(11);
  expect([...client.byPid.keys()].sort()).toEqual([...pids].sort());
  // Ten generations came and went: no notify socket or other fd was left behind in run.
  expect(fdCount(run.proc.pid)).toBe(runFds);
  run.proc.kill("SIGTERM");
  expect(await run.proc.exited).toBe(0);
  await run.closed;
  return pids;
}

test("2000+ requests across 10 reloads (notify readiness): zero failures, a new pid per reload", async () => {
  const dir = tempDir();
  const before = fdCount();
  const sock = `${dir.path}/web.sock`;
  try {
    const run = startRun(["--listen", `web=unix:${sock}`, "--ready", "notify", "--grace", "10000", "--",
      "python3", HTTP_SERVER, "--startup-delay", "50"]);
    const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    const pids = await reloadUnderLoad(run, sock, first);
    // The ready line of each new child comes before the old one is told to stop.
    const order = run.lines.filter((l) => /is ready|stopping old/.test(l)).slice(1);
    expect(order.length).toBe(20);
    for (let i = 0; i < order.length; i += 2) {
      expect(order[i]).toContain(`pid ${pids[i / 2 + 1]} is ready`);
      expect(order[i + 1]).toContain(`stopping old pid ${pids[i / 2]} `);
    }
  } finally {
    dir.cleanup();
  }
  // Bun closes a finished client socket's fd a moment after its "close" event: wait for the count, bounded.
  await waitFor("client sockets to close", () => fdCount() <= before);
});

test("the same over TCP with --ready delay: 2000+ requests across 10 reloads, zero failures", async () => {
  const before = fdCount();
  const dir = tempDir();
  const out = join(dir.path, "stdout");
  try {
    const run = startRun(["--listen", "web=tcp:127.0.0.1:0", "--ready", "delay:150", "--grace", "10000", "--",
      "python3", HTTP_SERVER], { stdout: Bun.file(out) });
    // The kernel picked the port; the first server says which.
    let port = 0;
    await waitFor("the first server's address", () => {
      port = Number(/^ready \d+ 127\.0\.0\.1:(\d+)$/m.exec(existsSync(out) ? readFileSync(out, "utf8") : "")?.[1] ?? 0);
      return port > 0;
    });
    const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    await reloadUnderLoad(run, port, first);
  } finally {
    dir.cleanup();
  }
  await waitFor("client sockets to close", () => fdCount() <= before);
});
