// `npm run bench:tap` (bun run bench/tap.ts): bulk throughput through `fdbroker tap` against a direct connection
// (docs/benchmarks.md, "tap"). A Python writer streams --mib MiB in 1 MiB sends over a UNIX stream socket to a
// Python reader, which times from its accept to end of stream; runs alternate direct and through a tap writing its
// records to /dev/null, and the medians' ratio is printed (target >= 0.5x); a third path, through bench/relay.c (the
// least a user-space relay does), shows what any relay costs on the machine. Options: --mib N (default 512),
// --runs N (default 3), --json.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileC, median, option } from "./common.ts";

const MIB = Math.round(option("--mib", 512));
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

type Path = "direct" | "tap" | "relay";
let relayExe = "";

/** MiB/s of one transfer of MIB MiB: direct, through a tap, or through bench/relay.c (a C read/write relay). */
async function transfer(dir: string, path: Path): Promise<number> {
  const viaTap = path !== "direct";
  const srv = join(dir, "srv.sock");
  const reader = Bun.spawn([PYTHON, "-c", READER, srv], { stdout: "pipe", stderr: "inherit" });
  let tap: ReturnType<typeof Bun.spawn> | null = null;
  try {
    const ready = await firstLine(reader.stdout);
    if (ready.line !== "ready") throw new Error("reader did not start");
    let target = srv;
    if (viaTap) {
      target = join(dir, "tap.sock");
      // Records go to /dev/null, but are still made: the cost measured is the tap's whole work per message.
      const cmd = path === "tap" ? [process.execPath, join(ROOT, "bin/fdbroker"), "tap", target, "--to", srv, "--json"] : [relayExe, target, srv];
      tap = Bun.spawn(cmd, { stdout: "pipe", stderr: "inherit" });
      const first = await firstLine(tap.stdout as ReadableStream<Uint8Array>);
      if (!first.line.includes("listening")) throw new Error(`tap did not start: ${first.line}`);
      // Drain the rest of its output so it never waits on a full pipe.
      (async () => { while (!(await first.reader.read()).done); })();
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
    if (total !== MIB * 1024 * 1024) throw new Error(`reader got ${total} bytes of ${MIB} MiB`);
    return MIB / seconds;
  } finally {
    reader.kill();
    if (tap) {
      tap.kill("SIGTERM");
      await tap.exited;
    }
    await reader.exited;
    rmSync(srv, { force: true });
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "fdbroker-bench-tap-"));
  try {
    relayExe = compileC("relay");
    const direct: number[] = [];
    const tapped: number[] = [];
    const relayed: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      direct.push(await transfer(dir, "direct"));
      tapped.push(await transfer(dir, "tap"));
      relayed.push(await transfer(dir, "relay"));
    }
    const ratio = median(tapped) / median(direct);
    const result = {
      mib: MIB, runs: RUNS, directMiBs: Math.round(median(direct)), tapMiBs: Math.round(median(tapped)), ratio: Number(ratio.toFixed(2)),
      relayMiBs: Math.round(median(relayed)), relayRatio: Number((median(relayed) / median(direct)).toFixed(2)),
    };
    if (process.argv.includes("--json")) console.log(JSON.stringify(result));
    else {
      console.log(`${MIB} MiB, ${RUNS} runs: direct ${result.directMiBs} MiB/s, through tap ${result.tapMiBs} MiB/s: ${result.ratio}x (target >= 0.5x)`);
      console.log(`reference: through bench/relay.c (blocking read/write in C) ${result.relayMiBs} MiB/s: ${result.relayRatio}x`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
