// Starting fdbroker processes that must be ready for a peer before the test goes on: they get a pipe's write
// end as fd 3 and `--ready-fd 3`, and the test waits for the newline.
import { afterEach, beforeEach, expect } from "bun:test";
import { BIN, BUN, fdCount, readyPipe, spawn, tempDir } from "../helpers.ts";

export function startReady(args: string[], extraStdio: (number | "ignore")[] = [], stdin: number | "ignore" = "ignore") {
  const ready = readyPipe();
  // Before any `--`, so a command to exec does not get it.
  const proc = spawn([BUN, BIN, args[0]!, "--ready-fd", "3", ...args.slice(1)], { stdio: [stdin, "pipe", "pipe", ready.writeEnd, ...extraStdio] as never });
  ready.closeWriteEnd();
  try {
    ready.wait();
  } finally {
    ready.close();
  }
  return {
    proc,
    async result() {
      const [stdout, stderr, code] = await Promise.all([
        new Response(proc.stdout as ReadableStream).text(),
        new Response(proc.stderr as ReadableStream).text(),
        proc.exited,
      ]);
      return { stdout, stderr, code };
    },
  };
}

/**
 * The test process's fd count once it is back to `expected`, or what it is after `timeoutMs`. Bun closes a
 * finished child's pidfd and stdio pipes on its own schedule, so right after a child exits the count can still
 * include them; a real leak stays and fails the assertion.
 */
export async function settledFdCount(expected: number, timeoutMs = 10000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = fdCount();
    if (n === expected || Date.now() >= deadline) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Each test gets a fresh temporary directory, and must leave the test process's fd count as it found it. */
export function tempDirAndFdCheck() {
  const ctx = { dir: { path: "", cleanup: () => {} } as ReturnType<typeof tempDir>, before: 0 };
  beforeEach(() => {
    ctx.dir = tempDir();
    ctx.before = fdCount();
  });
  afterEach(async () => {
    ctx.dir.cleanup();
    expect(await settledFdCount(ctx.before)).toBe(ctx.before);
  });
  return ctx;
}
