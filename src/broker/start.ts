// Starting a broker: open what --hold names and adopt socket-activation fds (before listening, so a bad spec
// fails before anyone can connect), raise RLIMIT_NOFILE for the configured limits, listen, signal readiness.
import { inheritedFds } from "../describe/inherited.ts";
import { RefusedError, UsageError } from "../errors.ts";
import { adoptListenFds } from "../launch/listen-fds.ts";
import { parseUnixAddress } from "../peer/address.ts";
import { listenUnix, socketFileOf } from "../peer/listen.ts";
import { openSpec, parseSpec } from "../open/spec.ts";
import { haproxyStatsPath, takeHaproxySockets } from "../peer/haproxy.ts";
import { requireName } from "../proto/index.ts";
import { closeAll, getNofileLimit, isOpen, setNofileLimit } from "../sys/index.ts";
import { closeAllOffThread, startOffload } from "../sys/offload.ts";
import type { Rule } from "./access.ts";
import { newEntryInfo, storeEntry } from "./entries.ts";
import { addSpecMembers } from "./pools.ts";
import { adoptPools } from "./pool-handover.ts";
import { feedConn, openConn } from "./conn.ts";
import { count, logEvent } from "./log.ts";
import { admitOrRefuse, closeEverything, openSpare } from "./loop.ts";
import { confirmTakeover, receiveTakeover, type Snapshot } from "./receive-takeover.ts";
import { notifySupervisor, writeReadyFd } from "../peer/ready.ts";
import { createState, DEFAULT_LIMITS, realEnv, type BrokerEnv, type BrokerState, type Conn, type Limits } from "./state.ts";

export interface BrokerOptions {
  socket: string;
  /** Socket file permissions (default 0o600). */
  mode?: number;
  /** Entries opened at start: name and SPEC (file:, tcp:, udp:, unix:, fd:). */
  holds?: { name: string; spec: string }[];
  /** Pools opened at start: name, member count and SPEC (pools.ts). */
  pools?: { name: string; size: number; spec: string }[];
  /** Adopt LISTEN_FDS/LISTEN_FDNAMES fds as entries. */
  adoptListenFds?: boolean;
  rules?: Rule[];
  limits?: Partial<Limits>;
  log?: "text" | "json";
  /** Write a newline here (then close it) once accepting. */
  readyFd?: number;
  /** Take the listener, entries and connections over from the broker running at `socket`. */
  takeover?: boolean;
  /** With `takeover`: a broker running as this uid is taken over too, not only one of ours or root's. */
  brokerUid?: number;
  env?: BrokerEnv;
}

/** fds beyond held entries: connections and the runtime's own; below this the limits cannot be met. */
function nofileNeeded(l: Limits): number {
  return l.maxFds + l.maxConns + 128;
}

/**
 * fds a connection may cost: itself, one parked by a put still arriving, and the puts of one turn's reads
 * waiting in its inbox (conn.ts reads at most 4 messages a turn, each with at most one put's fd).
 */
const FDS_PER_CONN = 6;

/**
 * Room as well for duplicates queued for clients that are slow to take their replies: the budget, or one request
 * alone when it is larger (budget.ts), at most --max-names or every entry.
 */
function nofileWanted(l: Limits): number {
  // The closer threads hold fds too: up to 1024 waiting to be closed, two of their own each, and a reserve of four.
  return l.maxFds + Math.max(l.maxQueuedFds, l.maxNames, l.maxFds) + l.maxConns * FDS_PER_CONN + 1024 + 2 * l.closerThreads + 4 + 256;
}

/** The defaults, with the two that follow other limits, and any given (undefined: not given). */
function resolveLimits(given: Partial<Limits> = {}): Limits {
  const set = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<Limits>;
  const maxConns = set.maxConns ?? DEFAULT_LIMITS.maxConns;
  const limits: Limits = {
    ...DEFAULT_LIMITS,
    reservedConns: Math.min(DEFAULT_LIMITS.reservedConns, Math.floor(maxConns / 4)),
    maxQueuedFds: set.maxFds ?? DEFAULT_LIMITS.maxFds,
    ...set,
  };
  if (limits.reservedConns >= limits.maxConns)
    throw new UsageError(`--reserved-conns ${limits.reservedConns} leaves no connection for anyone else: it must be below --max-conns ${limits.maxConns}`);
  return limits;
}

