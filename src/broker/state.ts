// Everything a broker knows, as plain data passed to every function: no module-level state, so two brokers
// (or a test) can live in one process, and takeover can hand the whole thing over. The one thing they share is the
// process's pool of closer threads (src/sys/offload.ts): threads are per process, and the --closer-threads of the
// broker started last is the one in force.
import { createLogSink, enqueueLine, flushLogSink } from "./log-sink.ts";
import { newMemoryTending, type MemoryTending } from "./memory.ts";
import type { FullEntryInfo, Reader, ReceivedFrame } from "../proto/index.ts";
import { epollCreate } from "../sys/index.ts";
import type { Peer, Rule } from "./access.ts";
import type { FileId } from "../peer/listen.ts";
import type { Describing } from "./describe-entry.ts";
import { newPools, type Pools } from "./pools.ts";

export interface Limits {
  /** Connections served at once; one more is told so and closed (or takes an idle one's place). */
  maxConns: number;
  /** Of those, slots only the owner and root may take: others never lock them out. */
  reservedConns: number;
  /** Connections one uid other than the owner and root may hold. */
  maxConnsPerUid: number;
  /** fds held as entries. */
  maxFds: number;
  /** A client with no whole request in, or no whole reply taken, for this long is cut off (ms). */
  clientTimeoutMs: number;
  /** Bytes of reply queued for one client before it is cut off. */
  maxQueuedBytes: number;
  /** Largest frame body accepted. */
  maxBody: number;
  /** Names in one request. */
  maxNames: number;
  /** Request bytes held (frames arriving or waiting to be handled) across all connections. */
  maxRequestBytes: number;
  /** Reply bytes queued across all connections. */
  maxReplyBytes: number;
  /** Duplicated fds queued in replies across all connections. */
  maxQueuedFds: number;
  /** Longest wait for pending replies on shutdown, for clients at a takeover, and for a stalled takeover (ms). */
  drainMs: number;
  /** Longest wait for a put's fd to be described (ms); after it the entry is stored described as not answering. */
  describeTimeoutMs: number;
  /** Most threads closing and describing client fds off the loop (src/sys/offload.ts). */
  closerThreads: number;
  /** Longest lease, whatever --ttl its client asks for (ms; Infinity: none but the client's). */
  maxLeaseTtlMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxConns: 1000,
  reservedConns: 16,
  maxConnsPerUid: 100,
  maxFds: 10000,
  clientTimeoutMs: 60_000,
  maxQueuedBytes: 4 << 20,
  maxBody: 1 << 20,
  maxNames: 1024,
  maxRequestBytes: 8 << 20,
  maxReplyBytes: 16 << 20,
  maxQueuedFds: 10000,
  drainMs: 2000,
  describeTimeoutMs: 1000,
  closerThreads: 8,
  maxLeaseTtlMs: Infinity,
};

export interface Entry {
  fd: number;
  info: FullEntryInfo;
  /** Bytes `info` takes in a reply body (UTF-8 JSON and a comma), measured once: replies are split into parts by it. */
  bytes: number;
  /**
   * `info` as JSON, made when a reply first shows it whole and kept if short: a get writes its reply from it instead
   * of serializing the same metadata again for every request (docs/benchmarks.md, issue 9). Null until then.
   */
  json: string | null;
}

/** A reply not yet taken by the client; its fds are our own duplicates, closed once sent. */
interface Outgoing {
  bytes: Uint8Array;
  fds: number[];
}

export interface Conn {
  fd: number;
  /** From SO_PEERCRED and SO_PEERGROUPS at accept. */
  peer: Peer;
  /** Root or the broker's own uid. */
  privileged: boolean;
  reader: Reader;
  /** Frames read but not yet handled because replies are piling up; their fds are ours until handled. */
  inbox: ReceivedFrame[];
  out: Outgoing[];
  outBytes: number;
  outFds: number;
  /** Request bytes this connection holds (its reader's buffer and its inbox), as counted in `state.load`. */
  inBytes: number;
  /** Since when it has held any (null: none): the budget of request bytes is taken back from the oldest. */
  inSince: number | null;
  /**
   * Its last progress: accept, a whole request received or a whole reply frame taken. Not every byte: a client
   * that sends or reads one byte at a time makes none (--client-timeout).
   */
  lastActive: number;
  /** Close once the queued replies are sent (after a fatal protocol error). */
  closeAfterFlush: boolean;
  /** Read to end of file: the client shut its side down and its socket's queue is empty (closeDrainedSocket). */
  drained: boolean;
  /** Tells this connection's epoll events from those of an earlier one whose fd had the same number. */
  gen: number;
  /** What its fd is registered for in the broker's epoll (interest.ts). */
  interest: number;
  /** On `BrokerState.dirty`, to be brought up to date this turn (markDirty). */
  dirty: boolean;
}

/** What every connection together holds of the global budgets (Limits.maxRequestBytes, ...). */
interface Load {
  requestBytes: number;
  replyBytes: number;
  replyFds: number;
  /** Connections of uids other than the owner and root, in all and per uid. */
  others: number;
  byUid: Map<number, number>;
}

