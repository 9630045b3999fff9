// The daemon loop: wait for ready fds, accept, read frames, dispatch, flush replies, expire entries, cut off idle
// clients. It never blocks on a client: every socket is non-blocking and the only wait is epoll_wait, with a
// bounded timeout. A turn costs what is ready, not what is connected: registrations change only when what a
// connection waits for changes (interest.ts), and idle connections are found at the front of an order kept by
// progress. Between turns it yields to Bun's event loop, where SIGTERM/SIGINT handlers run (the wait returns
// EINTR at once).
import { openSync } from "node:fs";
import { unlinkAddress } from "../peer/listen.ts";
import { macrotask } from "../peer/wait.ts";
import { accept, C, close, epollWait, isSysError, poll } from "../sys/index.ts";
import { closeOffThread, offloadBacklogged, offloadCheckInMs, offloadStats, tendOffload } from "../sys/offload.ts";
import { admit } from "./admission.ts";
import { fitsReplyBudget, replyHog, requestHog } from "./budget.ts";
import { closeConn, flushConn, isBackedUp, nextRequest, openConn, readConn, sendError } from "./conn.ts";
import { described } from "./describe-entry.ts";
import { closeAllEntries, expireDue } from "./entries.ts";
import { dispatch, WAIT } from "./handlers.ts";
import { abortTakeover, mayDispatch, progressTakeover } from "./takeover.ts";
import { gated, markDirty, syncInterest, unwatchListener } from "./interest.ts";
import { closeAllPools, isLeaseWaiter, pidExited, tendPools } from "./pools.ts";
import { count, logEvent } from "./log.ts";
import { tendMemory } from "./memory.ts";
import type { BrokerState, Conn } from "./state.ts";

/** Longest single poll, so signals and timers are never waited on for long. */
const MAX_POLL_MS = 250;
/** Longest the loop runs busy turns without letting Bun's event loop run (where signal handlers do). */
const YIELD_EVERY_MS = 5;
const ACCEPTS_PER_TURN = 64;
/** How long to stop accepting after EMFILE/ENFILE, rather than spin on a listener we cannot drain. */
const ACCEPT_BACKOFF_MS = 100;

/** How soon to try again when the log reader is behind. */
const LOG_RETRY_MS = 20;
/** How often to look again at requests waiting on a spent budget (whose holders may have stalled by then). */
const BUDGET_RETRY_MS = 100;


function acceptNew(state: BrokerState): void {
  // Each connection may bring fds to close: none is taken in once the closer threads are backlogged.
  for (let i = 0; i < ACCEPTS_PER_TURN && state.listenFd !== null && !offloadBacklogged(); i++) {
    let fd: number | null;
    try {
      fd = accept(state.listenFd);
    } catch (e) {
      if (isSysError(e, "EMFILE") || isSysError(e, "ENFILE")) return refuseOutOfFds(state, e.code);
      if (isSysError(e, "ENOBUFS") || isSysError(e, "ENOMEM")) return pauseAccepting(state, e.code);
      if (isSysError(e, "ECONNABORTED")) continue;
      throw e;
    }
    if (fd === null) return;
    let conn: Conn;
    try {
      conn = openConn(state, fd);
    } catch {
      closeOffThread(fd);
      continue;
    }
    admitOrRefuse(state, conn);
  }
}

/**
 * Let `conn` stay (making room if admission says so) or tell it why not and close it; false when refused. Also for
 * connections a takeover hands over: this broker's rules and caps decide who stays, not the old one's.
 */
export function admitOrRefuse(state: BrokerState, conn: Conn): boolean {
  const a = admit(state, conn);
  if (!a.ok) refuseConn(state, conn, a.code, a.message);
  else if (a.evict) hangUp(state, a.evict, "EUSERS (idle longest when a new connection needed its slot)");
  return a.ok;
}

function pauseAccepting(state: BrokerState, code: string): void {
  state.acceptPausedUntil = state.env.now() + ACCEPT_BACKOFF_MS;
  logEvent(state, { op: "accept", result: code, detail: `pausing accept for ${ACCEPT_BACKOFF_MS} ms` });
}

/**
 * Out of fds: rather than leave the client hanging in the backlog (and the listener readable, so poll spins),
 * give up the spare fd for a moment, accept, tell the client why, and close it.
 */
