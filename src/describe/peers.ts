// What inspect adds to its socket descriptions, and other commands leave out because it costs a /proc scan: the
// other end of each UNIX socket (sock_diag's peer inode, then the processes holding that inode), queue lengths
// (UNIX from sock_diag, TCP and UDP from the /proc/net tables) and TCP state, and the fds in flight to it.
//
// sock_diag is asked in inspect's own network namespace: a socket of a process in another one is not found, and
// that socket is shown with its peer and queues unknown (null), as when sock_diag is missing altogether.
import { isSysError, unixDiag, type UnixDiag } from "../sys/index.ts";
import { scanFds, type ScanLimits } from "./holders.ts";
import { lazySocketTables } from "./proc-net.ts";
import type { FdDescription, SocketDescription, SocketPeer } from "./types.ts";

export interface SocketDetails {
  descs: FdDescription[];
  /** False when the /proc scan for peers stopped at its limits: some peers may be missing. */
  complete: boolean;
  /** Why sock_diag gave nothing (`socket: EPROTONOSUPPORT ...`), when it failed. */
  diagError: string | null;
}

const socketInode = (d: FdDescription) => (d.socket && d.inode !== null ? d.inode : null);

function diagnose(inodes: number[]): { found: Map<number, UnixDiag>; error: string | null } {
  if (inodes.length === 0) return { found: new Map(), error: null };
  try {
    return { found: unixDiag(inodes), error: null };
  } catch (e) {
    // No sock_diag (a kernel without it, a seccomp filter): the sockets are still described, without peers.
    if (isSysError(e)) return { found: new Map(), error: e.message };
    throw e;
  }
}

/**
 * `descs` (fds of process `pid`) with every socket's state, queues, fds in flight, peer inode and peers filled in
 * (null where not known), and how complete that is.
 */
export function addSocketDetails(pid: number | "self", descs: readonly FdDescription[], limits?: ScanLimits, lazyTables = lazySocketTables(pid)): SocketDetails {
  const sockets = descs.filter((d) => socketInode(d) !== null);
  if (sockets.length === 0) return { descs: [...descs], complete: true, diagError: null };
  // Read already if describeProcFds read them for the same fds (inspect --pid passes one reader to both).
  const tables = lazyTables();
  const unix = sockets.filter((d) => d.socket!.family === "unix").map((d) => d.inode!);
  const diag = diagnose(unix);
  const peerLinks = new Set<string>();
  for (const d of diag.found.values()) if (d.peer !== null) peerLinks.add(`socket:[${d.peer}]`);
  const scan = peerLinks.size > 0 ? scanFds((link) => peerLinks.has(link), { limits }) : { holders: [], complete: true };
  const holders = new Map<string, SocketPeer[]>();
  for (const h of scan.holders) holders.set(h.link, [...(holders.get(h.link) ?? []), { pid: h.pid, fd: h.fd, command: h.command }]);
  const out = descs.map((d) => {
    const ino = socketInode(d);
    if (ino === null) return d;
    const s = d.socket!;
    const listed = tables.get(ino);
    const u = diag.found.get(ino);
    const peerInode = u?.peer ?? null;
    const socket: SocketDescription = {
      ...s,
      state: s.state ?? listed?.state ?? null,
      recvQ: u?.rqueue ?? s.recvQ ?? listed?.recvQ ?? null,
      sendQ: u?.wqueue ?? s.sendQ ?? listed?.sendQ ?? null,
      fdsInFlight: typeof d.details.scm_fds === "number" ? d.details.scm_fds : null,
      peerInode,
      peers: peerInode === null ? null : (holders.get(`socket:[${peerInode}]`) ?? []),
    };
    return { ...d, socket };
  });
  return { descs: out, complete: scan.complete, diagError: diag.error };
}
