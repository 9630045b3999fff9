// The benchmark must keep running (performance itself is measured by `npm run bench`, never asserted here):
// a tiny run checks that every implementation round-trips fds and reports a number.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, ROOT, run } from "../helpers.ts";

test("bench/roundtrip runs every implementation at both batch sizes", async () => {
  const r = await run([BUN, join(ROOT, "bench/roundtrip.ts"), "--rounds", "1", "--scale", "0.01", "--json"], { cwd: ROOT });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const { results } = JSON.parse(r.stdout) as { results: { impl: string; batch: number; medianNs: number }[] };
  const impls = [...new Set(results.map((x) => x.impl))];
  expect(impls).toEqual(["C (cc -O2)", "Python send_fds", "fdbroker sendFds/recvFds", "fdbroker raw sendmsg/recvmsg"]);
  expect(results.map((x) => x.batch)).toEqual([1, 1, 1, 1, 64, 64, 64, 64]);
  for (const x of results) expect(x.medianNs).toBeGreaterThan(0);
}, 120_000);

test("bench/lease runs all three parts (the C client keeps FIFO order)", async () => {
  const r = await run([BUN, join(ROOT, "bench/lease.ts"), "--rounds", "1", "--count", "20", "--seconds", "0.5", "--waiters", "2", "--json"], { cwd: ROOT });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.ratio).toBeGreaterThan(0);
  expect(out.leasesPerSecond).toBeGreaterThan(0);
  expect(out.c).toMatchObject({ fifo: true });
  expect(out.c.leasesPerSecond).toBeGreaterThan(0);
}, 120_000);

test("bench/tap runs every path: direct, tap, both C relays and the Bun floor", async () => {
  const r = await run([BUN, join(ROOT, "bench/tap.ts"), "--mib", "8", "--runs", "1", "--json"], { cwd: ROOT });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout);
  for (const path of ["direct", "tap", "relay-rw", "relay-splice", "floor"]) expect(out[path].miBs).toBeGreaterThan(0);
}, 120_000);
