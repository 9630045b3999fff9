// One direction of a relay: read a message (bytes and the fds that came with them) from one socket, record it,
// and send it on whole with one sendmsg, so the fds stay attached to the same bytes and message boundaries stay
// where they were. A message that does not fit yet is kept (with its fds) and nothing more is read from that
// side until it has gone: back-pressure instead of an unbounded buffer.
//
// Fd ownership: the fds of a received message are this pump's until the sendmsg that carries them succeeds (the
// receiver then has its own copies) and are closed right after it; closePump closes any still held.
import { describeFd, type FdDescription } from "../describe/index.ts";
import { closeAll, recvmsgFrom, sendmsg, sendmsgTo, type ReceivedFrom } from "../sys/index.ts";
import type { Direction, TapLimits, TapRecord } from "./types.ts";

export interface Pump {
  conn: number;
  dir: Direction;
  /** Bytes received and not yet sent on (null: nothing held). */
  pending: Uint8Array | null;
  /** Fds received with `pending`: they travel with its first byte. */
  pendingFds: number[];
  /** The reader saw end of stream. */
  eof: boolean;
}

export const newPump = (conn: number, dir: Direction): Pump => ({ conn, dir, pending: null, pendingFds: [], eof: false });

/**
 * Send what is held: true once nothing is, false when `dst` is full (wait for it to be writable). `to` addresses a
 * reply from an unconnected datagram socket. Throws the send's SysError (EPIPE: the receiver is gone).
 */
export function flushPump(p: Pump, dst: number, to: Uint8Array | null = null): boolean {
  while (p.pending !== null) {
    const n = to ? sendmsgTo(dst, p.pending, p.pendingFds, to) : sendmsg(dst, p.pending, p.pendingFds);
    if (n < 0) return false;
    if (p.pendingFds.length > 0) {
      closeAll(p.pendingFds);
      p.pendingFds = [];
    }
    p.pending = n >= p.pending.length ? null : p.pending.subarray(n);
  }
  return true;
}

export function closePump(p: Pump): void {
  closeAll(p.pendingFds);
  p.pendingFds = [];
  p.pending = null;
}

/** Read one message from `src`; null when there is none now. */
export function receive(src: number, limits: TapLimits, withSender = false): ReceivedFrom | null {
  const m = recvmsgFrom(src, limits.bufferBytes, limits.maxFds, withSender);
  // The control buffer is rounded up to 8 bytes, so the kernel may deliver one fd more than asked for: the limit
  // is held to exactly, as a truncation the kernel would have made.
  if (m === null || m.fds.length <= limits.maxFds) return m;
  closeAll(m.fds);
  return { ...m, fds: [], truncated: true, closedFds: m.fds.length };
}

/** Hold a received message for sending, and say what it was. */
export function take(p: Pump, m: ReceivedFrom, limits: TapLimits, conn = p.conn): TapRecord {
  p.pending = m.data;
  p.pendingFds = m.fds;
  return {
    event: "message",
    time: new Date(),
    conn,
    dir: p.dir,
    bytes: m.data.length,
    preview: m.data.subarray(0, limits.previewBytes),
    fds: m.fds.map(describeOrNote),
    ctrunc: m.truncated ? { closedFds: m.closedFds } : null,
    payloadTruncated: m.payloadTruncated,
  };
}

function describeOrNote(fd: number): FdDescription {
  try {
    const d = describeFd(fd);
    // Close-on-exec belongs to an fd number, not to what is passed: it is tap's own copy's (MSG_CMSG_CLOEXEC).
    return { ...d, flags: d.flags.filter((f) => f !== "cloexec") };
  } catch (e) {
    // Describing is for the record only: a failure here must not stop the fd from being passed on.
    return {
      fd, kind: "unknown", target: `(not described: ${(e as Error).message})`, path: null, deleted: false, access: null,
      flags: [], rawFlags: 0, offset: null, inode: null, size: null, socket: null, details: {},
    };
  }
}
