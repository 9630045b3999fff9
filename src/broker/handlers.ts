// The operations, dispatched on the frame kind through a table; anything else gets EPROTO. Only a put may carry an
// fd: the connection's reader (REQUEST_FDS) marks any other frame that announces one as a problem, answered
// EPROTO. A handler either takes the fds of its frame (splicing them out) or leaves them to be closed by dispatch,
// on every path; or it answers WAIT (a put whose fd is being described off the loop) and the frame, fds and all,
// is handled again later.
import { RefusedError } from "../errors.ts";
import {
  chunkBySize, MAX_FDS_PER_FRAME, OP, opName, parseGet, parseLease, parsePut, parseRelease, parseRm, ProtocolError, REPLY, type EntryInfo,
  type ReceivedFrame,
} from "../proto/index.ts";
import { isSysError } from "../sys/index.ts";
import { closeAllOffThread } from "../sys/offload.ts";
import { VERSION } from "../version.ts";
import { isAllowed, type Operation } from "./access.ts";
import { sendError, sendFrame, sendJsonFrame } from "./conn.ts";
import { described, startDescribing, stopDescribing, type EntryDescription } from "./describe-entry.ts";
import { newEntryInfo, removeEntry, storeEntry } from "./entries.ts";
import { logEvent } from "./log.ts";
import { addMember, endLease, poolInfo, tryLease } from "./pools.ts";
import { beginTakeover, commitTakeover } from "./takeover.ts";
import type { BrokerState, Conn, Entry } from "./state.ts";

/** What a handler did, for the log line; `keep` false asks the loop to hang up after the reply. */
interface Outcome {
  names: string[];
  keep: boolean;
  /** For the log line, when not plain "ok" (a request that gets no reply says here how it went). */
  result?: string;
  detail?: string;
}
/** The request cannot be finished yet: it stays first in the connection's inbox, and the loop resumes it. */
export const WAIT = "wait";
type Handler = (state: BrokerState, conn: Conn, frame: ReceivedFrame) => Outcome | typeof WAIT;

function refuse(code: string, message: string): never {
  throw new RefusedError(code, message);
}

/** The first few names, quoted: an error about 10,000 names stays one readable line. */
function quoteSome(names: readonly string[]): string {
  return `${names.slice(0, 5).map((n) => JSON.stringify(n)).join(", ")}${names.length > 5 ? ", ..." : ""}`;
}

function requireAccess(state: BrokerState, conn: Conn, op: Operation, names: readonly string[]): void {
  // The owner and root may do anything: no list of the denied to build for every request of theirs.
  if (conn.privileged) return;
  const denied = names.filter((n) => !isAllowed(state.config.rules, state.config.ownerUid, conn.peer, op, n));
  if (denied.length > 0) refuse("EACCES", `uid ${conn.peer.uid} may not ${op} ${quoteSome(denied)}`);
}

function requireEntries(state: BrokerState, names: readonly string[]): void {
  for (let i = 0; i < names.length; i++)
    if (!state.entries.has(names[i]!)) refuse("ENOENT", `no entry ${quoteSome(names.filter((n) => !state.entries.has(n)))}`);
}

/** Room for one more fd held: entries and pool members together are bounded by --max-fds. */
function requireRoom(state: BrokerState): void {
  if (state.entries.size + state.pools.members >= state.config.limits.maxFds)
    refuse("EMFILE", `the broker holds its maximum of ${state.config.limits.maxFds} fds (--max-fds)`);
}

const put: Handler = (state, conn, frame) => {
  const req = parsePut(frame.body);
  if (frame.fds.length !== 1) throw new ProtocolError(`put carries exactly one fd, not ${frame.fds.length}`);
  // A member is handed to whoever leases next: adding one is as strong as serving the pool (docs/security.md).
  requireAccess(state, conn, req.pool ? "pool-put" : "put", [req.name]);
  if (req.pool) {
    requireRoom(state);
    const pool = addMember(state, req.name, frame.fds.splice(0, 1)[0]!);
    return { names: [req.name], keep: sendFrame(state, conn, REPLY.ok, frame.id, { pool: poolInfo(pool, state.env.now()) }) };
  }
  // Checked again when the put is resumed after its fd was described: another put may have come first.
  const exists = state.entries.has(req.name);
  if (exists && !req.replace) refuse("EEXIST", `entry ${JSON.stringify(req.name)} exists (use --replace)`);
  if (!exists) requireRoom(state);
  const what = describedYet(state, conn, frame.fds[0]!);
  if (what === null) return WAIT;
  const fd = frame.fds.splice(0, 1)[0]!;
  const { uid, gid, pid } = conn.peer;
  const entry = storeEntry(state, fd, newEntryInfo(state, req.name, fd, { uid, gid, pid }, req.ttlMs, what));
  return { names: [req.name], keep: sendFrame(state, conn, REPLY.ok, frame.id, { entry: entry.info }) };
};

