// Shared test plumbing: real processes tracked by pid, fd counts from /proc, readiness through a pipe.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { C, close, pipe, read, waitFd } from "../src/sys/index.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const BIN = join(ROOT, "bin/fdbroker");
export const BUN = process.execPath;
/**
 * The command that runs the CLI: `bun bin/fdbroker`, or the compiled binary when FDBROKER_BIN names one
 * (`npm run build && FDBROKER_BIN=dist/fdbroker bun test` runs every CLI test against dist/fdbroker).
 */
export const CLI: readonly string[] = process.env.FDBROKER_BIN ? [resolve(process.env.FDBROKER_BIN)] : [BUN, BIN];

type SpawnOptions = NonNullable<Parameters<typeof Bun.spawn>[1]>;
const tracked = new Map<number, ReturnType<typeof Bun.spawn>>();

/** Kill every tracked process that is still running; returns the pids that were. */
export function killTracked(): number[] {
  const alive: number[] = [];
  for (const [pid, proc] of tracked) {
    if (proc.exitCode === null && proc.signalCode === null) {
      alive.push(pid);
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
  tracked.clear();
  return alive;
}

/** Bun.spawn, with the process killed by pid when the current test ends. */
export function spawn(cmd: string[], opts: SpawnOptions = {}) {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", ...opts });
  tracked.set(proc.pid, proc);
  return proc;
}

/** Mark a process as ended on purpose, so the leftover guard does not count it. */
export function untrack(pid: number): void {
  tracked.delete(pid);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI (see CLI) to completion. */
export async function fdbroker(args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return run([...CLI, ...args], opts);
}

export async function run(cmd: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return finish(spawn(cmd, opts));
}

/** Wait for a process started with stdout and stderr piped to end; its exit code and everything it printed. */
export async function finish(proc: ReturnType<typeof spawn>): Promise<RunResult> {
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** A process's resident memory (VmRSS in /proc/PID/status), in KiB. */
export function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

/** Number of open fds of a process (default this one), from /proc. */
/**
 * The fds of a process, less its runtime's event loops' (an epoll and an eventfd per JavaScript thread): those are
 * Bun's, and a broker's closer threads (src/sys/offload.ts) bring their own when the first close starts one.
 */
export function fdCount(pid: number | "self" = "self"): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (!RUNTIME_FD.test(readlinkSync(`/proc/${pid}/fd/${fd}`))) n++;
    } catch {
      // Closed since the listing: the directory fd readdirSync opened on /proc/self/fd, or one going away.
    }
  }
  return n;
}

/** What /proc/PID/fd/N links to for the runtime's own event-loop fds. */
export const RUNTIME_FD = /^anon_inode:\[(eventpoll|eventfd)\]$/;

/**
 * A pipe whose write end a child gets (as --ready-fd): wait() returns what the child wrote; it throws after
 * timeoutMs, or at once if the child closed the pipe without writing (it died before it was ready).
 */
export function readyPipe() {
  const [r, w] = pipe();
  return {
    writeEnd: w,
    /** Close our copy of the write end once the child has its own. */
    closeWriteEnd: () => close(w),
    wait(timeoutMs = 20000): string {
      const rev = waitFd(r, C.POLLIN | C.POLLHUP, timeoutMs);
      if (rev === 0) throw new Error(`not ready after ${timeoutMs} ms`);
      const data = read(r, 4096);
      if (!data?.length) throw new Error("the ready fd was closed without a word (did the process exit?)");
      return new TextDecoder().decode(data);
    },
    close: () => close(r),
  };
}

/**
 * spawn() a command that reports readiness on fd 3 (`--ready-fd 3` is in `cmd`): a readyPipe's write end goes
 * there, and this returns once the process has written to it, with what it wrote. `stdio` gives fds 0-2 (default:
 * stdin ignored, stdout and stderr piped) and any from 4 on.
 */
export function spawnReady(cmd: string[], opts: Omit<SpawnOptions, "stdio"> & { stdio?: unknown[] } = {}, timeoutMs = 20000) {
  const [stdin = "ignore", stdout = "pipe", stderr = "pipe", ...more] = opts.stdio ?? [];
  const ready = readyPipe();
  try {
    let proc: ReturnType<typeof spawn>;
    try {
      proc = spawn(cmd, { ...opts, stdio: [stdin, stdout, stderr, ready.writeEnd, ...more] as never });
    } finally {
      ready.closeWriteEnd();
    }
    return { proc, said: ready.wait(timeoutMs) };
  } finally {
    ready.close();
  }
}

export function tempDir(prefix = "fdbroker-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * This process's open fds as `N target` lines, without the event-loop fds Bun opens lazily for itself (an epoll
 * and its eventfd): fdbroker never opens either.
 */
export function fdSnapshot(): string[] {
  const lines: string[] = [];
  for (const fd of readdirSync("/proc/self/fd").map(Number).sort((a, b) => a - b)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the directory fd that listed them, closed by now
    }
    if (!RUNTIME_FD.test(target)) lines.push(`${fd} ${target}`);
  }
  return lines;
}

/**
 * The fds open now that were not open at `before`, once there are none or `timeoutMs` has passed. An fd that
 * closed in the meantime does not count: Bun closes an exited child's stdio in its own time, so `before` may hold
 * a previous test's. A reused number with another target does count.
 */
export async function newFdsSince(before: readonly string[], timeoutMs = 10000): Promise<string[]> {
  const known = new Set(before);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const extra = fdSnapshot().filter((l) => !known.has(l));
    if (extra.length === 0 || Date.now() >= deadline) return extra;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Wait for a condition with a generous bound, checking every 20 ms (a condition, not a fixed sleep). It may be
 * async: asking a process, say.
 */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** A child's output line by line as it arrives (readiness lines, reports); the stream is this reader's alone. */
export function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const take = (): string | null => {
    const nl = buffered.indexOf("\n");
    if (nl < 0) return null;
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    return line;
  };
  /** One more chunk into `buffered`: false at end of stream, null if `waitMs` passed first. */
  const more = async (waitMs = Infinity): Promise<boolean | null> => {
    const read = reader.read();
    const chunk = waitMs === Infinity ? await read : await Promise.race([read, Bun.sleep(waitMs).then(() => null)]);
    if (chunk === null) return null;
    if (chunk.done) return false;
    buffered += decoder.decode(chunk.value, { stream: true });
    return true;
  };
  return {
    /** The next line; at end of stream, what is left of a last unterminated one ("" if nothing). */
    async line(): Promise<string> {
      for (;;) {
        const line = take();
        if (line !== null) return line;
        if (!(await more())) {
          const rest = buffered;
          buffered = "";
          return rest;
        }
      }
    },
    /** The next line matching `re`, skipping others; throws at end of stream or after timeoutMs. */
    async next(re: RegExp, timeoutMs = 30000): Promise<RegExpExecArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = take();
        if (line !== null) {
          const m = re.exec(line);
          if (m) return m;
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no line matching ${re} in ${timeoutMs} ms`);
        if ((await more(left)) === false) throw new Error(`stream ended before a line matching ${re}`);
      }
    },
    /** Everything from here to end of stream. */
    async rest(): Promise<string> {
      while (await more());
      const all = buffered;
      buffered = "";
      return all;
    },
  };
}
