// One client connection: reading frames without blocking, and writing replies through a bounded queue so a
// client that stops reading never holds up anybody else. fds queued for a client are our own duplicates (the
// entry may go away before the client reads), closed as soon as the kernel has taken them or the client is gone.
import { bufferedBytes, createReader, drainReader, encodeJsonFrameShared, feed, keptFrame, REPLY, REQUEST_FDS, type FeedResult, type ReceivedFrame } from "../proto/index.ts";
import { C, dupCloexec, peerCred, peerGroups, recvmsg, sendmsg } from "../sys/index.ts";
import { closeAllOffThread, closeDrainedSocket } from "../sys/offload.ts";
import { stopDescribing } from "./describe-entry.ts";
import { isPrivileged, type Peer } from "./access.ts";
import { markDirty, touch, unwatchConn, watchConn } from "./interest.ts";
import { connClosed } from "./pools.ts";
import type { BrokerState, Conn } from "./state.ts";

/** Most reads from one client per loop turn, so one fast sender cannot starve the rest. */
const READS_PER_TURN = 4;
const READ_BYTES = 64 * 1024;
/** Duplicates queued for one client beyond which its further requests wait (each costs us an fd). */
const QUEUED_FDS_SOFT = 1024;

/** The groups of every peer whose groups are not read: one array, not one per connection. */
const NO_GROUPS: readonly number[] = Object.freeze([]);

export function openConn(state: BrokerState, fd: number): Conn {
  const peer: Peer = { ...peerCred(fd), groups: NO_GROUPS };
  const privileged = isPrivileged(peer, state.config.ownerUid);
  // Groups only matter to gid rules, which never apply to the owner and root: no getsockopt when there are none.
  if (!privileged && state.config.rules.some((r) => r.who === "gid")) peer.groups = peerGroups(fd);
  const conn: Conn = {
    fd,
    peer,
    privileged,
    reader: createReader(state.config.limits.maxBody, REQUEST_FDS),
    inbox: [],
    out: [],
    outBytes: 0,
    outFds: 0,
    inBytes: 0,
    inSince: null,
    lastActive: state.env.now(),
    closeAfterFlush: false,
    drained: false,
    gen: 0,
    interest: 0,
    dirty: false,
  };
  watchConn(state, conn);
  state.conns.set(fd, conn);
  if (!privileged) {
    state.load.others++;
    state.load.byUid.set(peer.uid, (state.load.byUid.get(peer.uid) ?? 0) + 1);
  }
  return conn;
}

/**
 * Forget the connection and close what it holds, off the loop's thread: every fd here came from a client (or is a
 * copy of one), and so can the socket's own unread queue, whose fds the kernel releases when it is closed. A
 * socket read to its end has no such queue: closeDrainedSocket decides whether it can be closed here.
 */
export function closeConn(state: BrokerState, conn: Conn): void {
  const t = state.takeover;
  if (t?.phase === "sent" && !state.handedOver && t.handing.has(conn)) {
    // The new broker's now, and maybe still in a snapshot part to send: closed once the takeover commits or is
    // abandoned. Until then not watched, so its hang-up does not wake the loop every turn.
    unwatchConn(state, conn);
    return;
  }
  if (!state.conns.delete(conn.fd)) return;
  unwatchConn(state, conn);
  connClosed(state, conn);
  state.waiting.delete(conn);
  stopDescribing(state.describing, conn);
  const load = state.load;
  if (!conn.privileged) {
    load.others--;
    const n = load.byUid.get(conn.peer.uid)! - 1;
    if (n > 0) load.byUid.set(conn.peer.uid, n);
    else load.byUid.delete(conn.peer.uid);
  }
  load.requestBytes -= conn.inBytes;
  load.replyBytes -= conn.outBytes;
  load.replyFds -= conn.outFds;
  conn.inBytes = conn.outBytes = conn.outFds = 0;
  // One hand-over to the closer threads for everything the connection held, its own socket last.
  const fds: number[] = [];
  for (const o of conn.out) fds.push(...o.fds);
  for (const f of conn.inbox) fds.push(...f.fds);
  fds.push(...drainReader(conn.reader));
  if (!conn.drained) fds.push(conn.fd);
  conn.out = [];
  conn.inbox = [];
  if (fds.length > 0) closeAllOffThread(fds);
  if (conn.drained) closeDrainedSocket(conn.fd);
}

/**
 * Feed bytes (and fds) that arrived for `conn` to its reader: complete frames go to its inbox, fds no frame may
 * keep are closed, and what it now holds is counted against the budget of request bytes.
 */
export function feedConn(state: BrokerState, conn: Conn, data: Uint8Array, fds: readonly number[]): FeedResult {
  const before = bufferedBytes(conn.reader);
  const fed = feed(conn.reader, data, fds);
  if (fed.discard.length > 0) closeAllOffThread(fed.discard);
  let added = bufferedBytes(conn.reader) - before;
  for (const f of fed.frames) {
    conn.inbox.push(f);
    added += f.size;
  }
  if (fed.frames.length > 0) touch(state, conn);
  countIn(state, conn, added);
  markDirty(state, conn);
  return fed;
}

