// `bun run bench/broker.ts`: the broker's numbers (docs/benchmarks.md, "Broker"):
//   1. gets per second with 1, 16 and 64 concurrent clients, each over one persistent connection with one request
//      in flight (a closed loop driven from this process with non-blocking sockets);
//   2. latency of `fdbroker get NAME -- true` (bun + bin/fdbroker, and dist/fdbroker when built) against
//      s6-fdholder-retrieve from Debian's s6, and a bare `bun -e 0` start, in the same run;
//   3. takeover time for 10,000 entries (from the old broker's log: request received to handed over);
//   4. broker RSS holding 10,000 entries with 1000 idle connections.
// Options: --seconds S per throughput point (default 3), --runs N per latency row (default 30), --json.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openSession, put } from "../src/client/index.ts";
import { connectTo } from "../src/peer/endpoint.ts";
import { createReader, encodeFrame, feed, OP, REPLY } from "../src/proto/index.ts";
import { C, close, closeAll, pipe, poll, read, recvmsg, sendmsg, waitFd } from "../src/sys/index.ts";

const ROOT = resolve(import.meta.dir, "..");
const BIN = join(ROOT, "bin/fdbroker");
const DIST = join(ROOT, "dist/fdbroker");
const opt = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = opt("--seconds", 3);
const RUNS = opt("--runs", 30);
const asJson = process.argv.includes("--json");
const dir = mkdtempSync(join(tmpdir(), "fdbroker-bench-"));
const started: ReturnType<typeof Bun.spawn>[] = [];

/** Start `fdbroker serve` (stderr to a log file) and wait for its ready fd. */
function startBroker(sock: string, extra: string[] = [], takeover = false) {
  const [r, w] = pipe();
  const log = join(dir, `${takeover ? "new" : "old"}-${started.length}.log`);
  const p = Bun.spawn([process.execPath, BIN, "serve", "-s", sock, "--ready-fd", "3", ...(takeover ? ["--takeover"] : []), ...extra], {
    stdio: ["ignore", "ignore", Bun.file(log), w],
  });
  started.push(p);
  close(w);
  if (waitFd(r, C.POLLIN | C.POLLHUP, 60000) === 0) throw new Error(`broker did not start: ${readFileSync(log, "utf8")}`);
  close(r);
  return { p, log };
}

