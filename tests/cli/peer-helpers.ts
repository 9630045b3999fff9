// Starting fdbroker processes that must be ready for a peer before the test goes on: they get a pipe's write
// end as fd 3 and `--ready-fd 3`, and the test waits for the newline.
import { afterEach, beforeEach, expect } from "bun:test";
import { CLI, fdSnapshot, finish, newFdsSince, spawnReady, tempDir } from "../helpers.ts";

export function startReady(args: string[], extraStdio: (number | "ignore")[] = [], stdin: number | "ignore" = "ignore") {
  // Before any `--`, so a command to exec does not get it.
  const { proc } = spawnReady([...CLI, args[0]!, "--ready-fd", "3", ...args.slice(1)], { stdio: [stdin, "pipe", "pipe", ...extraStdio] });
  return {
    proc,
    result: () => finish(proc),
  };
}

/** Each test gets a fresh temporary directory, and must leave no fd open in the test process that it opened. */
export function tempDirAndFdCheck() {
  const ctx = { dir: { path: "", cleanup: () => {} } as ReturnType<typeof tempDir>, before: [] as string[] };
  beforeEach(() => {
    ctx.dir = tempDir();
    ctx.before = fdSnapshot();
  });
  afterEach(async () => {
    ctx.dir.cleanup();
    expect(await newFdsSince(ctx.before)).toEqual([]);
  });
  return ctx;
}
