// Issue 8, finding 5: a client's fd must not hold the broker's loop in the kernel. close() of the last reference
// to a TCP socket with SO_LINGER and a full send queue blocks for the linger time; close() of a file on a FUSE
// server that never answers FLUSH blocks until the server dies, and fstat() of it (describing a put) until it
// answers GETATTR. Hostile clients (fixtures/stall_client.py, as uid 65534) hand such fds over; meanwhile every
// round trip of another client must take under 100 ms, the broker's fds must come back, and SIGTERM must stop it.
import { afterEach, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { get, ls, openSession, put, rm, status } from "../../src/client/index.ts";
import { closeAll, pipe, write } from "../../src/sys/index.ts";
import { fdCount, lineReader, spawn, tempDir, waitFor } from "../helpers.ts";
import { asNobody } from "../hostile.ts";
import { brokerPerTest } from "./harness.ts";

const CLIENT = join(import.meta.dir, "fixtures/stall_client.py");
const FUSE_SERVER = join(import.meta.dir, "fixtures/fuse_server.py");
const NOBODY = asNobody();
const OPEN_TO_NOBODY = ["--mode", "0666", "--allow", "uid:65534:put,rm,ls:evil*"];
const SERVED_WITHIN_MS = 100;

// Registered before brokerPerTest's hook, so it runs first: a broker with a thread waiting on a FUSE server cannot
// finish exiting until that server is gone. This also unmounts after a test that timed out before its own cleanup.
const fuse: { server: ReturnType<typeof spawn>; mnt: ReturnType<typeof tempDir> }[] = [];
afterEach(async () => {
  for (const { server, mnt } of fuse.splice(0)) {
    server.kill("SIGKILL");
    await server.exited;
    Bun.spawnSync(["umount", "-l", mnt.path]);
    mnt.cleanup();
  }
});
const start = brokerPerTest();

/** A python3 that uid 65534 may run (a pyenv shim under /root is not one). */
const PYTHON = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p));
const hostileWhy =
  process.getuid?.() !== 0 ? "not root" : !Bun.which("setpriv") ? "no setpriv" : !PYTHON ? "no python3 outside /root for uid 65534" : null;

/** Why FUSE cannot be tried here, or null: the fixture mounts and unmounts once to find out. */
function fuseUnavailable(): string | null {
  if (hostileWhy) return hostileWhy;
  if (!existsSync("/dev/fuse")) return "no /dev/fuse";
  const dir = tempDir("fdbroker-fuse-probe-");
  try {
    const r = Bun.spawnSync(["python3", FUSE_SERVER, dir.path, "--probe"], { stdout: "pipe", stderr: "pipe" });
    return r.exitCode === 0 ? null : `cannot mount FUSE here: ${r.stdout.toString().trim() || r.stderr.toString().trim()}`;
  } finally {
    dir.cleanup();
  }
}
const fuseWhy = fuseUnavailable();

/** How many of the broker's Worker threads (not its main thread) wait in the kernel in a function matching `fn`. */
function workersIn(pid: number, fn: RegExp): number {
  return readdirSync(`/proc/${pid}/task`).filter((tid) => {
    try {
      const at = (f: string) => readFileSync(`/proc/${pid}/task/${tid}/${f}`, "utf8").trim();
      return at("comm") === "Worker" && fn.test(at("wchan"));
    } catch {
      return false;
    }
  }).length;
}

