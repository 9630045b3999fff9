// Pools through `serve --takeover` (issue 10): the new broker gets every member (leased ones too), every lease in
// progress (bound to its process or to its connection), every waiter in its place, and the counters; a server
// counting its accepts proves no member is opened twice.
import { expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { lease, openSession, pools, status, type PoolInfo } from "../../src/client/index.ts";
import { receiveTakeover } from "../../src/broker/receive-takeover.ts";
import { close, closeAll } from "../../src/sys/index.ts";
import { asNobody, canSwitchUid } from "../hostile.ts";
import { CLI, lineReader, spawn, spawnReady, tempDir, waitFor } from "../helpers.ts";
import { brokerPerTest, PY } from "./harness.ts";

const start = brokerPerTest();

// A server on a UNIX socket that keeps every connection and writes the number accepted so far to a file.
const SERVER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(64)
print("ready", flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
    with open(sys.argv[2] + ".new", "w") as f: f.write(str(len(held)))
    os.rename(sys.argv[2] + ".new", sys.argv[2])
`;

async function countingServer(path: string) {
  const counter = `${path}.count`;
  const proc = spawn([PY, "-c", SERVER, path, counter], { stdout: "pipe" });
  await lineReader(proc.stdout as ReadableStream<Uint8Array>).next(/^ready$/);
  return { proc, accepted: () => (existsSync(counter) ? Number(readFileSync(counter, "utf8")) : 0) };
}

const poolOf = (sock: string, name: string): PoolInfo => {
  using s = openSession({ socket: sock });
  return pools(s).find((p) => p.name === name)!;
};
/** What ls --pools says, less the ages (which grow). */
const shape = (p: PoolInfo) => ({ ...p, leased: p.leased.map(({ ageMs: _, ...l }) => l) });
const poolStats = (sock: string) => {
  using s = openSession({ socket: sock });
  return (status(s) as unknown as { pools: Record<string, number> }).pools;
};

/** `serve --takeover` with `args`; returns once the new broker is ready (the old one then exits by itself). */
function takeOver(sock: string, args: string[] = []) {
  return spawnReady([...CLI, "serve", "-s", sock, "--takeover", "--ready-fd", "3", ...args], { stdio: ["ignore", "ignore", "pipe"] }, 60_000).proc;
}

test("a takeover while 2 of 4 members are leased: the same pool after it, the lessees' exits return their members to the new broker, no member opened twice", async () => {
  const dir = tempDir();
  const path = join(dir.path, "db.sock");
  const server = await countingServer(path);
  const spec = `db=4:unix-connect:${path}`;
  const old = await start(["--pool", spec]);
  try {
    await waitFor("4 members connected", () => poolOf(old.sock, "db").idle === 4 && server.accepted() === 4);
    // Lessees bound to their process: each holds its member until its stdin closes.
    const lessees = [0, 1].map(() =>
      spawn([...CLI, "lease", "db", "-s", old.sock, "--", "sh", "-c", "echo leased; read x || true"], { stdin: "pipe", stdout: "pipe" }));
    for (const l of lessees) await lineReader(l.stdout as ReadableStream<Uint8Array>).next(/^leased$/);
    const before = poolOf(old.sock, "db");
    expect(before).toMatchObject({ size: 4, idle: 2, waiters: 0 });
    expect(before.leased.map((l) => l.pid).sort()).toEqual(lessees.map((l) => l.pid).sort());
    const statsBefore = poolStats(old.sock);

    // The new broker is given the same --pool: the pool it took over stands, nothing is opened.
    const next = takeOver(old.sock, ["--pool", spec]);
    expect(await old.proc.exited).toBe(0);
    expect(old.log()).toMatch(/stop ok \(handed 0 entries and \d+ connections? to pid \d+\)/);
    expect(shape(poolOf(old.sock, "db"))).toEqual(shape(before));
    expect(poolStats(old.sock)).toEqual(statsBefore);

    // Each lessee's exit returns its member to the new broker, which watches the pidfd it was handed.
    (lessees[0]!.stdin as { end(): void }).end();
    expect(await lessees[0]!.exited).toBe(0);
    await waitFor("one member back", () => poolOf(old.sock, "db").idle === 3, 5000);
    lessees[1]!.kill("SIGKILL");
    await lessees[1]!.exited;
    await waitFor("both members back", () => poolOf(old.sock, "db").idle === 4, 5000);
    // The members still work: a lease through the new broker gets one of the four connections.
    using s = openSession({ socket: old.sock });
    const l = lease(s, "db", { waitMs: 0 });
    close(l.fd);
    l.release();
    expect(server.accepted()).toBe(4);
    next.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  } finally {
    server.proc.kill();
    await server.proc.exited;
    dir.cleanup();
  }
}, 120_000);

test("waiters and a lease bound to its connection go over too: the waiters keep their order and deadlines, the lease is released through the new broker", async () => {
  const dir = tempDir();
  const order = join(dir.path, "order");
  const old = await start(["--pool", "q=1:file:/dev/null"]);
  try {
    const s = openSession({ socket: old.sock, timeoutMs: 60_000 });
    const held = lease(s, "q");
    const waiters = [];
    for (let i = 0; i < 3; i++) {
      waiters.push(spawn([...CLI, "lease", "q", "-s", old.sock, "--wait", "60s", "--", "sh", "-c", `echo ${i} >> ${order}`]));
      await waitFor(`waiter ${i} queued`, () => poolOf(old.sock, "q").waiters === i + 1);
    }
    const before = poolOf(old.sock, "q");
    const next = takeOver(old.sock);
    expect(await old.proc.exited).toBe(0);
    expect(shape(poolOf(old.sock, "q"))).toEqual(shape(before));
    // Released over the connection the old broker handed on: the new broker knows the lease and its holder.
    held.release();
    close(held.fd);
    for (const w of waiters) expect(await w.exited).toBe(0);
    expect(await Bun.file(order).text()).toBe("0\n1\n2\n");
    await waitFor("the member idle", () => poolOf(old.sock, "q").idle === 1, 5000);
    expect(poolStats(old.sock)).toMatchObject({ granted: 4, waited: 3, timeouts: 0, released: 4 });
    s.close();
    next.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
}, 120_000);

test("a takeover abandoned after the snapshot went out: the old broker's pool lives on, and a lessee's exit (while frozen) still returns its member", async () => {
  const old = await start(["--pool", "f=2:file:/dev/null"]);
  const lessee = spawn([...CLI, "lease", "f", "-s", old.sock, "--", "sh", "-c", "echo leased; read x || true"], { stdin: "pipe", stdout: "pipe" });
  await lineReader(lessee.stdout as ReadableStream<Uint8Array>).next(/^leased$/);
  const before = poolOf(old.sock, "f");
  const base = old.fds();
  const snap = receiveTakeover(old.sock, 30_000);
  expect(snap.pools?.members.map((m) => [m.fd !== null, m.pidfd !== null]).sort()).toEqual([[true, false], [true, true]]);
  // The lessee leaves while the old broker's pools are frozen: its exit is acted on once the takeover is abandoned.
  (lessee.stdin as { end(): void }).end();
  expect(await lessee.exited).toBe(0);
  closeAll([snap.listenFd, ...snap.conns.map((c) => c.fd), ...snap.pools!.members.flatMap((m) => [m.fd, m.pidfd].filter((f) => f !== null))]);
  snap.session.close();
  await waitFor("the takeover abandoned", () => old.log().includes("takeover aborted"));
  await waitFor("the member back", () => poolOf(old.sock, "f").idle === 2, 5000);
  expect(shape(poolOf(old.sock, "f"))).toEqual({ ...shape(before), idle: 2, leased: [] });
  // Its pidfd closed with the lease: the broker holds what it held less that.
  await waitFor("the broker's fds back, less the lease's pidfd", () => old.fds() <= base - 1, 5000);
});

test.skipIf(!canSwitchUid)("a waiter the new broker's rules do not let lease is refused (exit 1) and does not hold up the line behind it", async () => {
  const old = await start(["--pool", "q=1:file:/dev/null", "--mode", "0666", "--allow", "uid:65534:lease:q"]);
  chmodSync(old.dir, 0o755);
  const s = openSession({ socket: old.sock, timeoutMs: 60_000 });
  const held = lease(s, "q");
  const nobody = spawn(asNobody([...CLI, "lease", "q", "-s", old.sock, "--wait", "60s", "--", "true"]), { stderr: "pipe" });
  await waitFor("uid 65534 queued", () => poolOf(old.sock, "q").waiters === 1);
  const root = spawn([...CLI, "lease", "q", "-s", old.sock, "--wait", "60s", "--", "true"]);
  await waitFor("root queued behind it", () => poolOf(old.sock, "q").waiters === 2);
  const next = takeOver(old.sock, ["--mode", "0666", "--allow", "uid:65534:get"]);
  expect(await old.proc.exited).toBe(0);
  expect(await nobody.exited).toBe(1);
  expect(await new Response(nobody.stderr as ReadableStream).text()).toBe('fdbroker: uid 65534 may not lease "q" [EACCES]\n');
  held.release();
  close(held.fd);
  expect(await root.exited).toBe(0);
  s.close();
  next.kill("SIGTERM");
  expect(await next.exited).toBe(0);
}, 120_000);
