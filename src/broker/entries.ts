// The held fds. An entry owns its fd: it is closed when the entry is removed, replaced or expires, and on exit,
// always off the loop's thread (a client's fd can make close() block: src/sys/offload.ts).
import type { FullEntryInfo } from "../proto/index.ts";
import { closeOffThread } from "../sys/offload.ts";
import { describeEntryFd, type EntryDescription } from "./describe-entry.ts";
import { logEvent } from "./log.ts";
import type { BrokerState, Entry } from "./state.ts";

interface Owner {
  uid: number;
  gid: number;
  pid: number;
}

/** Store `fd` under `info.name`, closing any entry it replaces. The fd now belongs to the broker. */
export function storeEntry(state: BrokerState, fd: number, info: FullEntryInfo): Entry {
  const old = state.entries.get(info.name);
  if (old) closeOffThread(old.fd);
  const entry = { fd, info, bytes: Buffer.byteLength(JSON.stringify(info)) + 1, json: null };
  state.entries.set(info.name, entry);
  if (info.expires !== null && info.expires < state.nextExpiry) state.nextExpiry = info.expires;
  return entry;
}

/** Build the metadata of a new entry, describing `fd` unless that is done already. */
export function newEntryInfo(
  state: BrokerState, name: string, fd: number, owner: Owner, ttlMs: number | null, described: EntryDescription = describeEntryFd(fd),
): FullEntryInfo {
  const now = state.env.now();
  return { name, ...described, ...owner, created: now, expires: ttlMs === null ? null : now + ttlMs };
}

export function removeEntry(state: BrokerState, name: string): boolean {
  const e = state.entries.get(name);
  if (!e) return false;
  state.entries.delete(name);
  closeOffThread(e.fd);
  return true;
}

/** Close every entry whose time has come; called by the loop, which wakes for `nextExpiry`. */
export function expireDue(state: BrokerState): void {
  const now = state.env.now();
  // Behind a sent takeover snapshot nothing changes (its parts still to send name these fds): the new broker
  // expires them, or we do once it is abandoned.
  if (now < state.nextExpiry || state.takeover?.phase === "sent") return;
  let next = Infinity;
  for (const [name, e] of state.entries) {
    const t = e.info.expires;
    if (t === null) continue;
    if (t <= now) {
      removeEntry(state, name);
      logEvent(state, { op: "expire", names: [name], result: "ok" });
    } else if (t < next) next = t;
  }
  state.nextExpiry = next;
}

export function closeAllEntries(state: BrokerState): void {
  for (const e of state.entries.values()) closeOffThread(e.fd);
  state.entries.clear();
  state.nextExpiry = Infinity;
}
