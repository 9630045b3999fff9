// Pools: a name holding members, each its own fd (opened on its own, never a dup of another member), lent to one
// client at a time by a lease and taken back when the lease ends. A lease ends when its client releases it, when
// its connection closes, or, for a lease bound to its process (`lease -- CMD`, which execs and closes the
// connection), when that process exits: a pidfd in the loop's epoll says so at once. At --ttl it is revoked.
//
// A member is handed out only if healthy: a socket that has hung up, errored or holds unread input (a reply a
// previous lessee left behind: its protocol state is unknown) is dropped instead. Members the broker opened from a
// SPEC are re-opened when dropped, with backoff (a server restarting); members a client put are not.
//
// Waiting: a lease with no idle member waits in its pool's FIFO queue, as a request the loop serves again
// (handlers' WAIT), up to its wait; waiters go in arrival order, and one whose connection closes leaves the queue.
import { openSpec, parseSpec } from "../open/spec.ts";
import type { LeaseRequest } from "../proto/index.ts";
import { beginConnect, connectTarget, finishConnect, type Connecting } from "../open/connect.ts";
import { C, close, epollAdd, epollRemove, isSysError, pidfdOpen, poll, shutdown, socketInfo } from "../sys/index.ts";
import { closeOffThread } from "../sys/offload.ts";
import { logEvent } from "./log.ts";
import type { BrokerState, Conn } from "./state.ts";

/** First and longest wait before a member opened from a SPEC is re-opened after it broke or failed to open. */
const REFILL_FIRST_MS = 100;
const REFILL_MAX_MS = 5000;
/** Longest a connect SPEC may take before the attempt counts as failed. */
const CONNECT_TIMEOUT_MS = 5000;

export interface Member {
  /** The member's fd; -1 while it is being (re)opened. */
  fd: number;
  /** The SPEC it is re-opened from, or null for a member a client put (dropped for good when it breaks). */
  spec: string | null;
  /** Health checks apply to sockets only: a file or pipe has no hang-up or stale reply to look for. */
  socket: boolean;
  lease: Lease | null;
  connecting: (Connecting & { deadline: number }) | null;
  /** When to try opening it again (Infinity: not waiting to). */
  retryAt: number;
  backoffMs: number;
}

export interface Lease {
  id: number;
  pool: Pool;
  member: Member;
  /** The connection that asked; null once it closed (a lease bound to its process outlives it). */
  conn: Conn | null;
  pid: number;
  uid: number;
  /** Bound to the process: its pidfd, registered in the loop's epoll. */
  pidfd: number | null;
  granted: number;
  expires: number;
}

export interface Waiter {
  conn: Conn;
  pool: Pool;
  deadline: number;
}

export interface Pool {
  name: string;
  members: Member[];
  waiters: Waiter[];
}

export interface PoolStats {
  granted: number;
  waited: number;
  timeouts: number;
  released: number;
  revoked: number;
  dropped: number;
  refilled: number;
}

export interface Pools {
  byName: Map<string, Pool>;
  leases: Map<number, Lease>;
  /** Lease of each pidfd in the epoll. */
  pidfds: Map<number, Lease>;
  /** Every connection waiting in a pool's queue, and its place there (a connection waits for one lease at a time). */
  waiting: Map<Conn, Waiter>;
  /** Members in all pools: with the entries, what --max-fds bounds (a pool-put flood would otherwise not be). */
  members: number;
  lastLeaseId: number;
  stats: PoolStats;
}

export const newPools = (): Pools => ({
  byName: new Map(), leases: new Map(), pidfds: new Map(), waiting: new Map(), members: 0, lastLeaseId: 0,
  stats: { granted: 0, waited: 0, timeouts: 0, released: 0, revoked: 0, dropped: 0, refilled: 0 },
});

/** Add a member to its pool, counted (Pools.members). */
export function joinPool(state: BrokerState, pool: Pool, m: Member): void {
  pool.members.push(m);
  state.pools.members++;
}

export function poolOf(state: BrokerState, name: string): Pool {
  let p = state.pools.byName.get(name);
  if (!p) state.pools.byName.set(name, (p = { name, members: [], waiters: [] }));
  return p;
}

/** `--pool NAME=SIZE:SPEC`: SIZE members to open from SPEC; those that fail now are retried with backoff. */
export function addSpecMembers(state: BrokerState, name: string, size: number, spec: string): void {
  const pool = poolOf(state, name);
  for (let i = 0; i < size; i++) {
    const m: Member = { fd: -1, spec, socket: false, lease: null, connecting: null, retryAt: 0, backoffMs: REFILL_FIRST_MS };
    joinPool(state, pool, m);
    reopen(state, pool, m, state.env.now());
  }
}

