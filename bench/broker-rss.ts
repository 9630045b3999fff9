// `bun run bench/broker-rss.ts [TREE]`: the memory of `bun bin/fdbroker serve` alone, without the throughput runs of
// bench/broker.ts, for comparing two trees (docs/benchmarks.md, "Trust (issue 8)"). TREE (default: this one) is a
// checkout with node_modules; its broker and its own client library are used, so an older tree can be measured
// as it was. Prints VmRSS (RssAnon) in MiB: empty 1 s after its socket appeared; right after 10,000 puts from one
// session and 1000 idle connections plus one asking `status` are all counted; then 1 s and 4 s later (the broker
// makes a full collection after a quiet second). Run it several times per tree, alternating the trees.
// FDBROKER_BIN=PATH measures a compiled broker instead.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const tree = resolve(process.argv[2] ?? join(import.meta.dir, ".."));
const { openSession, put, status } = await import(join(tree, "src/client/index.ts"));
const { connectTo } = await import(join(tree, "src/peer/endpoint.ts"));
const { closeAll, getNofileLimit, pipe, setNofileLimit } = await import(join(tree, "src/sys/index.ts"));
const IDLE = 1000;
const ENTRIES = 10_000;

const { hard } = getNofileLimit();
if (hard < ENTRIES + 2 * IDLE) throw new Error(`RLIMIT_NOFILE hard limit ${hard}: at least ${ENTRIES + 2 * IDLE} needed`);
setNofileLimit({ soft: hard, hard });
const dir = mkdtempSync(join(tmpdir(), "fdbroker-rss-"));
const sock = join(dir, "s");
// FDBROKER_BIN: a compiled fdbroker (scripts/build.ts) to measure instead of the tree's bin/fdbroker under bun.
const cli = process.env.FDBROKER_BIN ? [resolve(process.env.FDBROKER_BIN)] : [join(tree, "node_modules/.bin/bun"), join(tree, "bin/fdbroker")];
const broker = Bun.spawn([...cli, "serve", "-s", sock, "--max-conns", String(IDLE + 100)], {
  cwd: tree,
  stdio: ["ignore", "ignore", "ignore"],
});
const mib = (field: string) => Number(new RegExp(`^${field}:\\s*(\\d+)`, "m").exec(readFileSync(`/proc/${broker.pid}/status`, "utf8"))![1]) / 1024;
const sample = () => `${mib("VmRSS").toFixed(1)} (${mib("RssAnon").toFixed(1)})`;
try {
  for (const deadline = Date.now() + 30_000; !existsSync(sock); await Bun.sleep(10))
    if (Date.now() > deadline || broker.exitCode !== null) throw new Error("the broker did not start");
  await Bun.sleep(1000);
  const empty = sample();
  const [r, w] = pipe();
  const s = openSession({ socket: sock, timeoutMs: 30_000 });
  for (let i = 0; i < ENTRIES; i++) put(s, `e${i}`, i % 2 ? r : w);
  s.close();
  closeAll([r, w]);
  const idle = Array.from({ length: IDLE }, () => connectTo(sock, 30_000));
  const probe = openSession({ socket: sock });
  while (status(probe).connections < IDLE + 1) await Bun.sleep(20);
  const full = sample();
  await Bun.sleep(1000);
  const after1 = sample();
  await Bun.sleep(3000);
  console.log(`${tree}: empty ${empty}; ${ENTRIES} entries + ${IDLE + 1} connections ${full}; 1 s later ${after1}; 4 s later ${sample()} MiB`);
  probe.close();
  closeAll(idle);
} finally {
  broker.kill("SIGTERM");
  await broker.exited;
  rmSync(dir, { recursive: true, force: true });
}
