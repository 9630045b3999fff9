// Many clients, slow clients, hostile bytes: the broker keeps serving everyone and its fd count comes back.
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { get, ls, openSession, put, rm, status, type Session } from "../../src/client/index.ts";
import { connectTo } from "../../src/peer/endpoint.ts";
import { recvFds } from "../../src/peer/transfer.ts";
import { decodeHeader, encodeFrame, HEADER_SIZE, OP, REPLY } from "../../src/proto/index.ts";
import { C, close, closeAll, pipe, sendmsg } from "../../src/sys/index.ts";
import { tempDir } from "../helpers.ts";
import { type Broker, brokerPerTest, waitFor } from "./harness.ts";

const start = brokerPerTest();
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

function session(b: Broker): Session {
  const s = openSession({ socket: b.sock, timeoutMs: 30000 });
  cleanup.push(() => s.close());
  return s;
}

test("1000 concurrent connections, each with a request in flight, all answered", async () => {
  const broker = await start(["--max-conns", "1001", "--hold", "a=file:/etc/hosts"]);
  const socks: number[] = [];
  cleanup.push(() => closeAll(socks));
  for (let i = 0; i < 1000; i++) socks.push(connectTo(broker.sock, 30000));
  const req = encodeFrame({ kind: OP.get, id: 1, fds: 0, body: { names: ["a"] } });
  for (const fd of socks) expect(sendmsg(fd, req)).toBe(req.length);
  for (const fd of socks) {
    using msg = recvFds(fd, { timeoutMs: 30000 });
    expect(decodeHeader(msg.data).kind).toBe(REPLY.ok);
    expect(msg.fds.length).toBe(1);
  }
  expect(status(session(broker)).connections).toBe(1001);
});

test("a client over --max-conns gets a clear error; the others keep being served", async () => {
  const broker = await start(["--max-conns", "3", "--hold", "a=file:/etc/hosts"]);
  const held = [session(broker), session(broker), session(broker)];
  for (const s of held) expect(ls(s).length).toBe(1);
  const extra = session(broker);
  expect(() => ls(extra)).toThrow(/at most 3 connections.*EUSERS/);
  for (const s of held) expect(ls(s).length).toBe(1);
});