/** A member a client put (`put --pool`): the fd is the pool's now. */
export function addMember(state: BrokerState, name: string, fd: number): Pool {
  const pool = poolOf(state, name);
  joinPool(state, pool, { fd, spec: null, socket: isSocket(fd), lease: null, connecting: null, retryAt: Infinity, backoffMs: REFILL_FIRST_MS });
  return pool;
}

function isSocket(fd: number): boolean {
  try {
    socketInfo(fd);
    return true;
  } catch {
    return false;
  }
}

/** Open (or begin connecting) a member from its SPEC; on failure, schedule the next try. */
function reopen(state: BrokerState, pool: Pool, m: Member, now: number): void {
  m.retryAt = Infinity;
  try {
    const spec = parseSpec(m.spec!);
    const connect = connectTarget(spec);
    if (connect) {
      const c = beginConnect(connect);
      m.connecting = { ...c, deadline: now + CONNECT_TIMEOUT_MS };
      settleConnect(state, pool, m, now);
    } else {
      m.fd = openSpec(spec);
      m.socket = isSocket(m.fd);
      opened(state, pool, m);
    }
  } catch (e) {
    failed(state, pool, m, now, (e as Error).message);
  }
}

function opened(state: BrokerState, pool: Pool, m: Member): void {
  m.backoffMs = REFILL_FIRST_MS;
  state.pools.stats.refilled++;
  logEvent(state, { op: "pool", names: [pool.name], result: "ok", detail: `member opened from ${m.spec}` });
}

function failed(state: BrokerState, pool: Pool, m: Member, now: number, why: string): void {
  if (m.connecting) close(m.connecting.fd);
  m.connecting = null;
  m.fd = -1;
  m.retryAt = now + m.backoffMs;
  logEvent(state, { op: "pool", names: [pool.name], result: "error", detail: `${m.spec}: ${why}; next try in ${m.backoffMs} ms` });
  m.backoffMs = Math.min(REFILL_MAX_MS, m.backoffMs * 2);
}

function settleConnect(state: BrokerState, pool: Pool, m: Member, now: number): void {
  const c = m.connecting!;
  try {
    if (!finishConnect(c)) {
      if (now >= c.deadline) failed(state, pool, m, now, `no answer in ${CONNECT_TIMEOUT_MS} ms`);
      return;
    }
  } catch (e) {
    return failed(state, pool, m, now, (e as Error).message);
  }
  m.fd = c.fd;
  m.socket = true;
  m.connecting = null;
  opened(state, pool, m);
}

/** Whether a member can be handed out: open, and for a socket, no hang-up, error or unread input. */
function healthy(m: Member): boolean {
  if (m.fd < 0) return false;
  if (!m.socket) return true;
  try {
    return poll([{ fd: m.fd, events: C.POLLIN | C.POLLRDHUP }], 0)[0] === 0;
  } catch {
    return false;
  }
}

/** Close a member's fd (off the loop: it may be a client's) and re-open it from its SPEC, or forget it. */
function drop(state: BrokerState, pool: Pool, m: Member, why: string, now: number): void {
  if (m.fd >= 0) closeOffThread(m.fd);
  m.fd = -1;
  m.lease = null;
  state.pools.stats.dropped++;
  logEvent(state, { op: "pool", names: [pool.name], result: "dropped", detail: why });
  if (m.spec === null) {
    pool.members.splice(pool.members.indexOf(m), 1);
    state.pools.members--;
  } else {
    m.retryAt = now + m.backoffMs;
    m.backoffMs = Math.min(REFILL_MAX_MS, m.backoffMs * 2);
  }
}

/** An idle healthy member, dropping unhealthy idle ones found on the way; null if none. */
function takeIdle(state: BrokerState, pool: Pool, now: number): Member | null {
  // No copy of the list on this path, taken by every lease: a dropped member a client put leaves it (splice), and
  // the index steps back so the member that took its place is looked at too.
  const members = pool.members;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    if (m.lease || m.fd < 0 || m.connecting) continue;
    if (healthy(m)) return m;
    drop(state, pool, m, "hung up, errored or holding unread input while idle", now);
    if (members[i] !== m) i--;
  }
  return null;
}

