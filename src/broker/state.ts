// Everything a broker knows, as plain data passed to every function: no module-level state, so two brokers
// (or a test) can live in one process, and takeover can hand the whole thing over.
import { createLogSink, enqueueLine, flushLogSink } from "./log-sink.ts";
import { newMemoryTending, type MemoryTending } from "./memory.ts";
import type { EntryInfo, Reader, ReceivedFrame } from "../proto/index.ts";
import type { Peer, Rule } from "./access.ts";
import type { Describing } from "./describe-entry.ts";

export interface Limits {
  /** Connections served at once; one more is told so and closed. */
  maxConns: number;
  /** fds held as entries. */
  maxFds: number;
  /** An idle client, or one that takes none of its reply, is cut off after this long (ms). */
  clientTimeoutMs: number;
  /** Bytes of reply queued for one client before it is cut off. */
  maxQueuedBytes: number;
  /** Largest frame body accepted. */
  maxBody: number;
  /** Longest wait for pending replies on shutdown (ms). */
  drainMs: number;
  /** Longest wait for a put's fd to be described (ms); after it the entry is stored described as not answering. */
  describeTimeoutMs: number;
  /** Most threads closing and describing client fds off the loop (src/sys/offload.ts). */
  closerThreads: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxConns: 1000,
  maxFds: 10000,
  clientTimeoutMs: 60_000,
  maxQueuedBytes: 4 << 20,
  maxBody: 1 << 20,
  drainMs: 2000,
  describeTimeoutMs: 1000,
  closerThreads: 8,
};

export interface Entry {
  fd: number;
  info: EntryInfo;
  /** Bytes `info` takes in a reply body (UTF-8 JSON and a comma), measured once: replies are split into parts by it. */
  bytes: number;
}

/** A reply not yet taken by the client; its fds are our own duplicates, closed once sent. */
export interface Outgoing {
  bytes: Uint8Array;
  fds: number[];
}

export interface Conn {
  fd: number;
  /** From SO_PEERCRED at accept; supplementary groups are read lazily, for gid rules only. */
  peer: Peer;
  reader: Reader;
  /** Frames read but not yet handled because replies are piling up; their fds are ours until handled. */
  inbox: ReceivedFrame[];
  out: Outgoing[];
  outBytes: number;
  outFds: number;
  lastActive: number;
  /** Close once the queued replies are sent (after a fatal protocol error). */
  closeAfterFlush: boolean;
}

export interface BrokerConfig {
  /** The socket address as given, for messages and status. */
  label: string;
  /** The socket file to remove on exit, or null (abstract address, or taken over). */
  path: string | null;
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

/** A takeover in progress, on the running (old) broker's side. */
export interface Takeover {
  /** The new broker's connection. */
  conn: Conn;
  id: number;
  /** draining: finishing replies before the snapshot; sent: snapshot sent, waiting for the commit. */
  phase: "draining" | "sent";
  /** After this, clients still not done are cut off and the snapshot goes anyway. */
  deadline: number;
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
  /** Connections whose first request, a put, waits for its fd to be described; their later requests wait too. */
  describing: Map<Conn, Describing>;
  /** Every closer thread was stuck and their queue full at the last turn (logged when it starts and ends). */
  closersBacklogged: boolean;
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
    describing: new Map(),
    closersBacklogged: false,
  };
}