test("a stalled client (not reading, or half a frame) delays nobody and is cut off by --client-timeout", async () => {
  const broker = await start(["--client-timeout", "2s", "--hold", "a=file:/etc/hosts"]);
  const s = session(broker);
  const [r, w] = pipe();
  cleanup.push(() => closeAll([r, w]));
  const names = Array.from({ length: 20 }, (_, i) => `p${i}`);
  for (const n of names) put(s, n, r);
  await waitFor("entries stored", () => ls(s).length === 21);
  const base = broker.fds() - 1;
  const reader = connectTo(broker.sock);
  const half = connectTo(broker.sock);
  cleanup.push(() => closeAll([reader, half]));
  // Pipeline gets of 20 fds each without reading a single reply, until the kernel stops taking our requests:
  // the broker must stop handling them (its reply queue is bounded) rather than queue without limit.
  const req = encodeFrame({ kind: OP.get, id: 1, fds: 0, body: { names } });
  let sent = 0;
  for (let idle = 0; sent < 100000 && idle < 50; ) {
    if (sendmsg(reader, req, [], C.MSG_DONTWAIT) === req.length) {
      sent++;
      idle = 0;
    } else {
      idle++;
      await Bun.sleep(10);
    }
  }
  expect(sent).toBeLessThan(100000);
  expect(sendmsg(half, req.subarray(0, 7))).toBe(7);
  for (let i = 0; i < 200; i++) expect(get(s, ["a"]).map((g) => (close(g.fd), g.entry.name))).toEqual(["a"]);
  // Both stalled clients go once the timeout passes; every duplicate queued for them is closed.
  await waitFor("the stalled clients to be cut off", () => /ETIMEDOUT \(not reading/.test(broker.log()) && /ETIMEDOUT \(idle/.test(broker.log()));
  await waitFor("fd count back to base", () => broker.fds() === base + 1);
}, 60000);

test("unannounced fds, fds on the wrong frames and garbage frames leave the broker's fd count where it was", async () => {
  const broker = await start(["--hold", "a=file:/etc/hosts"]);
  const base = broker.fds();
  const [r, w] = pipe();
  cleanup.push(() => closeAll([r, w]));
  const many = Array.from({ length: 253 }, () => r);
  const frames: [Uint8Array, number[]][] = [
    [encodeFrame({ kind: OP.ls, id: 1, fds: 0, body: {} }), many],
    [encodeFrame({ kind: 99, id: 2, fds: 3, body: {} }), [r, r, r]],
    [encodeFrame({ kind: OP.put, id: 3, fds: 2, body: { name: "two" } }), [r, w]],
    [encodeFrame({ kind: OP.put, id: 4, fds: 1, body: { name: 5 } }), [r]],
    [encodeFrame({ kind: OP.rm, id: 5, fds: 1, body: { names: ["a"] } }), [r]],
    [Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 255), many],
    [Uint8Array.of(1, OP.get, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1), [r]],
    [Uint8Array.of(9, OP.get, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 123, 125), [r]],
  ];
  const codes: string[] = [];
  for (const [bytes, fds] of frames) {
    const fd = connectTo(broker.sock);
    try {
      sendmsg(fd, bytes, fds);
      using msg = recvFds(fd, { timeoutMs: 30000 });
      const h = decodeHeader(msg.data);
      const body = JSON.parse(new TextDecoder().decode(msg.data.subarray(HEADER_SIZE, HEADER_SIZE + h.length)));
      codes.push(h.kind === REPLY.ok ? "ok" : body.code);
    } finally {
      close(fd);
    }
  }
  expect(codes).toEqual(["ok", "EPROTO", "EPROTO", "EPROTO", "EPROTO", "EPROTO", "EPROTO", "EPROTO"]);
  expect(ls(session(broker)).map((e) => e.name)).toEqual(["a"]);
  cleanup.splice(0).forEach((c) => c());
  await waitFor("fd count back to base", () => broker.fds() === base);
});

test("get of 600 names in one round trip arrives in announced parts of at most 253 fds", async () => {
  const broker = await start();
  const s = session(broker);
  const [r, w] = pipe();
  cleanup.push(() => closeAll([r, w]));
  const names = Array.from({ length: 600 }, (_, i) => `e${i}`);
  for (const n of names) put(s, n, r);
  const got = get(s, names);
  expect(got.map((g) => g.entry.name)).toEqual(names);
  closeAll(got.map((g) => g.fd));
  const all = get(s, [], { all: true, remove: true });
  expect(all.length).toBe(600);
  closeAll(all.map((g) => g.fd));
  expect(ls(s)).toEqual([]);
});

test("ls and get of entries with non-ASCII names and paths are split by UTF-8 bytes, not by string length", async () => {
  const broker = await start();
  // 80 three-byte characters a directory, 12 deep: each entry's path is about 1000 characters but 3 KB of UTF-8,
  // and its name 240 bytes. 500 of them make 1.5 MB of ls reply where the string lengths add up to 600 K.
  let dir = broker.dir;
  for (let i = 0; i < 12; i++) dir = join(dir, "\u6f22".repeat(80));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "f"), "x");
  const fd = openSync(join(dir, "f"), "r");
  cleanup.push(() => close(fd));
  const s = session(broker);
  const names = Array.from({ length: 500 }, (_, i) => `${"\u540d".repeat(80)}${i}`).sort();
  for (const n of names) put(s, n, fd);
  expect(ls(s).map((e) => e.name)).toEqual(names);
  const got = get(s, names);
  closeAll(got.map((g) => g.fd));
  expect(got.map((g) => g.entry.name)).toEqual(names);
});