export type LeaseOutcome = { lease: Lease } | "wait" | { refused: string; code: string };

/**
 * Try to grant `req` to `conn`: a lease, "wait" (queued, or still waiting its turn), or a refusal (no such pool,
 * the wait is over). A waiter is only served first in line, so leases go in arrival order.
 */
export function tryLease(state: BrokerState, conn: Conn, req: LeaseRequest): LeaseOutcome {
  const pool = state.pools.byName.get(req.name);
  if (!pool) return { code: "ENOENT", refused: `no pool ${JSON.stringify(req.name)}` };
  const now = state.env.now();
  const waiting = state.pools.waiting;
  let w = waiting.get(conn);
  // First in line, or nobody in line: a newcomer never takes a member from under a waiter.
  if (w ? pool.waiters[0] === w : pool.waiters.length === 0) {
    const m = takeIdle(state, pool, now);
    if (m) {
      if (w) leaveQueue(state, w);
      return { lease: grant(state, pool, m, conn, req, now) };
    }
  }
  if (!w) {
    if (req.waitMs <= 0) return { code: "ETIMEDOUT", refused: `no idle member in pool ${JSON.stringify(req.name)}` };
    w = { conn, pool, deadline: now + req.waitMs };
    pool.waiters.push(w);
    waiting.set(conn, w);
    state.pools.stats.waited++;
  }
  if (now < w.deadline) return "wait";
  leaveQueue(state, w);
  state.pools.stats.timeouts++;
  return { code: "ETIMEDOUT", refused: `no member of pool ${JSON.stringify(req.name)} came free in ${req.waitMs} ms (--wait)` };
}

/** Take a waiter out of its pool's queue (usually its head: shift is then cheap). */
function leaveQueue(state: BrokerState, w: Waiter): void {
  state.pools.waiting.delete(w.conn);
  const q = w.pool.waiters;
  if (q[0] === w) q.shift();
  else q.splice(q.indexOf(w), 1);
}

function grant(state: BrokerState, pool: Pool, m: Member, conn: Conn, req: LeaseRequest, now: number): Lease {
  const pools = state.pools;
  const lease: Lease = {
    id: ++pools.lastLeaseId, pool, member: m, conn, pid: conn.peer.pid, uid: conn.peer.uid, pidfd: null, granted: now,
    expires: now + Math.min(req.ttlMs ?? Infinity, state.config.limits.maxLeaseTtlMs),
  };
  if (req.bindPid) watchPidfd(state, lease, pidfdOpen(conn.peer.pid));
  m.lease = lease;
  pools.leases.set(lease.id, lease);
  pools.stats.granted++;
  return lease;
}

/** Bind `lease` to the process of `pidfd` (which is the lease's now, closed with it on every path). */
export function watchPidfd(state: BrokerState, lease: Lease, pidfd: number): void {
  try {
    epollAdd(state.epfd, pidfd, C.EPOLLIN, 0);
  } catch (e) {
    close(pidfd);
    throw e;
  }
  lease.pidfd = pidfd;
  state.pools.pidfds.set(pidfd, lease);
}

/** Forget a lease, and the pidfd it was bound to; false if it had ended already. */
function forgetLease(state: BrokerState, lease: Lease): boolean {
  const pools = state.pools;
  if (!pools.leases.delete(lease.id)) return false;
  if (lease.pidfd !== null) {
    epollRemove(state.epfd, lease.pidfd);
    pools.pidfds.delete(lease.pidfd);
    close(lease.pidfd);
    lease.pidfd = null;
  }
  return true;
}

/** End a lease: its member is idle again if still healthy, else dropped (and re-opened from its SPEC). */
export function endLease(state: BrokerState, lease: Lease, why: string): void {
  const pools = state.pools;
  if (!forgetLease(state, lease)) return;
  const m = lease.member;
  m.lease = null;
  pools.stats.released++;
  const now = state.env.now();
  if (m.fd >= 0 && !healthy(m)) drop(state, lease.pool, m, `returned hung up, errored or with unread input (${why})`, now);
  else logEvent(state, { op: "release", names: [lease.pool.name], result: "ok", detail: `lease ${lease.id} of pid ${lease.pid}: ${why}` });
}

/** The pidfd of a lease bound to its process polled readable: the process has exited. */
export function pidExited(state: BrokerState, pidfd: number): boolean {
  const lease = state.pools.pidfds.get(pidfd);
  if (!lease) return false;
  endLease(state, lease, `pid ${lease.pid} exited`);
  return true;
}

