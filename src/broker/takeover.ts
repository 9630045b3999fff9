// Takeover, on the running broker's side: hand the listening socket, every entry (fd, name, owner, expiry) and
// every client connection (with any half-received frame) to a new broker, then exit once it confirms.
//
// Sequence (docs/protocol.md): the new broker sends `takeover`; we stop accepting and stop reading new requests,
// finish the replies already owed (clients still not done by the drain deadline are cut off), then send the
// snapshot as one `ok` frame carrying the listener and `more` frames carrying entries and connections. No
// request is handled here after the snapshot, so nothing can change behind it. On `takeoverCommit` we answer and
// exit without removing the socket file. If the new broker goes away first, or stalls (takes no part of the
// snapshot, or does not commit, for --drain-timeout), we resume serving.
import { RefusedError } from "../errors.ts";
import { chunkBySize, encodeFrame, MAX_FDS_PER_FRAME, PART_BYTES, pendingBytes, REPLY, type ReceivedFrame } from "../proto/index.ts";
import { C, shutdown } from "../sys/index.ts";
import { isAllowed } from "./access.ts";
import { closeConn, sendError, sendFrame } from "./conn.ts";
import { touch } from "./interest.ts";
import { count, logEvent } from "./log.ts";
import { freezePools, poolParts, thawPools } from "./pool-handover.ts";
import { isLeaseWaiter } from "./pools.ts";
import type { BrokerState, Conn, SnapshotPart, Takeover } from "./state.ts";

/** Partial-frame bytes a connection may carry through a takeover (base64 in a part of at most PART_BYTES). */
const MAX_PENDING = 256 * 1024;

/**
 * Handle a `takeover` request: start draining. The reply is the snapshot, sent by `progressTakeover`. The right is
 * total (every entry, every client, the socket itself), so `all` never includes it: owner, root or a rule naming it.
 */
export function beginTakeover(state: BrokerState, conn: Conn, frame: ReceivedFrame): void {
  if (!isAllowed(state.config.rules, state.config.ownerUid, conn.peer, "takeover", ""))
    throw new RefusedError("EACCES", `uid ${conn.peer.uid} may not take over this broker`);
  if (state.takeover) throw new RefusedError("EBUSY", "a takeover is already in progress");
  if (state.listenFd === null || state.stopping) throw new RefusedError("EINVAL", "this broker is shutting down");
  state.takeover = { conn, id: frame.id, phase: "draining", deadline: state.env.now() + state.config.limits.drainMs, parts: [], handing: new Set() };
}

/** Whether `conn` may have requests handled now (not once its state has been handed over). */
export function mayDispatch(state: BrokerState, conn: Conn): boolean {
  const t = state.takeover;
  return !t || t.phase === "draining" || t.conn === conn;
}

/**
 * Called every turn: once every client is done (or the deadline passed), send the snapshot; once it is sent, give
 * the new broker --drain-timeout from its last progress (a part taken) to take the rest and commit.
 */
export function progressTakeover(state: BrokerState): void {
  const t = state.takeover;
  // Committed (this very turn, perhaps): the new broker made it, whatever the clock says.
  if (!t || state.handedOver) return;
  if (t.phase === "sent") {
    if (!sendParts(state, t)) {
      closeConn(state, t.conn);
      return abortTakeover(state, "could not send the snapshot");
    }
    return checkStalled(state, t.conn);
  }
  const others = [...state.conns.values()].filter((c) => c !== t.conn);
  // A connection mid-way through a huge frame, or through one of 253 fds (with the connection's own, one too many),
  // would not fit in a snapshot part; it is cut off like a busy one. So is one whose reader closed fds of the frame
  // it is receiving (`dropped`): the snapshot cannot say so, and the frame is refused anyway.
  // A lease waiting for a member is not busy: it goes over with its connection and keeps its place in line.
  const busy = others.filter((c) =>
    c.out.length > 0 || c.inbox.length > (waitsForLease(state, c) ? 1 : 0) || pendingBytes(c.reader).length > MAX_PENDING || c.reader.fds.length >= MAX_FDS_PER_FRAME || c.reader.dropped > 0);
  if (busy.length > 0 && state.env.now() < t.deadline) return;
  for (const c of busy) {
    logEvent(state, { op: "disconnect", result: "ETIMEDOUT (still busy at takeover)", conn: c });
    closeConn(state, c);
  }
  t.phase = "sent";
  t.deadline = state.env.now() + state.config.limits.drainMs;
  const handing = others.filter((c) => !busy.includes(c));
  t.handing = new Set(handing);
  t.parts = snapshotParts(state, handing);
  freezePools(state);
  if (!sendParts(state, t)) {
    closeConn(state, t.conn);
    abortTakeover(state, "could not send the snapshot");
  }
}

/** Its one queued request is a lease waiting in a pool's queue. */
const waitsForLease = (state: BrokerState, c: Conn) => c.inbox.length === 1 && isLeaseWaiter(state, c);

/** What a connection had sent but we had not handled: a waiting lease request (whole), then a frame's first bytes. */
function unhandledBytes(state: BrokerState, c: Conn): Uint8Array {
  const partial = pendingBytes(c.reader);
  if (!waitsForLease(state, c)) return partial;
  const f = c.inbox[0]!;
  return Buffer.concat([encodeFrame({ kind: f.kind, id: f.id, fds: 0, body: f.body }), partial]);
}

/**
 * A new broker that stops reading the snapshot, or never commits, would otherwise keep us neither serving nor
 * accepting for ever. It is told why (so that, should it wake up, it does not serve beside us: see
 * receive-takeover.ts) and let go.
 */
