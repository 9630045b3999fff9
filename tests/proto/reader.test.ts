// The reader against hostile shapes (issue 8, findings 3 and 6): a one-byte drip into a large frame, fds on frames
// that may not carry them, a half-sent put announcing 253 fds, and the memory an idle reader keeps.
import { expect, test } from "bun:test";
import { bufferedBytes, createReader, drainReader, encodeFrame, feed, HEADER_SIZE, OP, REQUEST_FDS } from "../../src/proto/index.ts";

const fds = (n: number, from = 100) => Array.from({ length: n }, (_, i) => from + i);

test("a one-byte drip into a 1 MiB frame costs O(1) per byte, not a copy of everything pending", () => {
  const r = createReader(2 << 20);
  const frame = encodeFrame({ kind: OP.get, id: 7, fds: 0, body: { names: ["a"], pad: "x".repeat((1 << 20) - 40) } }, 2 << 20);
  const drip = 20000;
  expect(feed(r, frame.subarray(0, frame.length - drip), []).frames).toEqual([]);
  const t0 = performance.now();
  for (let i = frame.length - drip; i < frame.length - 1; i++) expect(feed(r, frame.subarray(i, i + 1), []).frames.length).toBe(0);
  const last = feed(r, frame.subarray(frame.length - 1), []);
  const ms = performance.now() - t0;
  expect(last.frames.map((f) => [f.kind, f.id, f.size, f.problem])).toEqual([[OP.get, 7, frame.length, undefined]]);
  // Copying 1 MiB per byte, as the reader once did, takes seconds here; appending takes milliseconds.
  expect(ms).toBeLessThan(1000);
  // Nothing pending: the megabyte is given back, not kept for a connection that may stay idle.
  expect(bufferedBytes(r)).toBe(0);
});

test("with the broker's limits, fds of a frame that may not carry them are handed back as soon as its header says so", () => {
  const r = createReader(1 << 20, REQUEST_FDS);
  const get = encodeFrame({ kind: OP.get, id: 1, fds: 3, body: { names: ["a"] } });
  // Two bytes (version and kind) are enough to know a get may carry none.
  const first = feed(r, get.subarray(0, 2), fds(3));
  expect(first.discard).toEqual(fds(3));
  expect(r.fds).toEqual([]);
  const rest = feed(r, get.subarray(2), []);
  expect(rest.frames.length).toBe(1);
  expect(rest.frames[0]!.fds).toEqual([]);
  expect(rest.frames[0]!.problem).toBe("get carries at most 0 fds, but the frame announces 3");
});

test("a half-sent put announcing 253 fds parks none of them; one announcing 1 parks exactly its one", () => {
  const r = createReader(1 << 20, REQUEST_FDS);
  const greedy = encodeFrame({ kind: OP.put, id: 1, fds: 253, body: { name: "x" } });
  expect(feed(r, greedy.subarray(0, HEADER_SIZE + 1), fds(253)).discard).toEqual(fds(253));
  expect(r.fds).toEqual([]);
  const done = feed(r, greedy.subarray(HEADER_SIZE + 1), []);
  expect(done.frames[0]!.problem).toBe("put carries at most 1 fds, but the frame announces 253");
  // Before the kind is known (one byte in), at most the most any kind may carry: one.
  const put = encodeFrame({ kind: OP.put, id: 2, fds: 1, body: { name: "y" } });
  expect(feed(r, put.subarray(0, 1), fds(253, 500)).discard).toEqual(fds(252, 501));
  expect(r.fds).toEqual([500]);
  const got = feed(r, put.subarray(1), []);
  // Hostile: the frame lost fds it was sent with, so it is refused rather than half-honoured.
  expect(got.frames[0]!.fds).toEqual([]);
  expect(got.frames[0]!.problem).toMatch(/announces 1 fds/);
  expect(got.discard).toEqual([500]);
  // A well-behaved put, split anywhere, keeps its fd.
  for (let cut = 1; cut < put.length; cut++) {
    const a = feed(r, put.subarray(0, cut), [900]);
    const b = feed(r, put.subarray(cut), []);
    expect([...a.discard, ...b.discard]).toEqual([]);
    expect(b.frames.map((f) => [f.fds, f.problem])).toEqual([[[900], undefined]]);
  }
  expect(drainReader(r)).toEqual([]);
});

test("a client reader (no limits) still takes up to 253 fds per frame", () => {
  const r = createReader();
  const reply = encodeFrame({ kind: 0x80, id: 1, fds: 253, body: {} });
  const a = feed(r, reply.subarray(0, 1), fds(253));
  expect(a.discard).toEqual([]);
  const b = feed(r, reply.subarray(1), []);
  expect(b.frames[0]!.fds).toEqual(fds(253));
});
