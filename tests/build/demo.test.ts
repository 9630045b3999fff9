// `npm start` must keep working as parts are added to it: run the demo as a user would and check what it shows.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, ROOT, run } from "../helpers.ts";

test("the demo passes a file between processes and shows what arrived", async () => {
  const r = await run([BUN, join(ROOT, "examples/demo.ts")], { env: { ...process.env, NO_COLOR: "1" } });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('payload "hello from the sender"');
  expect(r.stdout).toMatch(/0 +file +w append/);
  expect(r.stdout).toMatch(/second line, written by pid (\d+) through fd 3 \(LISTEN_FDS=1, LISTEN_PID=\1\)/);
  expect(r.stdout.trimEnd()).toEndWith("More: fdbroker --help, and the README.");
}, 60_000);
