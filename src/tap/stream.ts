// Tapping a connection-oriented socket (stream or seqpacket): each accepted client gets its own connection to the
// upstream, and two pumps copy between them. A pair ends when both directions have seen end of stream and sent
// everything, or when either side fails or hangs up with nothing left to deliver.
import { rawCommandOf } from "../describe/holders.ts";
import { accept, C, close, connect, isSysError, peerCred, poll, queuedBytes, setIntOpt, shutdown, socket, type SocketType } from "../sys/index.ts";
import type { UnixAddress } from "../peer/address.ts";
import { unwatch, want, watch, type Loop, type Watch } from "./loop.ts";
import { drainPipe, EMPTY, spliceIn } from "./splice.ts";
import { closePump, flushPump, newPump, receive, receiveStream, take, type Pump } from "./pump.ts";
import type { Client, TapLimits, TapSink } from "./types.ts";

/** Messages one side may move per wake-up, so one busy pair cannot starve the others. */
const READS_PER_WAKE = 16;
/**
 * Bytes one side may read one at a time per wake-up (a few ms of syscalls). Without it a peer sending bytes then
 * fds, again and again, kept tap in single-byte reads for seconds per wake-up while every other client waited.
 */
const BYTEWISE_PER_WAKE = 8 * 1024;
/** Out of fds with no pair to end and free some: how soon accepting is tried again. */
const ACCEPT_RETRY_MS = 100;
const HANGUP = C.EPOLLHUP | C.EPOLLERR;

interface Side {
  fd: number;
  w: Watch | null;
  /** The pump that reads from this side, and the one that writes to it. */
  rx: Pump;
  tx: Pump;
  /** The peer of this side hung up entirely: nothing more can be delivered to it. */
  gone: boolean;
}

interface Pair {
  id: number;
  client: Side;
  upstream: Side;
  closed: boolean;
}

export interface StreamTap {
  loop: Loop;
  listenFd: number;
  upstream: UnixAddress;
  type: SocketType;
  limits: TapLimits;
  sink: TapSink;
  /** Relay clients of any uid; otherwise only tap's own uid's (the server sees tap's uid, not the client's). */
  anyUid: boolean;
  pairs: Set<Pair>;
  nextId: number;
  listener: Watch | null;
  /** Accepting stopped for want of fds (EMFILE, ENFILE): said once, until a client is accepted again. */
  outOfFds: boolean;
}

export function startStreamTap(t: Omit<StreamTap, "pairs" | "nextId" | "listener" | "outOfFds">): StreamTap {
  const tap: StreamTap = { ...t, pairs: new Set(), nextId: 1, listener: null, outOfFds: false };
  tap.listener = watch(tap.loop, tap.listenFd, C.EPOLLIN, () => acceptClients(tap));
  return tap;
}

function acceptClients(tap: StreamTap): void {
  while (tap.pairs.size < tap.limits.maxConns) {
    let fd: number | null;
    try {
      fd = accept(tap.listenFd);
    } catch (e) {
      if (isSysError(e, "ECONNABORTED")) continue;
      if (isSysError(e, "EMFILE") || isSysError(e, "ENFILE")) return pauseAccepting(tap, e as Error);
      throw e;
    }
    if (fd === null) return;
    openPair(tap, fd);
    if (tap.listener!.events === 0) return; // paused by openPair, out of fds
  }
  // Full: clients wait in the listen backlog until a pair ends.
  want(tap.loop, tap.listener!, 0);
}

/**
 * Out of fds (clients holding connections, fds in transit): the clients wait in the listen backlog, as when
 * --max-conns is reached, instead of the tap ending. A pair that ends takes clients again (closePair); with none to
 * end, a timer does. The listener is level-triggered: left watched, it would spin.
 */
function pauseAccepting(tap: StreamTap, e: Error): void {
  if (!tap.outOfFds) tap.sink.record({ event: "error", time: new Date(), conn: null, message: `not accepting for now: ${e.message}` });
  tap.outOfFds = true;
  want(tap.loop, tap.listener!, 0);
  setTimeout(() => want(tap.loop, tap.listener!, C.EPOLLIN), ACCEPT_RETRY_MS).unref();
}