function refuseOutOfFds(state: BrokerState, code: string): void {
  restoreSpare(state);
  if (state.spareFd === null) return pauseAccepting(state, code);
  close(state.spareFd);
  state.spareFd = null;
  let fd: number | null = null;
  try {
    fd = accept(state.listenFd!);
    if (fd !== null) refuseConn(state, openConn(state, fd), code, `the broker is out of file descriptors (${code}); try again later`);
  } catch {
    // openConn failed (SO_PEERCRED of a client already gone): the fd is still only ours.
    if (fd !== null && !state.conns.has(fd)) closeOffThread(fd);
    pauseAccepting(state, code);
  } finally {
    state.spareFd = openSpare();
  }
}

/** /dev/null, opened CLOEXEC; null if even that fails (accepting then just pauses at EMFILE). */
export function openSpare(): number | null {
  try {
    return openSync("/dev/null", "r");
  } catch {
    return null;
  }
}

/**
 * Take the spare back once there is room. The connection refused with its slot is closed off the loop, so that
 * slot comes free a moment later: retried before each read, which would otherwise take it.
 */
function restoreSpare(state: BrokerState): void {
  if (state.spareFd === null && !state.stopping) state.spareFd = openSpare();
}

function refuseConn(state: BrokerState, conn: Conn, code: string, message: string): void {
  try {
    sendError(state, conn, 0, code, message);
  } catch {}
  logEvent(state, { op: "connect", result: code, detail: message, conn });
  closeConn(state, conn);
}

function hangUp(state: BrokerState, conn: Conn, why?: string): void {
  if (why) logEvent(state, { op: "disconnect", result: why, conn });
  closeConn(state, conn);
  if (conn === state.takeover?.conn) abortTakeover(state, `the new broker went away${why ? ` (${why})` : ""}`);
}

/** Handle queued requests while the client keeps up with its replies and the budgets allow. False: hang up. */
function handleInbox(state: BrokerState, conn: Conn): boolean {
  state.waiting.delete(conn);
  while (conn.inbox.length > 0 && !isBackedUp(state, conn) && mayDispatch(state, conn)) {
    const frame = conn.inbox[0]!;
    if (!fitsReplyBudget(state, frame)) {
      state.waiting.add(conn);
      break;
    }
    const keep = dispatch(state, conn, frame);
    // A put waiting for its fd's description stays first (and counted as held): resumeDescribed serves it again.
    if (keep === WAIT) return true;
    nextRequest(state, conn);
    if (!keep) {
      hangUp(state, conn, "reply queue over limit");
      return false;
    }
  }
  return true;
}

function serveConn(state: BrokerState, conn: Conn, revents: number): void {
  try {
    if (revents & C.POLLOUT) flushConn(state, conn);
    if (!handleInbox(state, conn)) return;
    if (revents & C.POLLIN && conn.inbox.length === 0 && conn.out.length === 0 && !conn.closeAfterFlush && !gated(state, conn) && !offloadBacklogged()) {
      restoreSpare(state);
      const got = readConn(state, conn);
      if (!handleInbox(state, conn)) return;
      if (got.error) {
        logEvent(state, { op: "frame", result: "EPROTO", detail: got.error, conn });
        sendError(state, conn, 0, "EPROTO", got.error);
        conn.closeAfterFlush = true;
      } else if (got.truncated) logEvent(state, { op: "recvmsg", result: "ENOBUFS", detail: "the kernel dropped fds (MSG_CTRUNC)", conn });
      // A client that shut down its sending side still gets every reply it is owed.
      if (got.eof) conn.closeAfterFlush = true;
    } else if (revents & (C.POLLHUP | C.POLLERR | C.POLLNVAL) && !(revents & C.POLLIN)) return hangUp(state, conn);
    // (POLLIN with the budget of request bytes spent: left unread; interest.ts parks it until there is room.)
    if (conn.closeAfterFlush && conn.out.length === 0 && conn.inbox.length === 0) hangUp(state, conn);
    else markDirty(state, conn);
  } catch (e) {
    hangUp(state, conn, isSysError(e) ? e.code : (e as Error).message);
  }
}

function cutIdle(state: BrokerState): number {
  const now = state.env.now();
  const limit = state.config.limits.clientTimeoutMs;
  // Oldest progress first: the first connection not yet due ends the search. Deleting the one being visited
  // (hangUp) is safe while iterating a Set.
  for (const conn of state.byActivity) {
    // The new broker of a takeover is waited for: draining has its own bound, and once the snapshot is out,
    // resuming on our own while it may be serving from the same listener would give the socket two brokers.
    // Nor is a client whose request waits on a spent budget: it is waiting on us, not idle.
    // Nor is one whose put waits for its fd's description (bounded by --describe-timeout).
    // Nor is one whose lease waits for a member (bounded by its own --wait).
    if (conn === state.takeover?.conn || state.waiting.has(conn) || state.describing.has(conn) || isLeaseWaiter(state, conn)) continue;
    const deadline = conn.lastActive + limit;
    if (deadline > now) return deadline;
    hangUp(state, conn, `ETIMEDOUT (${conn.out.length > 0 ? "not reading its replies" : conn.inSince !== null ? "idle, a request unfinished" : "idle"})`);
  }
  return Infinity;
}

