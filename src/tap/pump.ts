// One direction of a relay: read a message (bytes and the fds that came with them) from one socket, record it,
// and send it on whole with one sendmsg, so the fds stay attached to the same bytes and message boundaries stay
// where they were. A message that does not fit yet is kept (with its fds) and nothing more is read from that
// side until it has gone: back-pressure instead of an unbounded buffer.
//
// Fd ownership: the fds of a received message are this pump's until the sendmsg that carries them succeeds (the
// receiver then has its own copies) and are closed right after it; closePump closes any still held. Every fd a
// peer sent is closed off this thread (closeAllOffThread): close() of a file on a FUSE mount waits for its server
// to answer FLUSH, which a hostile peer serving that mount need never do.
import { C, closeAll, queuedBytes, recvmsg, recvmsgFrom, sendmsg, sendmsgTo, type ReceivedFrom } from "../sys/index.ts";
import { closeAllOffThread } from "../sys/offload.ts";
import { describeForRecord } from "./describe.ts";
import type { Direction, TapLimits, TapRecord } from "./types.ts";

export interface Pump {
  conn: number;
  dir: Direction;
  /** Bytes received and not yet sent on (null: nothing held). */
  pending: Uint8Array | null;
  /** `pending` is a view of the receive buffer (valid until the next read), not a copy. */
  pendingIsView: boolean;
  /** Fds received with `pending`: they travel with its first byte. */
  pendingFds: number[];
  /** The reader saw end of stream. */
  eof: boolean;
  /** A stream read that came with fds, kept for the next message (receiveStream). */
  carry: ReceivedFrom | null;
  /** The pipe bulk bytes are spliced through (splice.ts), made on first use, and how many bytes it holds. */
  pipe: [number, number] | null;
  piped: number;
  /** Bytes read one at a time (receiveStream) since the caller last reset it: what bounds a turn's share. */
  bytewise: number;
}

export const newPump = (conn: number, dir: Direction): Pump => ({ conn, dir, pending: null, pendingIsView: false, pendingFds: [], eof: false, carry: null, pipe: null, piped: 0, bytewise: 0 });

/**
 * Send what is held: true once nothing is, false when `dst` is full (wait for it to be writable). `to` addresses a
 * reply from an unconnected datagram socket. Throws the send's SysError (EPIPE: the receiver is gone).
 */
export function flushPump(p: Pump, dst: number, to: Uint8Array | null = null): boolean {
  while (p.pending !== null) {
    const n = to ? sendmsgTo(dst, p.pending, p.pendingFds, to) : sendmsg(dst, p.pending, p.pendingFds);
    if (n < 0) return keep(p);
    if (p.pendingFds.length > 0) {
      closeAllOffThread(p.pendingFds);
      p.pendingFds = [];
    }
    p.pending = n >= p.pending.length ? null : p.pending.subarray(n);
    if (p.pending !== null) keep(p);
  }
  return true;
}

/** What is held must outlive the next read: a view of the receive buffer becomes a copy. Returns false. */
function keep(p: Pump): false {
  if (p.pending !== null && p.pendingIsView) {
    p.pending = p.pending.slice();
    p.pendingIsView = false;
  }
  return false;
}

export function closePump(p: Pump): void {
  if (p.pipe !== null) closeAll(p.pipe);
  p.pipe = null;
  p.piped = 0;
  if (p.carry !== null) closeAllOffThread(p.carry.fds);
  p.carry = null;
  closeAllOffThread(p.pendingFds);
  p.pendingFds = [];
  p.pending = null;
}

/** Read one message from `src` (at most `maxBytes` of it); null when there is none now. */
export function receive(src: number, limits: TapLimits, withSender = false, maxBytes = limits.bufferBytes): ReceivedFrom | null {
  // Not copied: relayed at once from the receive buffer, and copied only when it must wait (keep). The fds of a
  // truncated message are closed off this thread, as every fd a peer sent.
  return recvmsgFrom(src, maxBytes, limits.maxFds, withSender, false, closeAllOffThread);
}

/** Most bytes read one at a time per call while fds are queued (see receiveStream). */
const BYTEWISE_MAX = 64 * 1024;