function checkStalled(state: BrokerState, to: Conn): void {
  const t = state.takeover!;
  const limit = state.config.limits.drainMs;
  const now = state.env.now();
  if (now < Math.max(t.deadline, to.lastActive + limit)) return;
  const why = `the new broker made no progress for ${limit} ms (--drain-timeout)`;
  try {
    sendError(state, to, t.id, "ETIMEDOUT", `takeover aborted: ${why}; the old broker carries on`);
  } catch {}
  logEvent(state, { op: "disconnect", result: "ETIMEDOUT (a stalled takeover)", conn: to });
  closeConn(state, to);
  abortTakeover(state, why);
}

/**
 * The snapshot as frames still to send: the listener, then entries, connections and pools (pool-handover.ts) in
 * parts of at most 253 fds.
 * The fds stay their owners' (no duplicates: a broker holding 10,000 fds would need 10,000 more), which is safe
 * because nothing behind a sent snapshot changes: no request but the commit is handled, entries do not expire,
 * and the connections handed over are not closed until the takeover commits or is abandoned (closeConn).
 */
function snapshotParts(state: BrokerState, conns: Conn[]): SnapshotPart[] {
  const entries = [...state.entries.values()];
  const entryParts = entries.length > 0 ? chunkBySize(entries, MAX_FDS_PER_FRAME, (e) => e.bytes) : [];
  // Each connection's unhandled bytes, taken once: they size its part and travel in it.
  const connParts: { c: Conn; pending: Uint8Array }[][] = [];
  let fds = Infinity;
  let bytes = 0;
  for (const c of conns) {
    const pending = unhandledBytes(state, c);
    const needFds = 1 + c.reader.fds.length;
    const needBytes = 64 + (pending.length * 4) / 3;
    if (fds + needFds > MAX_FDS_PER_FRAME || bytes + needBytes > PART_BYTES) {
      connParts.push([]);
      fds = 0;
      bytes = 0;
    }
    connParts[connParts.length - 1]!.push({ c, pending });
    fds += needFds;
    bytes += needBytes;
  }
  const pools = poolParts(state, conns);
  const total = 1 + entryParts.length + connParts.length + pools.length;
  const parts: SnapshotPart[] = [
    { kind: REPLY.ok, body: { socket: state.config.label, entries: entries.length, conns: conns.length, parts: total }, fds: [state.listenFd!] },
  ];
  let part = 1;
  for (const chunk of entryParts) parts.push({ kind: REPLY.more, body: { part: part++, entries: chunk.map((e) => e.info) }, fds: chunk.map((e) => e.fd) });
  for (const chunk of connParts) {
    const meta = chunk.map(({ c, pending }) => ({ pending: Buffer.from(pending).toString("base64"), fds: c.reader.fds.length }));
    parts.push({ kind: REPLY.more, body: { part: part++, conns: meta }, fds: chunk.flatMap(({ c }) => [c.fd, ...c.reader.fds]) });
  }
  for (const p of pools) parts.push({ kind: REPLY.more, body: { part: part++, ...p.body }, fds: p.fds });
  return parts;
}

/**
 * Send snapshot parts while the new broker takes them at once; one that does not fit is queued (with duplicates
 * of its fds, at most 253) and the rest wait for the queue to drain. False if the new broker is to be let go.
 */
function sendParts(state: BrokerState, t: Takeover): boolean {
  const to = t.conn;
  while (t.parts.length > 0 && to.out.length === 0) {
    const p = t.parts.shift()!;
    let ok: boolean;
    try {
      ok = sendFrame(state, to, p.kind, t.id, p.body, p.fds);
    } catch (e) {
      logEvent(state, { op: "takeover", result: "error", detail: (e as Error).message });
      return false;
    }
    if (!ok) return false;
    // Progress, for checkStalled: a new broker taking parts is not stalled.
    touch(state, to);
    if (t.parts.length === 0) {
      const body = t.handing.size;
      logEvent(state, { op: "takeover", result: "sent", conn: to, detail: `${count(state.entries.size, "entry", "entries")}, ${count(body, "connection", "connections")}, the listener` });
    }
  }
  return true;
}

/** Handle `takeoverCommit`: the new broker has everything; answer, then exit (see shutDown). */
export function commitTakeover(state: BrokerState, conn: Conn, frame: ReceivedFrame): void {
  const t = state.takeover;
  if (!t || t.conn !== conn || t.phase !== "sent") throw new RefusedError("EINVAL", "no takeover to commit on this connection");
  if (t.parts.length > 0) throw new RefusedError("EINVAL", `the snapshot is not all sent yet (${t.parts.length} parts to go)`);
  sendFrame(state, conn, REPLY.ok, frame.id, {});
  state.handedOver = true;
  state.stopping = true;
}

/** The new broker went away before committing: close what was handed over and serve again. */
export function abortTakeover(state: BrokerState, why: string): void {
  const t = state.takeover;
  if (!t || state.handedOver) return;
  state.takeover = null;
  if (t.phase === "sent") {
    thawPools(state);
    // Those connections may already be in the new broker's hands; two readers of one socket would corrupt it.
    // Shut down, not only closed: the new broker's copies would keep them open, their clients waiting for ever.
    for (const c of [...state.conns.values()]) {
      try {
        shutdown(c.fd, C.SHUT_RDWR);
      } catch {}
      closeConn(state, c);
    }
  }
  logEvent(state, { op: "takeover", result: "aborted", detail: why });
}