function clientOf(fd: number): Client {
  try {
    const cred = peerCred(fd);
    // Raw: the human view escapes it, and JSON keeps it exact.
    return { pid: cred.pid, uid: cred.uid, gid: cred.gid, command: cred.pid > 0 ? rawCommandOf(cred.pid) : null, address: null };
  } catch {
    return { pid: null, uid: null, gid: null, command: null, address: null };
  }
}

function openPair(tap: StreamTap, clientFd: number): void {
  const id = tap.nextId++;
  const client = clientOf(clientFd);
  tap.sink.record({ event: "open", time: new Date(), conn: id, client });
  if (!tap.anyUid && client.uid !== process.getuid!()) {
    close(clientFd);
    tap.sink.record({ event: "error", time: new Date(), conn: id, message: `uid ${client.uid} refused: the server would take it for tap's uid ${process.getuid!()} (--any-uid relays it anyway)` });
    tap.sink.record({ event: "close", time: new Date(), conn: id, reason: "refused" });
    return;
  }
  let upFd: number;
  try {
    upFd = socket(C.AF_UNIX, tap.type);
  } catch (e) {
    close(clientFd);
    fail(tap, id, e);
    if (isSysError(e, "EMFILE") || isSysError(e, "ENFILE")) pauseAccepting(tap, e as Error);
    return;
  }
  try {
    connect(upFd, tap.upstream.bytes, tap.upstream.label, tap.limits.connectTimeoutMs);
  } catch (e) {
    close(upFd);
    close(clientFd);
    return fail(tap, id, e);
  }
  roomToSend(clientFd, tap.limits);
  roomToSend(upFd, tap.limits);
  const c2s = newPump(id, "c>s");
  const s2c = newPump(id, "s>c");
  const pair: Pair = {
    id,
    client: { fd: clientFd, w: null, rx: c2s, tx: s2c, gone: false },
    upstream: { fd: upFd, w: null, rx: s2c, tx: c2s, gone: false },
    closed: false,
  };
  tap.pairs.add(pair);
  tap.outOfFds = false;
  pair.client.w = watch(tap.loop, clientFd, C.EPOLLIN, (ev) => serve(tap, pair, pair.client, ev));
  pair.upstream.w = watch(tap.loop, upFd, C.EPOLLIN, (ev) => serve(tap, pair, pair.upstream, ev));
}

/**
 * A send buffer that holds a whole read (--buffer) and more, so a message read in one piece usually goes on in one
 * piece instead of waiting, copied, for the receiver to drain. The kernel caps it (net.core.wmem_max, doubled).
 */
function roomToSend(fd: number, limits: TapLimits): void {
  try {
    setIntOpt(fd, C.SOL_SOCKET, C.SO_SNDBUF, limits.bufferBytes * 4);
  } catch {
    // The default buffer still works, only with more waits.
  }
}

function fail(tap: StreamTap, id: number, e: unknown): void {
  tap.sink.record({ event: "error", time: new Date(), conn: id, message: (e as Error).message });
  tap.sink.record({ event: "close", time: new Date(), conn: id, reason: "upstream unreachable" });
}

const other = (pair: Pair, s: Side) => (s === pair.client ? pair.upstream : pair.client);

function serve(tap: StreamTap, pair: Pair, side: Side, events: number): void {
  try {
    if (events & HANGUP) side.gone = true;
    // The loop is level-triggered, so only what this side is ready for is done now: readable, its messages go to
    // the other side; writable, what was held for it goes, and the reading that waited on it resumes. Anything
    // else ready is reported again. A hang-up gets both, so each direction learns how it ends.
    if (events & (C.EPOLLIN | HANGUP)) move(tap, side, other(pair, side));
    if (events & (C.EPOLLOUT | HANGUP)) move(tap, other(pair, side), side);
    if (finished(pair)) return closePair(tap, pair, null);
    interest(tap, pair);
  } catch (e) {
    closePair(tap, pair, (e as Error).message);
  }
}

