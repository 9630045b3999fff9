// Who may do what. By default the broker's own uid and root may do everything and nobody else anything;
// `--allow uid:N:OPS[:GLOB]` and `--allow gid:N:OPS[:GLOB]` grant more. The peer is known from SO_PEERCRED and
// SO_PEERGROUPS, both as they were when it connected. A uid no rule names is not even accepted (see loop.ts).
import { UsageError } from "../errors.ts";

const OPERATIONS = ["get", "put", "rm", "ls", "lease", "pool-put", "takeover"] as const;
export type Operation = (typeof OPERATIONS)[number];
const ALL: readonly Operation[] = ["get", "put", "rm", "ls", "lease"];

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
  /** Supplementary groups at connect (SO_PEERGROUPS); not read for the owner and root, who need none. */
  groups: readonly number[];
}

/** `*` matches any run of characters, `?` one character; everything else is literal. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "s");
}

export function parseRule(text: string): Rule {
  const m = /^(uid|gid):(\d+):([a-z,*-]+)(?::(.+))?$/.exec(text);
  if (!m) throw new UsageError(`bad --allow rule ${JSON.stringify(text)}: expected uid:N:OPS[:GLOB] or gid:N:OPS[:GLOB], e.g. uid:1000:get,ls:web.*`);
  const ops = new Set<Operation>();
  for (const op of m[3]!.split(",")) {
    // `takeover` hands over every entry and client, and `pool-put` adds members that other lessees receive (a
    // socket to a server of its choosing): each is granted only by name, never by `all`.
    if (op === "all" || op === "*") ALL.forEach((o) => ops.add(o));
    else if ((OPERATIONS as readonly string[]).includes(op)) ops.add(op as Operation);
    else throw new UsageError(`bad operation ${JSON.stringify(op)} in --allow ${text} (${OPERATIONS.join(", ")}, or all for ${ALL.join(",")})`);
  }
  const glob = m[4] ?? "*";
  return { who: m[1] as "uid" | "gid", id: Number(m[2]), ops, glob, pattern: globToRegExp(glob) };
}

/** Root and the broker's own uid: every operation, the reserved connection slots, the full view of entries. */
export function isPrivileged(peer: Peer, ownerUid: number): boolean {
  return peer.uid === 0 || peer.uid === ownerUid;
}

function matchesWho(rule: Rule, peer: Peer): boolean {
  if (rule.who === "uid") return rule.id === peer.uid;
  return rule.id === peer.gid || peer.groups.includes(rule.id);
}

export function isAllowed(rules: readonly Rule[], ownerUid: number, peer: Peer, op: Operation, name: string): boolean {
  if (isPrivileged(peer, ownerUid)) return true;
  return rules.some((r) => r.ops.has(op) && r.pattern.test(name) && matchesWho(r, peer));
}

/** Whether the peer may connect at all: privileged, or named by some rule (its uid, gid or a group). */
export function isNamed(rules: readonly Rule[], ownerUid: number, peer: Peer): boolean {
  return isPrivileged(peer, ownerUid) || rules.some((r) => matchesWho(r, peer));
}