/** Whether `conn` waits in a pool's queue (it is waiting on us, not idle). */
export function isLeaseWaiter(state: BrokerState, conn: Conn): boolean {
  return state.pools.waiting.has(conn);
}

/** A connection closed: it leaves every queue, and its leases end unless bound to their process. */
export function connClosed(state: BrokerState, conn: Conn): void {
  // Handed over: its leases and place in line live on in the new broker (pool-handover.ts); nothing to end or log.
  if (state.handedOver) return;
  const w = state.pools.waiting.get(conn);
  if (w) leaveQueue(state, w);
  for (const lease of state.pools.leases.values()) {
    if (lease.conn !== conn) continue;
    lease.conn = null;
    if (lease.pidfd === null) endLease(state, lease, "its connection closed");
  }
}

/**
 * Time-driven pool work, each turn: revoke leases past their --ttl, re-open members whose time has come, finish
 * connects. Returns the waiting connections to serve again (first in line of a pool with an idle member, or past
 * their wait) and the next time anything is due.
 */
export function tendPools(state: BrokerState): { serve: Conn[]; next: number } {
  // A takeover's snapshot is out, or committed (the members are the new broker's, shared with it): nothing may
  // change behind it (pool-handover.ts).
  if (state.takeover?.phase === "sent") return { serve: [], next: Infinity };
  const pools = state.pools;
  const now = state.env.now();
  let next = Infinity;
  // Deleting the entry being visited (revoke) is safe while iterating a Map.
  for (const lease of pools.leases.values()) {
    if (lease.expires <= now) revoke(state, lease, now);
    else next = Math.min(next, lease.expires);
  }
  const serve: Conn[] = [];
  for (const pool of pools.byName.values()) {
    for (const m of pool.members) {
      if (m.connecting) settleConnect(state, pool, m, now);
      else if (m.fd < 0 && m.spec !== null && m.retryAt <= now) reopen(state, pool, m, now);
      if (m.connecting) next = Math.min(next, now + 10, m.connecting.deadline);
      else if (m.fd < 0 && m.spec !== null) next = Math.min(next, m.retryAt);
    }
    const first = pool.waiters[0];
    if (first && pool.members.some((m) => !m.lease && m.fd >= 0)) serve.push(first.conn);
    for (const w of pool.waiters) {
      if (w.deadline <= now) serve.push(w.conn);
      else next = Math.min(next, w.deadline);
    }
  }
  return { serve, next };
}

/** --ttl passed: a socket is shut down (which cuts the lessee's copy too) and re-opened; anything else is dropped. */
function revoke(state: BrokerState, lease: Lease, now: number): void {
  const m = lease.member;
  state.pools.stats.revoked++;
  if (m.socket && m.fd >= 0) {
    try {
      shutdown(m.fd, C.SHUT_RDWR);
    } catch (e) {
      if (!isSysError(e, "ENOTCONN")) throw e;
    }
  }
  logEvent(state, { op: "revoke", names: [lease.pool.name], result: "ok", detail: `lease ${lease.id} of pid ${lease.pid} outlived its --ttl` });
  forgetLease(state, lease);
  // The lessee keeps its copy of anything but a socket: re-opening it would let one more holder in than the pool
  // has members (a pool of files used as a semaphore), so the member leaves the pool for good.
  if (!m.socket) m.spec = null;
  drop(state, lease.pool, m, `lease ${lease.id} revoked`, now);
}

/** What `ls` shows of a pool. */
export function poolInfo(pool: Pool, now: number) {
  const leased = pool.members.filter((m) => m.lease);
  return {
    name: pool.name,
    size: pool.members.length,
    idle: pool.members.filter((m) => !m.lease && m.fd >= 0).length,
    opening: pool.members.filter((m) => m.fd < 0).length,
    leased: leased.map((m) => ({ id: m.lease!.id, pid: m.lease!.pid, uid: m.lease!.uid, ageMs: now - m.lease!.granted })),
    waiters: pool.waiters.length,
  };
}

/** Close every member and pidfd (at exit). */
export function closeAllPools(state: BrokerState): void {
  for (const lease of state.pools.leases.values()) if (lease.pidfd !== null) close(lease.pidfd);
  for (const pool of state.pools.byName.values())
    for (const m of pool.members) {
      if (m.fd >= 0) closeOffThread(m.fd);
      if (m.connecting) close(m.connecting.fd);
    }
  state.pools = newPools();
}
