// Turning a byte stream plus the fds that arrived with it into frames. Pure: the caller closes what `discard`
// lists. The rules that keep a hostile peer from leaking fds into us:
// - fds are claimed first in, first out by frames that announce them;
// - fds that no frame (complete or still arriving) announces are handed back for closing at once;
// - a frame that announces more fds than arrived gets none of them (they are discarded) and a `problem`.
import { decodeBody, decodeHeader, DEFAULT_MAX_BODY, HEADER_SIZE, headerProblem, MAX_FDS_PER_FRAME, ProtocolError } from "./frame.ts";

export interface ReceivedFrame {
  kind: number;
  id: number;
  body: Record<string, unknown>;
  /** The fds that came with this frame, now owned by whoever handles it. */
  fds: number[];
  /** Set when the frame was framed correctly but is unusable (bad body, missing fds); the stream is still in sync. */
  problem?: string;
}

export interface Reader {
  maxBody: number;
  pending: Uint8Array;
  fds: number[];
  /** Set once the stream cannot be resynchronised; everything after is ignored. */
  broken: string | null;
}

export interface FeedResult {
  frames: ReceivedFrame[];
  /** fds nobody announced: close them now. */
  discard: number[];
  /** A fatal framing error: reply if you like, then drop the connection. */
  error: string | null;
}

export function createReader(maxBody = DEFAULT_MAX_BODY): Reader {
  return { maxBody, pending: new Uint8Array(0), fds: [], broken: null };
}

function append(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Feed one read's worth of bytes and the fds that came with them. */
export function feed(r: Reader, data: Uint8Array, fds: readonly number[]): FeedResult {
  const out: FeedResult = { frames: [], discard: [], error: null };
  if (r.broken) {
    out.discard.push(...fds);
    out.error = r.broken;
    return out;
  }
  r.pending = append(r.pending, data);
  r.fds.push(...fds);
  let off = 0;
  while (r.pending.length - off >= HEADER_SIZE) {
    const h = decodeHeader(r.pending.subarray(off));
    const problem = headerProblem(h, r.maxBody);
    if (problem) {
      r.broken = problem;
      out.error = problem;
      out.discard.push(...r.fds.splice(0));
      r.pending = new Uint8Array(0);
      return out;
    }
    if (r.pending.length - off < HEADER_SIZE + h.length) break;
    out.frames.push(takeFrame(r, h, r.pending.subarray(off + HEADER_SIZE, off + HEADER_SIZE + h.length), out.discard));
    off += HEADER_SIZE + h.length;
  }
  r.pending = r.pending.slice(off);
  out.discard.push(...r.fds.splice(keepable(r)));
  return out;
}

function takeFrame(r: Reader, h: { kind: number; id: number; fds: number }, bodyBytes: Uint8Array, discard: number[]): ReceivedFrame {
  const frame: ReceivedFrame = { kind: h.kind, id: h.id, body: {}, fds: [] };
  if (r.fds.length < h.fds) {
    frame.problem = `frame announces ${h.fds} fds but ${r.fds.length} arrived with it`;
    discard.push(...r.fds.splice(0));
    return frame;
  }
  frame.fds = r.fds.splice(0, h.fds);
  try {
    frame.body = decodeBody(bodyBytes);
  } catch (e) {
    frame.problem = (e as ProtocolError).message;
  }
  return frame;
}

/** How many queued fds the incomplete frame at the front of `pending` may still claim. */
function keepable(r: Reader): number {
  if (r.pending.length === 0) return 0;
  if (r.pending.length < HEADER_SIZE) return Math.min(r.fds.length, MAX_FDS_PER_FRAME);
  return Math.min(r.fds.length, decodeHeader(r.pending).fds);
}

/** Every fd the reader still holds (for closing when the connection goes away). */
export function drainReader(r: Reader): number[] {
  r.pending = new Uint8Array(0);
  return r.fds.splice(0);
}