function throughput(sock: string, clients: number): number {
  const socks = Array.from({ length: clients }, () => connectTo(sock, 30000));
  const readers = socks.map(() => createReader());
  const req = encodeFrame({ kind: OP.get, id: 1, fds: 0, body: { names: ["a"] } });
  for (const fd of socks) sendmsg(fd, req);
  let done = 0;
  const end = Date.now() + SECONDS * 1000;
  const reqs = socks.map((fd) => ({ fd, events: C.POLLIN }));
  while (Date.now() < end) {
    const rev = poll(reqs, 1000);
    for (let i = 0; i < socks.length; i++) {
      if (!rev[i]) continue;
      const got = recvmsg(socks[i]!, 65536, 253, C.MSG_DONTWAIT);
      if (!got) continue;
      const fed = feed(readers[i]!, got.data, got.fds);
      closeAll(fed.discard);
      for (const f of fed.frames) {
        closeAll(f.fds);
        if (f.kind !== REPLY.ok) throw new Error(`unexpected reply kind ${f.kind}`);
        done++;
        sendmsg(socks[i]!, req);
      }
    }
  }
  closeAll(socks);
  return done / SECONDS;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function latency(cmd: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = Bun.nanoseconds();
    const p = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
    if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${p.stderr.toString()}`);
    times.push((Bun.nanoseconds() - t0) / 1e6);
  }
  return median(times);
}

/** s6-fdholder-daemon with a rules directory allowing our uid to store and retrieve anything. */
function startS6(sock: string): ReturnType<typeof Bun.spawn> | null {
  if (!Bun.which("s6-fdholder-daemon")) return null;
  const rules = join(dir, "s6rules", "uid", String(process.getuid!()));
  mkdirSync(join(rules, "env"), { recursive: true });
  writeFileSync(join(rules, "allow"), "");
  writeFileSync(join(rules, "env", "S6_FDHOLDER_RETRIEVE_REGEX"), ".*\n");
  writeFileSync(join(rules, "env", "S6_FDHOLDER_STORE_REGEX"), ".*\n");
  const [r, w] = pipe();
  const p = Bun.spawn(["s6-fdholder-daemon", "-1", "-i", join(dir, "s6rules"), sock], { stdio: ["ignore", w, "inherit"] });
  started.push(p);
  close(w);
  waitFd(r, C.POLLIN | C.POLLHUP, 20000);
  read(r, 16);
  close(r);
  const store = Bun.spawnSync(["s6-fdholder-store", sock, "a"], { stdin: Bun.file("/etc/hosts") });
  if (store.exitCode !== 0) throw new Error("s6-fdholder-store failed");
  return p;
}

const rssKb = (pid: number) => Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

async function main() {
  const results: Record<string, unknown> = { machine: `${process.platform}-${process.arch}`, bun: Bun.version, seconds: SECONDS, runs: RUNS };

  const sock = join(dir, "b.sock");
  const b = startBroker(sock, ["--hold", "a=file:/etc/hosts", "--max-conns", "2000"]);
  results.getsPerSecond = Object.fromEntries([1, 16, 64].map((n) => [n, Math.round(throughput(sock, n))]));

  const s6sock = join(dir, "s6.sock");
  const s6 = startS6(s6sock);
  const rows: [string, string[]][] = [
    ["bun -e 0", [process.execPath, "-e", "0"]],
    ["bun bin/fdbroker get a -- true", [process.execPath, BIN, "get", "a", "-s", sock, "--", "true"]],
  ];
  if (existsSync(DIST)) rows.push(["dist/fdbroker get a -- true", [DIST, "get", "a", "-s", sock, "--", "true"]]);
  if (s6) rows.push(["s6-fdholder-retrieve a true", ["s6-fdholder-retrieve", s6sock, "a", "true"]]);
  const lat: Record<string, number> = {};
  // Interleaved, so load from other processes hits every row alike.
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < 3; round++) for (const [name, cmd] of rows) (samples[name] ??= []).push(latency(cmd));
  for (const [name, xs] of Object.entries(samples)) lat[name] = Number(median(xs).toFixed(2));
  results.latencyMs = lat;
  s6?.kill("SIGTERM");
  b.p.kill("SIGTERM");
  await b.p.exited;

  // Takeover of 10,000 entries, then RSS of the new broker with 1000 idle connections on top.
  const tsock = join(dir, "t.sock");
  const old = startBroker(tsock);
  const [r, w] = pipe();
  const s = openSession({ socket: tsock });
  for (let i = 0; i < 10000; i++) put(s, `e${i}`, i % 2 ? r : w);
  s.close();
  closeAll([r, w]);
  const t0 = Date.now();
  const next = startBroker(tsock, ["--max-conns", "1001"], true);
  const readyMs = Date.now() - t0;
  await old.p.exited;
  const lines = readFileSync(old.log, "utf8").split("\n");
  const at = (re: RegExp) => Date.parse(lines.find((l) => re.test(l))!.split(" ")[0]!);
  results.takeover = {
    entries: 10000,
    windowMs: at(/stop ok \(handed/) - at(/ takeover uid=\d+ pid=\d+ ok/),
    newBrokerStartToReadyMs: readyMs,
  };
  const idle = Array.from({ length: 1000 }, () => connectTo(tsock, 30000));
  const probe = openSession({ socket: tsock });
  const st = (await import("../src/client/index.ts")).status(probe);
  probe.close();
  results.rss = { entries: st.entries, connections: st.connections, rssMiB: Number((rssKb(next.p.pid) / 1024).toFixed(1)) };
  closeAll(idle);
  next.p.kill("SIGTERM");
  await next.p.exited;
  return results;
}

try {
  const results = await main();
  if (asJson) console.log(JSON.stringify(results, null, 2));
  else {
    const r = results as { getsPerSecond: Record<string, number>; latencyMs: Record<string, number>; takeover: Record<string, number>; rss: Record<string, number> };
    console.log(`broker gets/s over persistent connections: ${Object.entries(r.getsPerSecond).map(([n, v]) => `${n} client${n === "1" ? "" : "s"}: ${v}`).join(", ")}`);
    console.log("latency, median of medians (ms):");
    for (const [k, v] of Object.entries(r.latencyMs)) console.log(`  ${k.padEnd(34)} ${v}`);
    console.log(`takeover of ${r.takeover.entries} entries: ${r.takeover.windowMs} ms (new broker start to ready: ${r.takeover.newBrokerStartToReadyMs} ms)`);
    console.log(`RSS with ${r.rss.entries} entries and ${r.rss.connections} connections: ${r.rss.rssMiB} MiB`);
  }
} finally {
  for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
