// What each fd of the broker is registered for in its epoll, kept up to date at O(what changed) per turn, so a
// turn costs the ready connections and not every connection.
//
// A connection waits for POLLOUT while replies are queued, for nothing while requests it sent wait to be handled,
// and for POLLIN otherwise. Global gates also stop reading (stopping, closer threads backlogged, the budget of
// request bytes spent, a takeover under way): flipping every registration when one closes would cost every
// connection again, so nobody is touched then. A connection that turns out readable while a gate is closed is
// registered for nothing and parked; when the gates open, the parked ones are registered again. Errors and hang-ups
// are reported whatever the registration, as poll does.
import { offloadWakeFd } from "../sys/offload.ts";
import { C, epollAdd, epollModify, epollRemove } from "../sys/index.ts";
import { mayRead } from "./budget.ts";
import type { BrokerState, Conn } from "./state.ts";

/** Whether reading from `conn` is held back by something that is not its own doing. */
export function gated(state: BrokerState, conn: Conn): boolean {
  const t = state.takeover;
  return state.stopping || state.closersBacklogged || (t !== null ? t.conn !== conn : !mayRead(state));
}

function wanted(state: BrokerState, conn: Conn): number {
  if (conn.out.length > 0) return C.EPOLLOUT;
  if (conn.inbox.length > 0 || conn.closeAfterFlush || gated(state, conn)) return 0;
  return C.EPOLLIN;
}

/** Register a new connection (openConn). */
export function watchConn(state: BrokerState, conn: Conn): void {
  conn.gen = ++state.lastGen;
  conn.interest = wanted(state, conn);
  epollAdd(state.epfd, conn.fd, conn.interest, conn.gen);
  state.byActivity.add(conn);
  state.newest = conn;
}

/** Forget a connection before its fd is closed or handed on (closeConn). */
export function unwatchConn(state: BrokerState, conn: Conn): void {
  epollRemove(state.epfd, conn.fd);
  conn.dirty = false;
  state.parked.delete(conn);
  state.byActivity.delete(conn);
  if (state.newest === conn) state.newest = null;
}

/**
 * The connection made progress: it moves to the back of the idle order, unless it is there already or moved there
 * within this millisecond (the order stays sorted by lastActive). Each delete and add leaves garbage that only a
 * full collection frees (BrokerState.dirty): a busy client's every request did.
 */
export function touch(state: BrokerState, conn: Conn): void {
  const now = state.env.now();
  if (state.newest !== conn && conn.lastActive !== now) {
    state.byActivity.delete(conn);
    state.byActivity.add(conn);
    state.newest = conn;
  }
  conn.lastActive = now;
}

/** Its queues changed: its registration is brought up to date at the end of the turn (syncInterest). */
export function markDirty(state: BrokerState, conn: Conn): void {
  if (conn.dirty) return;
  conn.dirty = true;
  state.dirty.push(conn);
}

function sync(state: BrokerState, conn: Conn): void {
  const w = wanted(state, conn);
  if (w === 0 && conn.out.length === 0 && conn.inbox.length === 0 && !conn.closeAfterFlush) state.parked.add(conn);
  else state.parked.delete(conn);
  if (w === conn.interest) return;
  epollModify(state.epfd, conn.fd, w, conn.gen);
  conn.interest = w;
}

/**
 * Bring registrations up to date: the connections whose queues changed this turn, the parked ones once reading is
 * allowed again, the listener, and the closer threads' wake fd once there is one.
 */
export function syncInterest(state: BrokerState): void {
  // An unwatched connection (closed, or handed to a new broker) was unflagged and is skipped.
  for (const conn of state.dirty) {
    if (!conn.dirty) continue;
    conn.dirty = false;
    if (state.conns.get(conn.fd) === conn) sync(state, conn);
  }
  state.dirty.length = 0;
  // While the budget of request bytes is spent, nothing parked may read yet: the loop skips them all at once.
  if (state.parked.size > 0 && !state.stopping && !state.closersBacklogged && (state.takeover !== null || mayRead(state)))
    for (const conn of state.parked) if (!gated(state, conn)) sync(state, conn);
  syncListener(state);
  const wake = offloadWakeFd();
  if (wake !== null && state.wakeFd !== wake) {
    epollAdd(state.epfd, wake, C.EPOLLIN, 0);
    state.wakeFd = wake;
  }
}

function syncListener(state: BrokerState): void {
  const fd = state.listenFd;
  if (fd === null) return;
  const open = !state.stopping && state.takeover === null && !state.closersBacklogged && state.env.now() >= state.acceptPausedUntil;
  const w = open ? C.EPOLLIN : 0;
  if (state.listenInterest === w) return;
  if (state.listenInterest === null) epollAdd(state.epfd, fd, w, 0);
  else epollModify(state.epfd, fd, w, 0);
  state.listenInterest = w;
}

/** Forget the listener before it is closed or handed on. */
export function unwatchListener(state: BrokerState): void {
  if (state.listenFd !== null && state.listenInterest !== null) epollRemove(state.epfd, state.listenFd);
  state.listenInterest = null;
}
