// `run --stop-signal` and `run --settle` with real children: the signal that retires an old child and stops the
// last one, and a reload into a server that says it is ready and then dies (gunicorn with a broken app).
import { expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { fdbroker, fdCount, lineReader, tempDir, waitFor } from "../helpers.ts";
import { clientLoop, HTTP_SERVER, httpPid, notifyManager, startRun } from "./harness.ts";

setDefaultTimeout(90000);

/** A shell child that says which of QUIT, TERM and USR1 it got on stdout, then exits 0 (or ignores `ignored`). */
const trapping = (ignored = "") =>
  ["sh", "-c", `for s in QUIT TERM USR1; do trap "echo \\"$$ got \${s}\\"; exit 0" $s; done; ${ignored ? `trap "" ${ignored}; ` : ""}echo "$$ up"; while :; do sleep 0.05; done`];

/** Every line of a stream, kept as it arrives (children's lines interleave, so none may be skipped). */
function collect(stream: ReadableStream<Uint8Array>): string[] {
  const lines: string[] = [];
  const reader = lineReader(stream);
  (async () => {
    for (let l = await reader.line(); l !== ""; l = await reader.line()) lines.push(l);
  })();
  return lines;
}

test("--stop-signal QUIT: the old child is retired with SIGQUIT, and run's SIGTERM reaches the last one as SIGQUIT", async () => {
  const run = startRun(["--ready", "delay:50ms", "--stop-signal", "QUIT", "--", ...trapping()]);
  const out = collect(run.proc.stdout as ReadableStream<Uint8Array>);
  const said = (line: string) => waitFor(line, () => out.includes(line));
  const first = Number((await run.waitFor(/started pid (\d+) \(#1\)/))[1]);
  await said(`${first} up`);
  run.proc.kill("SIGHUP");
  const second = Number((await run.waitFor(/started pid (\d+) \(#2\)/))[1]);
  await run.waitFor(new RegExp(`stopping old pid ${first} \\(SIGQUIT, 10000 ms grace\\)`));
  await said(`${first} got QUIT`);
  await run.waitFor(new RegExp(`pid ${first} exited with code 0 \\(retired\\)`));
  await said(`${second} up`);
  run.proc.kill("SIGTERM");
  await run.waitFor(new RegExp(`SIGTERM: passing it to pid ${second} as SIGQUIT`));
  expect(await run.proc.exited).toBe(0);
  await said(`${second} got QUIT`);
  expect(out.filter((l) => / got /.test(l))).toEqual([`${first} got QUIT`, `${second} got QUIT`]);
});

test("--stop-signal with --grace: a child that ignores the stop signal is killed when the grace is over", async () => {
  const run = startRun(["--stop-signal", "USR1", "--grace", "300ms", "--", ...trapping("USR1")]);
  const out = lineReader(run.proc.stdout as ReadableStream<Uint8Array>);
  const pid = Number((await out.next(/^(\d+) up$/))[1]);
  run.proc.kill("SIGTERM");
  await run.waitFor(new RegExp(`pid ${pid} still running after 300 ms: SIGKILL`));
  expect(await run.proc.exited).toBe(137);
});

test("--settle: a reload into a server that dies after READY=1 keeps the old one serving, zero failed requests", async () => {
  const dir = tempDir();
  const sock = `${dir.path}/web.sock`;
  const broken = `${dir.path}/broken`;
  const manager = notifyManager(`${dir.path}/manager.sock`);
  try {
    // The broken app is up long enough to be "ready" and to take requests, as gunicorn's master is.
    const run = startRun(["--listen", `unix:${sock}`, "--ready", "notify", "--settle", "20s", "--", "sh", "-c",
      `if [ -e ${broken} ]; then exec python3 ${HTTP_SERVER} --crash-after 300; fi; exec python3 ${HTTP_SERVER}`],
      { env: { ...process.env, NOTIFY_SOCKET: manager.path } });
    const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    expect(await manager.next()).toStartWith("READY=1\nMAINPID=");
    const client = clientLoop(sock, 2);
    writeFileSync(broken, "");
    const mark = run.lines.length;
    run.proc.kill("SIGHUP");
    const second = Number((await run.waitFor(new RegExp(`pid (\\d+) is ready; settling for 20000 ms before pid ${first} is stopped`), 30000, mark))[1]);
    await run.waitFor(new RegExp(`reload failed: pid ${second} exited with code 3 within the 20000 ms --settle; keeping pid ${first}`), 30000, mark);
    const byFirst = client.byPid.get(first) ?? 0;
    await client.until(() => (client.byPid.get(first) ?? 0) >= byFirst + 20);
    await client.stop();
    expect(client.failures).toEqual([]);
    expect(await httpPid(sock)).toBe(first);
    expect(run.lines.slice(mark).join("\n")).not.toContain("stopping old");
    expect(await manager.next()).toBe("RELOADING=1");
    expect(await manager.next()).toBe(`READY=1\nSTATUS=reload failed (pid ${second} exited with code 3 within the 20000 ms --settle); keeping pid ${first}`);
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
  } finally {
    manager.close();
    dir.cleanup();
  }
});

test("--settle: a new child that stays up is promoted once the time is over, and not before", async () => {
  const dir = tempDir();
  const sock = `${dir.path}/web.sock`;
  try {
    const run = startRun(["--listen", `unix:${sock}`, "--ready", "notify", "--settle", "3s", "--", "python3", HTTP_SERVER]);
    const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    const mark = run.lines.length;
    const sent = Date.now();
    run.proc.kill("SIGHUP");
    const second = Number((await run.waitFor(/pid (\d+) is ready; settling for 3000 ms/, 30000, mark))[1]);
    await run.waitFor(new RegExp(`stopping old pid ${first} `), 30000, mark);
    // The clock only bounds from below: 3 s after the signal at the very least.
    expect(Date.now() - sent).toBeGreaterThanOrEqual(3000);
    const order = run.lines.slice(mark).filter((l) => /settling|stayed up|stopping old/.test(l)).map((l) => l.replace("fdbroker run: ", ""));
    expect(order).toEqual([
      `pid ${second} is ready; settling for 3000 ms before pid ${first} is stopped`,
      `pid ${second} stayed up 3000 ms`,
      `stopping old pid ${first} (SIGTERM, 10000 ms grace)`,
    ]);
    await run.waitFor(new RegExp(`pid ${first} exited with code 0 \\(retired\\)`), 30000, mark);
    expect(await httpPid(sock)).toBe(second);
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});

test("bad --stop-signal, --settle, --ready and durations exit 2 with one line and hold nothing", async () => {
  const before = fdCount();
  for (const args of [
    ["--stop-signal", "KILL", "--", "true"],
    ["--stop-signal", "NOPE", "--", "true"],
    ["--settle", "soon", "--", "true"],
    ["--settle", "-5s", "--", "true"],
    ["--grace", "10 parsecs", "--", "true"],
    ["--ready", "exec:", "--", "true"],
    ["--ready", "delay:x", "--", "true"],
    ["--listen", "udp:127.0.0.1:0", "--ready", "accept", "--", "true"],
    ["--ready", "accept", "--", "true"],
  ]) {
    const r = await fdbroker(["run", ...args]);
    expect([args.join(" "), r.code]).toEqual([args.join(" "), 2]);
    expect(r.stderr.trim().split("\n").length).toBe(1);
  }
  // Bun closes a finished child's pipes on its own time: wait for them rather than count at once.
  await waitFor("this process's fds back", () => fdCount() <= before, 10000);
});
