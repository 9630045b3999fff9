// `npm run bench:broker` (bun run bench/broker.ts): the broker's numbers, recorded in docs/benchmarks.md ("Broker"):
//   1. gets per second with 1, 16 and 64 concurrent clients, each a separate process with one persistent connection
//      and one request in flight, and the broker's own CPU time per get; clients in C speaking the protocol
//      (bench/broker-client.c, cheap enough that the broker is what is measured) and in Bun through the client
//      library (bench/broker-client.ts, what a Bun program gets end to end);
//   2. latency of `fdbroker get NAME -- true` (bun bin/fdbroker, and the compiled binary) against
//      s6-fdholder-retrieve from Debian's s6, a bare `bun -e 0` start and `true` alone, interleaved in one run;
//   3. broker RSS holding 10,000 entries with 1000 idle connections (VmRSS from /proc);
//   4. takeover of those 10,000 entries by `serve --takeover` (bun and compiled), while a client on a persistent
//      connection keeps getting: the longest get it saw, and the new broker's start to ready;
//   5. scale: gets per second of 4 C clients while 0, 1000, 4000 and 10,000 idle connections are held, from
//      fdbroker and from bench/ref-broker.c (one epoll loop in C, the floor), and the ratio between them.
// Options: --seconds S per throughput point (default 3), --runs N per latency row (default 40), --entries N
// (default 10000), --no-build (use dist/fdbroker as it is instead of compiling bench/out/fdbroker), --scale-only
// (only part 5), --no-scale (parts 1-4), --json.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "../scripts/build.ts";
import { openSession, put, status } from "../src/client/index.ts";
import { connectTo } from "../src/peer/endpoint.ts";
import { closeAll, getNofileLimit, pipe, setNofileLimit } from "../src/sys/index.ts";
import {
  BIN, BUN, BUN_CLIENT, cpuMs, killLeftovers, ROOT, rssMiB, signalClients, startBroker, startClients, startRefBroker, startS6, stopProc,
  type BrokerProc,
} from "./broker-procs.ts";
import { compileC, median, option } from "./common.ts";

const SECONDS = option("--seconds", 3);
const RUNS = Math.round(option("--runs", 40));
const ENTRIES = Math.round(option("--entries", 10_000));
const IDLE = 1000;
const asJson = process.argv.includes("--json");
const dir = mkdtempSync(join(tmpdir(), "fdbroker-bench-"));
const round = (x: number, digits = 1) => Number(x.toFixed(digits));

async function compiled(): Promise<string | null> {
  if (!process.argv.includes("--no-build")) return build({ outfile: join(ROOT, "bench/out/fdbroker") });
  const dist = join(ROOT, "dist/fdbroker");
  return existsSync(dist) ? dist : null;
}

async function throughput(b: { proc: { pid: number } }, sock: string, client: readonly string[], clients: number) {
  const args = client === BUN_CLIENT ? [sock, "a", "loop", String(SECONDS)] : [sock, "a", String(SECONDS)];
  const procs = await startClients(clients, client, args);
  const cpu0 = cpuMs(b.proc.pid);
  const t0 = performance.now();
  signalClients(procs);
  const gets = (await Promise.all(procs.map((c) => c.result()))).reduce((n, r) => n + (r.gets as number), 0);
  const wallMs = performance.now() - t0;
  const cpu1 = cpuMs(b.proc.pid);
  const brokerCpuMs = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
  return {
    clients,
    getsPerSecond: Math.round(gets / SECONDS),
    brokerCpuPercent: round((100 * brokerCpuMs) / wallMs, 0),
    brokerCpuUsPerGet: round((1000 * brokerCpuMs) / gets, 1),
    brokerKernelPercent: round((100 * (cpu1.sys - cpu0.sys)) / Math.max(1, brokerCpuMs), 0),
  };
}

