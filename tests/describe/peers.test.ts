// The library under inspect's peer and holder columns, in this process: sock_diag's request and reply codec (a
// table of real and broken replies, and a fuzz test), and that asking about peers and holders leaves no fd behind.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { openSync, closeSync } from "node:fs";
import { addSocketDetails, describeFd, holdersOfFd } from "../../src/describe/index.ts";
import { scanFds } from "../../src/describe/holders.ts";
import {
  abi, C, closeAll, encodeUnixDiagRequest, fstat, isSysError, kcmpFile, parseDiagReply, socketpair, unixDiag, write,
} from "../../src/sys/index.ts";
import { fdCount, fdSnapshot, newFdsSince } from "../helpers.ts";
import { rng } from "../rng.ts";

let before: string[];
beforeEach(() => {
  before = fdSnapshot();
});
afterEach(async () => {
  expect(await newFdsSince(before)).toEqual([]);
});

/** A reply message as the kernel lays it out: nlmsghdr, unix_diag_msg, then attributes. */
function diagMessage(seq: number, ino: number, attrs: [number, Uint8Array][]): Uint8Array {
  const h = abi.nlmsghdr;
  const m = abi.unixDiagMsg;
  const body = attrs.reduce((n, [, d]) => n + ((4 + d.length + 3) & ~3), m.size);
  const buf = new Uint8Array(h.size + body);
  const v = new DataView(buf.buffer);
  v.setUint32(h.len, buf.length, true);
  v.setUint16(h.type, C.SOCK_DIAG_BY_FAMILY, true);
  v.setUint32(h.seq, seq, true);
  v.setUint8(h.size + m.state, C.TCP_ESTABLISHED);
  v.setUint32(h.size + m.ino, ino, true);
  let at = h.size + m.size;
  for (const [type, data] of attrs) {
    v.setUint16(at, 4 + data.length, true);
    v.setUint16(at + 2, type, true);
    buf.set(data, at + 4);
    at += (4 + data.length + 3) & ~3;
  }
  return buf;
}
// qemu-user (tests/platform/arm64.test.ts sets FDBROKER_UNDER_QEMU) refuses netlink protocols other than route,
// audit and uevent with EPROTONOSUPPORT: there, inspect degrades to no peers (tests/cli/inspect-peers.test.ts).
const underQemu = process.env.FDBROKER_UNDER_QEMU === "1";

const u32s = (...ns: number[]) => new Uint8Array(new Uint32Array(ns).buffer);

test("sock_diag codec: the request names the inode and what to show; replies give peer and queues, errors their errno", () => {
  const req = encodeUnixDiagRequest(123456, 7);
  const v = new DataView(req.buffer);
  expect(req.length).toBe(abi.nlmsghdr.size + abi.unixDiagReq.size);
  expect([v.getUint32(0, true), v.getUint16(4, true), v.getUint32(8, true)]).toEqual([req.length, C.SOCK_DIAG_BY_FAMILY, 7]);
  expect(v.getUint32(abi.nlmsghdr.size + abi.unixDiagReq.ino, true)).toBe(123456);
  const reply = diagMessage(7, 123456, [[C.UNIX_DIAG_NAME, new TextEncoder().encode("/run/x")], [C.UNIX_DIAG_PEER, u32s(654321)], [C.UNIX_DIAG_RQLEN, u32s(5, 768)]]);
  expect(parseDiagReply(reply)).toEqual([{ seq: 7, diag: { ino: 123456, state: C.TCP_ESTABLISHED, peer: 654321, rqueue: 5, wqueue: 768 } }]);
  // Unconnected: no peer attribute, or a peer inode of 0 (a connection not yet accepted).
  expect(parseDiagReply(diagMessage(1, 9, [[C.UNIX_DIAG_PEER, u32s(0)]]))).toEqual([{ seq: 1, diag: { ino: 9, state: C.TCP_ESTABLISHED, peer: null, rqueue: null, wqueue: null } }]);
  const err = new Uint8Array(abi.nlmsghdr.size + abi.nlmsgerr.size);
  const ev = new DataView(err.buffer);
  ev.setUint32(0, err.length, true);
  ev.setUint16(4, C.NLMSG_ERROR, true);
  ev.setUint32(8, 3, true);
  ev.setInt32(abi.nlmsghdr.size, -2, true);
  expect(parseDiagReply(err)).toEqual([{ seq: 3, errno: 2 }]);
  // Two messages in one datagram, in order.
  expect(parseDiagReply(new Uint8Array([...err, ...reply])).map((m) => m.seq)).toEqual([3, 7]);
  // A length past the datagram, or an attribute running past its message: EBADMSG, not a read out of bounds.
  const long = reply.slice();
  new DataView(long.buffer).setUint32(0, reply.length + 4, true);
  expect(() => parseDiagReply(long)).toThrow("EBADMSG");
  const badAttr = reply.slice();
  new DataView(badAttr.buffer).setUint16(abi.nlmsghdr.size + abi.unixDiagMsg.size, 200, true);
  expect(() => parseDiagReply(badAttr)).toThrow("EBADMSG");
});