/**
 * Take spent budgets back (see budget.ts): cut off whoever hogs the request bytes, then serve requests that
 * waited on the reply budget, cutting off a stalled holder if they still cannot go.
 */
function tendBudgets(state: BrokerState): void {
  let cut = false;
  for (let hog = requestHog(state); hog; hog = requestHog(state), cut = true)
    hangUp(state, hog, "ENOBUFS (the broker's request bytes are spent and its unfinished request is the oldest)");
  if (cut) state.env.collectGarbage(false);
  if (state.waiting.size === 0) return;
  for (const conn of [...state.waiting]) if (state.conns.get(conn.fd) === conn) serveConn(state, conn, 0);
  const hog = replyHog(state, state.env.now());
  if (hog) hangUp(state, hog, "ENOBUFS (the broker's reply budget is spent and it took no reply for --drain-timeout)");
}

/** Pool work that is due, and the leases that can go now (or whose wait is over); returns the next deadline. */
function servePools(state: BrokerState): number {
  if (state.pools.byName.size === 0) return Infinity;
  const { serve, next } = tendPools(state);
  for (const conn of serve) if (state.conns.get(conn.fd) === conn) serveConn(state, conn, 0);
  return next;
}

/** Serve again each connection whose put now has its fd described (or waited long enough); returns the next deadline. */
function resumeDescribed(state: BrokerState): number {
  if (state.describing.size === 0) return Infinity;
  const now = state.env.now();
  let next = Infinity;
  for (const [conn, d] of state.describing) {
    if (described(d, now) === null) next = Math.min(next, d.deadline);
    else if (state.conns.get(conn.fd) === conn) serveConn(state, conn, 0);
  }
  return next;
}

/**
 * Log when every closer thread is stuck and their queue is full, and when that ends. Meanwhile the loop reads and
 * accepts nothing (pollSet): each request or connection could bring more fds to close, and those would pile up.
 */
function noteClosersBacklog(state: BrokerState): void {
  const full = offloadBacklogged();
  if (full === state.closersBacklogged) return;
  state.closersBacklogged = full;
  const s = offloadStats();
  const detail = full
    ? `all ${s.threads} closer threads are stuck in close() or fstat() and ${s.queued} fds wait: not reading or accepting until one returns`
    : "a closer thread returned: reading and accepting again";
  logEvent(state, { op: "close", result: full ? "EAGAIN" : "ok", detail });
}

/** One turn of the loop: wait for at most `maxWaitMs`, then do everything that is ready; returns how many fds were. */
function turn(state: BrokerState, maxWaitMs = MAX_POLL_MS): number {
  const nextIdle = cutIdle(state);
  const nextDescribed = resumeDescribed(state);
  const nextPools = servePools(state);
  const now = state.env.now();
  const budgetWait = state.waiting.size > 0 ? now + BUDGET_RETRY_MS : Infinity;
  const wake = Math.min(
    state.nextExpiry, nextIdle, nextDescribed, nextPools, budgetWait, now + offloadCheckInMs(), state.acceptPausedUntil > now ? state.acceptPausedUntil : Infinity,
  );
  syncInterest(state);
  // Queued log lines are retried soon rather than waited for: fd 2 may be shared and is not ours to watch.
  const logWait = state.env.flushLog() ? Infinity : LOG_RETRY_MS;
  const ready = epollWait(state.epfd, Math.max(0, Math.min(maxWaitMs, logWait, wake - now)));
  // Closer threads report finished jobs on their wake fd (src/sys/offload.ts): a put waiting for fstat resumes at once.
  let woken = false;
  for (let i = 0; i < ready.count; i++) {
    const fd = ready.fds[i]!;
    const gen = ready.gens[i]!;
    if (gen !== 0) {
      // A connection closed earlier in this batch is gone, and one that took its fd number has another gen.
      const conn = state.conns.get(fd);
      if (conn?.gen === gen) serveConn(state, conn, ready.events[i]!);
    } else if (fd === state.wakeFd) woken = true;
    // Accepting may have stopped earlier in this batch (a takeover began, a stop): the listener waits for the
    // registration to catch up.
    else if (fd === state.listenFd) {
      if (!state.stopping && !state.takeover && state.env.now() >= state.acceptPausedUntil) acceptNew(state);
    } else pidExited(state, fd);
  }
  tendOffload(woken);
  resumeDescribed(state);
  servePools(state);
  noteClosersBacklog(state);
  tendBudgets(state);
  expireDue(state);
  progressTakeover(state);
  tendMemory(state.memory, ready.count > 0, state.env.now(), state.env.collectGarbage);
  return ready.count;
}