/** Each row once per run, rows interleaved, so load from other processes hits them alike; medians in ms. */
function latencies(rows: [string, string[]][]): Record<string, number> {
  const samples = new Map<string, number[]>(rows.map(([name]) => [name, []]));
  for (let i = 0; i < RUNS; i++)
    for (const [name, cmd] of rows) {
      const t0 = performance.now();
      const p = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
      const ms = performance.now() - t0;
      if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${p.stderr.toString()}`);
      samples.get(name)!.push(ms);
    }
  return Object.fromEntries([...samples].map(([name, xs]) => [name, round(median(xs), 2)]));
}

/** Fill a broker with ENTRIES entries (both ends of one pipe, alternately: the broker holds ENTRIES fds). */
function fill(sock: string, entries = ENTRIES): void {
  const [r, w] = pipe();
  const s = openSession({ socket: sock, timeoutMs: 30_000 });
  try {
    for (let i = 0; i < entries; i++) put(s, `e${i}`, i % 2 ? r : w);
  } finally {
    s.close();
    closeAll([r, w]);
  }
}

async function measureRss(cli: readonly string[], sock: string) {
  const broker = startBroker(cli, sock, dir, ["--max-conns", String(IDLE + 100)]);
  const emptyMiB = rssMiB(broker.proc.pid);
  fill(sock);
  const entriesMiB = rssMiB(broker.proc.pid);
  const idle = Array.from({ length: IDLE }, () => connectTo(sock, 30_000));
  try {
    using probe = openSession({ socket: sock });
    // Accepts happen in the broker's own time: ask until all are counted.
    const deadline = Date.now() + 60_000;
    while (status(probe).connections < IDLE + 1) {
      if (Date.now() > deadline) throw new Error(`the broker did not accept ${IDLE} idle connections within 60 s`);
      await Bun.sleep(20);
    }
    const fullMiB = rssMiB(broker.proc.pid);
    // Idle for a second, the collector gives some garbage of the puts back; then what is the broker's own
    // (anonymous) memory, and what is the runtime's executable mapped from disk (shared with every Bun process).
    await Bun.sleep(1000);
    const [settledMiB, anonMiB, fileMiB] = ["VmRSS", "RssAnon", "RssFile"].map((f) => round(rssMiB(broker.proc.pid, f)));
    return { broker, rss: { emptyMiB: round(emptyMiB), entriesMiB: round(entriesMiB), fullMiB: round(fullMiB), settledMiB, anonMiB, fileMiB } };
  } finally {
    closeAll(idle);
  }
}

/** ms between the first log lines (ISO times, ms resolution) matching `from` in one log and `to` in another. */
function logGap(fromLog: string, from: RegExp, toLog: string, to: RegExp): number {
  const at = (log: string, re: RegExp) => {
    const line = readFileSync(log, "utf8").split("\n").find((l) => re.test(l));
    if (!line) throw new Error(`no line matching ${re} in ${log}`);
    return Date.parse(line.slice(0, line.indexOf(" ")));
  };
  return at(toLog, to) - at(fromLog, from);
}

/** Take over from the broker at `sock` with `cli` while a watching client gets on a persistent connection. */
async function takeover(cli: readonly string[], sock: string, old: BrokerProc, maxConns = IDLE + 100, entries = ENTRIES) {
  const [watch] = await startClients(1, BUN_CLIENT, [sock, "e0", "watch"]);
  signalClients([watch!]);
  const next = startBroker(cli, sock, dir, ["--takeover", "--max-conns", String(maxConns)]);
  const exited = await Promise.race([old.proc.exited.then(() => true), Bun.sleep(60_000).then(() => false)]);
  if (!exited) throw new Error(`the old broker did not exit within 60 s of the takeover:\n${readFileSync(old.log, "utf8").slice(-2000)}`);
  signalClients([watch!]);
  const seen = await watch!.result();
  if (seen.failed !== 0) throw new Error(`gets failed during takeover: ${JSON.stringify(seen)}`);
  using s = openSession({ socket: sock });
  const st = status(s);
  if (st.entries < entries) throw new Error(`the new broker holds ${st.entries} entries, not ${entries}`);
  // From the old broker taking the request (it stops accepting) to the new one holding everything (it accepts).
  const windowMs = logGap(old.log, / takeover uid=\d+ pid=\d+ ok/, next.log, / takeover ok \(took/);
  return { next, result: { windowMs, startToReadyMs: round(next.readyMs), longestGetMs: round(seen.maxMs as number), getsDuring: seen.gets } };
}

const IDLE_COUNTS = [0, 1000, 4000, 10_000];
const SCALE_CLIENTS = 4;

/**
 * gets/s of SCALE_CLIENTS C clients with `idle` connections held open beside them, from fdbroker and from the C
 * reference broker. The clients connect after the idle ones and warm up before they are timed: a listener's
 * backlog is accepted in order, so by then every idle connection has been accepted.
 */
async function scale(cClient: string, ref: string) {
  // 10,000 connections and 10,000 entries need more fds than a usual hard limit of 20,000 allows: raised where we
  // may (CAP_SYS_RESOURCE), inherited by every broker started here; otherwise as many entries as fit beside the
  // connections, and the report says how many.
  const most = IDLE_COUNTS.at(-1)!;
  try {
    if (getNofileLimit().hard < most + ENTRIES + 1000) setNofileLimit({ soft: most + ENTRIES + 1000, hard: most + ENTRIES + 1000 });
  } catch {}
  const bigEntries = Math.min(ENTRIES, Math.floor((getNofileLimit().hard - most - 1000) / 1000) * 1000);
  const rows = [];
  for (const idle of IDLE_COUNTS) {
    const row: Record<string, number> = { idle };
    for (const kind of ["fdbroker", "C epoll reference"] as const) {
      const sock = join(dir, `scale-${idle}-${kind === "fdbroker" ? "f" : "c"}.sock`);
      const fb = kind === "fdbroker" ? startBroker([BUN, BIN], sock, dir, ["--hold", "a=file:/etc/hosts", "--max-conns", String(idle + 100)]) : null;
      let b = fb ? fb.proc : startRefBroker([ref], sock);
      const conns: number[] = [];
      try {
        for (let i = 0; i < idle; i++) conns.push(connectTo(sock, 30_000));
        const t = await throughput({ proc: b }, sock, [cClient], SCALE_CLIENTS);
        row[kind === "fdbroker" ? "fdbroker" : "reference"] = t.getsPerSecond;
        row[kind === "fdbroker" ? "fdbrokerCpuUsPerGet" : "referenceCpuUsPerGet"] = t.brokerCpuUsPerGet;
        // One client alone, through the C client and through the Bun client library, on the same broker.
        if (fb && idle === 0) {
          row.oneC = (await throughput({ proc: b }, sock, [cClient], 1)).getsPerSecond;
          row.oneBun = (await throughput({ proc: b }, sock, BUN_CLIENT, 1)).getsPerSecond;
        }
        // The largest: ENTRIES entries on top of the idle connections, its memory, and a takeover of it all.
        if (fb && idle === most && bigEntries > 0) {
          fill(sock, bigEntries);
          await Bun.sleep(1000);
          row.entries = bigEntries;
          row.rssMiB = round(rssMiB(b.pid));
          const t = await takeover([BUN, BIN], sock, fb, idle + 100, bigEntries);
          b = t.next.proc;
          row.takeoverMs = t.result.windowMs;
          row.takeoverLongestGetMs = t.result.longestGetMs;
        }
      } finally {
        closeAll(conns);
        await stopProc(b);
      }
    }
    row.ratio = round(row.fdbroker! / row.reference!, 2);
    // What a Bun broker doing only the reference's calls reaches: the share of the gap that is the runtime's.
    if (idle === 0) {
      const floor = startRefBroker([BUN, join(ROOT, "bench/broker-floor.ts")], join(dir, "scale-floor.sock"));
      try {
        const t = await throughput({ proc: floor }, join(dir, "scale-floor.sock"), [cClient], SCALE_CLIENTS);
        row.floor = t.getsPerSecond;
        row.floorCpuUsPerGet = t.brokerCpuUsPerGet;
      } finally {
        await stopProc(floor);
      }
    }
    rows.push(row);
  }
  return rows;
}

async function main() {
  if (process.argv.includes("--scale-only")) return { seconds: SECONDS, scale: await scale(compileC("broker-client"), compileC("ref-broker")) };
  const bin = await compiled();
  const results: Record<string, unknown> = { machine: `${process.platform}-${process.arch}`, bun: Bun.version, compiled: bin, seconds: SECONDS, runs: RUNS };
  const sock = join(dir, "b.sock");
  const b = startBroker([BUN, BIN], sock, dir, ["--hold", "a=file:/etc/hosts"]);
  const clients: Record<string, readonly string[]> = { "C (bench/broker-client.c)": [compileC("broker-client")], "Bun (src/client)": BUN_CLIENT };
  const tp = [];
  for (const [name, client] of Object.entries(clients)) for (const n of [1, 16, 64]) tp.push({ client: name, ...(await throughput(b, sock, client, n)) });
  results.throughput = tp;

  const s6sock = join(dir, "s6.sock");
  const s6 = startS6(s6sock, dir, "a");
  const rows: [string, string[]][] = [
    ["true", ["true"]],
    ["bun -e 0", [BUN, "-e", "0"]],
    ["bun bin/fdbroker get a -- true", [BUN, BIN, "get", "a", "-s", sock, "--", "true"]],
  ];
  if (bin) rows.push(["compiled --version", [bin, "--version"]], ["compiled get a -- true", [bin, "get", "a", "-s", sock, "--", "true"]]);
  if (s6) rows.push(["s6-fdholder-retrieve a true", ["s6-fdholder-retrieve", s6sock, "a", "true"]]);
  results.latencyMs = latencies(rows);
  if (s6) await stopProc(s6);
  await stopProc(b.proc);

  // RSS: fresh brokers, empty, with ENTRIES entries, and with IDLE idle connections on top (plus one asking for
  // status); under bun, bun --smol (a smaller heap, collected more often) and compiled. The first one is kept
  // for the takeovers.
  const tsock = join(dir, "t.sock");
  const variants: [string, string[]][] = [["bun bin/fdbroker", [BUN, BIN]], ["bun --smol bin/fdbroker", [BUN, "--smol", BIN]]];
  if (bin) variants.push(["compiled", [bin]]);
  const rss: Record<string, unknown> = {};
  let current: BrokerProc | null = null;
  for (const [i, [name, cli]] of variants.entries()) {
    const r = await measureRss(cli, i === 0 ? tsock : join(dir, `rss-${i}.sock`));
    rss[name] = r.rss;
    if (current) await stopProc(r.broker.proc);
    else current = r.broker;
  }
  results.rss = { entries: ENTRIES, connections: IDLE + 1, ...rss };

  // Takeover, first by bun bin/fdbroker, then back by the compiled binary.
  const takeovers: Record<string, unknown> = {};
  for (const [name, cli] of [["bun bin/fdbroker", [BUN, BIN]], ...(bin ? [["compiled", [bin]]] : [])] as [string, string[]][]) {
    const t = await takeover(cli, tsock, current!);
    takeovers[name] = t.result;
    current = t.next;
  }
  results.takeover = { entries: ENTRIES, ...takeovers };
  await stopProc(current!.proc);

  if (!process.argv.includes("--no-scale")) results.scale = await scale(compileC("broker-client"), compileC("ref-broker"));
  return results;
}

function report(r: Record<string, any>): void {
  if (!r.throughput) return reportScale(r);
  console.log(`${r.machine}, bun ${r.bun}; compiled binary: ${r.compiled ?? "none"}`);
  console.log(`gets/s, one persistent connection per client process, ${r.seconds} s each:`);
  for (const t of r.throughput) console.log(`  ${t.client.padEnd(27)} ${String(t.clients).padStart(2)} clients: ${String(t.getsPerSecond).padStart(6)}/s  broker CPU ${t.brokerCpuPercent}%, ${t.brokerCpuUsPerGet} µs per get (${t.brokerKernelPercent}% in the kernel)`);
  const lat = r.latencyMs as Record<string, number>;
  console.log(`latency, median of ${r.runs} runs (ms), and ratios:`);
  for (const [k, v] of Object.entries(lat)) console.log(`  ${k.padEnd(32)} ${v.toFixed(2).padStart(6)}`);
  const ratio = (a: string, b: string) => (lat[a] && lat[b] ? `${(lat[a] / lat[b]).toFixed(2)}x` : "n/a");
  console.log(`  compiled get / bun -e 0: ${ratio("compiled get a -- true", "bun -e 0")} (target <= 2x)`);
  console.log(`  compiled get / s6-fdholder-retrieve: ${ratio("compiled get a -- true", "s6-fdholder-retrieve a true")}`);
  console.log(`  bun bin/fdbroker get / s6-fdholder-retrieve: ${ratio("bun bin/fdbroker get a -- true", "s6-fdholder-retrieve a true")}`);
  console.log(`VmRSS (MiB): empty; with ${r.rss.entries} entries; with ${r.rss.connections} connections too; after 1 s idle = anon + file (target < 64):`);
  for (const [k, v] of Object.entries(r.rss as Record<string, any>))
    if (typeof v === "object") console.log(`  ${k.padEnd(24)} ${v.emptyMiB}  ${v.entriesMiB}  ${v.fullMiB}  ${v.settledMiB} = ${v.anonMiB} + ${v.fileMiB}`);
  for (const [k, v] of Object.entries(r.takeover as Record<string, any>)) {
    if (k === "entries") continue;
    console.log(`takeover of ${r.takeover.entries} entries by ${k}: ${v.windowMs} ms not accepting (target < 200); new broker start to ready ${v.startToReadyMs} ms; longest get seen by a client ${v.longestGetMs} ms (${v.getsDuring} gets, none failed)`);
  }
  if (r.scale) reportScale(r);
}

function reportScale(r: Record<string, any>): void {
  const one = (name: string) => r.throughput?.find((t: any) => t.client.startsWith(name) && t.clients === 1)?.getsPerSecond;
  if (r.throughput) console.log(`Bun client library / C client, one client on bun bin/fdbroker (part 1): ${(one("Bun") / one("C")).toFixed(2)}x (target >= 0.8x)`);
  const first = r.scale[0];
  if (first?.oneBun) console.log(`Bun client library / C client, one client on bun bin/fdbroker (scale, 0 idle): ${first.oneBun} / ${first.oneC} gets/s = ${(first.oneBun / first.oneC).toFixed(2)}x (target >= 0.8x)`);
  console.log(`scale: gets/s of ${SCALE_CLIENTS} C clients beside idle connections (target: fdbroker >= 0.7x the C epoll reference; µs of broker CPU per get, target <= 8):`);
  console.log("  idle connections   fdbroker  (µs CPU per get)   C epoll reference  (µs CPU per get)   ratio");
  for (const s of r.scale)
    console.log(`  ${String(s.idle).padStart(16)}   ${String(s.fdbroker).padStart(8)}  (${String(s.fdbrokerCpuUsPerGet).padStart(5)})            ${String(s.reference).padStart(8)}  (${String(s.referenceCpuUsPerGet).padStart(5)})           ${s.ratio.toFixed(2)}x`);
  if (first?.floor)
    console.log(`  Bun floor (bench/broker-floor.ts: the reference's calls in Bun, nothing else), 0 idle: ${first.floor} (${first.floorCpuUsPerGet} µs CPU per get), ${(first.floor / first.reference).toFixed(2)}x the reference`);
  const big = r.scale.at(-1);
  if (big?.rssMiB !== undefined)
    console.log(`with ${big.idle} connections and ${big.entries} entries: VmRSS ${big.rssMiB} MiB (target < 96); takeover ${big.takeoverMs} ms not accepting (target < 300), longest get ${big.takeoverLongestGetMs} ms, none failed`);
}

try {
  const results = await main();
  if (asJson) console.log(JSON.stringify(results, null, 2));
  else report(results);
} finally {
  killLeftovers();
  rmSync(dir, { recursive: true, force: true });
}
