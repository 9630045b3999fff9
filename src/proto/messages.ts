// What each frame kind means and what its body must hold. Requests are validated here, once, so handlers get
// typed values and a bad field is a ProtocolError (answered EPROTO) rather than a crash.
import { UsageError } from "../errors.ts";
import { firstUnsafe, isPrintableAscii } from "../text.ts";
import { ProtocolError } from "./frame.ts";

export const OP = {
  put: 1,
  get: 2,
  rm: 3,
  ls: 4,
  status: 5,
  /** A new broker asks the running one for its listening socket and every entry (see docs/protocol.md). */
  takeover: 6,
  /** The new broker has everything; the old one may exit. */
  takeoverCommit: 7,
  /** Check out one idle member of a pool, exclusively. */
  lease: 8,
  /** Give a leased member back. */
  release: 9,
} as const;

export const REPLY = {
  ok: 0x80,
  error: 0x81,
  /** A further part of a reply whose fds did not fit one frame. */
  more: 0x82,
} as const;

type OpName = keyof typeof OP;

/** fds a request of each kind carries (the reader closes any others at arrival): only `put`, its one. */
export const REQUEST_FDS: Readonly<Record<number, number>> = { [OP.put]: 1 };
// Built once: the broker names the operation of every request it logs.
const opNames: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([name, kind]) => [kind, name]));
export const opName = (kind: number): string => opNames[kind] ?? `op${kind}`;

/** Longest entry name, in bytes of UTF-8. */
const MAX_NAME = 255;

interface PutRequest {
  name: string;
  /** Time to live in ms; null keeps the entry until removed. */
  ttlMs: number | null;
  replace: boolean;
  /** Add the fd as a member of pool `name` instead of storing an entry. */
  pool: boolean;
}
export interface LeaseRequest {
  name: string;
  /** How long to wait for a member to come free, in ms (0: not at all). */
  waitMs: number;
  /** After this the broker revokes the lease (ms), or null. */
  ttlMs: number | null;
  /** The lease lasts as long as the asking process rather than its connection. */
  bindPid: boolean;
}
interface GetRequest {
  names: string[];
  all: boolean;
  remove: boolean;
}
interface RmRequest {
  names: string[];
}

/**
 * What `ls` and `get` report about an entry. What the fd refers to, who stored it and when are told only to the
 * broker's owner, root and the uid that stored it (docs/security.md); anyone else gets the name, kind and expiry.
 */
export interface EntryInfo {
  name: string;
  /** The kind of fd: file, pipe, socket, dir, chr, blk, ... */
  kind: string;
  /** When it expires, ms since the epoch, or null. */
  expires: number | null;
  /** Path, address or other detail of what the fd refers to. */
  what?: string;
  uid?: number;
  gid?: number;
  pid?: number;
  /** When it was stored, ms since the epoch. */
  created?: number;
}

/** Everything the broker knows about an entry: what it keeps, and what takeover moves with each fd. */
export type FullEntryInfo = Required<EntryInfo>;

interface ErrorBody {
  code: string;
  message: string;
}

const encoder = new TextEncoder();

/**
 * What is wrong with an entry name, or null. A name is shown to people (ls, logs, errors) and compared byte for
 * byte, so it must print as itself: well-formed UTF-8 (no lone surrogate, which JSON can carry) and no control
 * or format character (C0, DEL, C1, U+202E and the like), or two different names could print alike.
 */
function nameProblem(name: unknown): string | null {
  if (typeof name !== "string" || name.length === 0) return "entry name must be a non-empty string";
  // The usual name, checked without the Unicode-property regex: compiling that costs about 0.4 ms in a fresh
  // process, and `get NAME -- CMD` checks its names on a service's start-up path.
  if (isPrintableAscii(name)) return name.length > MAX_NAME ? `entry name longer than ${MAX_NAME} bytes` : null;
  if (!name.isWellFormed()) return "entry name is not well-formed UTF-8 (it holds a lone surrogate)";
  if (encoder.encode(name).length > MAX_NAME) return `entry name longer than ${MAX_NAME} bytes`;
  const bad = firstUnsafe(name);
  return bad ? `entry name holds ${bad}, a control or format character` : null;
}

export function checkName(name: unknown): string {
  const problem = nameProblem(name);
  if (problem) throw new ProtocolError(problem);
  return name as string;
}

/** checkName for a name a person gave (an argument, --hold NAME=): a usage error, exit 2 in the CLI. */
export function requireName(name: string): string {
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`bad entry name ${JSON.stringify(name)}: ${problem}`);
  return name;
}

function names(body: Record<string, unknown>, max: number): string[] {
  const list = body.names ?? [];
  if (!Array.isArray(list)) throw new ProtocolError("names must be an array");
  if (list.length > max) throw new ProtocolError(`at most ${max} names per request`);
  return list.map(checkName);
}

export function parsePut(body: Record<string, unknown>): PutRequest {
  const ttl = body.ttlMs ?? null;
  if (ttl !== null && (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0))
    throw new ProtocolError("ttlMs must be a positive number or null");
  return { name: checkName(body.name), ttlMs: ttl, replace: body.replace === true, pool: body.pool === true };
}

const msOrNull = (v: unknown, field: string): number | null => {
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new ProtocolError(`${field} must be a number of ms, 0 or more, or null`);
  return v;
};

export function parseLease(body: Record<string, unknown>): LeaseRequest {
  const ttl = msOrNull(body.ttlMs, "ttlMs");
  if (ttl === 0) throw new ProtocolError("ttlMs must be positive or null");
  return { name: checkName(body.name), waitMs: msOrNull(body.waitMs, "waitMs") ?? 0, ttlMs: ttl, bindPid: body.bindPid === true };
}

/** `quiet`: no reply at all (the client does not wait for one). */
export function parseRelease(body: Record<string, unknown>): { lease: number; quiet: boolean } {
  if (typeof body.lease !== "number" || !Number.isInteger(body.lease) || body.lease < 1) throw new ProtocolError("lease must be a lease id");
  return { lease: body.lease, quiet: body.quiet === true };
}

export function parseGet(body: Record<string, unknown>, maxNames: number): GetRequest {
  const req = { names: names(body, maxNames), all: body.all === true, remove: body.remove === true };
  if (!req.all && req.names.length === 0) throw new ProtocolError("get needs at least one name, or all");
  return req;
}

export function parseRm(body: Record<string, unknown>, maxNames: number): RmRequest {
  const req = { names: names(body, maxNames) };
  if (req.names.length === 0) throw new ProtocolError("rm needs at least one name");
  return req;
}
