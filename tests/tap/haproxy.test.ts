// HAProxy's `-x` reload through `fdbroker tap` (a program nobody here wrote): a new HAProxy started with
// `-x TAPSOCK` asks the old one's stats socket for its listeners (`_getsocks`) through the tap, gets them, and
// serves; the tap's JSON shows the fds it passed as TCP listeners on HAProxy's ports. As
// tests/interop/haproxy.test.ts starts HAProxy; skipped only when it is not installed.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, tempDir, waitFor } from "../helpers.ts";
import { freePort, httpGet } from "../servers/harness.ts";
import { startTap, stopAll } from "./harness.ts";

setDefaultTimeout(60_000);
const PATH = `${process.env.PATH}:/usr/sbin`;
const present = !!Bun.which("haproxy", { PATH });
if (!present) console.warn("skipped: haproxy is not installed (Debian package haproxy)");

const procs: ReturnType<typeof spawn>[] = [];
let dir: ReturnType<typeof tempDir> | null = null;
afterEach(async () => {
  await stopAll();
  for (const p of procs.splice(0)) {
    p.kill("SIGKILL");
    await p.exited;
  }
  dir?.cleanup();
});

function config(stats: string, port: number, body: string): string {
  return `global
  stats socket ${stats} mode 600 level admin expose-fd listeners
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend web
  bind 127.0.0.1:${port}
  http-request return status 200 content-type text/plain string "${body}"
`;
}

async function startHaproxy(cfgPath: string, stats: string, extra: string[] = []) {
  const proc = spawn(["haproxy", "-db", "-f", cfgPath, ...extra], { stdout: "ignore", env: { ...process.env, PATH } });
  procs.push(proc);
  await waitFor("HAProxy's stats socket", () => existsSync(stats) || proc.exitCode !== null);
  if (proc.exitCode !== null) throw new Error(`haproxy exited ${proc.exitCode}: ${await new Response(proc.stderr as ReadableStream).text()}`);
  return proc;
}

test.skipIf(!present)("haproxy -x TAPSOCK: the listeners pass through the tap, shown as TCP listeners, and the new HAProxy serves", async () => {
  dir = tempDir("fdbroker-tap-haproxy-");
  const port = await freePort();
  const oldStats = join(dir.path, "old.sock");
  const oldCfg = join(dir.path, "old.cfg");
  writeFileSync(oldCfg, config(oldStats, port, "old"));
  const old = await startHaproxy(oldCfg, oldStats);
  const tapSock = join(dir.path, "tap.sock");
  const tap = await startTap([tapSock, "--to", oldStats]);

  const newStats = join(dir.path, "new.sock");
  const newCfg = join(dir.path, "new.cfg");
  writeFileSync(newCfg, config(newStats, port, "new"));
  const fresh = await startHaproxy(newCfg, newStats, ["-x", tapSock]);

  const listeners = await tap.waitRecord((r) => r.event === "message" && r.dir === "s>c" && r.fds.some((f: any) => f.socket?.local === `127.0.0.1:${port}`));
  const tcp = listeners.fds.find((f: any) => f.socket?.local === `127.0.0.1:${port}`);
  expect(tcp).toMatchObject({ kind: "socket", socket: { family: "inet", type: "stream", listening: true } });
  expect(listeners.client.command).toBe("haproxy");
  // With the old one gone, the port is served by the new HAProxy on the listener it got through the tap.
  old.kill("SIGKILL");
  await old.exited;
  expect((await httpGet(port, "/")).body).toBe("new");
  expect(fresh.exitCode).toBeNull();
  expect((await tap.stop()).code).toBe(0);
});
