// Plumbing for the real-server tests: the recipes read from docs/recipes.md, HTTP clients that tell a truncated
// download from a whole one (a slow, rate-limited reader keeps a 20 MB download in flight across a reload), and
// the process trees the servers fork, so every process is killed by pid at the end.
import { readFileSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { BUN, CLI, ROOT, spawn, tempDir, untrack } from "../helpers.ts";
import { watchRun, type Supervisor } from "../run/harness.ts";

const RECIPES = join(ROOT, "docs/recipes.md");

export interface Recipe {
  /** The configuration file the recipe shows (its path on the page) and its text, if any. */
  config?: { path: string; text: string };
  /** The one command line, starting `fdbroker run`. */
  command: string;
}

/** The `### NAME` section of docs/recipes.md: the file shown under a "`/etc/...`:" line, and its `nth` sh block. */
export function recipeFromDoc(name: string, nth = 0): Recipe {
  const doc = readFileSync(RECIPES, "utf8");
  const start = doc.indexOf(`\n### ${name}\n`);
  if (start < 0) throw new Error(`docs/recipes.md has no "### ${name}" section`);
  const rest = doc.slice(start + 1);
  // Up to the next heading of any level, or the end of the page for its last section.
  const end = rest.slice(4).search(/\n##/);
  const section = end < 0 ? rest : rest.slice(0, end + 4);
  const file = /^`(\/[^`]+)`:\n\n```\w*\n([\s\S]*?)```/m.exec(section);
  const command = [...section.matchAll(/^```sh\n(fdbroker run [^\n]*)\n```/gm)][nth];
  if (!command) throw new Error(`the "### ${name}" section has no one-line fdbroker run command number ${nth + 1}`);
  return { config: file ? { path: file[1]!, text: file[2]! } : undefined, command: command[1]! };
}

/** Replace every occurrence of each key (longest first, so /run/web/x is not cut by /run/web). */
export function substitute(text: string, map: Record<string, string>): string {
  const keys = Object.keys(map).sort((a, b) => b.length - a.length);
  let out = text;
  for (const k of keys) out = out.split(k).join(map[k]!);
  return out;
}

const shQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** argv running a recipe's command line through sh, with `fdbroker` meaning this checkout's CLI (exec'd in place). */
export function recipeArgv(command: string): string[] {
  return ["sh", "-c", `fdbroker() { exec ${CLI.map(shQuote).join(" ")} "$@"; }; ${command}`];
}

/** A free TCP port on this machine, as the kernel picks one (bound then released: a small race, retried by callers). */
export async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** One HTTP/1.0 GET on a fresh connection to 127.0.0.1:port; resolves with the status and body. */
export function httpGet(port: number, path: string, timeoutMs = 30000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from port ${port} in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.0\r\nHost: test\r\n\r\n`));
    sock.on("data", (d: Buffer) => chunks.push(d));
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d+) [^\r]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
      if (m) resolve({ status: Number(m[1]), body: m[2]! });
      else reject(new Error(`bad response: ${JSON.stringify(text.slice(0, 200))}`));
    });
  });
}

/** Clients asking for `path` again and again until stop(); a request fails unless it gets 200 and `body`. */
export function requestLoop(port: number, path: string, body: string | RegExp, workers = 2) {
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const r = await httpGet(port, path);
        if (r.status === 200 && (typeof body === "string" ? r.body === body : body.test(r.body))) ok++;
        else failures.push(`status ${r.status}, body ${JSON.stringify(r.body.slice(0, 80))}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  });
  return {
    failures,
    ok: () => ok,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}

export interface DownloadResult {
  status: number;
  /** Content-Length as the server announced it (-1 if none). */
  announced: number;
  bytes: number;
  sha256: string;
  error?: string;
}

/**
 * A GET read no faster than `bytesPerSec`: the server's side of the connection stays busy for as long as the
 * body takes at that rate, so a reload in the middle of it catches the download in flight. `received` counts body
 * bytes so far; `done` resolves (never rejects) once the whole announced body is in or the connection closes, or
 * with an error once nothing has arrived for STALL_MS (a test then fails saying so, instead of timing out whole).
 */
/** A download with no byte for this long is given up as stalled (the reloads' own waits are 60 s). */
const STALL_MS = 60_000;

export function slowDownload(port: number, path: string, bytesPerSec: number) {
  const hasher = new Bun.CryptoHasher("sha256");
  const state = { received: 0, finished: false, done: null as unknown as Promise<DownloadResult> };
  state.done = new Promise<DownloadResult>((resolve) => {
    const sock = connect(port, "127.0.0.1");
    const started = Date.now();
    let head = Buffer.alloc(0);
    let status = 0;
    let announced = -1;
    let error: string | undefined;
    let last = Date.now();
    const finish = () => {
      if (state.finished) return;
      state.finished = true;
      clearInterval(watchdog);
      resolve({ status, announced, bytes: state.received, sha256: hasher.digest("hex"), error });
    };
    const watchdog = setInterval(() => {
      if (Date.now() - last < STALL_MS) return;
      error = `stalled: nothing for ${STALL_MS} ms after ${state.received} of ${announced} bytes`;
      sock.destroy();
      finish();
    }, 1000);
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.0\r\nHost: test\r\n\r\n`));
    sock.on("data", (d: Buffer) => {
      last = Date.now();
      let body = d;
      if (status === 0) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        const text = head.subarray(0, end).toString("latin1");
        status = Number(/^HTTP\/1\.[01] (\d+)/.exec(text)?.[1] ?? -1);
        announced = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? -1);
        body = head.subarray(end + 4);
      }
      hasher.update(body);
      state.received += body.length;
      // The whole body is in: done, whether or not the close that follows is seen.
      if (announced >= 0 && state.received >= announced) {
        sock.destroy();
        return finish();
      }
      const ahead = (state.received / bytesPerSec) * 1000 - (Date.now() - started);
      if (ahead > 10) {
        sock.pause();
        setTimeout(() => sock.resume(), ahead);
      }
    });
    sock.on("error", (e) => (error = e.message));
    sock.on("close", finish);
  });
  return state;
}

