// `run --ready exec:CMD` and `--ready accept` with real servers that never notify. In each reload the new server
// is held at a gate (a file the test creates) while the old one serves on the same listener: the new one must
// not count as ready until it is past the gate itself.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { tempDir, waitFor } from "../helpers.ts";
import { clientLoop, HTTP_SERVER, httpPid, startRun, type Supervisor } from "./harness.ts";

setDefaultTimeout(90000);

/** CMD for run: the first server starts at once, every later one waits for `${dir}/go` before it serves. */
const gated = (dir: string, ...args: string[]) => ["sh", "-c",
  `if [ -e ${dir}/started ]; then set -- --wait-for ${dir}/go; else : > ${dir}/started; set --; fi; exec python3 ${HTTP_SERVER} ${args.join(" ")} "$@"`];

/**
 * Reload into a gated server and check it is not taken for ready while held (the old one serving meanwhile),
 * then that it is once let through; every request in between succeeds. `held` runs while the gate is shut.
 */
async function reloadThroughGate(run: Supervisor, dir: string, first: number, sock: string, held: (second: number) => Promise<void>,
  blockingAccept = false) {
  const client = clientLoop(sock, 2);
  const mark = run.lines.length;
  run.proc.kill("SIGHUP");
  const second = Number((await run.waitFor(/started pid (\d+) \(#2\)/, 30000, mark))[1]);
  await held(second);
  expect(run.lines.slice(mark).join("\n")).not.toMatch(/is ready|stopping old/);
  expect(await httpPid(sock)).toBe(first);
  writeFileSync(`${dir}/go`, "");
  await run.waitFor(new RegExp(`pid ${second} is ready`), 30000, mark);
  await run.waitFor(new RegExp(`pid ${first} exited with code 0 \\(retired\\)`), 30000, mark);
  await client.until(() => (client.byPid.get(second) ?? 0) >= 10);
  await client.stop();
  expect(client.failures).toEqual([]);
  run.proc.kill("SIGTERM");
  // A server blocked in accept notices SIGTERM with its next connection (tests/fixtures/http_server.py): knock
  // until it has gone (a knock that comes before the signal is simply answered).
  let exited = false;
  run.proc.exited.then(() => (exited = true));
  if (blockingAccept) await waitFor("run to exit", async () => exited || (await httpPid(sock).catch(() => 0), exited));
  expect(await run.proc.exited).toBe(0);
}

/** Lines of the file the probe appends to: one pid per probe run. */
const probes = (dir: string) => (existsSync(`${dir}/probes`) ? readFileSync(`${dir}/probes`, "utf8").trim().split("\n") : []);

test("--ready exec: the probe runs again and again with the new child's pid until it passes", async () => {
  const dir = tempDir();
  const sock = `${dir.path}/web.sock`;
  try {
    // The server creates ${dir}/<its pid> once it serves: the probe checks for the child it is given.
    const probe = `exec:echo $FDBROKER_CHILD_PID >> ${dir.path}/probes; test -e ${dir.path}/$FDBROKER_CHILD_PID`;
    const run = startRun(["--listen", `unix:${sock}`, "--ready", probe, "--", ...gated(dir.path, "--touch", dir.path)]);
    const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    await reloadThroughGate(run, dir.path, first, sock, async (second) => {
      // Three failed runs of the probe for the held server: it is repeated, and it was asked about that server.
      await waitFor("three probes of the held server", () => probes(dir.path).filter((p) => p === String(second)).length >= 3);
    });
    expect(new Set(probes(dir.path))).toEqual(new Set(readdirSync(dir.path).filter((f) => /^\d+$/.test(f))));
  } finally {
    dir.cleanup();
  }
});

/** Pids of processes whose command line is exactly `argv`. */
function processesRunning(argv: string[]): number[] {
  const want = `${argv.join("\0")}\0`;
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8") === want) out.push(Number(p));
    } catch {}
  }
  return out;
}

test("--ready exec: a probe that hangs is killed after 5 s and run again; none outlives a readiness given up on", async () => {
  const dir = tempDir();
  const marker = ["sleep", "97.5"];
  try {
    // The first run hangs; the second passes.
    const probe = `exec:if [ -e ${dir.path}/once ]; then exit 0; fi; : > ${dir.path}/once; exec ${marker.join(" ")}`;
    const run = startRun(["--ready", probe, "--", "sleep", "60"]);
    await run.waitFor(/started pid/);
    const started = Date.now();
    await waitFor("the hanging probe", () => processesRunning(marker).length === 1);
    await run.waitFor(/pid \d+ is ready/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500); // a lower bound only: 5 s less our own lag
    await waitFor("the hanging probe to be gone", () => processesRunning(marker).length === 0);
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(143);

    // A probe never given the chance to finish is killed when the readiness wait is given up. While it runs: it
    // holds nothing but /dev/null at 0-2, and its environment names the child but no listener or notify socket.
    const never = startRun(["--listen", `unix:${dir.path}/web.sock`, "--ready", `exec:exec ${marker.join(" ")}`,
      "--ready-timeout", "6s", "--", "sleep", "60"], { env: { ...process.env, NOTIFY_SOCKET: `${dir.path}/none` } });
    const child = Number((await never.waitFor(/started pid (\d+)/))[1]);
    await waitFor("the hanging probe", () => processesRunning(marker).length === 1);
    const [hung] = processesRunning(marker);
    expect(readdirSync(`/proc/${hung}/fd`).map((fd) => `${fd} ${readlinkSync(`/proc/${hung}/fd/${fd}`)}`).sort())
      .toEqual(["0 /dev/null", "1 /dev/null", "2 /dev/null"]);
    const environ = readFileSync(`/proc/${hung}/environ`, "utf8").split("\0");
    expect(environ).toContain(`FDBROKER_CHILD_PID=${child}`);
    expect(environ.filter((v) => /^(LISTEN_|NOTIFY_SOCKET=)/.test(v))).toEqual([]);
    await never.waitFor(/not ready after 6000 ms; leaving it running/);
    await waitFor("the hanging probe to be gone", () => processesRunning(marker).length === 0);
    never.proc.kill("SIGTERM");
    expect(await never.proc.exited).toBe(143);
  } finally {
    dir.cleanup();
  }
});

for (const loop of ["epoll", "accept"]) {
  test(`--ready accept (${loop}): ready once the new child itself waits on the listener, not while only the old one does`, async () => {
    const dir = tempDir();
    const sock = `${dir.path}/web.sock`;
    try {
      const run = startRun(["--listen", `unix:${sock}`, "--ready", "accept", "--", ...gated(dir.path, "--loop", loop)]);
      const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
      await reloadThroughGate(run, dir.path, first, sock, async (second) => {
        // A negative can only be bounded by time: 15 of run's scans (every 100 ms) of a server held at its gate.
        await waitFor("the held server to run", () => existsSync(`/proc/${second}`));
        await Bun.sleep(1500);
      }, loop === "accept");
    } finally {
      dir.cleanup();
    }
  });
}

test("--ready accept: a server waiting in select is never seen; the first one is left running, the log says so", async () => {
  const dir = tempDir();
  try {
    const run = startRun(["--listen", `unix:${dir.path}/web.sock`, "--ready", "accept", "--ready-timeout", "2s", "--",
      "python3", HTTP_SERVER, "--loop", "select"]);
    const pid = Number((await run.waitFor(/started pid (\d+)/))[1]);
    expect(await httpPid(`${dir.path}/web.sock`)).toBe(pid);
    await run.waitFor(new RegExp(`pid ${pid} not ready after 2000 ms; leaving it running`));
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});
