// Issue 10's acceptance tests: a pool of connections to a real Redis (Debian's redis-server, started here on a
// free port), lent to shell jobs by `fdbroker lease redis -- CMD`. Redis itself counts its clients (INFO clients)
// and the jobs' increments, so nothing here takes fdbroker's word for it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { lease, openSession, pools } from "../../src/client/index.ts";
import { C, close, read, waitFd, write } from "../../src/sys/index.ts";
import { CLI, spawn, untrack, waitFor } from "../helpers.ts";
import { startBroker, type Broker } from "../broker/harness.ts";
import { freePort } from "./harness.ts";

const REDIS = Bun.which("redis-server");
const why = REDIS ? null : "redis-server is not installed (Debian's redis-server package)";

let port = 0;
let redis: ReturnType<typeof spawn> | null = null;
let broker: Broker | null = null;

/** One Redis command on a connection of the test's own; resolves with the reply's text. */
function ask(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(port, "127.0.0.1", () => s.write(`${command}\r\n`));
    let text = "";
    s.on("data", (d) => {
      text += d.toString();
      // A simple reply ends at its first CRLF; a bulk reply ($N) after N more bytes.
      const m = /^\$(\d+)\r\n/.exec(text);
      if ((m && text.length >= m[0].length + Number(m[1]) + 2) || (!m && !text.startsWith("$") && text.includes("\r\n"))) {
        s.end();
        resolve(text);
      }
    });
    s.on("error", reject);
  });
}

async function startRedis(): Promise<void> {
  redis = spawn([REDIS!, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" });
  // Shared by every test of this file: killed by afterAll, not at the end of the test that started it.
  untrack(redis.pid);
  await waitFor("redis to answer", async () => (await ask("PING").catch(() => "")).startsWith("+PONG"), 30000);
}

async function stopRedis(): Promise<void> {
  redis?.kill("SIGKILL");
  await redis?.exited;
  redis = null;
}

/** Clients Redis has now, the test's own asking connection included. */
async function redisClients(): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await ask("INFO clients"))![1]);
}

const pool = () => {
  using s = openSession({ socket: broker!.sock });
  return pools(s).find((p) => p.name === "redis")!;
};

beforeAll(async () => {
  if (why) return;
  port = await freePort();
  await startRedis();
  broker = await startBroker(["--pool", `redis=4:tcp-connect:127.0.0.1:${port}`]);
  untrack(broker.proc.pid);
  await waitFor("four members connected", () => pool().idle === 4, 30000);
});

afterAll(async () => {
  await broker?.stop();
  await stopRedis();
});

/** A shell job on fd 3's connection: one command, its one-line reply checked by `expect` (a case pattern). */
const job = (command: string, expectPattern: string) =>
  [...CLI, "lease", "redis", "-s", broker!.sock, "--wait", "60s", "--", "sh", "-c",
    `printf '${command}\\r\\n' >&3 && IFS= read -r line <&3 && case "$line" in ${expectPattern}) exit 0;; *) echo "$line" >&2; exit 1;; esac`];

test.skipIf(why !== null)(`200 shell jobs, 50 at a time, each INCR through a leased connection: all succeed, the counter ends at 200, Redis never sees more than the pool's 4 connections${why ? ` (skipped: ${why})` : ""}`, async () => {
  await ask("SET hits 0");
  let most = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      most = Math.max(most, (await redisClients()) - 1);
      await Bun.sleep(20);
    }
  })();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < 200) {
      next++;
      const p = spawn(job("INCR hits", ":*"), { stdout: "ignore", stderr: "pipe" });
      if ((await p.exited) !== 0) failed++;
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  polling = false;
  await poller;
  expect(failed).toBe(0);
  expect(await ask("GET hits")).toBe("$3\r\n200\r\n");
  expect(most).toBeGreaterThan(0);
  expect(most).toBeLessThanOrEqual(4);
}, 300_000);

test.skipIf(why !== null)("4 lessees killed with SIGKILL mid-lease: the next lease is granted within a second", async () => {
  const held = Array.from({ length: 4 }, () => spawn([...CLI, "lease", "redis", "-s", broker!.sock, "--", "sleep", "60"], { stdout: "ignore" }));
  await waitFor("all four leased", () => pool().leased.length === 4, 30000);
  const t0 = performance.now();
  for (const p of held) p.kill("SIGKILL");
  using s = openSession({ socket: broker!.sock, timeoutMs: 10_000 });
  const l = lease(s, "redis", { waitMs: 5000 });
  const ms = performance.now() - t0;
  l.release();
  close(l.fd);
  for (const p of held) await p.exited;
  expect(ms).toBeLessThan(1000);
});

test.skipIf(why !== null)("8 lessees that send PING and leave without reading: the next 8 leases all get clean connections", async () => {
  for (let i = 0; i < 8; i++) {
    const p = spawn([...CLI, "lease", "redis", "-s", broker!.sock, "--wait", "30s", "--", "sh", "-c", "printf 'PING\\r\\n' >&3"], { stdout: "ignore" });
    expect(await p.exited).toBe(0);
  }
  using s = openSession({ socket: broker!.sock, timeoutMs: 40_000 });
  for (let i = 0; i < 8; i++) {
    const l = lease(s, "redis", { waitMs: 30_000 });
    try {
      // Nothing left over from anyone: the first bytes read answer our own ECHO.
      expect(waitFd(l.fd, C.POLLIN, 0)).toBe(0);
      write(l.fd, new TextEncoder().encode(`ECHO clean${i}\r\n`));
      expect(waitFd(l.fd, C.POLLIN, 10_000) & C.POLLIN).toBeTruthy();
      expect(new TextDecoder().decode(read(l.fd, 64)!)).toBe(`$6\r\nclean${i}\r\n`);
    } finally {
      close(l.fd);
      l.release();
    }
  }
  expect(pool().leased.length).toBe(0);
}, 120_000);

test.skipIf(why !== null)("Redis restarted: the pool refills and leases work again within 10 s", async () => {
  await stopRedis();
  await startRedis();
  const t0 = performance.now();
  let ok = false;
  while (!ok && performance.now() - t0 < 10_000) {
    const p = spawn(job("PING", "+PONG*"), { stdout: "ignore", stderr: "ignore" });
    ok = (await p.exited) === 0;
  }
  expect(ok).toBe(true);
  expect(performance.now() - t0).toBeLessThan(10_000);
}, 60_000);
