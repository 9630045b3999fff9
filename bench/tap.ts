// `npm run bench:tap` (bun run bench/tap.ts): bulk throughput through `fdbroker tap` against a direct connection
// (docs/benchmarks.md, "tap"). A Python writer streams --mib MiB in 1 MiB sends over a UNIX stream socket to a
// Python reader, which times from its accept to end of stream. Paths, interleaved: direct; through a tap writing
// its records to a file; through bench/relay.c's two modes (blocking read/write in C; tap's own syscalls in C); and
// through bench/relay-floor.ts (tap's own syscalls in Bun, nothing else), which show what any relay, and any relay
// in this runtime, costs on the machine. Options: --mib N (default 4096: long enough that start-up and JIT warm-up
// do not decide the figure), --runs N (default 3), --json.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileC, median, option } from "./common.ts";

const MIB = Math.round(option("--mib", 4096));
const RUNS = Math.round(option("--runs", 3));
const PYTHON = Bun.which("/usr/bin/python3") ?? "python3";
const ROOT = join(import.meta.dir, "..");

const READER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print("ready", flush=True)
buf = bytearray(1 << 20); total = 0
while total == 0:  # the tap's probe of the socket type is a connection that sends nothing
    c, _ = s.accept(); t0 = time.perf_counter()
    while True:
        n = c.recv_into(buf)
        if n == 0: break
        total += n
print(total, time.perf_counter() - t0, flush=True)
`;
const WRITER = `
import socket, sys
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); chunk = b"x" * (1 << 20)
for _ in range(int(sys.argv[2])): c.sendall(chunk)
c.close()
`;

async function firstLine(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return { line: text.split("\n")[0]!, reader };
}

/** How the writer reaches the reader: directly, through fdbroker tap, or through one of the reference relays. */
type Path = "direct" | "tap" | "relay-rw" | "relay-splice" | "floor";
let relayExe = "";

function relayCommand(path: Path, listen: string, srv: string): string[] {
  switch (path) {
    case "tap": return [process.execPath, join(ROOT, "bin/fdbroker"), "tap", listen, "--to", srv, "--json"];
    case "relay-rw": return [relayExe, listen, srv, "rw"];
    case "relay-splice": return [relayExe, listen, srv, "splice"];
    default: return [process.execPath, join(ROOT, "bench/relay-floor.ts"), listen, srv];
  }
}

/** MiB/s of one transfer of MIB MiB along `path`. */
async function transfer(dir: string, path: Path): Promise<number> {
  const srv = join(dir, "srv.sock");
  const reader = Bun.spawn([PYTHON, "-c", READER, srv], { stdout: "pipe", stderr: "inherit" });
  let relay: ReturnType<typeof Bun.spawn> | null = null;
  try {
    const ready = await firstLine(reader.stdout);
    if (ready.line !== "ready") throw new Error("reader did not start");
    let target = srv;
    if (path !== "direct") {
      target = join(dir, "relay.sock");
      // Output to a file, as `tap ... > log` would: the records are still made and written, but no fourth process
      // wakes for each of them to compete with the three measured for the machine's two cores.
      relay = Bun.spawn(relayCommand(path, target, srv), { stdout: Bun.file(join(dir, "relay.out")), stderr: "inherit" });
      while (!existsSync(target)) {
        if (relay.exitCode !== null) throw new Error(`${path} exited ${relay.exitCode} before listening`);
        await Bun.sleep(5);
      }
    }
    const writer = Bun.spawn([PYTHON, "-c", WRITER, target, String(MIB)], { stdout: "ignore", stderr: "inherit" });
    await writer.exited;
    let rest = "";
    for (;;) {
      const { value, done } = await ready.reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const [total, seconds] = rest.trim().split(" ").map(Number) as [number, number];
    if (total !== MIB * 1024 * 1024) throw new Error(`reader got ${total} bytes of ${MIB} MiB through ${path}`);
    return MIB / seconds;
  } finally {
    reader.kill();
    if (relay) {
      relay.kill("SIGTERM");
      await relay.exited;
    }
    await reader.exited;
    rmSync(srv, { force: true });
    rmSync(join(dir, "relay.sock"), { force: true });
  }
}

const PATHS: Path[] = ["direct", "tap", "relay-rw", "relay-splice", "floor"];

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "fdbroker-bench-tap-"));
  try {
    relayExe = compileC("relay");
    const runs = new Map<Path, number[]>(PATHS.map((p) => [p, []]));
    // Interleaved, so load from elsewhere hits every path alike.
    for (let i = 0; i < RUNS; i++) for (const p of PATHS) runs.get(p)!.push(await transfer(dir, p));
    const direct = median(runs.get("direct")!);
    const row = (p: Path) => ({ miBs: Math.round(median(runs.get(p)!)), ratio: Number((median(runs.get(p)!) / direct).toFixed(2)), all: runs.get(p)!.map(Math.round) });
    const rows = Object.fromEntries(PATHS.map((p) => [p, row(p)])) as Record<Path, ReturnType<typeof row>>;
    if (process.argv.includes("--json")) console.log(JSON.stringify({ mib: MIB, runs: RUNS, ...rows }));
    else {
      console.log(`${MIB} MiB, ${RUNS} runs each, interleaved; medians, and each run's MiB/s:`);
      const label: Record<Path, string> = {
        direct: "direct",
        tap: "through fdbroker tap --json (target >= 0.5x)",
        "relay-rw": "bench/relay.c rw (C, blocking read/write)",
        "relay-splice": "bench/relay.c splice (C, tap's syscalls)",
        floor: "bench/relay-floor.ts (Bun, tap's syscalls)",
      };
      for (const p of PATHS) console.log(`  ${label[p].padEnd(46)} ${String(rows[p].miBs).padStart(6)} MiB/s  ${rows[p].ratio.toFixed(2)}x  (${rows[p].all.join(", ")})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