test("after 10,000 mixed operations the broker's fd count equals its count before", async () => {
  const broker = await start(["--hold", "keep=file:/etc/hosts"]);
  const [r, w] = pipe();
  cleanup.push(() => closeAll([r, w]));
  let s = session(broker);
  // Warm up every code path once so lazily opened runtime fds are in the baseline.
  put(s, "warm", r);
  closeAll(get(s, ["warm", "keep"]).map((g) => g.fd));
  rm(s, ["warm"]);
  s.close();
  s = session(broker);
  // Once the broker counts one connection it has closed the earlier one: the count minus ours is the baseline.
  await waitFor("the warm-up connection to close", () => status(s).connections === 1);
  const base = broker.fds() - 1;
  let failures = 0;
  for (let i = 0; i < 10000; i++) {
    const name = `n${i % 50}`;
    try {
      switch (i % 7) {
        case 0: put(s, name, i % 2 ? r : w, { replace: true, ttlMs: i % 3 ? undefined : 50 }); break;
        case 1: closeAll(get(s, ["keep"]).map((g) => g.fd)); break;
        case 2: ls(s); break;
        case 3: rm(s, [name]); break;
        case 4: closeAll(get(s, [name, "keep"], { remove: i % 2 === 0 }).map((g) => g.fd)); break;
        case 5: status(s); break;
        case 6: s.close(); s = session(broker); break;
      }
    } catch (e) {
      if (!/ENOENT/.test(String(e))) throw e;
      failures++;
    }
  }
  expect(failures).toBeGreaterThan(0);
  for (const e of ls(s)) if (e.name !== "keep") rm(s, [e.name]);
  s.close();
  await waitFor("fd count back to base", () => broker.fds() === base);
}, 120000);

/** Every reply frame on `fd` until `frames` have come: each body's text, the fds closed. */
function rawReplies(fd: number, frames: number): string[] {
  let buf = new Uint8Array(0);
  const bodies: string[] = [];
  while (bodies.length < frames) {
    using msg = recvFds(fd, { timeoutMs: 30000 });
    const next = new Uint8Array(buf.length + msg.data.length);
    next.set(buf);
    next.set(msg.data, buf.length);
    buf = next;
    while (buf.length >= HEADER_SIZE && buf.length >= HEADER_SIZE + decodeHeader(buf).length) {
      const end = HEADER_SIZE + decodeHeader(buf).length;
      bodies.push(new TextDecoder().decode(buf.subarray(HEADER_SIZE, end)));
      buf = buf.slice(end);
    }
  }
  return bodies;
}

test("reply bodies are exactly what JSON.stringify makes of them (replies are written from each entry's kept JSON)", async () => {
  const dir = tempDir();
  cleanup.push(dir.cleanup);
  const odd = join(dir.path, 'q"uo\\te é ☕.txt');
  writeFileSync(odd, "x");
  // A path long enough that its entry's JSON is made for each reply instead of kept.
  const deep = join(dir.path, "d".repeat(200), "e".repeat(200));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "f.txt"), "x");
  const broker = await start(["--hold", `odd=file:${odd}`, "--hold", `long=file:${join(deep, "f.txt")}`, "--pool", "p=1:file:/dev/null"]);
  const s = session(broker);
  const [r, w] = pipe();
  cleanup.push(() => closeAll([r, w]));
  const names = ["café ☕", ...Array.from({ length: 299 }, (_, i) => `e${i}`)];
  for (const n of names) put(s, n, r);
  const fd = connectTo(broker.sock);
  cleanup.push(() => close(fd));
  // A get of 302 names comes in two parts; twice, so the second is written from the kept JSON.
  for (const id of [1, 2]) {
    sendmsg(fd, encodeFrame({ kind: OP.get, id, fds: 0, body: { names: ["odd", "long", ...names] } }));
    const bodies = rawReplies(fd, 2);
    for (const b of bodies) expect(b).toBe(JSON.stringify(JSON.parse(b)));
    expect(Object.keys(JSON.parse(bodies[0]!))).toEqual(["entries", "total", "parts"]);
    expect(Object.keys(JSON.parse(bodies[1]!))).toEqual(["part", "entries"]);
    expect(JSON.parse(bodies[0]!)).toMatchObject({ total: 302, parts: 2 });
    expect(JSON.parse(bodies[0]!).entries[1].what).toContain("e".repeat(200));
    expect(JSON.parse(bodies[0]!).entries[0].what).toContain('q"uo\\te é ☕.txt');
    expect(JSON.parse(bodies[1]!).part).toBe(1);
  }
  sendmsg(fd, encodeFrame({ kind: OP.ls, id: 3, fds: 0, body: {} }));
  const [listing] = rawReplies(fd, 1);
  expect(listing).toBe(JSON.stringify(JSON.parse(listing!)));
  expect(Object.keys(JSON.parse(listing!))).toEqual(["entries", "total", "parts", "pools"]);
});
