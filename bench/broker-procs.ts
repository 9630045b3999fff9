// Processes bench/broker.ts starts and watches: fdbroker brokers, s6-fdholder-daemon, client processes, and what
// /proc says about them. Every process started here is remembered so the bench can kill leftovers by pid.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { C, close, pipe, read, waitFd } from "../src/sys/index.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const BIN = join(ROOT, "bin/fdbroker");
export const BUN = process.execPath;
export const started: ReturnType<typeof Bun.spawn>[] = [];

export function killLeftovers(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

export interface BrokerProc {
  proc: ReturnType<typeof Bun.spawn>;
  log: string;
  /** ms from spawn to the ready fd (the broker accepting, with everything taken over if --takeover). */
  readyMs: number;
}

/** `CLI serve -s SOCK --ready-fd 3 ...`, stderr (one line per operation) to a log file, as a service would run it. */
export function startBroker(cli: readonly string[], sock: string, logDir: string, extra: string[] = []): BrokerProc {
  const [r, w] = pipe();
  const log = join(logDir, `broker-${started.length}.log`);
  const t0 = performance.now();
  const proc = Bun.spawn([...cli, "serve", "-s", sock, "--ready-fd", "3", ...extra], { stdio: ["ignore", "ignore", Bun.file(log), w] });
  started.push(proc);
  close(w);
  try {
    if ((waitFd(r, C.POLLIN | C.POLLHUP, 120_000) & C.POLLIN) === 0) throw new Error(`broker did not start:\n${readFileSync(log, "utf8")}`);
    return { proc, log, readyMs: performance.now() - t0 };
  } finally {
    close(r);
  }
}

/** A reference broker on `sock` (`cmd`: bench/ref-broker.c compiled, or bench/broker-floor.ts run); it writes a byte to fd 3 once listening. */
export function startRefBroker(cmd: readonly string[], sock: string): ReturnType<typeof Bun.spawn> {
  const [r, w] = pipe();
  const proc = Bun.spawn([...cmd, sock], { stdio: ["ignore", "ignore", "inherit", w] });
  started.push(proc);
  close(w);
  try {
    if ((waitFd(r, C.POLLIN | C.POLLHUP, 30_000) & C.POLLIN) === 0) throw new Error("the reference broker did not start");
    return proc;
  } finally {
    close(r);
  }
}

export async function stopProc(p: ReturnType<typeof Bun.spawn>): Promise<void> {
  p.kill("SIGTERM");
  await p.exited;
}

/**
 * s6-fdholder-daemon on SOCK with a rules directory that lets our uid store, retrieve and list anything, holding
 * /etc/hosts as ID (the same kind of fd as the fdbroker entry it is compared with). Null if s6 is not installed.
 */
export function startS6(sock: string, dir: string, id: string): ReturnType<typeof Bun.spawn> | null {
  if (!Bun.which("s6-fdholder-daemon")) return null;
  const rules = writeS6Rules(dir);
  const [r, w] = pipe();
  // -1: a newline on stdout once bound and listening.
  const proc = Bun.spawn(["s6-fdholder-daemon", "-1", "-i", rules, sock], { stdio: ["ignore", w, "inherit"] });
  started.push(proc);
  close(w);
  try {
    if ((waitFd(r, C.POLLIN | C.POLLHUP, 30_000) & C.POLLIN) === 0 || read(r, 16) === null) throw new Error("s6-fdholder-daemon did not start");
  } finally {
    close(r);
  }
  const store = Bun.spawnSync(["s6-fdholder-store", sock, id], { stdin: Bun.file("/etc/hosts"), stderr: "pipe" });
  if (store.exitCode !== 0) throw new Error(`s6-fdholder-store failed: ${store.stderr.toString()}`);
  return proc;
}

/**
 * An s6-fdholderd rules directory (for `-i`) under `dir` letting our uid store, retrieve and list any id; returns
 * its path. The tests in tests/interop/s6-fdholder.test.ts use it too.
 */
export function writeS6Rules(dir: string): string {
  const rules = join(dir, "s6rules");
  const uidDir = join(rules, "uid", String(process.getuid!()));
  mkdirSync(join(uidDir, "env"), { recursive: true });
  writeFileSync(join(uidDir, "allow"), "");
  // Rules are envdirs: an empty file would unset the variable, so each holds a value.
  for (const v of ["S6_FDHOLDER_STORE_REGEX", "S6_FDHOLDER_RETRIEVE_REGEX"]) writeFileSync(join(uidDir, "env", v), ".*\n");
  writeFileSync(join(uidDir, "env", "S6_FDHOLDER_LIST"), "1\n");
  return rules;
}

export interface ClientProc {
  proc: ReturnType<typeof Bun.spawn<"pipe", "pipe", "inherit">>;
  /** Everything the client printed after "ready". */
  result(): Promise<Record<string, unknown>>;
}

/** The Bun client (bench/broker-client.ts), as a command prefix for startClients. */
export const BUN_CLIENT = [BUN, join(import.meta.dir, "broker-client.ts")];

/** Start `count` client processes (`client` then `args`); resolve once every one is connected and warmed up. */
export async function startClients(count: number, client: readonly string[], args: string[]): Promise<ClientProc[]> {
  const clients = Array.from({ length: count }, () => {
    const proc = Bun.spawn([...client, ...args], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    started.push(proc);
    const reader = proc.stdout.getReader();
    let text = "";
    const readUntil = async (done: (t: string) => boolean) => {
      while (!done(text)) {
        const { value, done: eof } = await reader.read();
        if (eof) throw new Error(`client ${proc.pid} ended early (exit ${await proc.exited}): ${JSON.stringify(text)}`);
        text += new TextDecoder().decode(value);
      }
    };
    const ready = readUntil((t) => t.startsWith("ready\n"));
    const result = async () => {
      await readUntil((t) => /^ready\n.*\n/s.test(t));
      return JSON.parse(text.slice("ready\n".length)) as Record<string, unknown>;
    };
    return { proc, ready, result };
  });
  await Promise.all(clients.map((c) => c.ready));
  return clients.map(({ proc, result }) => ({ proc, result }));
}

/** Tell clients to start (or, in watch mode, to stop). */
export function signalClients(clients: readonly ClientProc[]): void {
  for (const c of clients) {
    c.proc.stdin.write("go\n");
    c.proc.stdin.flush();
  }
}

/** CPU time a process has used so far, in ms: in user space and in the kernel. */
export function cpuMs(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

/** A memory figure from /proc/PID/status (VmRSS by default; RssAnon, RssFile, VmHWM...), in MiB. */
export function rssMiB(pid: number, field = "VmRSS"): number {
  const kb = Number(new RegExp(`^${field}:\\s*(\\d+)`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
  return kb / 1024;
}
