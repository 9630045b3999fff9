// Who may do what. By default the broker's own uid and root may do everything and nobody else anything;
// `--allow uid:N:OPS[:GLOB]` and `--allow gid:N:OPS[:GLOB]` grant more. The peer is known from SO_PEERCRED.
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

const OPERATIONS = ["get", "put", "rm", "ls", "takeover"] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface Rule {
  who: "uid" | "gid";
  id: number;
  ops: ReadonlySet<Operation>;
  glob: string;
  pattern: RegExp;
}

export interface Peer {
  uid: number;
  gid: number;
  pid: number;
  groups: number[] | null;
}

/** `*` matches any run of characters, `?` one character; everything else is literal. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "s");
}

export function parseRule(text: string): Rule {
  const m = /^(uid|gid):(\d+):([a-z,*]+)(?::(.+))?$/.exec(text);
  if (!m) throw new UsageError(`bad --allow rule ${JSON.stringify(text)}: expected uid:N:OPS[:GLOB] or gid:N:OPS[:GLOB], e.g. uid:1000:get,ls:web.*`);
  const ops = new Set<Operation>();
  for (const op of m[3]!.split(",")) {
    if (op === "all" || op === "*") OPERATIONS.forEach((o) => ops.add(o));
    else if ((OPERATIONS as readonly string[]).includes(op)) ops.add(op as Operation);
    else throw new UsageError(`bad operation ${JSON.stringify(op)} in --allow ${text} (${OPERATIONS.join(", ")} or all)`);
  }
  const glob = m[4] ?? "*";
  return { who: m[1] as "uid" | "gid", id: Number(m[2]), ops, glob, pattern: globToRegExp(glob) };
}

/** Supplementary groups of a process, from /proc; empty if it is gone or hidden. */
function groupsOf(pid: number): number[] {
  try {
    const m = /^Groups:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

function isPrivileged(peer: Peer, ownerUid: number): boolean {
  return peer.uid === 0 || peer.uid === ownerUid;
}

function matchesWho(rule: Rule, peer: Peer): boolean {
  if (rule.who === "uid") return rule.id === peer.uid;
  if (rule.id === peer.gid) return true;
  peer.groups ??= groupsOf(peer.pid);
  return peer.groups.includes(rule.id);
}

export function isAllowed(rules: readonly Rule[], ownerUid: number, peer: Peer, op: Operation, name: string): boolean {
  if (isPrivileged(peer, ownerUid)) return true;
  return rules.some((r) => r.ops.has(op) && r.pattern.test(name) && matchesWho(r, peer));
}

/** Whether any rule names this peer at all (enough to ask for `status`). */
export function isKnown(rules: readonly Rule[], ownerUid: number, peer: Peer): boolean {
  return isPrivileged(peer, ownerUid) || rules.some((r) => matchesWho(r, peer));
}
