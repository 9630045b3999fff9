// Pools through a takeover (takeover.ts sends, receive-takeover.ts and start.ts take): every member travels as its
// fd (one being connected, as its connecting socket), with its SPEC (null: a member a client put, never re-opened)
// and its refill backoff; every lease in progress with its id, lessee, times and either the pidfd it is bound to
// (the fd itself, not the pid, which may be reused before the new broker looks) or the index of its connection
// among those handed over; every waiter as its connection's index and deadline (the connection goes over with its
// lease request, keeping its place in line); and the counters. The lessee keeps its own copy of the member
// throughout: nothing is reopened, so a server sees no new connection.
//
// From the moment the snapshot goes out until the commit, the old broker's pools are frozen, as its entries are:
// what the snapshot says must not change behind it, and no fd in a part not yet sent may be closed. No refill,
// revocation or exit is acted on: its pidfds leave its epoll, and return if the takeover is abandoned (an exit
// meanwhile is then seen at once: a pidfd stays readable).
import { connectTarget, type ConnectSpec } from "../open/connect.ts";
import { parseSpec } from "../open/spec.ts";
import { checkName, MAX_FDS_PER_FRAME, ProtocolError } from "../proto/index.ts";
import { C, epollAdd, epollRemove } from "../sys/index.ts";
import { isAllowed } from "./access.ts";
import { logEvent } from "./log.ts";
import { endLease, joinPool, newPools, poolOf, watchPidfd, type Lease, type Member, type PoolStats } from "./pools.ts";
import type { BrokerState, Conn } from "./state.ts";

/** Members described in one part at most (each has at most two fds; parts stay far below PART_BYTES). */
const MEMBERS_PER_PART = 1000;

interface LeaseMeta {
  id: number;
  pid: number;
  uid: number;
  granted: number;
  expires: number | null;
  /** Bound to its process: its pidfd follows the member's fd. */
  pidfd: boolean;
  /** Index of its connection among those handed over, or null (bound to its process only). */
  conn: number | null;
}

interface MemberMeta {
  pool: string;
  spec: string | null;
  socket: boolean;
  /** Its fd comes with it: open, or (with `connectDeadline`) being connected. */
  fd: boolean;
  connectDeadline: number | null;
  retryAt: number | null;
  backoffMs: number;
  lease: LeaseMeta | null;
}

interface PoolsHead {
  pools: { name: string; waiters: { conn: number; deadline: number }[] }[];
  stats: PoolStats;
  lastLeaseId: number;
}

/** What the new broker received: the head, and each member with its own fds. */
export interface TakenPools {
  /** null until its part came (receiveTakeover refuses a snapshot without it). */
  head: PoolsHead | null;
  /** `target`: where a member being connected connects, checked as the part was taken. */
  members: { meta: MemberMeta; fd: number | null; pidfd: number | null; target: ConnectSpec | null }[];
}

/** The counters taken from a snapshot: those of this version (0 if a broker of another one lacks one), nothing else. */
const STATS = Object.keys(newPools().stats) as (keyof PoolStats)[];

const finite = (n: number) => (Number.isFinite(n) ? n : null);

