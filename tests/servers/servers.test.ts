// Issue 11's acceptance: real servers from Debian (nginx, HAProxy, lighttpd, gunicorn) under `fdbroker run`, each
// started by the recipe in docs/recipes.md, reloaded 10 times, each time while a 20 MB download is in flight and
// small requests loop. Zero failed requests, every download byte-exact, every old server retired by its own
// graceful stop (exit 0, no SIGKILL). A server whose binary is missing is skipped, saying so.
import { beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, waitFor } from "../helpers.ts";
import type { Supervisor } from "../run/harness.ts";
import {
  BIG, freePort, missing, processLedger, requestLoop, site, SMALL, slowDownload, started, startRecipe, stopRun, type DownloadResult, type Ledger,
} from "./harness.ts";

// The first test waits for every server started in beforeAll to come up; the rest are mostly done by their turn.
setDefaultTimeout(180000);

// Slow enough that a download outlasts a reload on a loaded machine, fast enough that ten take seconds, not minutes.
const RATE = 4 * 1024 * 1024;

/**
 * Reload `sup` 10 times. Before each, a download has brought at least 1 MB (so a server of the generation being
 * retired took it), and it must still be running when `run` says it stops that server. Returns what the downloads
 * and the small requests saw.
 */
async function tenReloadsUnderLoad(sup: Supervisor, first: number, port: number, rate: number, ledger: Ledger) {
  const small = requestLoop(port, "/small.txt", SMALL);
  const downloads: Promise<DownloadResult>[] = [];
  const inFlightAtStop: boolean[] = [];
  const pids = [first];
  for (let i = 0; i < 10; i++) {
    const d = slowDownload(port, "/big.bin", rate);
    downloads.push(d.done);
    await waitFor("1 MB of the download", () => d.received >= 1 << 20 || d.finished, 60000);
    const mark = sup.lines.length;
    const old = pids[pids.length - 1]!;
    sup.proc.kill("SIGHUP");
    const fresh = Number((await sup.waitFor(/pid (\d+) is ready/, 60000, mark))[1]);
    await sup.waitFor(new RegExp(`stopping old pid ${old} `), 60000, mark);
    inFlightAtStop.push(!d.finished);
    ledger.note(sup.proc.pid);
    pids.push(fresh);
  }
  const results = await Promise.all(downloads);
  // Every old server finishes its downloads and exits by itself, well within --grace.
  for (const old of pids.slice(0, -1)) await sup.waitFor(new RegExp(`pid ${old} exited with code 0 \\(retired\\)`), 60000);
  await small.stop();
  return { results, inFlightAtStop, pids, failures: small.failures, ok: small.ok() };
}

function expectClean(got: Awaited<ReturnType<typeof tenReloadsUnderLoad>>, sha256: string): void {
  const wrong = got.results.filter((r) => r.status !== 200 || r.bytes !== BIG || r.announced !== BIG || r.sha256 !== sha256 || r.error);
  // One comparison, so a failure shows every number at once.
  expect({
    failedRequests: got.failures,
    wrongDownloads: wrong.map((r) => `${r.status} ${r.bytes}/${r.announced} bytes${r.error ? ` (${r.error})` : ""}`),
    inFlightAtStop: got.inFlightAtStop,
    pids: new Set(got.pids).size,
  }).toEqual({ failedRequests: [], wrongDownloads: [], inFlightAtStop: Array(10).fill(true), pids: 11 });
  expect(got.ok).toBeGreaterThan(0);
}

/** One server's run: its recipe, ten reloads under load, then run stopped with the server's graceful signal. */
async function reloadRecipe(name: string, rate: number, extra: (map: Record<string, string>, ledger: Ledger) => Promise<void> = async () => {}) {
  const s = site();
  const ledger = processLedger();
  try {
    const port = await freePort();
    const map: Record<string, string> = { "8080": String(port), "/srv/www": s.www, "/run/web": s.dir.path };
    await extra(map, ledger);
    const { sup, pid } = await startRecipe(name, map, s.dir.path, ledger);
    const got = await tenReloadsUnderLoad(sup, pid, port, rate, ledger);
    return { ...got, sha256: s.sha256, exit: await stopRun(sup) };
  } finally {
    ledger.killAll();
    s.dir.cleanup();
  }
}

