// Control-message codec: pure functions over bytes, so packing and parsing are testable without a socket.
import { abi, C, cmsgAlign, cmsgLen, cmsgSpace } from "./abi.ts";
import { getU64, putU64 } from "./mem.ts";

interface ControlMessage {
  level: number;
  type: number;
  data: Uint8Array;
}

/** Bytes an SCM_RIGHTS message carrying `n` fds needs (CMSG_SPACE). */
export const rightsSpace = (n: number) => cmsgSpace(n * 4);

/** Write one SCM_RIGHTS control message for `fds` at the start of `out`; returns the bytes used. */
export function encodeRights(fds: readonly number[], out: Uint8Array): number {
  const space = rightsSpace(fds.length);
  if (out.length < space) throw new RangeError(`control buffer of ${out.length} bytes cannot hold ${fds.length} fds`);
  return writeRights(new DataView(out.buffer, out.byteOffset, space), fds);
}

/**
 * encodeRights through a view the caller keeps: sendmsg (msg.ts) writes every message into one long-lived buffer,
 * and a DataView per call cost more than the rest of the send path's JavaScript. The view must hold the space.
 */
export function writeRights(v: DataView, fds: readonly number[]): number {
  const h = abi.cmsghdr;
  const space = rightsSpace(fds.length);
  putU64(v, h.len, cmsgLen(fds.length * 4));
  v.setInt32(h.level, C.SOL_SOCKET, true);
  v.setInt32(h.type, C.SCM_RIGHTS, true);
  for (let i = 0; i < fds.length; i++) v.setInt32(h.size + i * 4, fds[i]!, true);
  // The padding after the last fd, so no stale bytes from an earlier message go out with this one.
  for (let off = h.size + fds.length * 4; off < space; off += 4) v.setInt32(off, 0, true);
  return space;
}

/**
 * Walk the control messages in `buf[0, len)`, as CMSG_FIRSTHDR/CMSG_NXTHDR do. A header whose length runs past
 * the end, or is shorter than a header, ends the walk: the kernel never writes one, and a fuzzer will.
 */
export function parseControl(buf: Uint8Array, len: number): ControlMessage[] {
  const h = abi.cmsghdr;
  const out: ControlMessage[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, Math.min(len, buf.length));
  let off = 0;
  while (off + h.size <= v.byteLength) {
    const clen = getU64(v, off + h.len);
    if (clen < h.size || off + clen > v.byteLength) break;
    out.push({
      level: v.getInt32(off + h.level, true),
      type: v.getInt32(off + h.type, true),
      data: buf.subarray(off + h.size, off + clen),
    });
    off += cmsgAlign(clen);
  }
  return out;
}

/** The fds of every SCM_RIGHTS message in a parsed control buffer, in order. */
export function rightsOf(msgs: readonly ControlMessage[]): number[] {
  const fds: number[] = [];
  for (const m of msgs) {
    if (m.level !== C.SOL_SOCKET || m.type !== C.SCM_RIGHTS) continue;
    const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    for (let i = 0; i + 4 <= m.data.byteLength; i += 4) fds.push(v.getInt32(i, true));
  }
  return fds;
}