/** The hostile client as uid 65534; `until(step)` waits for its report of that step. */
function hostile(sock: string, args: string[]) {
  const proc = spawn([...NOBODY, PYTHON!, CLIENT, sock, ...args], { stdout: "pipe", stderr: "pipe" });
  const lines = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  return {
    proc,
    async until(step: string): Promise<{ step: string; reply?: { kind: string; entry?: { what: string }; code?: string } }> {
      const m = await lines.next(new RegExp(`^(done|\\{"step": "${step}".*)$`), 30000);
      return m[1] === "done" ? { step: "done" } : JSON.parse(m[1]!);
    },
    async stop() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** Time 10 fresh connections' ls and get round trips (ms each), as root, while the hostile client does its worst. */
/**
 * The slowest of 20 round trips, from the best of up to three rounds: a loaded machine may deschedule the test
 * itself for 100 ms once, while a stalled broker (30 s of linger, a FUSE server that never answers) fails all three.
 */
function slowestTrip(sock: string): number {
  let best = Infinity;
  for (let round = 0; round < 3 && best >= SERVED_WITHIN_MS; round++) best = Math.min(best, Math.max(...roundTrips(sock)));
  return best;
}

function roundTrips(sock: string): number[] {
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    let t = performance.now();
    const s = openSession({ socket: sock, timeoutMs: 5000 });
    try {
      ls(s);
      times.push(performance.now() - t);
      t = performance.now();
      closeAll(get(s, ["held"]).map((g) => g.fd));
      times.push(performance.now() - t);
    } finally {
      s.close();
    }
  }
  return times;
}

/**
 * A broker open to uid 65534 for evil*, holding `held` (a pipe) for the timed client to get; `base` is its fd count
 * before that (with no client connected), so with `held` and nothing else it holds base + 1.
 */
async function brokerWithHeld(extra: string[] = []) {
  const broker = await start([...OPEN_TO_NOBODY, ...extra]);
  chmodSync(broker.dir, 0o755);
  const base = fdCount(broker.proc.pid);
  const [r, w] = pipe();
  write(w, new TextEncoder().encode("held\n"));
  const s = openSession({ socket: broker.sock });
  try {
    put(s, "held", r);
  } finally {
    s.close();
    closeAll([r, w]);
  }
  return { broker, base };
}

async function stopPromptly(broker: Awaited<ReturnType<typeof start>>): Promise<void> {
  const t = performance.now();
  expect(await broker.stop()).toBe(0);
  expect(performance.now() - t).toBeLessThan(5000);
}

const lingerWays: [string, string, string][] = [
  ["put", "put as an entry, then removed", "rm-sent"],
  ["ls", "attached to an ls request, closed on arrival", "ls-sent"],
  ["partial", "in half a put frame, then the client hangs up", "hung-up"],
  ["unread", "left unread behind unread replies, then the client hangs up", "hung-up"],
];

for (const [how, what, closing] of lingerWays)
  test.skipIf(hostileWhy !== null)(`a TCP socket whose close() lingers 30 s, ${what}: others are served within ${SERVED_WITHIN_MS} ms, fds come back, SIGTERM stops the broker${hostileWhy ? ` (skipped: ${hostileWhy})` : ""}`, async () => {
    const { broker, base } = await brokerWithHeld();
    const pid = broker.proc.pid;
    const evil = hostile(broker.sock, ["linger", "evil", how]);
    try {
      await evil.until(closing);
      expect(slowestTrip(broker.sock)).toBeLessThan(SERVED_WITHIN_MS);
      if (how === "put" || how === "ls") expect((await evil.until(how === "put" ? "rm" : "ls")).reply?.kind).toBe(how === "put" ? "ok" : "error");
      await evil.until("done");
      // The close really is stuck, on a thread that is not the loop's.
      await waitFor("a broker thread lingering in close()", () => workersIn(pid, /wait_woken|sk_stream_wait_close|inet_release/) > 0, 5000);
      await waitFor(`the broker's fds back to ${base + 1}`, () => fdCount(pid) === base + 1, 10000);
      await stopPromptly(broker);
    } finally {
      await evil.stop();
    }
  }, 60000);

test.skipIf(fuseWhy !== null)(`FUSE: a put whose fstat never returns and an rm whose close never returns leave others served within ${SERVED_WITHIN_MS} ms; SIGTERM stops the broker${fuseWhy ? ` (skipped: ${fuseWhy})` : ""}`, async () => {
  const mnt = tempDir("fdbroker-fuse-");
  chmodSync(mnt.path, 0o755);
  const server = spawn(["python3", FUSE_SERVER, mnt.path, "--hang-getattr"], { stdout: "pipe", stderr: "pipe" });
  fuse.push({ server, mnt });
  let evil: ReturnType<typeof hostile> | null = null;
  try {
    await lineReader(server.stdout as ReadableStream<Uint8Array>).next(/^ready$/);
    const { broker, base } = await brokerWithHeld(["--describe-timeout", "300ms"]);
    const pid = broker.proc.pid;
    evil = hostile(broker.sock, ["fuse", "evil", join(mnt.path, "file")]);
    await evil.until("put-sent");
    expect(slowestTrip(broker.sock)).toBeLessThan(SERVED_WITHIN_MS);
    const put = await evil.until("put");
    expect(put.reply?.kind).toBe("ok");
    expect(put.reply?.entry?.what).toContain("not answering: fstat took longer than 300 ms");
    await evil.until("rm-sent");
    expect(slowestTrip(broker.sock)).toBeLessThan(SERVED_WITHIN_MS);
    expect((await evil.until("rm")).reply?.kind).toBe("ok");
    await evil.until("done");
    // One thread waits for GETATTR, one for FLUSH; neither is the loop's.
    await waitFor("two broker threads waiting on the FUSE server", () => workersIn(pid, /request_wait_answer|fuse_/) >= 2, 5000);
    await waitFor(`the broker's fds back to ${base + 1}`, () => fdCount(pid) === base + 1, 10000);
    // SIGTERM: the broker stops serving, closes everything and removes its socket at once. The kernel lets the
    // process end only when those two threads return: FUSE waits for the server's answer uninterruptibly.
    broker.proc.kill("SIGTERM");
    await waitFor("the broker's stop", () => / stop ok /.test(broker.log()), 5000);
    expect(existsSync(broker.sock)).toBe(false);
    server.kill("SIGKILL");
    await stopPromptly(broker);
  } finally {
    // The server first: until it is gone, the hostile client cannot exit (its own close waits for FLUSH).
    server.kill("SIGKILL");
    await server.exited;
    await evil?.stop();
  }
}, 60000);

/** Linux 6.9 and later run the garbage collector of UNIX sockets in flight in a kernel worker (src/sys/offload.ts). */
const gcInKernelWorker = (() => {
  const m = /^(\d+)\.(\d+)/.exec(release()) ?? [];
  return Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 9);
})();

test.skipIf(!gcInKernelWorker)("a broker that has closed no client's fd runs no closer thread: puts and clean hang-ups start none, the first rm starts one", async () => {
  const broker = await start([]);
  const pid = broker.proc.pid;
  const workers = () => workersIn(pid, /./);
  const [r, w] = pipe();
  try {
    for (let i = 0; i < 3; i++) {
      const s = openSession({ socket: broker.sock });
      try {
        put(s, `p${i}`, i % 2 ? r : w);
      } finally {
        s.close();
      }
    }
    const s = openSession({ socket: broker.sock });
    try {
      // The three sessions were read to their end, then closed on the loop's thread: nothing was queued on them.
      await waitFor("the three earlier connections closed", () => status(s).connections === 1, 10000);
      closeAll(get(s, ["p0", "p1"]).map((g) => g.fd));
      expect(ls(s).length).toBe(3);
      expect(workers()).toBe(0);
      // The first close of a client's fd starts the first closer thread.
      expect(rm(s, ["p1"])).toBe(1);
      await waitFor("a closer thread", () => workers() === 1, 10000);
    } finally {
      s.close();
    }
  } finally {
    closeAll([r, w]);
  }
});