/** Stop listening, give pending replies up to `drainMs`, then close every connection and every held fd. */
async function shutDown(state: BrokerState): Promise<void> {
  const t = state.takeover;
  // Once the snapshot is out, the new broker may be serving from our listener even if it never confirms.
  const socketIsTheirs = state.handedOver || t?.phase === "sent";
  if (t?.phase === "draining") {
    closeConn(state, t.conn);
    abortTakeover(state, "this broker is stopping");
  }
  if (state.listenFd !== null) {
    unwatchListener(state);
    // Off the loop too: connections still in its backlog may carry client fds, which closing it releases.
    closeOffThread(state.listenFd);
    state.listenFd = null;
    if (state.config.path !== null && !socketIsTheirs) removeSocketFile(state, state.config.path);
  }
  if (state.handedOver) return finishHandover(state);
  const deadline = state.env.now() + state.config.limits.drainMs;
  // Replies still owed: queued ones, and puts whose fd is being described (answered within --describe-timeout).
  while ((state.describing.size > 0 || [...state.conns.values()].some((c) => c.out.length > 0)) && state.env.now() < deadline) {
    turn(state, 50);
    await macrotask();
  }
  const held = closeEverything(state);
  logEvent(state, { op: "stop", result: "ok", detail: `closed ${count(held, "entry", "entries")}` });
}

/**
 * Only the file this broker bound: if it was removed and another broker started on the path since, that one's
 * file stays. A broker that took over as another user may not be allowed to remove the file (its directory is not
 * its own). The stop goes on: a socket file nobody answers on is stale, and the next broker replaces it.
 */
function removeSocketFile(state: BrokerState, path: string): void {
  try {
    if (!unlinkAddress(path, state.config.socketFile))
      logEvent(state, { op: "stop", result: "ok", detail: "the socket file is gone or no longer the one this broker bound: left alone" });
  } catch (e) {
    logEvent(state, { op: "stop", result: isSysError(e) ? e.code : "EIO", detail: `the socket file stays: ${(e as Error).message}` });
  }
}

/** Close every connection, every held fd and the spare; returns how many entries there were. */
export function closeEverything(state: BrokerState): number {
  for (const conn of state.conns.values()) closeConn(state, conn);
  const held = state.entries.size;
  closeAllEntries(state);
  closeAllPools(state);
  if (state.spareFd !== null) close(state.spareFd);
  state.spareFd = null;
  close(state.epfd);
  state.epfd = -1;
  return held;
}

/** The new broker has everything: send it our last reply, drop our copies, and go. */
async function finishHandover(state: BrokerState): Promise<void> {
  const to = state.takeover!.conn;
  const deadline = state.env.now() + state.config.limits.drainMs;
  while (to.out.length > 0 && state.conns.has(to.fd) && state.env.now() < deadline) {
    flushConn(state, to);
    if (to.out.length > 0) poll([{ fd: to.fd, events: C.POLLOUT }], 50);
    await macrotask();
  }
  const conns = state.conns.size - 1;
  const held = closeEverything(state);
  logEvent(state, { op: "stop", result: "ok", detail: `handed ${count(held, "entry", "entries")} and ${count(conns, "connection", "connections")} to pid ${to.peer.pid}` });
}

/**
 * Run until `state.stopping` is set (by a signal handler, or a caller), then shut down cleanly. Bun's event loop
 * (signal handlers, a closer Worker's error) gets a turn whenever a wait ends with nothing ready (a timeout, or
 * EINTR: a signal arrived), and otherwise every YIELD_EVERY_MS: a yield per turn cost a promise, a setImmediate
 * and an epoll_pwait2 of Bun's own per request, about a tenth of what a get cost the broker (docs/benchmarks.md).
 */
export async function runLoop(state: BrokerState): Promise<void> {
  let yielded = state.env.now();
  while (!state.stopping) {
    const ready = turn(state);
    const now = state.env.now();
    if (ready > 0 && now - yielded < YIELD_EVERY_MS) continue;
    await macrotask();
    yielded = now;
  }
  await shutDown(state);
  state.env.flushLog(state.config.limits.drainMs);
}
