// HAProxy's _getsocks answer as bytes (src/proto/getsocks.ts): the count, the records, and every malformed answer
// refused or reported incomplete, never misread. The fds are the client's business (tests/interop/haproxy.test.ts).
import { expect, test } from "bun:test";
import { ProtocolError } from "../../src/proto/frame.ts";
import { getsocksCount, parseGetsocksRecords, readGetsocksRecords } from "../../src/proto/getsocks.ts";
import { rng } from "../rng.ts";

const enc = new TextEncoder();
/** One record as HAProxy writes it (src/cli.c, _getsocks_send_one), options in native byte order. */
function record(ns: string, iface: string, options = 0): Uint8Array {
  const n = enc.encode(ns);
  const i = enc.encode(iface);
  const out = new Uint8Array(2 + n.length + i.length + 4);
  out[0] = n.length;
  out.set(n, 1);
  out[1 + n.length] = i.length;
  out.set(i, 2 + n.length);
  new DataView(out.buffer).setInt32(2 + n.length + i.length, options, true);
  return out;
}
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

test("the count is a native int32 (x86-64 and arm64: little-endian), null until 4 bytes are in", () => {
  expect(getsocksCount(new Uint8Array([3, 0, 0]))).toBeNull();
  expect(getsocksCount(new Uint8Array([3, 0, 0, 0, 9]))).toBe(3);
  expect(getsocksCount(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toBe(-1);
});

test("records: empty names, a namespace and an interface, in order", () => {
  const bytes = cat(record("", ""), record("blue", "eth0", 0), record("", "lo"));
  expect(parseGetsocksRecords(bytes, 3)).toEqual([
    { namespace: "", iface: "", options: 0 },
    { namespace: "blue", iface: "eth0", options: 0 },
    { namespace: "", iface: "lo", options: 0 },
  ]);
});

test("an answer cut anywhere is incomplete (more may come), and parsing it is a ProtocolError; extra bytes too", () => {
  const bytes = cat(record("ns", "eth0"), record("", ""));
  for (let cut = 0; cut < bytes.length; cut++) {
    expect(readGetsocksRecords(bytes.subarray(0, cut), 2)).toBeNull();
    expect(() => parseGetsocksRecords(bytes.subarray(0, cut), 2)).toThrow(ProtocolError);
  }
  expect(readGetsocksRecords(bytes, 2)!.end).toBe(bytes.length);
  expect(() => parseGetsocksRecords(cat(bytes, new Uint8Array(1)), 2)).toThrow("1 bytes after the 2 records");
});

test("fuzz: random bytes are read as records or as incomplete, never past their end, never a crash", () => {
  const next = rng(11);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  for (let i = 0; i < 20000; i++) {
    // Small bytes often, so lengths that fit (and records that parse) come up as well as overruns.
    const bytes = Uint8Array.from({ length: int(0, 64) }, () => (int(0, 3) === 0 ? int(0, 8) : int(0, 255)));
    const count = int(0, 6);
    const got = readGetsocksRecords(bytes, count);
    if (got === null) continue;
    expect(got.records).toHaveLength(count);
    expect(got.end).toBeLessThanOrEqual(bytes.length);
  }
});