interface BrokerConfig {
  /** The socket address as given, for messages and status. */
  label: string;
  /** The socket file to remove on exit, or null (abstract address, or taken over). */
  path: string | null;
  /** The file at `path` when this broker bound it (or took it over): only that one is removed. */
  socketFile: FileId | null;
  rules: Rule[];
  /** The uid that may do anything besides root: the broker's own. */
  ownerUid: number;
  log: "text" | "json";
  limits: Limits;
}

export interface BrokerEnv {
  now(): number;
  /** Queue one log line. */
  log(line: string): void;
  /** Write queued log lines without blocking longer than `waitMs`; true when none are left. */
  flushLog(waitMs?: number): boolean;
  /** Ask the runtime to collect garbage: a quick young-generation pass, or a full one. */
  collectGarbage(full: boolean): void;
}

/** A frame of a takeover's snapshot not yet sent; its fds are still their owners' (entries, connections). */
export interface SnapshotPart {
  kind: number;
  body: Record<string, unknown>;
  fds: number[];
}

/** A takeover in progress, on the running (old) broker's side. */
export interface Takeover {
  /** The new broker's connection. */
  conn: Conn;
  id: number;
  /** draining: finishing replies before the snapshot; sent: snapshot sent, waiting for the commit. */
  phase: "draining" | "sent";
  /**
   * Draining: after this, clients still not done are cut off and the snapshot goes anyway. Sent: the new broker
   * is let go if it has not committed by this, and took no part of the snapshot in the last --drain-timeout.
   */
  deadline: number;
  /** Sent: the parts of the snapshot still to send, sent as the new broker takes them. */
  parts: SnapshotPart[];
  /** Sent: the connections in the snapshot, which are the new broker's from then on (not closed here until the end). */
  handing: Set<Conn>;
}

export interface BrokerState {
  config: BrokerConfig;
  env: BrokerEnv;
  listenFd: number | null;
  entries: Map<string, Entry>;
  conns: Map<number, Conn>;
  started: number;
  /** Earliest expiry among entries, or Infinity; recomputed when one passes. */
  nextExpiry: number;
  stopping: boolean;
  takeover: Takeover | null;
  /** Everything now belongs to a new broker: exit without removing the socket file or draining clients. */
  handedOver: boolean;
  /** accept() hit EMFILE/ENFILE: try again after this time rather than spin on a readable listener. */
  acceptPausedUntil: number;
  /** An fd kept in reserve: at EMFILE it is closed for a moment to accept one connection and tell it why. */
  spareFd: number | null;
  nofile: { soft: number; hard: number };
  memory: MemoryTending;
  load: Load;
  /** Connections with a request held back because a global budget is spent: served as soon as it is not. */
  waiting: Set<Conn>;
  /** Connections whose first request, a put, waits for its fd to be described; their later requests wait too. */
  describing: Map<Conn, Describing>;
  /** Every closer thread was stuck and their queue full at the last turn (logged when it starts and ends). */
  closersBacklogged: boolean;
  /** The loop's epoll: the listener, every connection and the closer threads' wake fd are registered once. */
  epfd: number;
  /** The last connection generation handed out (Conn.gen); 0 marks the listener's and the wake fd's events. */
  lastGen: number;
  /** What the listener is registered for, or null before it is registered. */
  listenInterest: number | null;
  /** The closer threads' wake fd once registered (they start with the first close). */
  wakeFd: number | null;
  /**
   * Connections whose interest may have to change (their queues changed): brought up to date each turn. An array
   * with a flag on each connection, not a Set: a Set cleared every turn leaves a discarded hash table behind each
   * time, which young-generation collections keep (docs/benchmarks.md: about 3 MiB after 10,000 puts).
   */
  dirty: Conn[];
  /** Connections that were not read because a global gate was closed: registered again when it opens. */
  parked: Set<Conn>;
  /** Every connection, the one with the oldest progress (Conn.lastActive) first: idle ones are found at the front. */
  byActivity: Set<Conn>;
  /** The connection at the back of byActivity, when known: touching it again moves nothing. */
  newest: Conn | null;
  /** Pools of members lent out by leases (pools.ts). */
  pools: Pools;
}

const stderrSink = createLogSink(2);
export const realEnv: BrokerEnv = {
  now: () => Date.now(),
  log: (line) => enqueueLine(stderrSink, line),
  flushLog: (waitMs) => flushLogSink(stderrSink, waitMs),
  collectGarbage: (full) => Bun.gc(full),
};

export function createState(config: BrokerConfig, listenFd: number | null, env: BrokerEnv = realEnv): BrokerState {
  return {
    config,
    env,
    listenFd,
    entries: new Map(),
    conns: new Map(),
    started: env.now(),
    nextExpiry: Infinity,
    stopping: false,
    takeover: null,
    handedOver: false,
    acceptPausedUntil: 0,
    spareFd: null,
    nofile: { soft: 0, hard: 0 },
    memory: newMemoryTending(),
    load: { requestBytes: 0, replyBytes: 0, replyFds: 0, others: 0, byUid: new Map() },
    waiting: new Set(),
    describing: new Map(),
    closersBacklogged: false,
    epfd: epollCreate(),
    lastGen: 0,
    listenInterest: null,
    wakeFd: null,
    dirty: [],
    parked: new Set(),
    byActivity: new Set(),
    newest: null,
    pools: newPools(),
  };
}