/** The description of a put's fd, or null while it is being taken off the loop (the loop then resumes the put). */
function describedYet(state: BrokerState, conn: Conn, fd: number): EntryDescription | null {
  const now = state.env.now();
  const d = state.describing.get(conn) ?? startDescribing(fd, now, state.config.limits.describeTimeoutMs);
  const what = described(d, now);
  if (what === null) state.describing.set(conn, d);
  return what;
}

function visible(state: BrokerState, conn: Conn, op: Operation): string[] {
  return [...state.entries.keys()].filter((n) => isAllowed(state.config.rules, state.config.ownerUid, conn.peer, op, n)).sort();
}

/**
 * What `conn` may know of an entry: everything if it is the owner, root or the uid that stored it; otherwise only
 * the name, kind and expiry (what the fd is and who stored it, from where and when, are that uid's business).
 */
function viewOf(conn: Conn, e: Entry): EntryInfo {
  if (conn.privileged || e.info.uid === conn.peer.uid) return e.info;
  return { name: e.info.name, kind: e.info.kind, expires: e.info.expires };
}

/**
 * JSON of an entry's info kept on the entry up to this length, the usual entry's size: a longer one (a path of up
 * to 4 KiB) is made again for each reply rather than kept, so a client putting many such entries cannot double
 * what they make the broker hold.
 */
const MAX_KEPT_JSON = 512;

/** An entry's info as `conn` may see it, as JSON: the whole of it is kept on the entry once made (if short). */
function viewJson(conn: Conn, e: Entry): string {
  const view = viewOf(conn, e);
  if (view !== e.info) return JSON.stringify(view);
  if (e.json !== null) return e.json;
  const json = JSON.stringify(e.info);
  if (json.length <= MAX_KEPT_JSON) e.json = json;
  return json;
}

/** `"entries":[...]` of a reply body: each entry's JSON, as JSON.stringify would join them. */
function entriesJson(conn: Conn, part: Entry[]): string {
  let json = `"entries":[`;
  for (let i = 0; i < part.length; i++) json += (i > 0 ? "," : "") + viewJson(conn, part[i]!);
  return `${json}]`;
}

/**
 * Send entries (and, for get, their fds) as one `ok` frame plus as many `more` frames as 253 fds per frame and
 * the body size limit need; every part lists the entries whose fds it carries. The bodies are what
 * JSON.stringify gives for `{entries, total, parts, ...extra}` and `{part, entries}`, written from each entry's
 * kept JSON (a get is mostly this, beside its recvmsg and sendmsg).
 */
function sendEntries(state: BrokerState, conn: Conn, id: number, entries: Entry[], withFds: boolean, extra?: Record<string, unknown>): boolean {
  const parts = chunkBySize(entries, withFds ? MAX_FDS_PER_FRAME : Infinity, (e) => e.bytes);
  const fdsOf = (part: Entry[]) => (withFds ? part.map((e) => e.fd) : []);
  // `extra` (ls's pools) after the three fields, as Object.assign would put it.
  const rest = extra === undefined ? "" : `,${JSON.stringify(extra).slice(1, -1)}`;
  const first = `{${entriesJson(conn, parts[0]!)},"total":${entries.length},"parts":${parts.length}${rest}}`;
  let keep = sendJsonFrame(state, conn, REPLY.ok, id, first, fdsOf(parts[0]!));
  for (let i = 1; i < parts.length && keep; i++) keep = sendJsonFrame(state, conn, REPLY.more, id, `{"part":${i},${entriesJson(conn, parts[i]!)}}`, fdsOf(parts[i]!));
  return keep;
}

const get: Handler = (state, conn, frame) => {
  const req = parseGet(frame.body, state.config.limits.maxNames);
  const names = req.all ? visible(state, conn, "get") : req.names;
  requireAccess(state, conn, "get", names);
  if (req.remove) requireAccess(state, conn, "rm", names);
  requireEntries(state, names);
  const keep = sendEntries(state, conn, frame.id, names.map((n) => state.entries.get(n)!), true);
  // sendFrame has either handed the fds to the kernel or queued duplicates: removing now loses nothing.
  if (req.remove && keep) for (const n of new Set(names)) removeEntry(state, n);
  return { names, keep };
};

const rm: Handler = (state, conn, frame) => {
  const req = parseRm(frame.body, state.config.limits.maxNames);
  requireAccess(state, conn, "rm", req.names);
  requireEntries(state, req.names);
  for (const n of req.names) removeEntry(state, n);
  return { names: req.names, keep: sendFrame(state, conn, REPLY.ok, frame.id, { removed: req.names.length }) };
};

const ls: Handler = (state, conn, frame) => {
  const entries = visible(state, conn, "ls").map((n) => state.entries.get(n)!);
  return { names: [], keep: sendEntries(state, conn, frame.id, entries, false, { pools: visiblePools(state, conn) }) };
};

