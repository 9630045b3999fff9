// Starting `fdbroker tap` and the Python peers for the tap tests: each started process is tracked (killed by pid
// when the test ends) and waited on for readiness by what it prints, never by a sleep.
import { join } from "node:path";
import { CLI, lineReader, spawn } from "../helpers.ts";

export const PYTHON = Bun.which("/usr/bin/python3") ?? Bun.which("python3") ?? "python3";
const PEER = join(import.meta.dir, "peer.py");

const started: ReturnType<typeof spawn>[] = [];

/** Kill (by pid) every process these helpers started that is still running, and wait for each to end. */
export async function stopAll(): Promise<void> {
  for (const p of started.splice(0)) {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    await p.exited;
  }
}

/** A tests/tap/peer.py peer, once it says it is ready; `next()` is its next JSON line. */
export async function startPeer(args: string[]) {
  const proc = spawn([PYTHON, PEER, ...args]);
  started.push(proc);
  const out = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  const first = await out.line();
  if (first !== "ready") throw new Error(`peer ${args[0]} did not start: ${first} ${await new Response(proc.stderr as ReadableStream).text()}`);
  return {
    proc,
    next: async () => JSON.parse((await out.next(/^\{/)).input) as { data: string; inodes: number[] },
  };
}

export type Rec = Record<string, any>;

/** `fdbroker tap ARGS --json` (after `prefix`, e.g. prlimit), once it is listening; `records` collects every record. */
export async function startTap(args: string[], json = true, prefix: string[] = []) {
  const proc = spawn([...prefix, ...CLI, "tap", ...args, ...(json ? ["--json"] : [])]);
  started.push(proc);
  const out = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  const lines: string[] = [];
  const first = await out.line();
  if (!/listening/.test(first)) throw new Error(`tap did not start: ${first} ${await new Response(proc.stderr as ReadableStream).text()}`);
  lines.push(first);
  // Read on in the background, so the tap never blocks on a full stdout pipe.
  const done = (async () => {
    for (;;) {
      const l = await out.line();
      if (l === "") return;
      lines.push(l);
    }
  })();
  return {
    proc,
    lines,
    records: () => (json ? lines.map((l) => JSON.parse(l) as Rec) : []),
    /** Wait for a record matching `pred` (bounded). */
    async waitRecord(pred: (r: Rec) => boolean, timeoutMs = 30_000): Promise<Rec> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = lines.map((l) => JSON.parse(l) as Rec).find(pred);
        if (r) return r;
        if (Date.now() > deadline) throw new Error(`no matching tap record in ${timeoutMs} ms; got:\n${lines.join("\n")}`);
        await Bun.sleep(20);
      }
    },
    /** SIGTERM, then the exit code and stderr once it has exited and its output is read. */
    async stop(): Promise<{ code: number; stderr: string }> {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      await done;
      return { code, stderr: await new Response(proc.stderr as ReadableStream).text() };
    },
  };
}