test("sock_diag parser over 5000 random and mangled replies: a result or EBADMSG, nothing else", () => {
  const rand = rng(4242);
  const int = (n: number) => Math.floor(rand() * n);
  const good = diagMessage(1, 77, [[C.UNIX_DIAG_PEER, u32s(78)], [C.UNIX_DIAG_RQLEN, u32s(1, 2)]]);
  let parsed = 0;
  for (let i = 0; i < 5000; i++) {
    let bytes: Uint8Array;
    if (i % 3 === 0) bytes = Uint8Array.from({ length: int(96) }, () => int(256));
    else {
      bytes = good.slice(0, i % 3 === 1 ? int(good.length + 1) : good.length);
      for (let k = int(4); k > 0 && bytes.length; k--) bytes[int(bytes.length)] = int(256);
    }
    try {
      parsed += parseDiagReply(bytes).length >= 0 ? 1 : 0;
    } catch (e) {
      expect(isSysError(e, "EBADMSG")).toBe(true);
    }
  }
  expect(parsed).toBeGreaterThan(0);
});

test.skipIf(underQemu)("sock_diag against the kernel: each end of a socketpair names the other, queues count bytes; no fd left open", () => {
  const [a, b] = socketpair();
  try {
    write(a, new Uint8Array(5));
    const [ia, ib] = [fstat(a).ino, fstat(b).ino];
    const count = fdCount();
    const found = unixDiag([ia, ib, 4294967295]);
    expect(fdCount()).toBe(count);
    expect(found.get(ia)).toMatchObject({ peer: ib, rqueue: 0, state: C.TCP_ESTABLISHED });
    expect(found.get(ib)).toMatchObject({ peer: ia, rqueue: 5 });
    expect(found.has(4294967295)).toBe(false); // no such socket: left out, not an error
  } finally {
    closeAll([a, b]);
  }
});

test.skipIf(underQemu)("addSocketDetails and holdersOfFd in this process: peers and holders found, fd count unchanged", () => {
  const [a, b] = socketpair();
  const file = openSync("/etc/hostname", "r");
  try {
    const count = fdCount();
    const { descs, complete } = addSocketDetails("self", [describeFd(a)]);
    expect(complete).toBe(true);
    expect(descs[0]!.socket).toMatchObject({ peerInode: fstat(b).ino, peers: [{ pid: process.pid, fd: b }], recvQ: 0, fdsInFlight: 0 });
    const h = holdersOfFd(process.pid, file);
    expect(h.holders[0]).toMatchObject({ pid: process.pid, fd: file, description: 1 });
    expect(kcmpFile(process.pid, a, process.pid, a)).toBe(true);
    expect(kcmpFile(process.pid, a, process.pid, b)).toBe(false);
    expect(fdCount()).toBe(count);
  } finally {
    closeAll([a, b]);
    closeSync(file);
  }
});

test("the /proc scan stops at its limits and says so", () => {
  const all = scanFds(() => true);
  expect(all.complete).toBe(true);
  const cut = scanFds(() => true, { limits: { maxProcesses: 1_000_000, maxFds: 3 } });
  expect(cut.complete).toBe(false);
  expect(cut.holders.length).toBeLessThanOrEqual(3);
  expect(scanFds(() => true, { limits: { maxProcesses: 1, maxFds: 1_000_000 } }).complete).toBe(false);
});
