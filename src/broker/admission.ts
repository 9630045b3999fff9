// Who gets a connection slot. Decided at accept, from SO_PEERCRED and SO_PEERGROUPS, before a byte is read:
// - a uid no rule names (nor its gid or groups), other than the owner and root, is refused (EACCES);
// - a uid other than the owner and root holds at most --max-conns-per-uid connections (EUSERS beyond);
// - others share --max-conns less --reserved-conns slots; the reserve is the owner's and root's, so connections
//   held by others never lock them out;
// - when the slots a newcomer may use are full, the connection of another uid (never the owner's or root's)
//   that has made no progress the longest is closed to make room, as a full table evicts its oldest entry.
import { isNamed } from "./access.ts";
import type { BrokerState, Conn } from "./state.ts";

type Admission = { ok: true; evict: Conn | null } | { ok: false; code: string; message: string };

/** Decide on `conn`, already counted in `state` (openConn). */
export function admit(state: BrokerState, conn: Conn): Admission {
  const { rules, ownerUid, limits } = state.config;
  const { uid } = conn.peer;
  if (!isNamed(rules, ownerUid, conn.peer))
    return { ok: false, code: "EACCES", message: `uid ${uid} may not use this broker (no --allow rule names it or its groups)` };
  if (!conn.privileged && state.load.byUid.get(uid)! > limits.maxConnsPerUid)
    return { ok: false, code: "EUSERS", message: `uid ${uid} already has ${limits.maxConnsPerUid} connections, the most one uid may hold (--max-conns-per-uid); try again later` };
  const othersFull = !conn.privileged && state.load.others > limits.maxConns - limits.reservedConns;
  if (!othersFull && state.conns.size <= limits.maxConns) return { ok: true, evict: null };
  const idlest = idlestUnprivileged(state, conn);
  if (idlest) return { ok: true, evict: idlest };
  return { ok: false, code: "EUSERS", message: `the broker serves at most ${limits.maxConns} connections (--max-conns); try again later` };
}

function idlestUnprivileged(state: BrokerState, except: Conn): Conn | null {
  // byActivity keeps the connection with the oldest progress first.
  for (const c of state.byActivity) if (!c.privileged && c !== except && c !== state.takeover?.conn) return c;
  return null;
}
