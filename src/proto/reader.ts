// Turning a byte stream plus the fds that arrived with it into frames. Pure: the caller closes what `discard`
// lists. The rules that keep a hostile peer from leaking fds into us:
// - fds are claimed first in, first out by frames that announce them;
// - fds that no frame (complete or still arriving) announces are handed back for closing at once;
// - a frame that announces more fds than arrived gets none of them (they are discarded) and a `problem`;
// - with `fdLimits` (the broker's side), a frame may keep only as many fds as its kind allows: as soon as the
//   header says which kind it is (byte 1) and how many it announces (bytes 2-3), anything beyond is handed back
//   for closing, and a frame that announces more than its kind allows keeps none and gets a `problem`. Before
//   the kind is known, a frame may hold at most the largest limit of any kind.
// Bytes go into one buffer, sized for the whole frame once its header is known (doubling before), and compacted
// only when a frame has been taken off its front: a peer sending one byte at a time costs O(1) per byte, not a
// copy of everything pending.
import { decodeBody, decodeHeader, DEFAULT_MAX_BODY, HEADER_SIZE, headerProblem, MAX_FDS_PER_FRAME, ProtocolError } from "./frame.ts";
import { opName } from "./messages.ts";

export interface ReceivedFrame {
  kind: number;
  id: number;
  body: Record<string, unknown>;
  /** The fds that came with this frame, now owned by whoever handles it. */
  fds: number[];
  /** Header plus body bytes, as it came over the wire. */
  size: number;
  /** Set when the frame was framed correctly but is unusable (bad body, missing fds); the stream is still in sync. */
  problem?: string;
}

/** How many fds a frame of each kind may carry; kinds not listed carry none. */
type FdLimits = Readonly<Record<number, number>>;

export interface Reader {
  maxBody: number;
  fdLimits: FdLimits | null;
  /** What a frame may hold before its kind is known: the largest of `fdLimits`, or 253 without them. */
  maxFdsAnyKind: number;
  /** Bytes of the frame still arriving are buf[start, end). */
  buf: Uint8Array;
  start: number;
  end: number;
  fds: number[];
  /** fds the frame still arriving announced but that were closed at arrival (over its kind's limit). */
  dropped: number;
  /** Set once the stream cannot be resynchronised; everything after is ignored. */
  broken: string | null;
}

export interface FeedResult {
  frames: ReceivedFrame[];
  /** fds nobody announced, or that their frame may not carry: close them now. */
  discard: number[];
  /** A fatal framing error: reply if you like, then drop the connection. */
  error: string | null;
}

const EMPTY = new Uint8Array(0);
/** Smallest buffer allocated; one up to KEEP_BUFFER (or four times what it holds) is reused, not shrunk. */
const MIN_BUFFER = 4096;
const KEEP_BUFFER = 64 * 1024;

export function createReader(maxBody = DEFAULT_MAX_BODY, fdLimits: FdLimits | null = null): Reader {
  const maxFdsAnyKind = fdLimits ? Math.max(0, ...Object.values(fdLimits)) : MAX_FDS_PER_FRAME;
  return { maxBody, fdLimits, maxFdsAnyKind, buf: EMPTY, start: 0, end: 0, fds: [], dropped: 0, broken: null };
}

/** The bytes of a frame still arriving (a view: copy it to keep it). */
export const pendingBytes = (r: Reader): Uint8Array => r.buf.subarray(r.start, r.end);

/** Memory the reader holds for bytes (its buffer, not only what is in use). */
export const bufferedBytes = (r: Reader): number => r.buf.length;

function fdLimit(r: Reader, kind: number): number {
  return r.fdLimits ? (r.fdLimits[kind] ?? 0) : MAX_FDS_PER_FRAME;
}

/**
 * Room for `need` bytes from the start of the frame at the front: the whole frame once its header is known (one
 * allocation per large frame, no garbage from growing), else double.
 */
function capacityFor(r: Reader, front: Uint8Array, need: number): number {
  const frame = front.length >= HEADER_SIZE ? HEADER_SIZE + Math.min(decodeHeader(front).length, r.maxBody) : 0;
  return Math.max(MIN_BUFFER, need, frame || r.buf.length * 2);
}

/** Move `bytes` (the front of the buffer, or the rest of a read) into a buffer of `size` at offset 0. */
function rebuffer(r: Reader, bytes: Uint8Array, size: number): void {
  const buf = new Uint8Array(size);
  buf.set(bytes);
  r.buf = buf;
  r.start = 0;
  r.end = bytes.length;
}

/** Append `data` to the buffer, making room by compacting or growing. */
function append(r: Reader, data: Uint8Array): void {
  const used = r.end - r.start;
  if (r.end + data.length > r.buf.length) {
    if (used + data.length <= r.buf.length / 2) {
      r.buf.copyWithin(0, r.start, r.end);
      r.start = 0;
      r.end = used;
    } else rebuffer(r, r.buf.subarray(r.start, r.end), capacityFor(r, r.buf.subarray(r.start, r.end), used + data.length));
  }
  r.buf.set(data, r.end);
  r.end += data.length;
}

