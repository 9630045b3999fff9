// One function per broker operation. Each takes an open session (so many operations can share a connection).
import { OP, requireName, type EntryInfo } from "../proto/index.ts";
import { closeAll, E, SysError } from "../sys/index.ts";
import { RefusedError } from "../errors.ts";
import { call, notify, type Reply, type Session } from "./session.ts";

export interface PutOptions {
  /** Time to live in ms; the broker closes the entry when it passes. */
  ttlMs?: number;
  /** Replace an existing entry of that name instead of failing with EEXIST. */
  replace?: boolean;
}

/** Store a copy of `fd` under `name`. The caller keeps its own fd. */
export function put(s: Session, name: string, fd: number, opts: PutOptions = {}): EntryInfo {
  requireName(name);
  const reply = call(s, OP.put, { name, ttlMs: opts.ttlMs ?? null, replace: opts.replace ?? false }, [fd]);
  return withoutFds(reply).body.entry as EntryInfo;
}

/** Add a copy of `fd` to pool `name` (created if new) as a member the broker lends but cannot re-open. */
export function putMember(s: Session, name: string, fd: number): PoolInfo {
  requireName(name);
  return withoutFds(call(s, OP.put, { name, ttlMs: null, replace: false, pool: true }, [fd])).body.pool as PoolInfo;
}

export interface PoolInfo {
  name: string;
  size: number;
  idle: number;
  /** Members being (re)opened. */
  opening: number;
  /** pid and uid of each lessee are told only to the broker's owner and root. */
  leased: { id: number; pid?: number; uid?: number; ageMs: number }[];
  waiters: number;
}

export interface LeaseOptions {
  /** How long to wait for a member to come free (default 30 s; 0: not at all). */
  waitMs?: number;
  /** The broker revokes the lease after this long. */
  ttlMs?: number;
  /** The lease lasts as long as this process rather than the session (for a process about to exec). */
  bindPid?: boolean;
}

export interface Lease {
  id: number;
  pool: string;
  /** The member, owned by the caller (a copy: the broker keeps its own). */
  fd: number;
  /** When the broker revokes it (ms since the epoch), or null. */
  expires: number | null;
  /**
   * Give the member back now (closing `fd` is the caller's business). Sent without waiting for an answer: the
   * broker handles it before anything sent after it on the session.
   */
  release(): void;
}

/**
 * Check out one idle member of pool `name` exclusively, waiting up to `waitMs` in line. The lease ends with
 * release(), when the session closes, or with `bindPid` when this process exits. A wait that runs out is a
 * SysError ETIMEDOUT naming the pool. The session's own timeout must cover the wait (openSession's timeoutMs).
 */
export function lease(s: Session, name: string, opts: LeaseOptions = {}): Lease {
  requireName(name);
  const waitMs = opts.waitMs ?? 30_000;
  let reply: Reply;
  try {
    reply = call(s, OP.lease, { name, waitMs, ttlMs: opts.ttlMs ?? null, bindPid: opts.bindPid ?? false });
  } catch (e) {
    if (e instanceof RefusedError && e.code === "ETIMEDOUT") throw new SysError("lease", E.ETIMEDOUT, name, e.message.replace(/ \[ETIMEDOUT\]$/, ""));
    throw e;
  }
  if (reply.fds.length !== 1 || typeof reply.body.lease !== "number") {
    closeAll(reply.fds);
    throw new RefusedError("EPROTO", `the broker's lease reply carried ${reply.fds.length} fds`);
  }
  const id = reply.body.lease;
  let released = false;
  return {
    id, pool: name, fd: reply.fds[0]!, expires: typeof reply.body.expires === "number" ? reply.body.expires : null,
    release: () => {
      if (released) return;
      released = true;
      notify(s, OP.release, { lease: id, quiet: true });
    },
  };
}

/** The pools this client may list. */
export function pools(s: Session): PoolInfo[] {
  const body = withoutFds(call(s, OP.ls, {})).body;
  return Array.isArray(body.pools) ? (body.pools as PoolInfo[]) : [];
}

export interface GetOptions {
  /** Every entry this client may get, instead of `names`. */
  all?: boolean;
  /** Remove the entries once retrieved (in the same step). */
  remove?: boolean;
}

export interface Retrieved {
  entry: EntryInfo;
  /** Owned by the caller. */
  fd: number;
}

/** Retrieve copies of the fds of `names`, all in one round trip; all or nothing. */
export function get(s: Session, names: readonly string[], opts: GetOptions = {}): Retrieved[] {
  // A bad name is the caller's mistake: said here (exit 2), before anything is sent, rather than as EPROTO.
  for (let i = 0; i < names.length; i++) requireName(names[i]!);
  const reply = call(s, OP.get, { names, all: opts.all ?? false, remove: opts.remove ?? false });
  const entries = entriesOf(reply);
  if (entries === null || entries.length !== reply.fds.length) {
    closeAll(reply.fds);
    throw new RefusedError("EPROTO", `the broker sent ${reply.fds.length} fds for ${entries?.length ?? "unlisted"} entries`);
  }
  // Plain loops here and in entriesOf: `get NAME -- CMD` runs this in a fresh process (see src/sys/exec.ts).
  const out: Retrieved[] = [];
  for (let i = 0; i < entries.length; i++) out.push({ entry: entries[i]!, fd: reply.fds[i]! });
  return out;
}

export function rm(s: Session, names: readonly string[]): number {
  for (let i = 0; i < names.length; i++) requireName(names[i]!);
  return withoutFds(call(s, OP.rm, { names })).body.removed as number;
}

export function ls(s: Session): EntryInfo[] {
  const entries = entriesOf(withoutFds(call(s, OP.ls, {})));
  if (entries === null) throw new RefusedError("EPROTO", "the broker's entry list is malformed");
  return entries;
}

/** A reply that should carry no fds, with any it brought all the same closed: nobody asked for them. */
function withoutFds(reply: Reply): Reply {
  closeAll(reply.fds);
  return reply;
}

/** The entries listed across every part of a reply, or null if a part lists none. */
function entriesOf(reply: Reply): EntryInfo[] | null {
  const out: EntryInfo[] = [];
  for (let i = -1; i < reply.more.length; i++) {
    const listed = (i < 0 ? reply.body : reply.more[i]!.body).entries;
    if (!Array.isArray(listed)) return null;
    for (const e of listed as EntryInfo[]) out.push(e);
  }
  return out;
}

export interface BrokerStatus {
  pid: number;
  version: string;
  socket: string;
  started: number;
  uptimeMs: number;
  entries: number;
  connections: number;
  /** Pools, leases held, and counts since the start. */
  pools?: { count: number; leases: number; granted: number; waited: number; timeouts: number; released: number; revoked: number; dropped: number; refilled: number };
  limits: { maxConns: number; maxFds: number; clientTimeoutMs: number; drainMs: number; nofile: { soft: number; hard: number } } & Record<string, unknown>;
}

export function status(s: Session): BrokerStatus {
  return withoutFds(call(s, OP.status, {})).body as unknown as BrokerStatus;
}
