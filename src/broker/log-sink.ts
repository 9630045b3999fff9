// The broker's log reaches stderr without ever blocking the loop and without growing without bound. Bun's
// process.stderr queues in memory when nobody reads the other end (measured: 2 MB queued while writableLength
// still said 0), so a daemon whose log pipe is stuck would grow until killed. Lines wait here instead, in a
// bounded queue, and are written only when poll says the fd takes them; past the bound they are counted and
// dropped, and the count is logged once the reader catches up.
//
// A line waits up to LINE_DELAY_MS, or until a write's worth has gathered: a broker logs every operation, and
// one write (and one poll) per request would be most of what a `get` costs beside its own recvmsg and sendmsg. A
// regular file is never polled: it always takes a write.
import { C, fstat, poll, write } from "../sys/index.ts";

/** Bytes of log that may wait for a slow reader. */
const MAX_QUEUED_LOG_BYTES = 1 << 20;
// After POLLOUT a pipe takes at least one page without blocking; larger writes to a blocking pipe could stall.
const MAX_WRITE = 4096;
/** A regular file takes any write: larger ones, fewer syscalls. */
const MAX_FILE_WRITE = 64 * 1024;
/** Longest a line waits for others to share its write (the loop comes back within 20 ms while lines wait). */
const LINE_DELAY_MS = 20;

const encoder = new TextEncoder();

/** Lines are encoded into a buffer of this size and queued a bufferful at a time, not one allocation each. */
const STAGING_BYTES = 16 * 1024;

interface LogSink {
  fd: number;
  maxBytes: number;
  /** What waits to be written: `queue`, then `staging[0, staged)`. */
  queue: Uint8Array[];
  staging: Uint8Array;
  staged: number;
  queuedBytes: number;
  dropped: number;
  /** The reader went away (EPIPE and the like): nothing more is written. */
  broken: boolean;
  /** When the oldest line waiting was queued (ms), or null when none waits. */
  since: number | null;
  /** The fd is a regular file (learned at the first write; null before). */
  file: boolean | null;
}

export function createLogSink(fd = 2, maxBytes = MAX_QUEUED_LOG_BYTES): LogSink {
  return { fd, maxBytes, queue: [], staging: EMPTY, staged: 0, queuedBytes: 0, dropped: 0, broken: false, since: null, file: null };
}

const EMPTY = new Uint8Array(0);
const NEWLINE = 10;

/** Move the staged bytes to the end of the queue (a copy: the staging buffer is reused). */
function unstage(sink: LogSink): void {
  if (sink.staged === 0) return;
  sink.queue.push(sink.staging.slice(0, sink.staged));
  sink.staged = 0;
}

/**
 * Encode `line` and a newline after what is staged, without counting it yet; returns its bytes, or -1 when it is
 * in the queue already (too long to stage).
 */
function stage(sink: LogSink, line: string): number {
  if (sink.staging === EMPTY) sink.staging = new Uint8Array(STAGING_BYTES);
  for (let attempt = 0; attempt < 2; attempt++) {
    const room = sink.staging.length - sink.staged - 1;
    if (line.length <= room) {
      const r = encoder.encodeInto(line, sink.staging.subarray(sink.staged, sink.staged + room));
      if (r.read === line.length) {
        sink.staging[sink.staged + r.written] = NEWLINE;
        return r.written + 1;
      }
    }
    unstage(sink);
  }
  return -1;
}

export function enqueueLine(sink: LogSink, line: string): void {
  if (sink.broken) return;
  let size = stage(sink, line);
  const long = size < 0 ? encoder.encode(`${line}\n`) : null;
  if (long) size = long.length;
  if (sink.queuedBytes + size > sink.maxBytes) {
    sink.dropped++;
    return;
  }
  if (sink.dropped > 0 && sink.queuedBytes === 0) {
    // Nothing is queued or staged: the note goes first, then the line (staged, or after it).
    const note = encoder.encode(`(${sink.dropped} log lines dropped: stderr was not being read)\n`);
    sink.queue.push(note);
    sink.queuedBytes += note.length;
    sink.dropped = 0;
  }
  if (long) sink.queue.push(long);
  else sink.staged += size;
  sink.queuedBytes += size;
  sink.since ??= Date.now();
}

/** The queue's first `max` bytes as one buffer: a busy turn logs many lines, and each write is a syscall. */
function takeChunk(queue: readonly Uint8Array[], max: number): Uint8Array {
  if (queue.length === 1 || queue[0]!.length >= max) return queue[0]!.subarray(0, max);
  let size = 0;
  let count = 0;
  while (count < queue.length && size + queue[count]!.length <= max) size += queue[count++]!.length;
  if (count <= 1) return queue[0]!;
  const out = new Uint8Array(size);
  for (let i = 0, off = 0; i < count; off += queue[i]!.length, i++) out.set(queue[i]!, off);
  return out;
}

/** Remove `n` written bytes from the front of the queue. */
function dropWritten(queue: Uint8Array[], n: number): void {
  while (n > 0) {
    const head = queue[0]!;
    if (n < head.length) {
      queue[0] = head.subarray(n);
      return;
    }
    n -= head.length;
    queue.shift();
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return (fstat(fd).mode & C.S_IFMT) === C.S_IFREG;
  } catch {
    return false;
  }
}

/**
 * Write what the fd takes without blocking (waiting up to `waitMs` for a pipe to take more); true when nothing is
 * left waiting. Without `waitMs`, lines younger than LINE_DELAY_MS that do not fill a write are left for later.
 */
export function flushLogSink(sink: LogSink, waitMs = 0): boolean {
  if (waitMs === 0 && sink.since !== null && sink.queuedBytes < MAX_WRITE && Date.now() - sink.since < LINE_DELAY_MS) return false;
  sink.file ??= isRegularFile(sink.fd);
  unstage(sink);
  while (sink.queue.length > 0 && !sink.broken) {
    if (!sink.file && !(poll([{ fd: sink.fd, events: C.POLLOUT }], waitMs)[0]! & C.POLLOUT)) return false;
    const chunk = takeChunk(sink.queue, sink.file ? MAX_FILE_WRITE : MAX_WRITE);
    let n: number;
    try {
      n = write(sink.fd, chunk);
    } catch {
      sink.broken = true;
      break;
    }
    if (n < 0) return false;
    sink.queuedBytes -= n;
    dropWritten(sink.queue, n);
  }
  if (sink.broken) {
    sink.staged = 0;
    sink.queue = [];
    sink.queuedBytes = 0;
  }
  if (sink.queue.length === 0) sink.since = null;
  return sink.queue.length === 0;
}