/** Keep `rest` (bytes of a frame not yet complete) for the next feed, in a buffer no larger than it needs. */
function keep(r: Reader, rest: Uint8Array, fromBuffer: boolean): void {
  // An idle connection holds no buffer at all: a thousand of them cost nothing.
  if (rest.length === 0) {
    r.buf = EMPTY;
    r.start = r.end = 0;
    return;
  }
  if (fromBuffer && r.buf.length <= Math.max(KEEP_BUFFER, rest.length * 4)) {
    r.start = r.end - rest.length;
    return;
  }
  // The rest of a fresh read, or of a buffer grown for a large frame now taken: into a buffer of its own.
  rebuffer(r, rest, capacityFor(r, rest, rest.length));
}

/** Feed one read's worth of bytes and the fds that came with them. */
export function feed(r: Reader, data: Uint8Array, fds: readonly number[]): FeedResult {
  const out: FeedResult = { frames: [], discard: [], error: null };
  if (r.broken) {
    out.discard.push(...fds);
    out.error = r.broken;
    return out;
  }
  for (const fd of fds) r.fds.push(fd);
  // Nothing pending (the usual case): frames are parsed straight from the read, without copying it.
  const fromBuffer = r.end > r.start;
  if (fromBuffer) append(r, data);
  const bytes = fromBuffer ? r.buf.subarray(r.start, r.end) : data;
  let off = 0;
  while (bytes.length - off >= HEADER_SIZE) {
    const h = decodeHeader(bytes, off);
    const problem = headerProblem(h, r.maxBody);
    if (problem) {
      r.broken = problem;
      out.error = problem;
      out.discard.push(...r.fds.splice(0));
      r.buf = EMPTY;
      r.start = r.end = 0;
      return out;
    }
    if (bytes.length - off < HEADER_SIZE + h.length) break;
    out.frames.push(takeFrame(r, h, bytes.subarray(off + HEADER_SIZE, off + HEADER_SIZE + h.length), out.discard));
    off += HEADER_SIZE + h.length;
  }
  keep(r, bytes.subarray(off), fromBuffer);
  discardUnclaimable(r, out.discard);
  return out;
}

function takeFrame(r: Reader, h: { kind: number; id: number; fds: number }, bodyBytes: Uint8Array, discard: number[]): ReceivedFrame {
  const frame: ReceivedFrame = { kind: h.kind, id: h.id, body: {}, fds: [], size: HEADER_SIZE + bodyBytes.length };
  const limit = fdLimit(r, h.kind);
  const dropped = r.dropped;
  r.dropped = 0;
  if (h.fds > limit) {
    frame.problem = `${opName(h.kind)} carries at most ${limit} fds, but the frame announces ${h.fds}`;
    discard.push(...r.fds.splice(0, Math.max(0, h.fds - dropped)));
    return frame;
  }
  if (dropped > 0 || r.fds.length < h.fds) {
    frame.problem = `frame announces ${h.fds} fds but ${r.fds.length} arrived with it`;
    discard.push(...r.fds.splice(0));
    return frame;
  }
  if (h.fds > 0) frame.fds = r.fds.splice(0, h.fds);
  try {
    frame.body = decodeBody(bodyBytes);
  } catch (e) {
    frame.problem = (e as ProtocolError).message;
  }
  return frame;
}

/**
 * Close at once the queued fds that the frame still arriving may not keep: beyond what it announces (not its
 * fds at all), or beyond what its kind allows (its own, counted in `dropped` so they are not claimed twice).
 */
function discardUnclaimable(r: Reader, discard: number[]): void {
  if (r.fds.length === 0) return;
  const have = r.end - r.start;
  if (have === 0) {
    discard.push(...r.fds.splice(0));
    return;
  }
  const b = r.buf;
  const s = r.start;
  // What it announces (253 until bytes 2-3 say), less what it already lost; and what it may keep.
  const announced = have >= 4 ? ((b[s + 2]! << 8) | b[s + 3]!) - r.dropped : MAX_FDS_PER_FRAME;
  const kindLimit = have >= 2 ? fdLimit(r, b[s + 1]!) : r.maxFdsAnyKind;
  const allowed = have >= 4 && announced + r.dropped > kindLimit ? 0 : kindLimit;
  const claimable = Math.max(0, Math.min(r.fds.length, announced));
  const kept = Math.min(claimable, allowed);
  const gone = r.fds.splice(kept);
  r.dropped += claimable - kept;
  for (const fd of gone) discard.push(fd);
}

/** Every fd the reader still holds (for closing when the connection goes away). */
export function drainReader(r: Reader): number[] {
  r.buf = EMPTY;
  r.start = r.end = 0;
  r.dropped = 0;
  return r.fds.splice(0);
}
