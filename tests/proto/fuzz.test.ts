// Random streams through the reader: whatever arrives, every fd fed in comes out exactly once (in a frame, in
// `discard`, or from drainReader), and nothing throws.
import { expect, test } from "bun:test";
import { createReader, drainReader, encodeFrame, feed, OP, REQUEST_FDS } from "../../src/proto/index.ts";
import { rng } from "../rng.ts";

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 3000);

test(`reader accounts for every fd over ${ITERATIONS} random streams`, () => {
  const rand = rng(12345);
  const int = (n: number) => Math.floor(rand() * n);
  let nextFd = 1000;
  for (let it = 0; it < ITERATIONS; it++) {
    const reader = createReader(4096);
    const fed: number[] = [];
    const out: number[] = [];
    for (let step = 0; step < 8; step++) {
      let bytes: Uint8Array;
      const choice = int(4);
      if (choice === 0) bytes = Uint8Array.from({ length: int(64) }, () => int(256));
      else {
        bytes = encodeFrame({ kind: [OP.put, OP.get, OP.ls, int(256)][int(4)]!, id: int(1000), fds: int(5), body: { name: "n", names: ["a"] } });
        if (choice === 2) bytes = bytes.subarray(0, int(bytes.length));
        if (choice === 3 && bytes.length > 0) bytes[int(bytes.length)] = int(256);
      }
      const fds = Array.from({ length: int(4) }, () => nextFd++);
      fed.push(...fds);
      const r = feed(reader, bytes, fds);
      out.push(...r.discard);
      for (const f of r.frames) out.push(...f.fds);
    }
    out.push(...drainReader(reader));
    expect(out.sort((a, b) => a - b)).toEqual(fed);
  }
  // Under qemu (tests/platform/arm64.test.ts) on a loaded machine this takes several seconds.
}, 60_000);

// The broker's reader (REQUEST_FDS: only a put, and only its one) over random streams cut into random pieces, one
// byte at a time included: every fd still comes out exactly once, no frame but a put carries any, and the reader
// never parks more than one between feeds (issue 8, finding 3: a half-sent put parked 253).
test(`broker reader: only a put keeps an fd, at most one is ever parked, over ${ITERATIONS} random streams`, () => {
  const rand = rng(67890);
  const int = (n: number) => Math.floor(rand() * n);
  let nextFd = 1000;
  for (let it = 0; it < ITERATIONS; it++) {
    const reader = createReader(4096, REQUEST_FDS);
    const fed: number[] = [];
    const out: number[] = [];
    const stream: [Uint8Array, number[]][] = [];
    for (let step = 0; step < 6; step++) {
      const kind = [OP.put, OP.put, OP.get, OP.ls, OP.status, int(256)][int(6)]!;
      const announced = [0, 1, 1, 2, 253][int(5)]!;
      let bytes = encodeFrame({ kind, id: int(1000), fds: announced, body: { name: "n", names: ["a"] } });
      if (int(6) === 0) bytes = bytes.subarray(0, int(bytes.length));
      if (int(10) === 0) bytes = Uint8Array.from({ length: int(16) }, () => int(256));
      const fds = Array.from({ length: int(3) === 0 ? int(254) : announced }, () => nextFd++);
      fed.push(...fds);
      // Cut the frame into pieces; its fds go with the first, as a sender's sendmsg sends them.
      for (let at = 0; at < bytes.length || at === 0; ) {
        const n = Math.max(1, int(2) === 0 ? 1 : int(bytes.length + 1));
        stream.push([bytes.subarray(at, at + n), at === 0 ? fds : []]);
        at += n;
      }
    }
    for (const [bytes, fds] of stream) {
      const r = feed(reader, bytes, fds);
      out.push(...r.discard);
      for (const f of r.frames) {
        if (f.kind !== OP.put) expect(f.fds).toEqual([]);
        expect(f.fds.length).toBeLessThanOrEqual(1);
        out.push(...f.fds);
      }
      expect(reader.fds.length).toBeLessThanOrEqual(1);
    }
    out.push(...drainReader(reader));
    expect(out.sort((a, b) => a - b)).toEqual(fed);
  }
  // Under qemu (tests/platform/arm64.test.ts) on a loaded machine this takes several seconds.
}, 60_000);
