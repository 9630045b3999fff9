// The serving loop's bookkeeping must leave nothing behind that only a full collection frees. JSC keeps each hash
// table a Set or Map discards (at clear(), or after deletes and adds) through young-generation collections until
// the next full one; the loop's set of connections to re-register, cleared every turn, and its idle order, a
// delete and an add per request, left about 1.2 such tables per put: 3 MiB of RSS after 10,000 puts
// (docs/benchmarks.md). The broker runs in this process so its heap can be counted before any full collection.
import { heapStats } from "bun:jsc";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { runLoop, startBroker } from "../../src/broker/index.ts";
import { realEnv } from "../../src/broker/state.ts";
import { BUN, fdCount, spawn, tempDir, waitFor } from "../helpers.ts";

const PUTS = 5000;

test(`${PUTS} puts leave fewer than ${PUTS / 5} discarded hash tables for a full collection to free`, async () => {
  const dir = tempDir();
  const fds = fdCount();
  try {
    const socket = join(dir.path, "s");
    const state = startBroker({ socket, env: { ...realEnv, log: () => {} } });
    const loop = runLoop(state);
    try {
      Bun.gc(true);
      const before = heapStats().objectTypeCounts["Cell Butterfly"] ?? 0;
      const putter = spawn([BUN, join(import.meta.dir, "fixtures/putter.ts"), socket, String(PUTS)], { stdio: ["ignore", "inherit", "inherit"] });
      expect(await putter.exited).toBe(0);
      expect(state.entries.size).toBe(PUTS);
      // A young-generation collection first: what it frees is not the garbage in question.
      Bun.gc(false);
      const after = heapStats().objectTypeCounts["Cell Butterfly"] ?? 0;
      console.log(`JSCellButterfly cells: ${before} before, ${after} after ${PUTS} puts`);
      expect(after - before).toBeLessThan(PUTS / 5);
    } finally {
      state.stopping = true;
      await loop;
    }
    // Every entry closed (by the closer threads, so not at once). Not an exact count: the closer threads and the
    // runtime's spawn machinery keep fds of their own in this process.
    await waitFor("the entries' fds closed", () => fdCount() < fds + 32);
  } finally {
    dir.cleanup();
  }
}, 60_000);