/** Move messages from `src` to `dst` until `src` has none, `dst` is full, or the turn's share is used. */
function move(tap: StreamTap, src: Side, dst: Side): void {
  const p = src.rx;
  p.bytewise = 0;
  for (let i = 0; i < READS_PER_WAKE && p.bytewise < BYTEWISE_PER_WAKE; i++) {
    if (!drainPipe(p, dst.fd) || !flushPump(p, dst.fd) || p.eof) return;
    // Counted once for both paths: before any peek, as each needs (pump.ts, receiveStream).
    const queued = tap.type === "stream" ? queuedBytes(src.fd) : 0;
    const spliced = tap.type === "stream" ? spliceIn(p, src.fd, tap.limits, queued) : null;
    // Nothing queued after a message: the next comes with the next readiness (the first read of a turn goes on
    // to recvmsg, which is what tells end of stream from nothing yet).
    if (spliced === EMPTY && i > 0) return;
    if (spliced !== null && spliced !== EMPTY) {
      tap.sink.record(spliced);
      continue;
    }
    const m = tap.type === "stream" ? receiveStream(p, src.fd, tap.limits, BYTEWISE_PER_WAKE - p.bytewise, queued) : receive(src.fd, tap.limits);
    if (m === null) return;
    if (m.data.length === 0 && m.fds.length === 0 && !m.truncated && atEnd(tap, src.fd)) {
      p.eof = true;
      // Passed on as a half-close, so a peer that answers after the request's end still can.
      shutdownWrite(dst.fd);
      return;
    }
    tap.sink.record(take(p, m, tap.limits));
    // At once: the message may be a view of the receive buffer, which the next read anywhere reuses.
    if (!flushPump(p, dst.fd)) return;
  }
}

/**
 * A zero-byte read is end of stream on a stream socket; on a seqpacket socket it may be an empty message, which
 * is passed on like any other unless the peer has shut down.
 */
function atEnd(tap: StreamTap, fd: number): boolean {
  if (tap.type === "stream") return true;
  return (poll([{ fd, events: C.POLLRDHUP }], 0)[0]! & (C.POLLRDHUP | C.POLLHUP)) !== 0;
}

function shutdownWrite(fd: number): void {
  try {
    shutdown(fd, C.SHUT_WR);
  } catch (e) {
    if (!isSysError(e, "ENOTCONN")) throw e;
  }
}

/**
 * Done when both directions saw end of stream with nothing held, or a side is gone (hung up entirely) with its
 * own data all read and passed on: what is still held for it could never be delivered.
 */
function finished(pair: Pair): boolean {
  const done = (s: Side) => s.rx.eof && s.rx.pending === null && s.rx.piped === 0;
  if (done(pair.client) && done(pair.upstream)) return true;
  return (pair.client.gone && done(pair.client)) || (pair.upstream.gone && done(pair.upstream));
}

function interest(tap: StreamTap, pair: Pair): void {
  for (const s of [pair.client, pair.upstream]) {
    const read = !s.rx.eof && s.rx.pending === null && s.rx.piped === 0;
    const write = s.tx.pending !== null || s.tx.piped > 0;
    // A side that hung up stays reported ready by epoll whatever it is watched for: it is left out once it has
    // nothing more to give, so the loop does not spin on it while the other side drains.
    if (s.gone && s.rx.eof) {
      if (s.w) unwatch(tap.loop, s.w);
      s.w = null;
      continue;
    }
    if (s.w) want(tap.loop, s.w, (read ? C.EPOLLIN : 0) | (write ? C.EPOLLOUT : 0));
  }
}

function closePair(tap: StreamTap, pair: Pair, reason: string | null): void {
  if (pair.closed) return;
  pair.closed = true;
  for (const s of [pair.client, pair.upstream]) {
    if (s.w) unwatch(tap.loop, s.w);
    s.w = null;
    closePump(s.rx);
    close(s.fd);
  }
  tap.pairs.delete(pair);
  tap.sink.record({ event: "close", time: new Date(), conn: pair.id, reason });
  // A slot is free: take clients from the backlog again.
  want(tap.loop, tap.listener!, C.EPOLLIN);
}

export function stopStreamTap(tap: StreamTap): void {
  for (const pair of [...tap.pairs]) closePair(tap, pair, "tap stopping");
  if (tap.listener) unwatch(tap.loop, tap.listener);
}