/** HAProxy proxies: its backend is a plain Python file server on the recipe's second port. */
async function fileServer(map: Record<string, string>, ledger: Ledger): Promise<void> {
  const port = await freePort();
  map["8081"] = String(port);
  const proc = started(spawn(["python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", map["/srv/www"]!, String(port)], { stderr: "ignore" }), ledger);
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("Serving HTTP")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the backend file server ended: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}

/** gunicorn reloaded into an app that raises on import; resolves with what the clients and run's log saw. */
async function badDeploy() {
  const s = site();
  const ledger = processLedger();
  try {
    const port = await freePort();
    const { sup, pid } = await startRecipe("gunicorn", { "8080": String(port), "/srv/www": s.www, "/run/web": s.dir.path }, s.dir.path, ledger);
    const small = requestLoop(port, "/small.txt", SMALL);
    try {
      await waitFor("answers from the first gunicorn", () => small.ok() >= 20, 60000);
      writeFileSync(join(s.www, "app.py"), 'raise RuntimeError("a bad deploy")\n');
      const mark = sup.lines.length;
      sup.proc.kill("SIGHUP");
      // With --preload the new gunicorn imports the app before READY=1: it exits, and the reload is abandoned.
      const abandoned = (await sup.waitFor(/reload failed: pid (\d+) .*/, 60000, mark))[0];
      ledger.note(sup.proc.pid);
      const after = small.ok();
      await waitFor("more answers after the failed reload", () => small.ok() >= after + 20, 60000);
      await small.stop();
      return { pid, abandoned, failures: small.failures, oldStopped: sup.lines.slice(mark).some((l) => l.includes(`stopping old pid ${pid}`)), exit: await stopRun(sup) };
    } finally {
      // A loop left running would open connections during every later test of this process.
      await small.stop();
    }
  } finally {
    ledger.killAll();
    s.dir.cleanup();
  }
}

const present = { nginx: !missing("nginx"), haproxy: !missing("haproxy"), lighttpd: !missing("lighttpd"), gunicorn: !missing("gunicorn") };
// Settled in the tests; a rejection is kept (not thrown) until its own test awaits it.
const runs: Record<string, Promise<unknown>> = {};
const keep = (p: Promise<unknown>) => (p.catch(() => {}), p);

beforeAll(() => {
  if (present.nginx) runs.nginx = keep(reloadRecipe("nginx", RATE));
  if (present.haproxy) runs.haproxy = keep(reloadRecipe("HAProxy", RATE, fileServer));
  if (present.lighttpd) runs.lighttpd = keep(reloadRecipe("lighttpd", RATE));
  // The recipe's --settle 5s holds each reload for 5 s: slower downloads, so one is still in flight at the stop.
  if (present.gunicorn) runs.gunicorn = keep(reloadRecipe("gunicorn", RATE / 3));
  if (present.gunicorn) runs.badDeploy = keep(badDeploy());
});

async function expectReloadsClean(name: string): Promise<void> {
  const got = (await runs[name]) as Awaited<ReturnType<typeof reloadRecipe>>;
  expectClean(got, got.sha256);
  expect(got.exit).toBe(0);
}

test.skipIf(!present.nginx)("nginx (--stop-signal QUIT): 10 reloads during 20 MB downloads, zero failures, every byte", async () => {
  await expectReloadsClean("nginx");
});

test.skipIf(!present.haproxy)("HAProxy (bind fd@3, --stop-signal USR1): 10 reloads during 20 MB downloads, zero failures", async () => {
  await expectReloadsClean("haproxy");
});

test.skipIf(!present.lighttpd)("lighttpd (--stop-signal INT): 10 reloads during 20 MB downloads, zero failures, every byte", async () => {
  await expectReloadsClean("lighttpd");
});

test.skipIf(!present.gunicorn)("gunicorn (--ready notify): 10 reloads during 20 MB downloads, zero failures, every byte", async () => {
  await expectReloadsClean("gunicorn");
});

test.skipIf(!present.gunicorn)("gunicorn reloaded into an app that fails to import: --settle keeps the old one, zero failures", async () => {
  const got = (await runs.badDeploy) as Awaited<ReturnType<typeof badDeploy>>;
  expect(got.abandoned).toMatch(new RegExp(`; keeping pid ${got.pid}$`));
  expect(got.failures).toEqual([]);
  expect(got.oldStopped).toBe(false);
  expect(got.exit).toBe(0);
});
