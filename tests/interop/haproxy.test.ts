// `_getsocks` against Debian's real HAProxy (issue 11): a running HAProxy's listeners taken over its stats socket
// (`expose-fd listeners`) by the library, `recv haproxy:`, `exec --listen haproxy:` and `serve --hold`; they are
// HAProxy's own listening sockets (same inode), and a new HAProxy started with one of them serves on it after the
// first is gone. Skipped only when haproxy is not installed.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBroker } from "../broker/harness.ts";
import { takeHaproxySockets } from "../../src/peer/haproxy.ts";
import { closeAll, fstat, socketInfo } from "../../src/sys/index.ts";
import { CLI, fdCount, run, spawn, tempDir, waitFor } from "../helpers.ts";
import { freePort, httpGet } from "../servers/harness.ts";

setDefaultTimeout(60000);
const present = !!Bun.which("haproxy", { PATH: `${process.env.PATH}:/usr/sbin` });
if (!present) console.warn("skipped: haproxy is not installed (Debian package haproxy: see .ci/run's needs table)");

/** An HAProxy answering `body` on two ports, with a stats socket; `expose` adds `expose-fd listeners`. */
async function startHaproxy(dir: string, body: string, expose = true) {
  const ports = [await freePort(), await freePort()];
  const stats = join(dir, `${body}.sock`);
  const cfg = join(dir, `${body}.cfg`);
  writeFileSync(cfg, `global
  stats socket ${stats} mode 600 level admin${expose ? " expose-fd listeners" : ""}
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend web
  bind 127.0.0.1:${ports[0]}
  bind 127.0.0.1:${ports[1]}
  http-request return status 200 content-type text/plain string "${body}"
`);
  const proc = spawn(["haproxy", "-db", "-f", cfg], { stdout: "ignore" });
  await waitFor("HAProxy's stats socket", () => existsSync(stats) || proc.exitCode !== null);
  expect(proc.exitCode).toBeNull();
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
  };
  return { proc, ports, stats, cfg, stop };
}

/** The inodes of the sockets a process holds, from /proc/PID/fd. */
function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    if (m) out.add(Number(m[1]));
  }
  return out;
}

test.skipIf(!present)("takeHaproxySockets: every listener of a running HAProxy, the very sockets it bound, named by address", async () => {
  const dir = tempDir();
  const before = fdCount();
  try {
    const h = await startHaproxy(dir.path, "old");
    const taken = takeHaproxySockets(h.stats);
    try {
      expect(taken.map((t) => t.name).sort()).toEqual([`tcp-127.0.0.1-${h.ports[0]}`, `tcp-127.0.0.1-${h.ports[1]}`, `unix-${h.stats}`].sort());
      expect(taken.map((t) => t.address).sort()).toEqual([`127.0.0.1:${h.ports[0]}`, `127.0.0.1:${h.ports[1]}`, h.stats].sort());
      const theirs = socketInodes(h.proc.pid);
      for (const t of taken) {
        expect(theirs.has(fstat(t.fd).ino)).toBe(true);
        expect(socketInfo(t.fd).listening).toBe(true);
      }
    } finally {
      closeAll(taken.map((t) => t.fd));
    }
    // HAProxy gave copies: it still serves.
    expect((await httpGet(h.ports[0]!, "/")).body).toBe("old");
    await h.stop();
  } finally {
    dir.cleanup();
  }
  // Bun closes a finished client socket's fd a moment after its "close" event: wait for the count, bounded.
  await waitFor("every taken fd and client socket to close", () => fdCount() <= before);
});

test.skipIf(!present)("recv haproxy: and exec --listen haproxy: hand the listeners on with LISTEN_FDNAMES from their addresses", async () => {
  const dir = tempDir();
  try {
    const h = await startHaproxy(dir.path, "old");
    const names = [`tcp-127.0.0.1-${h.ports[0]}`, `tcp-127.0.0.1-${h.ports[1]}`, `unix-${h.stats}`];
    const r = await run([...CLI, "recv", `haproxy:${h.stats}`, "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(names[0]!);
    const show = ["sh", "-c", 'echo "$LISTEN_FDS $LISTEN_FDNAMES"'];
    const viaRecv = await run([...CLI, "recv", `haproxy:${h.stats}`, "--", ...show]);
    expect(viaRecv.stdout.trim().split(" ")[0]).toBe("3");
    expect(viaRecv.stdout.trim().split(" ")[1]!.split(":").sort()).toEqual(names.sort());
    const viaExec = await run([...CLI, "exec", "--listen", `web=haproxy:${h.stats}`, "--", ...show]);
    expect(viaExec.stdout.trim().split(" ")[1]!.split(":").sort()).toEqual(names.map((n) => `web/${n}`).sort());
    await h.stop();
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!present)("serve --hold web=haproxy: keeps the listeners after HAProxy is gone; a new HAProxy serves on one (bind fd@3)", async () => {
  const dir = tempDir();
  try {
    const h = await startHaproxy(dir.path, "old");
    const broker = await startBroker(["--hold", `web=haproxy:${h.stats}`]);
    try {
      const ls = await run([...CLI, "ls", "-s", broker.sock]);
      expect(ls.stdout).toContain(`web/tcp-127.0.0.1-${h.ports[0]}`);
      h.proc.kill("SIGKILL");
      await h.proc.exited;
      const cfg = join(dir.path, "new.cfg");
      writeFileSync(cfg, `defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend web
  bind fd@3
  http-request return status 200 content-type text/plain string "new"
`);
      // The port stayed bound and listening in the broker: the request waits in its queue for the new HAProxy.
      const answer = httpGet(h.ports[0]!, "/");
      const fresh = spawn([...CLI, "get", "-s", broker.sock, `web/tcp-127.0.0.1-${h.ports[0]}`, "--", "haproxy", "-db", "-f", cfg], { stdout: "ignore" });
      expect((await answer).body).toBe("new");
      fresh.kill("SIGKILL");
      await fresh.exited;
    } finally {
      await broker.stop();
    }
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!present)("a stats socket without expose-fd listeners: exit 1, one line saying what HAProxy needs", async () => {
  const dir = tempDir();
  try {
    const h = await startHaproxy(dir.path, "closed", false);
    const r = await run([...CLI, "recv", `haproxy:${h.stats}`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("expose-fd listeners");
    await h.stop();
  } finally {
    dir.cleanup();
  }
});