/** Every process in `pid`'s tree (itself included), from /proc/PID/task/TID/children. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${tid}/children`, "utf8").split(" ")) if (c.trim()) out.push(Number(c));
      } catch {
        // the thread or process ended meanwhile
      }
    }
  }
  return out;
}

/** A process's start time (field 22 of /proc/PID/stat), which tells it apart from a later one with its pid. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Processes seen in a tree at some point; killAll() SIGKILLs those still alive (the same process, not a reused pid). */
export function processLedger() {
  const seen = new Map<number, string>();
  return {
    note(root: number): void {
      for (const pid of processTree(root)) {
        const t = startTime(pid);
        if (t !== null && !seen.has(pid)) seen.set(pid, t);
      }
    },
    killAll(): void {
      for (const [pid, t] of seen) {
        if (startTime(pid) !== t) continue;
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
    },
  };
}

export const BIG = 20 * 1024 * 1024;
export const SMALL = "hello\n";

/** A site every server can serve: 20 MB of random bytes, a small file, a WSGI app; readable by www-data. */
export function site() {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  const www = join(dir.path, "www");
  mkdirSync(www, { mode: 0o755 });
  const big = new Uint8Array(BIG);
  for (let i = 0; i < BIG; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  writeFileSync(join(www, "big.bin"), big, { mode: 0o644 });
  writeFileSync(join(www, "small.txt"), SMALL, { mode: 0o644 });
  writeFileSync(join(www, "app.py"), APP, { mode: 0o644 });
  return { dir, www, sha256: new Bun.CryptoHasher("sha256").update(big).digest("hex") };
}

// A WSGI app serving the same two files as the static servers, streamed from disk.
const APP = `import os
HERE = os.path.dirname(os.path.abspath(__file__))

def app(environ, start_response):
    path = os.path.join(HERE, environ["PATH_INFO"].lstrip("/"))
    if os.path.basename(path) not in ("big.bin", "small.txt"):
        start_response("404 Not Found", [("Content-Length", "0")])
        return []
    f = open(path, "rb")
    start_response("200 OK", [("Content-Length", str(os.fstat(f.fileno()).st_size))])
    return environ["wsgi.file_wrapper"](f, 65536)
`;

export type Ledger = ReturnType<typeof processLedger>;

/**
 * The servers run at the same time (beforeAll starts them, each test awaits its own), so the file takes as long as
 * the slowest server, not the sum. Their processes are therefore not left to the per-test guard of
 * tests/setup.ts, which would kill the others' at the end of the first test: each run's ledger kills its own by pid.
 */
export function started(proc: ReturnType<typeof spawn>, ledger: Ledger): ReturnType<typeof spawn> {
  untrack(proc.pid);
  ledger.note(proc.pid);
  return proc;
}

/** Start a recipe with its config written under `dir` and `map` applied; resolves once the first server is ready. */
export async function startRecipe(name: string, map: Record<string, string>, dir: string, ledger: Ledger, nth = 0): Promise<{ sup: Supervisor; pid: number }> {
  const r = recipeFromDoc(name, nth);
  const full = { ...map };
  if (r.config) {
    const path = join(dir, r.config.path.split("/").pop()!);
    full[r.config.path] = path;
    writeFileSync(path, substitute(r.config.text, map));
  }
  // `bun` in a recipe is the Bun running the tests (npm's bin may not be on PATH, and the binary may be bun.exe).
  mkdirSync(join(dir, "bin"), { recursive: true });
  if (!existsSync(join(dir, "bin/bun"))) symlinkSync(BUN, join(dir, "bin/bun"));
  const env = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` };
  const sup = watchRun(started(spawn(recipeArgv(substitute(r.command, full)), { stdout: "ignore", env }), ledger));
  const pid = Number((await sup.waitFor(/pid (\d+) is ready/, 60000))[1]);
  ledger.note(sup.proc.pid);
  return { sup, pid };
}


/** SIGTERM to run (passed on as the server's stop signal); resolves with run's exit code once its log is read. */
export async function stopRun(sup: Supervisor): Promise<number> {
  sup.proc.kill("SIGTERM");
  const code = await sup.proc.exited;
  await sup.closed;
  return code;
}

/** True (and says so) when `cmd` is not installed: the only reason a server's test is skipped. */
export function missing(cmd: string): boolean {
  if (Bun.which(cmd, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` })) return false;
  console.warn(`skipped: ${cmd} is not installed (Debian package: see .ci/run's needs table)`);
  return true;
}
