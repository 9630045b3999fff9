// HAProxy's `-x` reload through `fdbroker tap` (a program nobody here wrote): a new HAProxy started with
// `-x TAPSOCK` asks the old one's stats socket for its listeners (`_getsocks`) through the tap, gets them, and
// serves; the tap's JSON shows the fds it passed as TCP listeners on HAProxy's ports. As
// tests/interop/haproxy.test.ts starts HAProxy; skipped only when it is not installed.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, spawn, tempDir, waitFor } from "../helpers.ts";
import { freePort, httpGet } from "../servers/harness.ts";
import { PYTHON, startTap, stopAll } from "./harness.ts";

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

const SHOW_PID = `import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show info\\n")
print([l for l in s.makefile().read().splitlines() if l.startswith("Pid:")][0])`;

test.skipIf(!present)("docs/recipes.md's reload through tap --swap: the new HAProxy keeps the old stats socket, so tap's SIGTERM puts its file back and the new HAProxy answers there; the listeners and the stats socket crossed", async () => {
  dir = tempDir("fdbroker-tap-haproxy-");
  const port = await freePort();
  const stats = join(dir.path, "admin.sock");
  const oldCfg = join(dir.path, "old.cfg");
  writeFileSync(oldCfg, config(stats, port, "old"));
  const old = await startHaproxy(oldCfg, stats);
  const serverFile = lstatSync(stats).ino;
  const tap = await startTap(["--swap", stats]);

  const newCfg = join(dir.path, "new.cfg");
  writeFileSync(newCfg, config(stats, port, "new"));
  const fresh = spawn(["haproxy", "-db", "-f", newCfg, "-x", stats, "-sf", String(old.pid)], { stdout: "ignore", env: { ...process.env, PATH } });
  procs.push(fresh);
  const passed = await tap.waitRecord((r) => r.event === "message" && r.dir === "s>c" && r.fds.length > 0);
  const local = passed.fds.map((f: any) => f.socket?.local);
  expect(local).toContain(`127.0.0.1:${port}`);
  expect(local.some((l: string) => l?.startsWith(`${stats}.`) && l.endsWith(".tmp"))).toBe(true);
  // -sf: the old one stops once the new one serves.
  await old.exited;
  expect((await httpGet(port, "/")).body).toBe("new");

  expect(await tap.stop()).toEqual({ code: 0, stderr: "" });
  expect(tap.records().filter((r) => r.event === "error")).toEqual([]);
  expect(lstatSync(stats).ino).toBe(serverFile);
  expect(readdirSync(dir.path).filter((f) => f.includes(".tap-"))).toEqual([]);
  const pid = await run([PYTHON, "-c", SHOW_PID, stats]);
  expect(pid.stdout.trim()).toBe(`Pid: ${fresh.pid}`);
});
