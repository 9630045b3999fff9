// Sockets of another process, found by inode in /proc/PID/net/{unix,tcp,tcp6,udp,udp6}: getsockname and friends
// only work on our own fds. The tables are those of the process's network namespace.
import { readFileSync } from "node:fs";
import { C, decodeSockAddr, formatSockAddr, type SockAddr } from "../sys/index.ts";
import { addressParts } from "./address.ts";
import type { SocketDescription } from "./types.ts";

export type SocketTable = Map<number, SocketDescription>;

const UNIX_ACCEPTCON = 0x10000; // __SO_ACCEPTCON in the Flags column
const unixTypes: Record<number, SocketDescription["type"]> = { 1: "stream", 2: "dgram", 5: "seqpacket" };

function readTable(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").slice(1).filter((l) => l.trim() !== "");
  } catch {
    return []; // a kernel without IPv6, or a namespace we may not read: those sockets stay undescribed
  }
}

/**
 * The kernel prints a socket's path raw, newlines included, so a socket bound at `/tmp/x\n0000: ... INODE /fake`
 * adds a line claiming another socket's inode. The real line of that inode is listed too: an inode listed twice
 * is reported with its address unknown rather than with whichever line came last.
 */
const AMBIGUOUS: SocketDescription = {
  family: "unix", type: "other", local: null, peer: null, localAddress: null, peerAddress: null, listening: false,
};

export function parseUnixTable(lines: readonly string[], into: SocketTable = new Map()): SocketTable {
  const seen = new Set<number>();
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    const inode = Number(f[6]);
    if (seen.has(inode)) {
      into.set(inode, AMBIGUOUS);
      continue;
    }
    seen.add(inode);
    const flags = parseInt(f[3]!, 16);
    // The path is everything after the seventh column, cut from the line itself: it may contain runs of spaces.
    const path = f.length > 7 ? /^\s*(?:\S+\s+){7}(.*)$/.exec(line)![1]! : null;
    into.set(inode, {
      family: "unix",
      type: unixTypes[parseInt(f[4]!, 16)] ?? "other",
      local: path,
      peer: null, // /proc/net/unix does not name the peer (only sock_diag over netlink does)
      localAddress: path === null ? null : addressParts({ family: "unix", path }),
      peerAddress: null,
      listening: (flags & UNIX_ACCEPTCON) !== 0,
    });
  }
  return into;
}

/** `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6), as the kernel prints them: 32-bit words in host order. */
function decodeHexSockAddr(text: string, family: "inet" | "inet6"): SockAddr {
  const [hex = "", portHex = "0"] = text.split(":");
  const sa = new Uint8Array(family === "inet" ? 16 : 28);
  const v = new DataView(sa.buffer);
  v.setUint16(0, family === "inet" ? C.AF_INET : C.AF_INET6, true);
  v.setUint16(2, parseInt(portHex, 16), false);
  const base = family === "inet" ? 4 : 8;
  for (let w = 0; w * 8 < hex.length; w++) v.setUint32(base + w * 4, parseInt(hex.slice(w * 8, w * 8 + 8), 16), true);
  return decodeSockAddr(sa, sa.length);
}

export const decodeHexAddress = (text: string, family: "inet" | "inet6"): string => formatSockAddr(decodeHexSockAddr(text, family));

export function parseInetTable(
  lines: readonly string[], family: "inet" | "inet6", type: "stream" | "dgram", into: SocketTable = new Map(),
): SocketTable {
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const remote = f[2]!;
    const local = decodeHexSockAddr(f[1]!, family);
    const state = parseInt(f[3]!, 16);
    // tx_queue:rx_queue; a listener's rx_queue is its accept queue.
    const queues = /^([0-9A-Fa-f]+):([0-9A-Fa-f]+)$/.exec(f[4]!);
    const peer = /^0+:0000$/.test(remote) ? null : decodeHexSockAddr(remote, family);
    into.set(Number(f[9]), {
      family,
      type,
      local: formatSockAddr(local),
      peer: peer && formatSockAddr(peer),
      localAddress: addressParts(local),
      peerAddress: peer && addressParts(peer),
      listening: type === "stream" && state === C.TCP_LISTEN,
      // UDP sockets print TCP's numbers too (ESTABLISHED once connected), which mean nothing to a reader.
      state: type === "stream" ? (tcpStateName(state) ?? String(state)) : null,
      recvQ: queues ? parseInt(queues[2]!, 16) : null,
      sendQ: queues ? parseInt(queues[1]!, 16) : null,
    });
  }
  return into;
}

const TCP_STATES = [
  "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
  "LISTEN", "CLOSING",
] as const;

/** `LISTEN` for C.TCP_LISTEN, and so on, as `ss` prints them; undefined for a number the kernel does not print. */
export function tcpStateName(n: number): string | undefined {
  return TCP_STATES.find((name) => C[`TCP_${name}`] === n);
}

const NETLINK_PROTOCOLS = [
  "ROUTE", "USERSOCK", "FIREWALL", "SOCK_DIAG", "NFLOG", "XFRM", "SELINUX", "ISCSI", "AUDIT", "FIB_LOOKUP",
  "CONNECTOR", "NETFILTER", "IP6_FW", "DNRTMSG", "KOBJECT_UEVENT", "GENERIC", "SCSITRANSPORT", "ECRYPTFS", "RDMA",
  "CRYPTO", "SMC",
] as const;

/** `route` for NETLINK_ROUTE, `sock_diag`, `audit`, ...; the number as text when it has no name here. */
export function netlinkProtocolName(n: number): string {
  return NETLINK_PROTOCOLS.find((name) => C[`NETLINK_${name}`] === n)?.toLowerCase() ?? String(n);
}

/** /proc/net/netlink: `sk Eth Pid Groups ... Inode`, where Eth is the protocol. The type is not listed. */
export function parseNetlinkTable(lines: readonly string[], into: SocketTable = new Map()): SocketTable {
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    into.set(Number(f[9]), {
      family: "netlink", type: "other", local: null, peer: null, localAddress: null, peerAddress: null,
      listening: false, protocol: netlinkProtocolName(Number(f[1])),
    });
  }
  return into;
}

/** readSocketTables(pid), read at the first call and kept: for callers that may need it twice, or not at all. */
export function lazySocketTables(pid: number | "self"): () => SocketTable {
  let tables: SocketTable | null = null;
  return () => (tables ??= readSocketTables(pid));
}

/** Every socket the process's namespace lists, by inode. */
export function readSocketTables(pid: number | "self"): SocketTable {
  const dir = `/proc/${pid}/net`;
  const t: SocketTable = new Map();
  parseUnixTable(readTable(`${dir}/unix`), t);
  parseInetTable(readTable(`${dir}/tcp`), "inet", "stream", t);
  parseInetTable(readTable(`${dir}/tcp6`), "inet6", "stream", t);
  parseInetTable(readTable(`${dir}/udp`), "inet", "dgram", t);
  parseInetTable(readTable(`${dir}/udp6`), "inet6", "dgram", t);
  parseNetlinkTable(readTable(`${dir}/netlink`), t);
  return t;
}
