// Takeover, on the new broker's side: ask the running broker for everything, check it, and only then tell it to
// go. Until the commit, the old broker keeps its own copies, so any failure here (closing all we received) leaves
// it serving as before.
import { call, openSession, type Session } from "../client/session.ts";
import { checkName, OP, ProtocolError, type FullEntryInfo } from "../proto/index.ts";
import { closeAllOffThread } from "../sys/offload.ts";
import { takePoolPart, type TakenPools } from "./pool-handover.ts";

interface HandedConn {
  fd: number;
  /** Bytes of a frame the old broker had only partly received, and the fds that came with them. */
  pending: Uint8Array;
  fds: number[];
}

export interface Snapshot {
  listenFd: number;
  entries: { fd: number; info: FullEntryInfo }[];
  conns: HandedConn[];
  /** Pools, leases and waiters (pool-handover.ts); null from a broker that has none. */
  pools: TakenPools | null;
  /** Still open: send the commit over it. */
  session: Session;
}

function isEntryInfo(v: unknown): v is FullEntryInfo {
  const e = v as FullEntryInfo;
  return typeof e === "object" && e !== null && typeof e.name === "string" && typeof e.kind === "string" && typeof e.what === "string"
    && [e.uid, e.gid, e.pid, e.created].every(Number.isFinite) && (e.expires === null || Number.isFinite(e.expires));
}

/** Receive the running broker's listener, entries and connections. Every fd returned is ours. */
export function receiveTakeover(socket: string, timeoutMs: number, brokerUid?: number): Snapshot {
  const session = openSession({ socket, timeoutMs, brokerUid });
  let fds: number[] = [];
  try {
    const reply = call(session, OP.takeover, {});
    fds = reply.fds;
    if (fds.length < 1) throw new ProtocolError("takeover reply carries no listening socket");
    const snap: Snapshot = { listenFd: fds[0]!, entries: [], conns: [], pools: null, session };
    let at = 1;
    for (const part of reply.more) {
      const mine = fds.slice(at, at + part.fds);
      at += part.fds;
      if (Array.isArray(part.body.entries)) {
        const infos = part.body.entries;
        if (infos.length !== mine.length || !infos.every(isEntryInfo)) throw new ProtocolError("takeover entries do not match their fds");
        infos.forEach((info, i) => snap.entries.push({ fd: mine[i]!, info: { ...info, name: checkName(info.name) } }));
      } else if (Array.isArray(part.body.conns)) {
        let k = 0;
        for (const c of part.body.conns as { pending: unknown; fds: unknown }[]) {
          const n = Number(c.fds);
          if (typeof c.pending !== "string" || !Number.isInteger(n) || n < 0 || k + 1 + n > mine.length) throw new ProtocolError("takeover connections do not match their fds");
          snap.conns.push({ fd: mine[k]!, pending: new Uint8Array(Buffer.from(c.pending, "base64")), fds: mine.slice(k + 1, k + 1 + n) });
          k += 1 + n;
        }
        if (k !== mine.length) throw new ProtocolError("takeover connections do not match their fds");
      } else if (!takePoolPart((snap.pools ??= { head: null, members: [] }), part.body, mine))
        throw new ProtocolError("takeover part carries neither entries, connections nor pools");
    }
    if (at !== fds.length) throw new ProtocolError("takeover reply has fds no part accounts for");
    if (snap.pools && !snap.pools.head) throw new ProtocolError("takeover pool members came without their pools");
    return snap;
  } catch (e) {
    closeAllOffThread(fds);
    session.close();
    throw e;
  }
}

/**
 * Tell the old broker we have everything; it answers and exits. An error answer (it gave up on us as stalled, and
 * serves on) is thrown: we must not serve beside it. A connection that ends without an answer is not: the old
 * broker may have been stopped after sending everything, and then the socket is ours.
 */
export function confirmTakeover(snap: Snapshot): void {
  try {
    // The commit's answer carries no fds; any that come anyway are closed, as every client call does.
    closeAllOffThread(call(snap.session, OP.takeoverCommit, {}).fds);
  } finally {
    snap.session.close();
  }
}