function raiseNofile(need: number): { soft: number; hard: number } {
  const lim = getNofileLimit();
  const target = Math.min(lim.hard, need);
  if (lim.soft >= target) return lim;
  const raised = { soft: target, hard: lim.hard };
  setNofileLimit(raised);
  return raised;
}

/** Open every --hold and adopted fd; on any failure, close those already opened. */
function openInitial(opts: BrokerOptions): { name: string; fd: number }[] {
  const opened: { name: string; fd: number }[] = [];
  // Telling inherited fds from the runtime's reads /proc: only worth it when there is something to open.
  if (!opts.holds?.length && !opts.adoptListenFds) return opened;
  const inherited = new Set(inheritedFds());
  // Every SPEC is parsed before any is opened: a bad last one must not leave the first one's socket file behind.
  // haproxy:PATH is not a SPEC of src/open: it holds every listener of that HAProxy, each as NAME/ADDRESS-NAME.
  const holds = (opts.holds ?? []).map((h) => {
    const stats = haproxyStatsPath(h.spec);
    return { name: h.name, stats, spec: stats === null ? parseSpec(h.spec) : null };
  });
  try {
    for (const h of holds) {
      const name = requireName(h.name);
      const more = h.spec !== null ? [{ name, fd: openSpec(h.spec, inherited) }] : takeHaproxySockets(h.stats!).map((t) => ({ name: `${name}/${t.name}`, fd: t.fd }));
      const twice = more.find((m) => opened.some((o) => o.name === m.name));
      opened.push(...more);
      if (twice) throw new UsageError(`entry ${JSON.stringify(twice.name)} is held twice`);
    }
    if (opts.adoptListenFds) {
      for (const got of adoptListenFds(inherited)) {
        let name = requireName(got.name);
        for (let n = 1; opened.some((o) => o.name === name); n++) name = `${got.name}.${n}`;
        opened.push({ name, fd: got.fd });
      }
    }
    return opened;
  } catch (e) {
    closeAll(opened.map((o) => o.fd));
    throw e;
  }
}

