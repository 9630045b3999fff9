// Plumbing for the `run` tests: a started supervisor whose log lines can be awaited, and a one-shot HTTP
// client that tells which server process answered.
import { connect } from "node:net";
import { join } from "node:path";
import { boundSocket, C, close, encodeUnix, recvmsg, waitFd } from "../../src/sys/index.ts";
import { CLI, ROOT, spawn, waitFor } from "../helpers.ts";

export const HTTP_SERVER = join(ROOT, "tests/fixtures/http_server.py");
export const REPORT = join(ROOT, "tests/fixtures/fd_report.py");

export interface Supervisor {
  proc: ReturnType<typeof spawn>;
  lines: string[];
  /** Resolves with the first log line (from `from` on) matching `re`; throws after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  stdout: () => Promise<string>;
  /** Resolves once stderr has reached end of file (its pipe is closed on our side too). */
  closed: Promise<void>;
}

/** Start `fdbroker run ARGS` (after `prefix`, e.g. systemd-socket-activate) with stderr collected line by line. */
export function startRun(args: string[], opts: Parameters<typeof spawn>[1] = {}, prefix: string[] = []): Supervisor {
  return watchRun(spawn([...prefix, ...CLI, "run", ...args], opts));
}

/** A spawned process that is (or execs) `fdbroker run`, with stderr collected line by line. */
export function watchRun(proc: ReturnType<typeof spawn>): Supervisor {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const closed = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      for (const w of waiters) w();
    }
  })();
  return {
    proc,
    lines,
    closed,
    stdout: () => new Response(proc.stdout as ReadableStream).text(),
    waitFor(re, timeoutMs = 30000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < lines.length; i++) {
            const m = re.exec(lines[i]!);
            if (m) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(m);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no log line matching ${re} in ${timeoutMs} ms; log:\n${lines.join("\n")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/** SIGHUP `run`; resolves with the new child's pid once it is ready and `old` has exited as retired. */
export async function reload(sup: Supervisor, old: number, signal = "SIGHUP"): Promise<number> {
  const mark = sup.lines.length;
  sup.proc.kill(signal as NodeJS.Signals);
  const fresh = Number((await sup.waitFor(/pid (\d+) is ready/, 30000, mark))[1]);
  await sup.waitFor(new RegExp(`pid ${old} exited with code 0 \\(retired\\)`), 30000, mark);
  return fresh;
}

/** Where a server listens: a UNIX socket path, or a TCP port on 127.0.0.1. */
export type Target = string | number;

/** One HTTP/1.0 request on a fresh connection; resolves with the answering server's pid. */
export function httpPid(target: Target, timeoutMs = 30000): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = typeof target === "number" ? connect(target, "127.0.0.1") : connect(target);
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from ${target} in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("connect", () => sock.write("GET / HTTP/1.0\r\nHost: test\r\n\r\n"));
    sock.on("data", (d) => (data += d.toString()));
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.0 200 OK\r\n[\s\S]*\r\n\r\n(\d+)\n$/.exec(data);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`bad response: ${JSON.stringify(data)}`));
    });
  });
}

/**
 * Keep `workers` clients requesting until stop() is called; counts answers per pid and failures. Used by the
 * zero-downtime tests: every request made across reloads must succeed.
 */
export function clientLoop(target: Target, workers = 4) {
  const byPid = new Map<number, number>();
  const failures: string[] = [];
  let total = 0;
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const pid = await httpPid(target);
        byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
      } catch (e) {
        failures.push((e as Error).message);
      }
      total++;
    }
  });
  return {
    byPid,
    failures,
    total: () => total,
    /** Resolves once `pred` holds (say, so many requests answered by one pid); throws after timeoutMs. */
    until: (pred: () => boolean, timeoutMs = 60000) => waitFor("the client loop's condition", pred, timeoutMs),
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** A stand-in for a service manager's NOTIFY_SOCKET at `path`: `next()` resolves with the next message sent. */
export function notifyManager(path: string) {
  const fd = boundSocket(C.AF_UNIX, "dgram", encodeUnix(path), path);
  return {
    path,
    async next(): Promise<string> {
      await waitFor("a notification on NOTIFY_SOCKET", () => waitFd(fd, C.POLLIN, 0) !== 0);
      return new TextDecoder().decode(recvmsg(fd, 4096, 0)!.data);
    },
    close: () => close(fd),
  };
}
