// `npm run bench`: cost per fd of send + recv + close over an AF_UNIX stream socketpair, for fdbroker's library
// (sendFds/recvFds, and the raw src/sys sendmsg/recvmsg under it), a C reference compiled here with cc, and
// Python's socket.send_fds/recv_fds; single fds and batches of 64, in one run.
//
// Rounds are interleaved (C, Python, library, raw, C, ...) so a burst of load on a shared machine hits every
// implementation alike; the table shows the median and the best round, and ratios against C for each.
// Options: --rounds N (default 7), --scale X (multiply iteration counts; 0.1 for a quick look), --json.
import { join } from "node:path";
import { recvFds, sendFds } from "../src/peer/transfer.ts";
import { close, closeAll, pipe, recvmsg, sendmsg, socketpair } from "../src/sys/index.ts";
import { compileC, median, option } from "./common.ts";

const HERE = import.meta.dir;
const BATCHES = [1, 64];
// About 100k round trips for single fds and 256k fds in batches: a second or so per round for C.
const BASE_ITERATIONS: Record<number, number> = { 1: 100_000, 64: 4_000 };

const rounds = Math.round(option("--rounds", 7));
const scale = option("--scale", 1);
const asJson = process.argv.includes("--json");

/** Run an external reference for one round; it prints ns per fd on its last line. */
function external(cmd: string[], batch: number, iterations: number): number {
  const p = Bun.spawnSync([...cmd, String(batch), String(iterations), "1"], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${p.stderr.toString()}`);
  return Number(p.stdout.toString().trim().split("\n").pop());
}

// The library side runs in this process on one socketpair; every fd sent is a dup-free copy of one pipe end,
// as in the C and Python programs, and every fd received is closed before the next round trip.
const [a, b] = socketpair("stream");
const [pipeRead, pipeWrite] = pipe();
const ONE_BYTE = new Uint8Array(1);

function timeLoop(iterations: number, batch: number, body: () => void): number {
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < iterations; i++) body();
  return (Bun.nanoseconds() - t0) / (iterations * batch);
}

function libraryRound(batch: number, iterations: number): number {
  const fds = new Array<number>(batch).fill(pipeRead);
  const opts = { maxFds: batch };
  return timeLoop(iterations, batch, () => {
    sendFds(a, fds);
    const msg = recvFds(b, opts);
    if (msg.fds.length !== batch) throw new Error(`received ${msg.fds.length} fds, expected ${batch}`);
    msg.close();
  });
}

function rawRound(batch: number, iterations: number): number {
  const fds = new Array<number>(batch).fill(pipeRead);
  return timeLoop(iterations, batch, () => {
    sendmsg(a, ONE_BYTE, fds);
    const got = recvmsg(b, 1, batch);
    if (got === null || got.fds.length !== batch) throw new Error(`received ${got?.fds.length ?? 0} fds, expected ${batch}`);
    closeAll(got.fds);
  });
}

function hasPython(): boolean {
  return Bun.spawnSync(["python3", "-c", "import socket; socket.send_fds"], { stderr: "ignore" }).exitCode === 0;
}

type Impl = { name: string; round: (batch: number, iterations: number) => number };
const cExe = compileC("roundtrip");
const impls: Impl[] = [
  { name: "C (cc -O2)", round: (batch, n) => external([cExe], batch, n) },
  ...(hasPython() ? [{ name: "Python send_fds", round: (batch: number, n: number) => external(["python3", join(HERE, "roundtrip.py")], batch, n) }] : []),
  { name: "fdbroker sendFds/recvFds", round: libraryRound },
  { name: "fdbroker raw sendmsg/recvmsg", round: rawRound },
];

const results: { impl: string; batch: number; medianNs: number; bestNs: number; ratioToC: number; bestRatioToC: number }[] = [];
for (const batch of BATCHES) {
  const iterations = Math.max(1, Math.round(BASE_ITERATIONS[batch]! * scale));
  // Warm the JIT for the in-process loops before anything is timed.
  libraryRound(batch, Math.ceil(iterations / 5));
  rawRound(batch, Math.ceil(iterations / 5));
  const samples = impls.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) impls.forEach((impl, i) => samples[i]!.push(impl.round(batch, iterations)));
  const cMedian = median(samples[0]!);
  const cBest = Math.min(...samples[0]!);
  impls.forEach((impl, i) => {
    const m = median(samples[i]!);
    const best = Math.min(...samples[i]!);
    results.push({ impl: impl.name, batch, medianNs: m, bestNs: best, ratioToC: m / cMedian, bestRatioToC: best / cBest });
  });
}
close(pipeRead);
close(pipeWrite);
close(a);
close(b);

if (asJson) {
  console.log(JSON.stringify({ rounds, scale, results }, null, 2));
} else {
  console.log(`send + recv + close per fd over a socketpair; median (best) of ${rounds} rounds; Bun ${Bun.version}, ${process.platform}-${process.arch}\n`);
  console.log("| implementation | batch | ns per fd, median (best) | vs C, median (best) |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const r of results)
    console.log(`| ${r.impl} | ${r.batch} | ${r.medianNs.toFixed(0)} (${r.bestNs.toFixed(0)}) | ${r.ratioToC.toFixed(2)}x (${r.bestRatioToC.toFixed(2)}x) |`);
}
