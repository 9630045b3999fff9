// Bulk bytes that carry no fds go from socket to socket through a pipe with splice(2): the kernel moves the pages
// instead of copying them out to tap and back in, which is what lets a tap keep up with a direct connection.
// Only bytes known to carry no fds are spliced (a splice from a socket discards fds): FIONREAD counts what is
// queued, then a peek finds no fds among it, and the splice takes no more than that count, so a send with fds
// that arrives meanwhile (behind those bytes) is left for recvmsg.
import { pipe, setPipeSize, splice } from "../sys/index.ts";
import { peekWithoutFds, type Pump } from "./pump.ts";
import type { TapLimits, TapRecord } from "./types.ts";

/** Below this many queued bytes recvmsg and sendmsg cost less than the splice path's four calls. */
const SPLICE_MIN = 16 * 1024;

/** What spliceIn says when nothing at all is queued. */
export const EMPTY = "empty";

/**
 * Splice what `src` has queued into the pump's pipe and say what it was; EMPTY when nothing is queued, null when
 * recvmsg should read instead (little queued, or fds among it).
 */
export function spliceIn(p: Pump, src: number, limits: TapLimits, queued: number): TapRecord | typeof EMPTY | null {
  if (p.carry !== null || p.piped > 0) return null;
  // `queued` was counted before this peek, so every byte counted was in the queue the peek saw.
  if (queued === 0) return EMPTY;
  if (queued < SPLICE_MIN) return null;
  const len = Math.min(queued, limits.bufferBytes);
  // One peek both finds any fds queued and reads the preview.
  const peeked = peekWithoutFds(src, limits, Math.max(1, Math.min(limits.previewBytes, len)));
  if (peeked === null) return null;
  if (peeked.length === 0) return EMPTY;
  const preview = peeked.slice(0, limits.previewBytes);
  if (p.pipe === null) {
    p.pipe = pipe(true);
    try {
      setPipeSize(p.pipe[1], limits.bufferBytes);
    } catch {
      // A smaller pipe (the default 64 KiB, or pipe-max-size) only means more splices.
    }
  }
  const n = splice(src, p.pipe[1], len);
  if (n <= 0) return null;
  p.piped += n;
  return {
    event: "message", time: new Date(), conn: p.conn, dir: p.dir, bytes: n, preview: preview.subarray(0, n),
    fds: [], ctrunc: null, payloadTruncated: false,
  };
}

/** Splice what the pipe holds on to `dst`: true once it is empty, false when `dst` is full. */
export function drainPipe(p: Pump, dst: number): boolean {
  while (p.piped > 0) {
    const n = splice(p.pipe![0], dst, p.piped);
    if (n < 0) return false;
    p.piped -= n;
  }
  return true;
}
