// One client process for bench/broker.ts: a persistent connection through the client library (src/client), one
// `get` in flight at a time, every received fd closed at once. Clients run as separate processes so the broker,
// not one driving process, is what saturates.
//
//   bun bench/broker-client.ts SOCKET NAME loop SECONDS   gets for SECONDS after "go", prints {"gets": N}
//   bun bench/broker-client.ts SOCKET NAME watch          gets until "stop", prints {"gets", "failed", "maxMs"}
//   bun bench/broker-client.ts SOCKET POOL lease SECONDS  leases and releases a member of POOL for SECONDS,
//                                                         prints {"gets": N} (N leases)
//
// Both print "ready" once connected and warmed up, then wait for a line on stdin: the parent starts every client
// at once, after all of them exist.
import { readSync } from "node:fs";
import { get, lease, openSession } from "../src/client/index.ts";
import { C, closeAll, waitFd } from "../src/sys/index.ts";

const [sock, name, mode, seconds] = process.argv.slice(2);
if (!sock || !name || (mode !== "loop" && mode !== "watch" && mode !== "lease")) throw new Error("usage: broker-client.ts SOCKET NAME loop SECONDS | watch | lease SECONDS");

const session = openSession({ socket: sock, timeoutMs: 30_000 });
const getOnce = mode === "lease"
  ? () => {
    const l = lease(session, name, { waitMs: 30_000 });
    closeAll([l.fd]);
    l.release();
  }
  : () => closeAll(get(session, [name]).map((g) => g.fd));
// The JIT warms up before the measured window does.
for (let i = 0; i < 500; i++) getOnce();
process.stdout.write("ready\n");
readSync(0, Buffer.alloc(16));

if (mode === "loop" || mode === "lease") {
  let gets = 0;
  const end = performance.now() + Number(seconds) * 1000;
  while (performance.now() < end) {
    getOnce();
    gets++;
  }
  process.stdout.write(`${JSON.stringify({ gets })}\n`);
} else {
  // Through a takeover: every get must succeed; the slowest one is how long the address stopped serving.
  let gets = 0;
  let failed = 0;
  let maxMs = 0;
  const errors: string[] = [];
  while (waitFd(0, C.POLLIN, 0) === 0) {
    const t0 = performance.now();
    try {
      getOnce();
      gets++;
    } catch (e) {
      failed++;
      if (errors.length < 5) errors.push(String(e));
    }
    maxMs = Math.max(maxMs, performance.now() - t0);
  }
  process.stdout.write(`${JSON.stringify({ gets, failed, maxMs, errors })}\n`);
}
session.close();
