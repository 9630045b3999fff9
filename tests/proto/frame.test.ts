import { describe, expect, test } from "bun:test";
import {
  chunkFds, createReader, decodeHeader, encodeFrame, encodeFrameShared, feed, HEADER_SIZE, keptFrame, OP, ProtocolError, REPLY, PROTOCOL_VERSION,
  type Frame,
} from "../../src/proto/index.ts";

const frames: Frame[] = [
  { kind: OP.put, id: 1, fds: 1, body: { name: "web", ttlMs: 5000, replace: false } },
  { kind: OP.get, id: 0xffffffff, fds: 0, body: { names: ["a", "b", "ü"], remove: true } },
  { kind: OP.ls, id: 0, fds: 0, body: {} },
  { kind: REPLY.more, id: 7, fds: 253, body: { part: 3 } },
  { kind: REPLY.error, id: 9, fds: 0, body: { code: "EACCES", message: "x".repeat(10000) } },
];

describe("encodeFrame / feed round trip", () => {
  for (const f of frames)
    test(`kind ${f.kind} with ${f.fds} fds`, () => {
      const bytes = encodeFrame(f);
      expect(decodeHeader(bytes)).toEqual({ version: PROTOCOL_VERSION, kind: f.kind, fds: f.fds, length: bytes.length - HEADER_SIZE, id: f.id });
      const fds = Array.from({ length: f.fds }, (_, i) => 100 + i);
      const r = feed(createReader(), bytes, fds);
      expect(r.error).toBeNull();
      expect(r.discard).toEqual([]);
      expect(r.frames).toEqual([{ kind: f.kind, id: f.id, body: f.body, fds, size: bytes.length }]);
    });

  test("byte by byte, fds with the first byte, many frames back to back", () => {
    const all = frames.map((f) => encodeFrame(f));
    const reader = createReader();
    const got: unknown[] = [];
    let next = 100;
    for (const [i, bytes] of all.entries())
      for (let b = 0; b < bytes.length; b++) {
        const fds = b === 0 ? Array.from({ length: frames[i]!.fds }, () => next++) : [];
        const r = feed(reader, bytes.subarray(b, b + 1), fds);
        expect(r.discard).toEqual([]);
        got.push(...r.frames.map((f) => f.body));
      }
    expect(got).toEqual(frames.map((f) => f.body));
  });
});

describe("limits and malformed input", () => {
  test("encode refuses too many fds and oversize bodies", () => {
    expect(() => encodeFrame({ kind: 1, id: 1, fds: 254, body: {} })).toThrow(ProtocolError);
    expect(() => encodeFrame({ kind: 1, id: 1, fds: 0, body: { s: "x".repeat(100) } }, 50)).toThrow(ProtocolError);
  });

  test("wrong version, huge length and too many fds are fatal and discard every fd", () => {
    const good = encodeFrame({ kind: OP.ls, id: 1, fds: 0, body: {} });
    for (const patch of [(v: DataView) => v.setUint8(0, 9), (v: DataView) => v.setUint32(4, 0xffffffff), (v: DataView) => v.setUint16(2, 300)]) {
      const bad = good.slice();
      patch(new DataView(bad.buffer));
      const reader = createReader();
      const r = feed(reader, bad, [5, 6]);
      expect(r.error).not.toBeNull();
      expect(r.discard).toEqual([5, 6]);
      expect(feed(reader, good, [7]).discard).toEqual([7]);
    }
  });

  test("unannounced fds are discarded; a frame missing its fds gets none and a problem", () => {
    const ls = encodeFrame({ kind: OP.ls, id: 1, fds: 0, body: {} });
    let r = feed(createReader(), ls, [3, 4]);
    expect(r.frames.length).toBe(1);
    expect(r.frames[0]!.fds).toEqual([]);
    expect(r.discard).toEqual([3, 4]);
    const put = encodeFrame({ kind: OP.put, id: 2, fds: 2, body: { name: "x" } });
    r = feed(createReader(), put, [8]);
    expect(r.frames[0]!.problem).toContain("announces 2 fds but 1");
    expect(r.discard).toEqual([8]);
  });

  test("a bad body is a per-frame problem, the stream stays in sync", () => {
    const bad = encodeFrame({ kind: OP.put, id: 1, fds: 1, body: {} });
    bad.set(new TextEncoder().encode("[]"), HEADER_SIZE);
    const next = encodeFrame({ kind: OP.ls, id: 2, fds: 0, body: {} });
    const both = new Uint8Array(bad.length + next.length);
    both.set(bad);
    both.set(next, bad.length);
    const r = feed(createReader(), both, [9]);
    expect(r.frames.map((f) => [f.id, f.problem !== undefined, f.fds])).toEqual([[1, true, [9]], [2, false, []]]);
  });

  test("chunkFds splits at 253 and never returns zero parts", () => {
    expect(chunkFds([])).toEqual([[]]);
    const parts = chunkFds(Array.from({ length: 600 }, (_, i) => i));
    expect(parts.map((p) => p.length)).toEqual([253, 253, 94]);
  });
});

test("chunkBySize keeps parts under the count and byte bounds", async () => {
  const { chunkBySize } = await import("../../src/proto/index.ts");
  expect(chunkBySize([], 3, () => 1)).toEqual([[]]);
  expect(chunkBySize([1, 2, 3, 4, 5, 6, 7], 3, () => 1).map((p) => p.length)).toEqual([3, 3, 1]);
  expect(chunkBySize([5, 5, 5, 20, 1], 10, (n) => n, 10)).toEqual([[5, 5], [5], [20], [1]]);
});

// The broker encodes every reply into one reused buffer (conn.ts): what it queues must be a copy, or the next
// reply would overwrite a queued one.
test("encodeFrameShared: the bytes of encodeFrame, in a buffer the next call reuses; keptFrame copies only those", () => {
  for (const f of frames) expect(encodeFrameShared(f)).toEqual(encodeFrame(f));
  const a = encodeFrameShared(frames[0]!);
  const kept = keptFrame(a);
  const copy = a.slice();
  const b = encodeFrameShared(frames[2]!);
  expect(b.buffer).toBe(a.buffer);
  expect(a).not.toEqual(copy);
  expect(kept).toEqual(copy);
  // Non-ASCII that does not fit the shared buffer's bytes, and a body larger than it: their own buffers, kept as
  // they are.
  for (const body of [{ s: "ü".repeat(9000) }, { s: "x".repeat(20000) }]) {
    const big = encodeFrameShared({ kind: OP.ls, id: 1, fds: 0, body });
    expect(big.buffer).not.toBe(a.buffer);
    expect(keptFrame(big)).toBe(big);
    expect(feed(createReader(), big, []).frames[0]!.body).toEqual(body);
  }
  expect(() => decodeHeader(new Uint8Array(HEADER_SIZE - 1))).toThrow(RangeError);
});
