// A real `fdbroker serve` process on a temporary socket, ready when it says so on --ready-fd, with its log in a file.
import { afterEach } from "bun:test";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { asUid, PY } from "../hostile.ts";
import { CLI, fdCount, lineReader, readyPipe, spawn, spawnReady, tempDir, untrack, waitFor } from "../helpers.ts";

export interface Broker {
  proc: ReturnType<typeof spawn>;
  sock: string;
  dir: string;
  log(): string;
  fds(): number;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number>;
}

export async function startBroker(args: string[] = [], opts: { env?: Record<string, string | undefined>; dirMode?: number; cmdPrefix?: string[] } = {}): Promise<Broker> {
  const dir = tempDir("fdbroker-broker-");
  // 0755 lets a broker or clients of another uid (setpriv) reach the socket; 0777 lets such a broker create it.
  if (opts.dirMode !== undefined) chmodSync(dir.path, opts.dirMode);
  const sock = join(dir.path, "broker.sock");
  const logPath = join(dir.path, "broker.log");
  const ready = readyPipe();
  const proc = spawn([...(opts.cmdPrefix ?? []), ...CLI, "serve", "-s", sock, "--ready-fd", "3", ...args], {
    stdio: ["ignore", "ignore", Bun.file(logPath), ready.writeEnd],
    env: { ...process.env, ...opts.env },
  });
  ready.closeWriteEnd();
  try {
    ready.wait(30000);
  } catch {
    proc.kill("SIGKILL");
    await proc.exited;
    untrack(proc.pid);
    const log = readFileSync(logPath, "utf8");
    dir.cleanup();
    throw new Error(`broker did not start: ${log}`);
  } finally {
    ready.close();
  }
  // The broker closes its end of the ready pipe just after writing; fd counts must not see it.
  await waitFor("the broker to close --ready-fd", () => !existsSync(`/proc/${proc.pid}/fd/3`));
  let stopped: Promise<number> | null = null;
  const b: Broker = {
    proc,
    sock,
    dir: dir.path,
    log: () => readFileSync(logPath, "utf8"),
    fds: () => fdCount(proc.pid),
    // Once: a test may stop its broker itself and brokerPerTest stops it again afterwards.
    stop: () =>
      (stopped ??= (async () => {
        proc.kill("SIGTERM");
        const code = await proc.exited;
        dir.cleanup();
        return code;
      })()),
  };
  return b;
}

/** `start` brokers in a test (startBroker's arguments); each is stopped after the test, pass or fail. */
export function brokerPerTest(): typeof startBroker {
  const started: Broker[] = [];
  afterEach(async () => {
    for (const b of started.splice(0)) await b.stop();
  });
  return async (...args) => {
    const b = await startBroker(...args);
    started.push(b);
    return b;
  };
}

/** Start `serve --takeover` at `sock` and return once the new broker is ready; the old one exits by itself. */
export function startTakeover(sock: string, stderr: "pipe" | "ignore" = "pipe") {
  return spawnReady([...CLI, "serve", "-s", sock, "--takeover", "--ready-fd", "3"], { stdio: ["ignore", "ignore", stderr] }, 60000).proc;
}

export { asUid, PY };

/**
 * fixtures/hostile.py against `sock`, as `uid` (65534 unless given): `ready` is its first report (once set up),
 * `finish()` closes its stdin and returns its last.
 */
export async function hostile(sock: string, args: (string | number)[], uid = 65534) {
  const proc = spawn([...asUid(uid), PY, join(import.meta.dir, "fixtures/hostile.py"), sock, ...args.map(String)], { stdin: "pipe" });
  const lines = lineReader(proc.stdout as ReadableStream);
  const report = async () => {
    const line = await lines.line();
    if (!line) throw new Error(`hostile.py ${args.join(" ")} said nothing: ${await new Response(proc.stderr as ReadableStream).text()}`);
    return JSON.parse(line);
  };
  const ready = await report();
  return {
    proc,
    ready,
    async finish() {
      (proc.stdin as { end(): void }).end();
      const last = await report();
      await proc.exited;
      return last;
    },
  };
}

export { waitFor } from "../helpers.ts";
