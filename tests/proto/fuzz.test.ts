// Random streams through the reader: whatever arrives, every fd fed in comes out exactly once (in a frame, in
// `discard`, or from drainReader), and nothing throws.
import { expect, test } from "bun:test";
import { createReader, drainReader, encodeFrame, feed, OP } from "../../src/proto/index.ts";
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
});
