// The control-message codec as pure functions: round trips over a table of fd lists, and a fuzz test of the
// parser on bytes no kernel would write.
import { expect, test } from "bun:test";
import { abi, C, cmsgSpace } from "../../src/sys/abi.ts";
import { encodeRights, parseControl, rightsOf, rightsSpace } from "../../src/sys/cmsg.ts";
import { rng } from "../rng.ts";

const cases: number[][] = [
  [], [0], [3], [3, 4], [7, 7, 7], [2147483647], [-1],
  Array.from({ length: 64 }, (_, i) => i + 3),
  Array.from({ length: C.SCM_MAX_FD }, (_, i) => 1000 + i),
];

test.each(cases.map((fds) => [fds.length, fds] as const))("SCM_RIGHTS with %i fds round-trips", (_n, fds) => {
  const buf = new Uint8Array(rightsSpace(fds.length) + 8);
  const used = encodeRights(fds, buf);
  expect(used).toBe(cmsgSpace(fds.length * 4));
  const msgs = parseControl(buf, used);
  expect(msgs).toHaveLength(1);
  expect(msgs[0]!.level).toBe(C.SOL_SOCKET);
  expect(msgs[0]!.type).toBe(C.SCM_RIGHTS);
  expect(msgs[0]!.data.length).toBe(fds.length * 4);
  expect(rightsOf(msgs)).toEqual(fds);
});

test("several control messages in one buffer are walked in order; non-rights ones are skipped", () => {
  const a = new Uint8Array(rightsSpace(3));
  encodeRights([5, 6, 7], a);
  const b = new Uint8Array(rightsSpace(1));
  encodeRights([9], b);
  // A credentials message (SCM_CREDENTIALS) between them, as a peer with SO_PASSCRED would produce.
  const cred = new Uint8Array(cmsgSpace(abi.ucred.size));
  const v = new DataView(cred.buffer);
  v.setUint32(abi.cmsghdr.len, abi.cmsghdr.size + abi.ucred.size, true);
  v.setInt32(abi.cmsghdr.level, C.SOL_SOCKET, true);
  v.setInt32(abi.cmsghdr.type, C.SCM_CREDENTIALS, true);
  const all = new Uint8Array([...a, ...cred, ...b]);
  const msgs = parseControl(all, all.length);
  expect(msgs.map((m) => m.type)).toEqual([C.SCM_RIGHTS, C.SCM_CREDENTIALS, C.SCM_RIGHTS]);
  expect(rightsOf(msgs)).toEqual([5, 6, 7, 9]);
});

test("encoding refuses a buffer too small for the fds", () => {
  expect(() => encodeRights([1, 2, 3], new Uint8Array(rightsSpace(2)))).toThrow(RangeError);
});

test("a truncated buffer yields only whole messages", () => {
  const buf = new Uint8Array(rightsSpace(4));
  const used = encodeRights([3, 4, 5, 6], buf);
  expect(used).toBe(abi.cmsghdr.size + 16); // four fds fill the data exactly: no padding
  for (let len = 0; len < used; len++) expect(parseControl(buf, len)).toEqual([]);
  expect(rightsOf(parseControl(buf, used))).toEqual([3, 4, 5, 6]);
});

test("fuzz: the parser never throws, never reads past `len`, and every message lies inside the buffer", () => {
  const seed = Date.now() % 100000;
  const rand = rng(seed);
  for (let i = 0; i < 20000; i++) {
    const size = Math.floor(rand() * 200);
    const buf = new Uint8Array(size);
    for (let j = 0; j < size; j++) buf[j] = Math.floor(rand() * 256);
    // Half the time, plant a plausible header so the walk goes deeper than the first check.
    if (size >= 16 && rand() < 0.5) {
      const v = new DataView(buf.buffer);
      v.setUint32(0, 16 + Math.floor(rand() * (size - 8)), true);
      v.setUint32(4, rand() < 0.9 ? 0 : 1, true);
      v.setInt32(8, C.SOL_SOCKET, true);
      v.setInt32(12, C.SCM_RIGHTS, true);
    }
    const len = Math.floor(rand() * (size + 20));
    let msgs: ReturnType<typeof parseControl>;
    try {
      msgs = parseControl(buf, len);
    } catch (e) {
      throw new Error(`seed ${seed}, case ${i}: parseControl threw ${e}`);
    }
    const limit = Math.min(len, size);
    for (const m of msgs) {
      expect(m.data.byteOffset + m.data.byteLength).toBeLessThanOrEqual(limit);
      expect(m.data.byteOffset).toBeGreaterThanOrEqual(abi.cmsghdr.size);
    }
    const fds = rightsOf(msgs);
    expect(fds.every((fd) => Number.isInteger(fd))).toBe(true);
  }
});
