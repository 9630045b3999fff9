// Issue 12's acceptance for grab: an nginx started the ordinary way (daemonized, its master's pid in its pid file,
// binding its own `listen 127.0.0.1:PORT`) is moved under `fdbroker run` by the recipe in docs/recipes.md: its
// listener grabbed from the master into a broker, a new nginx started by `run --get` on that same socket, the old
// one stopped with SIGQUIT. A request loop runs on the port from before the grab until after the old nginx is
// gone: zero failed requests. Every process (the old master and workers, run, the new nginx, the broker) is
// killed by pid on every path.
import { expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBroker } from "../broker/harness.ts";
import { fdbroker, spawn, tempDir, untrack, waitFor } from "../helpers.ts";
import { watchRun } from "../run/harness.ts";
import {
  freePort, httpGet, missing, processLedger, processTree, recipeArgv, recipeFromDoc, requestLoop, SMALL, started, stopRun, substitute,
} from "./harness.ts";

setDefaultTimeout(180000);

const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

/** The socket inodes among a process's fds (`socket:[N]` links). */
function socketInodes(pid: number): number[] {
  const out: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** How many TCP sockets listen on 127.0.0.1:port (/proc/net/tcp: state 0A, address in hex, little-endian). */
function listenersOn(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === local && f[3] === "0A";
  }).length;
}

/** Ended: no such process, or a zombie its (init) parent has yet to reap. */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

test.skipIf(missing("nginx"))("an nginx started without fdbroker: its listener grabbed into the broker, served by nginx under run --get, the old one stopped with QUIT: zero failed requests", async () => {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  const www = join(dir.path, "www");
  mkdirSync(www, { mode: 0o755 });
  writeFileSync(join(www, "small.txt"), SMALL, { mode: 0o644 });
  const ledger = processLedger();
  const broker = await startBroker();
  // Stopped in finally only if started: a loop left running would connect during every later test of the file.
  let loop: ReturnType<typeof requestLoop> | null = null;
  // run's tree is noted again at the end: a test failing before the new nginx is ready still kills it by pid.
  let runPid: number | null = null;
  try {
    const port = await freePort();
    const recipe = recipeFromDoc("Move nginx's listener under `run`");
    const map: Record<string, string> = { "8080": String(port), "/srv/www": www, "/run/web": dir.path };
    const config = join(dir.path, "grabbed.conf");
    writeFileSync(config, substitute(recipe.config!.text, map));
    // The old nginx: the same configuration with a pid file of its own (the recipe's /run/nginx.pid).
    const oldConfig = join(dir.path, "old.conf");
    const oldPidFile = join(dir.path, "old.pid");
    writeFileSync(oldConfig, substitute(recipe.config!.text, { ...map, "/run/web/nginx.pid": oldPidFile }));

    // Started as a service manager would: it daemonizes, and the first process exits once the master is forked.
    const first = spawn([Bun.which("nginx", { PATH })!, "-c", oldConfig], { stdout: "ignore", stderr: "ignore" });
    expect(await first.exited).toBe(0);
    untrack(first.pid);
    await waitFor("the old nginx's pid file", () => existsSync(oldPidFile) && /^\d+\n/.test(readFileSync(oldPidFile, "utf8")), 60000);
    const oldPid = Number(readFileSync(oldPidFile, "utf8"));
    ledger.note(oldPid);
    await waitFor("the old nginx to answer", () => httpGet(port, "/small.txt").then((r) => r.body === SMALL, () => false), 60000);
    const oldTree = processTree(oldPid);
    ledger.note(oldPid);

    const requests = requestLoop(port, "/small.txt", SMALL);
    loop = requests;
    await waitFor("answers from the old nginx", () => requests.ok() >= 20, 60000);
    const beforeSwitch = requests.ok();

    // The recipe: find the listener with inspect --pid, grab it into the broker.
    const inspected = await fdbroker(["inspect", "--pid", String(oldPid), "--json"]);
    expect(inspected.code).toBe(0);
    const listener = (JSON.parse(inspected.stdout) as { fd: number; inode: number; socket: { listening: boolean; local: string } | null }[])
      .find((d) => d.socket?.listening && d.socket.local === `127.0.0.1:${port}`)!;
    expect(listener).toBeDefined();
    // Without reuseport the master and every worker hold the one open socket: the master's fd is enough.
    expect(oldTree.length).toBe(3);
    for (const pid of oldTree) expect(socketInodes(pid)).toContain(listener.inode);
    const env = { ...process.env, PATH, FDBROKER_SOCKET: broker.sock };
    const grabbed = await fdbroker(["grab", String(oldPid), String(listener.fd), "--put", "web"], { env });
    expect(grabbed).toMatchObject({ code: 0, stderr: "" });

    const command = substitute(recipe.command, { ...map, [recipe.config!.path]: config });
    const sup = watchRun(started(spawn(recipeArgv(command), { stdout: "ignore", env }), ledger));
    runPid = sup.proc.pid;
    const newPid = Number((await sup.waitFor(/pid (\d+) is ready/, 60000))[1]);
    ledger.note(sup.proc.pid);
    // The new nginx serves on the grabbed socket itself (fd 3), and bound none of its own.
    expect(readlinkSync(`/proc/${newPid}/fd/3`)).toBe(`socket:[${listener.inode}]`);
    expect(listenersOn(port)).toBe(1);
    expect(sup.lines.some((l) => l.includes('using inherited sockets from "3;"'))).toBe(true);

    process.kill(oldPid, "SIGQUIT");
    await waitFor("the old nginx's master and workers to exit", () => oldTree.every(ended), 60000);
    const afterOld = requests.ok();
    await waitFor("answers after the old nginx exited", () => requests.ok() >= afterOld + 50, 60000);
    await requests.stop();
    console.log(`grab-nginx: ${requests.ok()} requests answered, ${requests.failures.length} failed; ${afterOld - beforeSwitch} between the grab and the old nginx's exit`);
    expect(requests.failures).toEqual([]);
    expect(afterOld).toBeGreaterThan(beforeSwitch);
    expect(listenersOn(port)).toBe(1);
    expect(await httpGet(port, "/small.txt")).toEqual({ status: 200, body: SMALL });
    expect(await stopRun(sup)).toBe(0);
  } finally {
    await loop?.stop();
    if (runPid !== null) ledger.note(runPid);
    ledger.killAll();
    await broker.stop();
    dir.cleanup();
  }
});