/** The snapshot's pool parts: a head (pools, waiters, counters), then members with their fds. None without pools. */
export function poolParts(state: BrokerState, handing: readonly Conn[]): { body: Record<string, unknown>; fds: number[] }[] {
  const pools = state.pools;
  if (pools.byName.size === 0) return [];
  const index = new Map(handing.map((c, i) => [c, i]));
  const head: PoolsHead = {
    pools: [...pools.byName.values()].map((p) => ({
      name: p.name,
      waiters: p.waiters.flatMap((w) => (index.has(w.conn) ? [{ conn: index.get(w.conn)!, deadline: w.deadline }] : [])),
    })),
    stats: pools.stats,
    lastLeaseId: pools.lastLeaseId,
  };
  const parts: { body: Record<string, unknown>; fds: number[] }[] = [{ body: { pools: head }, fds: [] }];
  let members: MemberMeta[] = [];
  let fds: number[] = [];
  for (const pool of pools.byName.values())
    for (const m of pool.members) {
      const fd = m.connecting ? m.connecting.fd : m.fd;
      const l = m.lease;
      const mine = [...(fd >= 0 ? [fd] : []), ...(l?.pidfd != null ? [l.pidfd] : [])];
      if (fds.length + mine.length > MAX_FDS_PER_FRAME || members.length >= MEMBERS_PER_PART) {
        parts.push({ body: { members }, fds });
        members = [];
        fds = [];
      }
      members.push({
        pool: pool.name, spec: m.spec, socket: m.socket, fd: fd >= 0, connectDeadline: m.connecting?.deadline ?? null,
        retryAt: finite(m.retryAt), backoffMs: m.backoffMs,
        lease: l && {
          id: l.id, pid: l.pid, uid: l.uid, granted: l.granted, expires: finite(l.expires), pidfd: l.pidfd !== null,
          conn: l.conn && index.has(l.conn) ? index.get(l.conn)! : null,
        },
      });
      fds.push(...mine);
    }
  if (members.length > 0) parts.push({ body: { members }, fds });
  return parts;
}

/** The snapshot is out: nothing in the pools may change until the takeover commits or is abandoned. */
export function freezePools(state: BrokerState): void {
  for (const pidfd of state.pools.pidfds.keys()) epollRemove(state.epfd, pidfd);
}

