// The listener held in the broker: servers started by `fdbroker get web -- CMD` take turns on it under load,
// and `exec --get` / `run --get` fetch broker entries alongside their own listeners.
import { expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { startBroker } from "../broker/harness.ts";
import { CLI, fdbroker, fdCount, lineReader, spawn, tempDir } from "../helpers.ts";
import { clientLoop, HTTP_SERVER, httpPid, reload, REPORT, startRun } from "./harness.ts";

setDefaultTimeout(180000);

/** One server generation: `fdbroker get web -- http_server`, ready once it prints so. */
async function startServer(sock: string) {
  const proc = spawn([...CLI, "get", "-s", sock, "web", "--", "python3", HTTP_SERVER]);
  const m = await lineReader(proc.stdout as ReadableStream<Uint8Array>).next(/^ready (\d+) /);
  expect(Number(m[1])).toBe(proc.pid); // get execs: the server is the process we started
  return proc;
}

test("broker-held listener: 2000+ requests across 10 server replacements via `get web --`, zero failures", async () => {
  const before = fdCount();
  const dir = tempDir();
  const web = join(dir.path, "web.sock");
  const broker = await startBroker(["--hold", `web=unix:${web}`]);
  try {
    expect(await replaceServers(broker.sock, web)).toBeGreaterThanOrEqual(2000);
  } finally {
    expect(await broker.stop()).toBe(0);
    dir.cleanup();
  }
  expect(fdCount()).toBeLessThanOrEqual(before);
});

/** The test plays supervisor: start the next server through the broker, wait for it, stop the old one. */
async function replaceServers(brokerSock: string, web: string): Promise<number> {
  let server = await startServer(brokerSock);
  const pids = [server.pid];
  const client = clientLoop(web, 4);
  for (let i = 0; i < 10; i++) {
    const old = server;
    await client.until(() => (client.byPid.get(old.pid) ?? 0) >= 50);
    server = await startServer(brokerSock);
    pids.push(server.pid);
    old.kill("SIGTERM");
    expect(await old.exited).toBe(0);
  }
  await client.until(() => client.total() >= 2000 && (client.byPid.get(server.pid) ?? 0) >= 50);
  await client.stop();
  expect(client.failures).toEqual([]);
  expect(new Set(pids).size).toBe(11);
  expect([...client.byPid.keys()].sort()).toEqual([...pids].sort());
  server.kill("SIGTERM");
  expect(await server.exited).toBe(0);
  return client.total();
}

test("exec --get puts broker entries in command-line order among --listen; a missing entry exits 1", async () => {
  const broker = await startBroker(["--hold", `held=file:${join(import.meta.dir, "harness.ts")}`, "--hold", "other=file:/etc/hosts"]);
  try {
    const r = await fdbroker(["exec", "--listen", `own=unix:${broker.dir}/own.sock`, "--get", "held", "-s", broker.sock,
      "--", "python3", REPORT, "--check"]);
    const rep = JSON.parse(r.stdout);
    expect(rep.problems).toEqual([]);
    expect(rep.env.LISTEN_FDNAMES).toBe("own:held");
    expect(rep.fds["4"]).toBe(join(import.meta.dir, "harness.ts"));
    // Neighbouring --get go in one round trip, and still in the order given.
    const two = await fdbroker(["exec", "-s", broker.sock, "--get", "other", "--get", "held", "--", "python3", REPORT, "--check"]);
    const both = JSON.parse(two.stdout);
    expect(both.problems).toEqual([]);
    expect(both.env.LISTEN_FDNAMES).toBe("other:held");
    expect([both.fds["3"], both.fds["4"]]).toEqual(["/etc/hosts", join(import.meta.dir, "harness.ts")]);
    const missing = await fdbroker(["exec", "--get", "nope", "-s", broker.sock, "--", "true"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split("\n").length).toBe(1);
  } finally {
    expect(await broker.stop()).toBe(0);
  }
});

test("run --get serves from a broker-held listener and reloads on it", async () => {
  const broker = await startBroker([]);
  const web = join(broker.dir, "web.sock");
  try {
    // Put a listener that exec opened into the broker: the launcher and the broker compose.
    const put = await fdbroker(["exec", "--listen", `web=unix:${web}`, "--", ...CLI, "put", "-s", broker.sock, "web", "--fd", "3"]);
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    const run = startRun(["--get", "web", "-s", broker.sock, "--ready", "notify", "--", "python3", HTTP_SERVER]);
    const first = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    expect(await httpPid(web)).toBe(first);
    const second = await reload(run, first);
    expect(await httpPid(web)).toBe(second);
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
  } finally {
    expect(await broker.stop()).toBe(0);
  }
});