/** The pools `conn` may list; who holds a lease (pid, uid) only for the privileged. */
function visiblePools(state: BrokerState, conn: Conn) {
  const now = state.env.now();
  const out = [];
  for (const pool of state.pools.byName.values()) {
    if (!isAllowed(state.config.rules, state.config.ownerUid, conn.peer, "ls", pool.name)) continue;
    const info = poolInfo(pool, now);
    out.push(conn.privileged ? info : { ...info, leased: info.leased.map((l) => ({ id: l.id, ageMs: l.ageMs })) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

const lease: Handler = (state, conn, frame) => {
  const req = parseLease(frame.body);
  requireAccess(state, conn, "lease", [req.name]);
  const got = tryLease(state, conn, req);
  if (got === "wait") return WAIT;
  if ("refused" in got) refuse(got.code, got.refused);
  const l = got.lease;
  const body = { lease: l.id, pool: req.name, expires: Number.isFinite(l.expires) ? l.expires : null };
  return { names: [req.name], keep: sendFrame(state, conn, REPLY.ok, frame.id, body, [l.member.fd]) };
};

/** A quiet release gets no reply, not even an error: its client has gone on to its next request already. */
const release: Handler = (state, conn, frame) => {
  const req = parseRelease(frame.body);
  const l = state.pools.leases.get(req.lease);
  if (!l || (l.conn !== conn && !conn.privileged && l.uid !== conn.peer.uid)) {
    const why = `no lease ${req.lease} of yours`;
    if (req.quiet) return { names: [], keep: true, result: "ENOENT", detail: why };
    refuse("ENOENT", why);
  }
  endLease(state, l, "released");
  return { names: [l.pool.name], keep: req.quiet || sendFrame(state, conn, REPLY.ok, frame.id, {}) };
};

const status: Handler = (state, conn, frame) => {
  // Its pid, counts and limits help an attacker time and size an attack: the owner's and root's business only.
  if (!conn.privileged) refuse("EACCES", `uid ${conn.peer.uid} may not ask for status (only the broker's owner and root may)`);
  const now = state.env.now();
  const body = {
    pid: process.pid,
    version: VERSION,
    socket: state.config.label,
    started: state.started,
    uptimeMs: now - state.started,
    entries: state.entries.size,
    connections: state.conns.size,
    pools: { count: state.pools.byName.size, leases: state.pools.leases.size, ...state.pools.stats },
    limits: { ...state.config.limits, nofile: state.nofile },
  };
  return { names: [], keep: sendFrame(state, conn, REPLY.ok, frame.id, body) };
};

const takeover: Handler = (state, conn, frame) => {
  beginTakeover(state, conn, frame);
  return { names: [], keep: true };
};

const takeoverCommit: Handler = (state, conn, frame) => {
  commitTakeover(state, conn, frame);
  return { names: [], keep: true };
};

const handlers: Record<number, Handler> = {
  [OP.put]: put, [OP.get]: get, [OP.rm]: rm, [OP.ls]: ls, [OP.status]: status, [OP.takeover]: takeover, [OP.takeoverCommit]: takeoverCommit,
  [OP.lease]: lease, [OP.release]: release,
};

/**
 * Handle one frame and log one line. Returns false when the connection should be closed after its replies, WAIT
 * when the frame is to be handled again once what it waits for is done (nothing is logged or closed then).
 */
export function dispatch(state: BrokerState, conn: Conn, frame: ReceivedFrame): boolean | typeof WAIT {
  const op = opName(frame.kind);
  const handler = handlers[frame.kind];
  let out: Outcome | typeof WAIT | null = null;
  try {
    if (frame.problem) throw new ProtocolError(frame.problem);
    if (!handler) throw new ProtocolError(`unknown operation ${frame.kind}`);
    // The snapshot is out: the new broker may only commit (anything else could change what is still being sent).
    const t = state.takeover;
    if (t?.phase === "sent" && t.conn === conn && frame.kind !== OP.takeoverCommit) refuse("EBUSY", "a takeover snapshot is being sent: only its commit is taken");
    out = handler(state, conn, frame);
    if (out === WAIT) return WAIT;
    logEvent(state, { op, names: out.names, result: out.result ?? (out.keep ? "ok" : "dropped"), conn, detail: out.detail ?? (out.keep ? undefined : "reply queue over limit") });
    return out.keep;
  } catch (e) {
    // The client is gone mid-reply: nothing to answer; the loop hangs up.
    if (isSysError(e) && e.syscall === "sendmsg") throw e;
    const [code, message] =
      e instanceof RefusedError ? [e.code, e.message] : e instanceof ProtocolError ? ["EPROTO", e.message] : ["EIO", (e as Error).message];
    logEvent(state, { op, names: namesOf(frame), result: code, detail: message, conn });
    return sendError(state, conn, frame.id, code, message);
  } finally {
    if (out !== WAIT) {
      if (state.describing.size > 0) stopDescribing(state.describing, conn);
      if (frame.fds.length > 0) closeAllOffThread(frame.fds.splice(0));
    }
  }
}

function namesOf(frame: ReceivedFrame): string[] {
  const b = frame.body;
  const list = typeof b.name === "string" ? [b.name] : Array.isArray(b.names) ? b.names : [];
  return list.filter((n): n is string => typeof n === "string").slice(0, 100);
}