/**
 * Read from a stream socket without moving any fd to an earlier byte. One recvmsg on a stream socket takes the
 * bytes of several sends, and when it reaches a send that carried fds it returns them with all those bytes: passed
 * on so, the fds would arrive with bytes sent before them, and a receiver reading those bytes with plain read()
 * (HAProxy reads `_getsocks`'s count so) would lose them. A peek cannot find where the fds' send starts (Linux
 * peeks the next fds whatever the size asked), but a read never goes past the size asked. So while fds are queued
 * (fdsQueued) bytes are read one at a time until the one the fds come with; the bytes before it are one
 * message, and it starts the next (held in `carry`). Slow, but only while fds wait behind other bytes.
 */
export function receiveStream(p: Pump, src: number, limits: TapLimits, bytewiseMax = BYTEWISE_MAX, queued?: number): ReceivedFrom | null {
  if (p.carry !== null) {
    const m = p.carry;
    p.carry = null;
    return withRest(m, src, limits);
  }
  // Counted before the peek: a send with fds that arrives after the peek is queued behind these bytes, and a read of
  // no more than them cannot reach it (a read of --buffer bytes could, and would hand its fds over early). Nothing
  // counted: one byte (or end of stream). The caller may have counted already (move, for the splice path).
  queued ??= queuedBytes(src);
  if (!fdsQueued(src, limits)) return receive(src, limits, false, Math.max(1, Math.min(queued, limits.bufferBytes)));
  const prefix: number[] = [];
  while (prefix.length < bytewiseMax) {
    const m = receive(src, limits, false, 1);
    p.bytewise++;
    if (m === null || (m.data.length === 0 && m.fds.length === 0 && !m.truncated)) {
      if (prefix.length === 0) return m;
      break; // end of stream comes again with the next read
    }
    if (m.fds.length > 0 || m.truncated) {
      if (prefix.length === 0) return withRest(m, src, limits);
      p.carry = { ...m, data: m.data.slice() };
      break;
    }
    prefix.push(m.data[0]!);
  }
  return { data: Uint8Array.from(prefix), fds: [], truncated: false, closedFds: 0, payloadTruncated: false, sender: null };
}

/** A read that began with fds, with the bytes after it up to any further fds. */
function withRest(m: ReceivedFrom, src: number, limits: TapLimits): ReceivedFrom {
  // Copied first: the peek and the read below reuse the buffer `m.data` may be a view of.
  m = { ...m, data: m.data.slice() };
  // As in receiveStream: count, peek, then read no more than was counted.
  const room = Math.min(queuedBytes(src), limits.bufferBytes - m.data.length);
  if (room <= 0 || fdsQueued(src, limits)) return m;
  const rest = receive(src, limits, false, room);
  if (rest === null || rest.data.length === 0) return m;
  const data = new Uint8Array(m.data.length + rest.data.length);
  data.set(m.data);
  data.set(rest.data, m.data.length);
  return { ...m, data };
}

/**
 * Whether fds wait in `fd`'s queue. Linux's MSG_PEEK returns the fds of the first send that has any, however few
 * bytes are asked for: a one-byte peek answers (and those peeked copies are closed at once). Cheaper than reading
 * `scm_fds` from fdinfo, which a bulk transfer would pay on every read.
 */
export const fdsQueued = (fd: number, limits: TapLimits): boolean => peekWithoutFds(fd, limits) === null;

const NOTHING = new Uint8Array();

/**
 * Peek at up to `bytes` of `fd`'s queue: null when fds wait anywhere in it (see fdsQueued), else the bytes peeked
 * (a view of the receive buffer; empty when nothing is queued). The peeked fds' copies are closed off this thread.
 */
export function peekWithoutFds(fd: number, limits: TapLimits, bytes = 1): Uint8Array | null {
  const r = recvmsg(fd, bytes, limits.maxFds, C.MSG_PEEK | C.MSG_DONTWAIT, false);
  if (r === null) return NOTHING;
  closeAllOffThread(r.fds);
  return r.fds.length > 0 || r.truncated ? null : r.data;
}

/** Hold a received message for sending, and say what it was. */
export function take(p: Pump, m: ReceivedFrom, limits: TapLimits): TapRecord {
  p.pending = m.data;
  // Taken as a view of the receive buffer (a copy made by receiveStream is copied again only if it must wait).
  p.pendingIsView = true;
  p.pendingFds = m.fds;
  return {
    event: "message",
    time: new Date(),
    conn: p.conn,
    dir: p.dir,
    bytes: m.data.length,
    preview: m.data.slice(0, limits.previewBytes),
    fds: describeForRecord(m.fds),
    ctrunc: m.truncated ? { closedFds: m.closedFds } : null,
    payloadTruncated: m.payloadTruncated,
  };
}
