// The zero-downtime part of `npm start` runs on its own and reports every request answered.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, ROOT, run } from "../helpers.ts";

test("examples/demo-restart.ts: three reloads under load, 0 failed, four server pids", async () => {
  const r = await run([BUN, join(ROOT, "examples/demo-restart.ts")], { env: { ...process.env, NO_COLOR: "1" } });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/\d+ requests, 0 failed; answered by 4 server processes/);
  expect(r.stdout.match(/\(retired\)/g)?.length).toBe(3);
}, 120_000);