/** The takeover was abandoned after the snapshot went out: the pools live on here. */
export function thawPools(state: BrokerState): void {
  for (const [pidfd, lease] of state.pools.pidfds) {
    try {
      epollAdd(state.epfd, pidfd, C.EPOLLIN, 0);
    } catch (e) {
      // Still the lease's (closed when it ends); only its lessee's exit goes unseen: its --ttl or release ends it.
      logEvent(state, { op: "pool", names: [lease.pool.name], result: "error", detail: `lease ${lease.id}: its pidfd is not watched again: ${(e as Error).message}` });
    }
  }
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isNumOrNull = (v: unknown) => v === null || isNum(v);
const isIndex = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

function isLeaseMeta(v: unknown): v is LeaseMeta {
  const l = v as LeaseMeta;
  return typeof l === "object" && l !== null && isIndex(l.id) && [l.pid, l.uid, l.granted].every(isNum) && isNumOrNull(l.expires)
    && typeof l.pidfd === "boolean" && (l.conn === null || isIndex(l.conn));
}

function isMemberMeta(v: unknown): v is MemberMeta {
  const m = v as MemberMeta;
  return typeof m === "object" && m !== null && typeof m.pool === "string" && (m.spec === null || typeof m.spec === "string")
    && typeof m.socket === "boolean" && typeof m.fd === "boolean" && isNumOrNull(m.connectDeadline) && isNumOrNull(m.retryAt)
    && isNum(m.backoffMs) && (m.lease === null || isLeaseMeta(m.lease));
}

function isHead(v: unknown): v is PoolsHead {
  const h = v as PoolsHead;
  return typeof h === "object" && h !== null && Array.isArray(h.pools) && isIndex(h.lastLeaseId) && typeof h.stats === "object" && h.stats !== null
    && STATS.every((k) => h.stats[k] === undefined || isIndex(h.stats[k]))
    && h.pools.every((p) => typeof p?.name === "string" && Array.isArray(p.waiters) && p.waiters.every((w) => isIndex(w?.conn) && isNum(w?.deadline)));
}

/**
 * Take one pool part of a snapshot (its body and its own fds, which stay the caller's until this returns) into
 * `taken`; false if the part is not a pool part.
 */
export function takePoolPart(taken: TakenPools, body: Record<string, unknown>, fds: readonly number[]): boolean {
  if (body.pools !== undefined) {
    if (!isHead(body.pools) || fds.length > 0) throw new ProtocolError("takeover pools do not match their fds");
    body.pools.pools.forEach((p) => checkName(p.name));
    taken.head = body.pools;
    return true;
  }
  if (!Array.isArray(body.members)) return false;
  let at = 0;
  for (const meta of body.members as unknown[]) {
    if (!isMemberMeta(meta)) throw new ProtocolError("takeover pool member is malformed");
    checkName(meta.pool);
    const fd = meta.fd ? fds[at++] : null;
    const pidfd = meta.lease?.pidfd ? fds[at++] : null;
    if (fd === undefined || pidfd === undefined) throw new ProtocolError("takeover pool members do not match their fds");
    // Checked here, where a throw closes every fd of the snapshot, not in adoptPools, where the members not yet
    // installed would stay open.
    let target: ConnectSpec | null = null;
    if (fd !== null && meta.connectDeadline !== null) {
      target = meta.spec === null ? null : connectTarget(parseSpec(meta.spec));
      if (!target) throw new ProtocolError("takeover pool member is being connected without a connect SPEC");
    }
    taken.members.push({ meta, fd, pidfd, target });
  }
  if (at !== fds.length) throw new ProtocolError("takeover pool members do not match their fds");
  return true;
}

/**
 * Install the pools taken over; `conns` are the connections handed over, by index (null: refused here). Every fd
 * is in the state before anything that can fail, so closeEverything closes them all on any failure.
 */
export function adoptPools(state: BrokerState, taken: TakenPools, handed: readonly (Conn | null)[]): void {
  const pools = state.pools;
  // Admitting a later one may have evicted an earlier one (admitOrRefuse).
  const conns = handed.map((c) => (c && state.conns.get(c.fd) === c ? c : null));
  const head = taken.head!;
  for (const k of STATS) pools.stats[k] = head.stats[k] ?? 0;
  pools.lastLeaseId = head.lastLeaseId;
  for (const p of head.pools) poolOf(state, p.name);
  const bind: [Lease, number][] = [];
  const orphans: Lease[] = [];
  for (const { meta, fd, pidfd, target } of taken.members) {
    const pool = poolOf(state, meta.pool);
    const m: Member = {
      fd: -1, spec: meta.spec, socket: meta.socket, lease: null, connecting: null, retryAt: meta.retryAt ?? Infinity, backoffMs: meta.backoffMs,
    };
    if (fd !== null) m.fd = fd;
    joinPool(state, pool, m);
    if (fd !== null && target !== null) {
      m.connecting = { fd, spec: target, done: false, deadline: meta.connectDeadline! };
      m.fd = -1;
    }
    const l = meta.lease;
    if (!l) continue;
    const lease: Lease = {
      id: l.id, pool, member: m, conn: l.conn === null ? null : (conns[l.conn] ?? null), pid: l.pid, uid: l.uid, pidfd: null, granted: l.granted,
      expires: l.expires ?? Infinity,
    };
    m.lease = lease;
    pools.leases.set(lease.id, lease);
    if (pidfd !== null) {
      // Owned through the lease at once (closeAllPools closes it); watched below.
      lease.pidfd = pidfd;
      bind.push([lease, pidfd]);
    } else if (lease.conn === null) orphans.push(lease);
  }
  for (const p of head.pools) {
    const pool = pools.byName.get(p.name)!;
    for (const w of p.waiters) {
      const conn = conns[w.conn];
      if (!conn || pools.waiting.has(conn)) continue;
      // One this broker's rules do not let lease is not queued (it would hold up the line): its request is handled
      // at the first turn, with the requests held back for a budget, and refused as any other.
      if (!isAllowed(state.config.rules, state.config.ownerUid, conn.peer, "lease", p.name)) {
        state.waiting.add(conn);
        continue;
      }
      const waiter = { conn, pool, deadline: w.deadline };
      pool.waiters.push(waiter);
      pools.waiting.set(conn, waiter);
    }
  }
  for (const [lease, pidfd] of bind) {
    lease.pidfd = null;
    watchPidfd(state, lease, pidfd);
  }
  // A lease whose connection this broker refused ended with it.
  for (const lease of orphans) endLease(state, lease, "its connection did not survive the takeover");
}
