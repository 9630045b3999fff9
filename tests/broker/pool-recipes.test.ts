// docs/recipes.md's concurrency limit, run as written: a pool of `file:` members as a semaphore for shell jobs.
// Each job notes when it starts and ends inside its lease; the notes, not the broker, say how many ran at once.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openSession, pools } from "../../src/client/index.ts";
import { CLI, spawn, tempDir, waitFor } from "../helpers.ts";
import { brokerPerTest } from "./harness.ts";

const start = brokerPerTest();

const poolOf = (sock: string, name: string) => {
  using s = openSession({ socket: sock });
  return pools(s).find((p) => p.name === name)!;
};

/** Most jobs running at once, from "start NS" / "end NS" lines (ends sort first at equal times). */
function mostAtOnce(lines: string[]): number {
  const events = lines.map((l) => l.split(" ")).map(([what, ns]) => ({ t: BigInt(ns!), d: what === "start" ? 1 : -1 }));
  events.sort((a, b) => (a.t === b.t ? a.d - b.d : a.t < b.t ? -1 : 1));
  let now = 0;
  let most = 0;
  for (const e of events) most = Math.max(most, (now += e.d));
  return most;
}

test("a concurrency limit: 6 jobs on a pool of 2 file: members never run more than 2 at once, and all 6 run", async () => {
  const b = await start(["--pool", "gpu=2:file:/dev/null"]);
  const dir = tempDir("fdbroker-semaphore-");
  const notes = join(dir.path, "notes");
  const before = b.fds();
  try {
    // The job's own work is the sleep: it makes the jobs overlap if the pool lets them.
    const job = `echo "start $(date +%s%N)" >> ${notes}; sleep 0.3; echo "end $(date +%s%N)" >> ${notes}`;
    const jobs = Array.from({ length: 6 }, () =>
      spawn([...CLI, "lease", "gpu", "-s", b.sock, "--wait", "120s", "--", "sh", "-c", job], { stdout: "ignore", stderr: "pipe" }),
    );
    const codes = await Promise.all(jobs.map((j) => j.exited));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    const lines = readFileSync(notes, "utf8").trim().split("\n");
    expect(lines.filter((l) => l.startsWith("start")).length).toBe(6);
    expect(lines.filter((l) => l.startsWith("end")).length).toBe(6);
    expect(mostAtOnce(lines)).toBeLessThanOrEqual(2);
    // A job's exit reaches the test before the broker has seen its pidfd turn readable (and closed it), and the
    // listing's own connection is closed by the broker a moment after the listing: a leak times this wait out.
    await waitFor("both members idle again", () => poolOf(b.sock, "gpu").idle === 2);
    await waitFor("the broker's fd count back where it was", () => b.fds() === before);
  } finally {
    dir.cleanup();
  }
}, 120_000);

test("mostAtOnce counts overlaps (the check above can fail)", () => {
  expect(mostAtOnce(["start 1", "start 2", "start 3", "end 4", "end 5", "end 6"])).toBe(3);
  expect(mostAtOnce(["start 1", "end 2", "start 2", "end 3"])).toBe(1);
});