export function startBroker(opts: BrokerOptions): BrokerState {
  const limits = resolveLimits(opts.limits);
  const addr = parseUnixAddress(opts.socket);
  const env = opts.env ?? realEnv;
  // Checked before anything is taken: once a takeover has committed, failing would lose every entry.
  if (opts.readyFd !== undefined && !isOpen(opts.readyFd)) throw new UsageError(`--ready-fd ${opts.readyFd}: not an open fd`);
  // As an entry held twice: the second would otherwise be dropped at start, logged as if a takeover had kept it.
  const pools = opts.pools ?? [];
  const twice = pools.find((p, i) => pools.findIndex((q) => q.name === p.name) !== i);
  if (twice) throw new UsageError(`pool ${JSON.stringify(twice.name)} is given twice`);
  // First, so that fds a takeover brings are closed off this thread too, and the fds kept aside for the first
  // closer thread (which starts with the first close) are counted from the start.
  startOffload({ maxThreads: limits.closerThreads });
  const initial = openInitial(opts);
  let listenFd: number;
  let nofile: { soft: number; hard: number };
  let snap: Snapshot | null = null;
  try {
    nofile = raiseNofile(nofileWanted(limits));
    if (opts.takeover) {
      snap = receiveTakeover(addr.label, limits.drainMs + 10_000, opts.brokerUid);
      listenFd = snap.listenFd;
    } else listenFd = listenUnix(addr, { mode: opts.mode ?? 0o600, backlog: Math.max(128, Math.min(limits.maxConns, 4096)) });
  } catch (e) {
    closeAll(initial.map((o) => o.fd));
    throw e;
  }
  // After a takeover, the file the old broker served on: the path may have been taken by then, but it is the best
  // evidence there is, and a file replaced later is still told apart.
  const socketFile = socketFileOf(addr);
  const config = { label: addr.label, path: addr.path, socketFile, rules: opts.rules ?? [], ownerUid: process.getuid?.() ?? 0, log: opts.log ?? "text", limits };
  const state = createState(config, listenFd, env);
  state.nofile = nofile;
  if (snap) {
    try {
      adoptSnapshot(state, snap);
    } catch (e) {
      // The old broker refused our commit and serves on: everything we took is only copies, and goes.
      closeEverything(state);
      closeAll([listenFd, ...initial.map((o) => o.fd)]);
      throw e;
    }
  }
  const owner = { uid: config.ownerUid, gid: process.getgid?.() ?? 0, pid: process.pid };
  for (const o of initial) {
    if (state.entries.has(o.name)) {
      logEvent(state, { op: "hold", names: [o.name], result: "EEXIST", detail: "kept the entry taken over" });
      closeAll([o.fd]);
    } else storeEntry(state, o.fd, newEntryInfo(state, o.name, o.fd, owner, null));
  }
  for (const p of pools) {
    // The same options as the old broker's, usually: its members (leased ones too) are the pool now.
    if (state.pools.byName.has(p.name)) logEvent(state, { op: "pool", names: [p.name], result: "EEXIST", detail: "kept the pool taken over" });
    else addSpecMembers(state, p.name, p.size, p.spec);
  }
  if (nofile.soft < nofileNeeded(limits))
    logEvent(state, { op: "start", result: "warning", detail: `RLIMIT_NOFILE is ${nofile.soft} (hard ${nofile.hard}); --max-fds ${limits.maxFds} may not be reachable` });
  logEvent(state, { op: "start", result: "ok", detail: `listening on ${addr.label}, holding ${count(state.entries.size, "entry", "entries")}, pid ${process.pid}` });
  // Before the ready fd closes, so the spare never takes its number (a supervisor may watch that fd).
  state.spareFd = openSpare();
  // A supervisor that went away is logged, not fatal: the broker already holds (perhaps took over) everything.
  try {
    if (opts.readyFd !== undefined) writeReadyFd(opts.readyFd);
  } catch (e) {
    logEvent(state, { op: "ready-fd", result: "error", detail: (e as Error).message });
  }
  try {
    notifySupervisor("READY=1");
  } catch (e) {
    logEvent(state, { op: "notify", result: "error", detail: (e as Error).message });
  }
  return state;
}

/** Install what the old broker handed over, then let it go. Half-received frames continue where they stopped. */
function adoptSnapshot(state: BrokerState, snap: Snapshot): void {
  for (const e of snap.entries) storeEntry(state, e.fd, e.info);
  // By their index in the snapshot, which leases and waiters refer to; null for one refused here.
  const conns: (Conn | null)[] = [];
  for (const c of snap.conns) {
    let conn;
    try {
      conn = openConn(state, c.fd);
    } catch {
      closeAllOffThread([c.fd, ...c.fds]);
      conns.push(null);
      continue;
    }
    const admitted = admitOrRefuse(state, conn);
    if (admitted) feedConn(state, conn, c.pending, c.fds);
    else closeAllOffThread(c.fds);
    conns.push(admitted ? conn : null);
  }
  if (snap.pools) adoptPools(state, snap.pools, conns);
  try {
    confirmTakeover(snap);
  } catch (e) {
    if (e instanceof RefusedError) throw e;
    // We hold everything already; an old broker that vanished before answering changes nothing for us.
    logEvent(state, { op: "takeover", result: "warning", detail: `commit not confirmed: ${(e as Error).message}` });
  }
  const pools = snap.pools ? `, ${count(state.pools.byName.size, "pool", "pools")} (${count(state.pools.leases.size, "lease", "leases")})` : "";
  logEvent(state, { op: "takeover", result: "ok", detail: `took ${count(snap.entries.length, "entry", "entries")} and ${count(snap.conns.length, "connection", "connections")}${pools}` });
}
