// `npm run typecheck` as part of the suite, so CI fails on a type error like on any other defect.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, ROOT, run } from "../helpers.ts";

test("tsc --noEmit -p . reports nothing", async () => {
  const r = await run([BUN, join(ROOT, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", ROOT], { cwd: ROOT });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.code).toBe(0);
}, 180_000);
