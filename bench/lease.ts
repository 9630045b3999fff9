// `npm run bench:lease` (bun run bench/lease.ts): what a lease costs (docs/benchmarks.md, "Leases").
//   1. lease + release against get of one fd, each a round trip through the client library on one persistent
//      connection, rounds interleaved in one process; the ratio (target: lease + release <= 1.5x a get);
//   2. leases per second when 64 client processes (--waiters) (the library) lease and release the one member of a pool:
//      every lease but one waits in the FIFO queue (target >= 5,000 per second);
//   3. the same with the C client (bench/lease-client.c, compiled here): one process holding 64 connections, each
//      waiting in line, releasing and asking again on each grant; it checks that grants go round in FIFO order. Also
//      the broker's CPU time (user and system) per lease, less noisy than the rate on a shared machine;
//   4. how soon a lessee's death frees its member (target: the broker learns it within 100 ms): `lease -- sleep`
//      processes SIGKILLed one at a time while a library lease waits for the member, timed from the kill to the
//      grant (--exits N, default 10). The time includes the kernel's exit of the killed process and the grant.
// Options: --rounds N (default 5), --count N round trips per round (default 1000), --seconds S (default 2),
// --waiters N (default 64), --json; --c-only runs part 3 alone, --broker-tree DIR runs the broker of another checkout
// (`git archive COMMIT | tar -x -C DIR`, node_modules linked) for a before/after pair with the same client.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { get, lease, openSession } from "../src/client/index.ts";
import { closeAll } from "../src/sys/index.ts";
import { BIN, BUN, BUN_CLIENT, cpuMs, killLeftovers, signalClients, startBroker, startClients, stopProc } from "./broker-procs.ts";
import { compileC, median, option } from "./common.ts";

const ROUNDS = Math.round(option("--rounds", 5));
const COUNT = Math.round(option("--count", 1000));
const SECONDS = option("--seconds", 2);
const WAITERS = Math.round(option("--waiters", 64));
const EXITS = Math.round(option("--exits", 10));
const C_ONLY = process.argv.includes("--c-only");
const treeAt = process.argv.indexOf("--broker-tree");
const BROKER = treeAt >= 0 ? join(resolve(process.argv[treeAt + 1]!), "bin/fdbroker") : BIN;
const dir = mkdtempSync(join(tmpdir(), "fdbroker-bench-lease-"));

function timeUs(fn: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) fn();
  return ((performance.now() - t0) * 1000) / COUNT;
}

/** Part 3: bench/lease-client.c's WAITERS connections on pool "fifo", and the broker's CPU time per lease. */
function cLeases(sock: string, brokerPid: number) {
  const exe = compileC("lease-client");
  const before = cpuMs(brokerPid);
  const run = Bun.spawnSync([exe, sock, "fifo", String(WAITERS), String(SECONDS)], { stderr: "inherit" });
  const after = cpuMs(brokerPid);
  if (run.exitCode !== 0) throw new Error(`lease-client exited ${run.exitCode}`);
  const r = JSON.parse(run.stdout.toString()) as { leases: number; perSecond: number; fifo: boolean; checked: number };
  const perLease = (ms: number) => Number(((ms * 1000) / r.leases).toFixed(1));
  return {
    leasesPerSecond: r.perSecond, fifo: r.fifo, checked: r.checked,
    brokerUserUs: perLease(after.user - before.user), brokerSysUs: perLease(after.sys - before.sys),
  };
}

/** Part 4: ms from SIGKILL of a `lease -- CMD` lessee to a waiting library lease's grant of its member. */
async function exitToGrant(sock: string): Promise<number[]> {
  const times: number[] = [];
  using s = openSession({ socket: sock, timeoutMs: 30_000 });
  for (let i = 0; i < EXITS; i++) {
    const lessee = Bun.spawn([BUN, BROKER, "lease", "exit", "-s", sock, "--", "sh", "-c", "echo leased; exec sleep 60"], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = (lessee.stdout as ReadableStream<Uint8Array>).getReader();
      const { value } = await reader.read();
      if (!new TextDecoder().decode(value).startsWith("leased")) throw new Error("the lessee did not start");
      const t0 = performance.now();
      lessee.kill("SIGKILL");
      const l = lease(s, "exit", { waitMs: 10_000 });
      times.push(performance.now() - t0);
      closeAll([l.fd]);
      l.release();
    } finally {
      lessee.kill("SIGKILL");
      await lessee.exited;
    }
  }
  return times;
}

async function main() {
  const sock = join(dir, "b.sock");
  const b = startBroker([BUN, BROKER], sock, dir, ["--hold", "a=file:/etc/hosts", "--pool", "one=1:file:/dev/null", "--pool", "shared=1:file:/dev/null", "--pool", "fifo=1:file:/dev/null", "--pool", "exit=1:file:/dev/null"]);
  try {
    if (C_ONLY) return { waiters: WAITERS, seconds: SECONDS, c: cLeases(sock, b.proc.pid) };
    const exits = await exitToGrant(sock);
    using s = openSession({ socket: sock, timeoutMs: 30_000 });
    const getOnce = () => closeAll(get(s, ["a"]).map((g) => g.fd));
    const leaseOnce = () => {
      const l = lease(s, "one");
      closeAll([l.fd]);
      l.release();
    };
    for (let i = 0; i < 500; i++) (getOnce(), leaseOnce());
    const gets: number[] = [];
    const leases: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      gets.push(timeUs(getOnce));
      leases.push(timeUs(leaseOnce));
    }
    const clients = await startClients(WAITERS, BUN_CLIENT, [sock, "shared", "lease", String(SECONDS)]);
    signalClients(clients);
    const total = (await Promise.all(clients.map((c) => c.result()))).reduce((n, r) => n + (r.gets as number), 0);
    const c = cLeases(sock, b.proc.pid);
    return {
      rounds: ROUNDS, count: COUNT,
      getUs: Number(median(gets).toFixed(1)), leaseReleaseUs: Number(median(leases).toFixed(1)),
      ratio: Number((median(leases) / median(gets)).toFixed(2)),
      waiters: WAITERS, seconds: SECONDS, leasesPerSecond: Math.round(total / SECONDS),
      c,
      exitToGrantMs: { median: Number(median(exits).toFixed(1)), max: Number(Math.max(...exits).toFixed(1)), samples: exits.length },
    };
  } finally {
    await stopProc(b.proc);
  }
}

try {
  const r = await main();
  if (process.argv.includes("--json")) console.log(JSON.stringify(r, null, 2));
  else {
    if ("ratio" in r) {
      console.log(`one connection, median of ${r.rounds} rounds of ${r.count}: get ${r.getUs} µs, lease + release ${r.leaseReleaseUs} µs: ${r.ratio}x (target <= 1.5x)`);
      console.log(`${r.waiters} processes leasing the one member of a pool: ${r.leasesPerSecond} leases/s over ${r.seconds} s (target >= 5,000)`);
      const e = r.exitToGrantMs!;
      console.log(`a lessee SIGKILLed to its member granted to a waiter: median ${e.median} ms, at most ${e.max} ms over ${e.samples} (target: within 100 ms)`);
    }
    const c = r.c;
    console.log(`${r.waiters} connections of one C client (bench/lease-client.c): ${c.leasesPerSecond} leases/s, FIFO ${c.fifo ? "kept" : "BROKEN"} over ${c.checked} grants checked; broker CPU per lease ${c.brokerUserUs} µs user + ${c.brokerSysUs} µs system`);
  }
} finally {
  killLeftovers();
  rmSync(dir, { recursive: true, force: true });
}
