// `npm start`, part 3: a zero-downtime restart. `fdbroker run` holds a listening socket and runs a small HTTP
// server on it (a Python script that takes fd 3 from LISTEN_FDS); clients keep requesting while `run` is sent
// SIGHUP three times. Each reload starts a new server, waits for its READY=1, then stops the old one, which
// finishes what it accepted. Every request is answered; the answering pid changes with each reload.
//
// Also runs on its own: bun examples/demo-restart.ts
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { context, type DemoContext } from "./demo.ts";

const ROOT = resolve(import.meta.dir, "..");
const SERVER = join(ROOT, "tests/fixtures/http_server.py");
const RELOADS = 3;

/** One request on a fresh connection; resolves with the pid in the body. */
function request(path: string): Promise<number> {
  return new Promise((res, rej) => {
    const s = connect(path, () => s.write("GET / HTTP/1.0\r\n\r\n"));
    let data = "";
    s.setTimeout(20000, () => s.destroy(new Error("timed out")));
    s.on("data", (d) => (data += d));
    s.on("error", rej);
    s.on("close", () => {
      const m = /\r\n\r\n(\d+)\n$/.exec(data);
      if (m) res(Number(m[1]));
      else rej(new Error(`bad answer: ${JSON.stringify(data)}`));
    });
  });
}

/** Resolves when `lines` (fed from the supervisor's stderr) gets a line matching `re` after index `from`. */
async function logLine(lines: string[], re: RegExp, from: number, timeoutMs = 30000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (let i = from; i < lines.length; i++) {
      const m = re.exec(lines[i]!);
      if (m) return m;
    }
    if (Date.now() > deadline) throw new Error(`fdbroker run: no line matching ${re}:\n${lines.join("\n")}`);
    await Bun.sleep(10);
  }
}

export async function run(ctx: DemoContext): Promise<void> {
  if (!Bun.which("python3")) {
    ctx.step("Zero-downtime restart: skipped (the demo server needs python3)");
    return;
  }
  const sock = join(ctx.dir, "web.sock");
  ctx.step(`Zero-downtime restart: fdbroker run holds ${sock}; the server restarts ${RELOADS} times under load`);
  const args = ["run", "--listen", `web=unix:${sock}`, "--ready", "notify", "--grace", "5000", "--", "python3", SERVER];
  ctx.show(`$ fdbroker ${args.join(" ")}`);
  const sup = Bun.spawn([...ctx.cli, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  const lines: string[] = [];
  const collecting = (async () => {
    let rest = "";
    for await (const chunk of sup.stderr as ReadableStream<Uint8Array>) {
      const parts = (rest + new TextDecoder().decode(chunk)).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  try {
    await logLine(lines, /is ready/, 0);
    const answered = new Map<number, number>();
    let failed = 0;
    let going = true;
    const clients = Array.from({ length: 4 }, async () => {
      while (going) {
        try {
          const pid = await request(sock);
          answered.set(pid, (answered.get(pid) ?? 0) + 1);
        } catch {
          failed++;
        }
      }
    });
    for (let i = 0; i < RELOADS; i++) {
      await Bun.sleep(300); // let the current server answer for a while: a pause for the show, not a wait on state
      const mark = lines.length;
      ctx.show(`$ kill -HUP ${sup.pid}`);
      sup.kill("SIGHUP");
      await logLine(lines, /\(retired\)/, mark);
    }
    await Bun.sleep(300);
    going = false;
    await Promise.all(clients);
    ctx.show(`\nwhat run logged:\n${lines.join("\n")}\n`);
    const total = [...answered.values()].reduce((a, b) => a + b, 0);
    ctx.show(`${total} requests, ${failed} failed; answered by ${answered.size} server processes:`);
    for (const [pid, n] of answered) ctx.show(`  pid ${pid}: ${n}`);
    if (failed > 0) throw new Error(`${failed} requests failed during the restarts`);
  } finally {
    sup.kill("SIGTERM");
    await sup.exited;
    await collecting;
  }
}

if (import.meta.main) {
  const dir = mkdtempSync(join(tmpdir(), "fdbroker-demo-restart-"));
  run(context(dir))
    .catch((e) => {
      process.stderr.write(`demo-restart failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    })
    .finally(() => rmSync(dir, { recursive: true, force: true }));
}