/** The next request to handle, no longer counted as held. */
export function nextRequest(state: BrokerState, conn: Conn): ReceivedFrame | undefined {
  const f = conn.inbox.shift();
  if (f) countIn(state, conn, -f.size);
  return f;
}

function countIn(state: BrokerState, conn: Conn, delta: number): void {
  conn.inBytes += delta;
  state.load.requestBytes += delta;
  conn.inSince = conn.inBytes === 0 ? null : (conn.inSince ?? state.env.now());
}

interface ReadResult {
  /** A fatal framing error: reply EPROTO and hang up. */
  error: string | null;
  eof: boolean;
  /** The kernel dropped fds (MSG_CTRUNC: RLIMIT_NOFILE reached, or too many in one message). */
  truncated: boolean;
}

/**
 * Read what is there (without blocking) and queue the frames it completes on `conn.inbox`, where they (and their
 * fds) belong to the connection even if a later read fails. Unannounced fds are closed here.
 */
export function readConn(state: BrokerState, conn: Conn): ReadResult {
  const res: ReadResult = { error: null, eof: false, truncated: false };
  for (let i = 0; i < READS_PER_TURN && !res.error; i++) {
    // A view, not a copy: the reader parses it or copies what it keeps before the next recvmsg.
    const got = recvmsg(conn.fd, READ_BYTES, C.SCM_MAX_FD, C.MSG_DONTWAIT, false, closeAllOffThread);
    if (got === null) break;
    if (got.data.length === 0 && got.fds.length === 0 && !got.truncated) {
      res.eof = conn.drained = true;
      break;
    }
    const fed = feedConn(state, conn, got.data, got.fds);
    if (got.truncated) {
      res.truncated = true;
      for (const f of fed.frames) if (f.problem) f.problem = `the broker could not take the fds (MSG_CTRUNC: out of file descriptors?); ${f.problem}`;
    }
    res.error = fed.error;
    // A short read took all there was, or stopped at a message with fds: poll is level-triggered and says if more
    // is waiting, so the usual lone request costs no second recvmsg that would only answer EAGAIN.
    if (got.data.length < READ_BYTES) break;
  }
  return res;
}

/**
 * Queue one frame (with `fds`, which stay the caller's) and try to send it now. Returns false if the client has
 * to be cut off (its queue is over the limit, or we could not duplicate the fds).
 */
export function sendFrame(state: BrokerState, conn: Conn, kind: number, id: number, body: Record<string, unknown>, fds: readonly number[] = []): boolean {
  return sendJsonFrame(state, conn, kind, id, JSON.stringify(body), fds);
}

/** sendFrame of a body already written as JSON text. */
export function sendJsonFrame(state: BrokerState, conn: Conn, kind: number, id: number, json: string, fds: readonly number[] = []): boolean {
  // Encoded into a shared buffer: what the socket does not take at once is copied into the queue.
  const bytes = encodeJsonFrameShared(kind, id, fds.length, json);
  if (conn.out.length === 0) {
    const n = sendmsg(conn.fd, bytes, fds, C.MSG_DONTWAIT);
    if (n === bytes.length) return true;
    if (n > 0) return enqueue(state, conn, keptFrame(bytes.subarray(n)), []);
  }
  const copies: number[] = [];
  try {
    for (const fd of fds) copies.push(dupCloexec(fd));
  } catch {
    closeAllOffThread(copies);
    return false;
  }
  return enqueue(state, conn, keptFrame(bytes), copies);
}

function enqueue(state: BrokerState, conn: Conn, bytes: Uint8Array, fds: number[]): boolean {
  conn.out.push({ bytes, fds });
  markDirty(state, conn);
  conn.outBytes += bytes.length;
  conn.outFds += fds.length;
  state.load.replyBytes += bytes.length;
  state.load.replyFds += fds.length;
  // A takeover snapshot is as large as what the broker holds (bounded by --max-fds entries of bounded size),
  // not by a client's reply queue: 4000 entries with long paths already exceed 4 MiB.
  return conn === state.takeover?.conn || conn.outBytes <= state.config.limits.maxQueuedBytes;
}

/** Enough is queued for this client: handle no more of its requests until it reads some replies. */
export function isBackedUp(state: BrokerState, conn: Conn): boolean {
  return conn.outBytes > state.config.limits.maxQueuedBytes / 2 || conn.outFds > QUEUED_FDS_SOFT;
}

export function sendError(state: BrokerState, conn: Conn, id: number, code: string, message: string): boolean {
  return sendFrame(state, conn, REPLY.error, id, { code, message });
}

/** Send as much of the queue as the socket takes now. */
export function flushConn(state: BrokerState, conn: Conn): void {
  while (conn.out.length > 0) {
    const head = conn.out[0]!;
    const n = sendmsg(conn.fd, head.bytes, head.fds, C.MSG_DONTWAIT);
    if (n < 0) return;
    // The fds travelled with the first byte; the kernel holds its own references now.
    closeAllOffThread(head.fds);
    conn.outFds -= head.fds.length;
    state.load.replyFds -= head.fds.length;
    head.fds = [];
    conn.outBytes -= n;
    state.load.replyBytes -= n;
    if (n < head.bytes.length) head.bytes = head.bytes.subarray(n);
    else {
      conn.out.shift();
      touch(state, conn);
    }
  }
}
