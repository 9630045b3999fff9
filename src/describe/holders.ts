// Which processes hold a socket bound at an address, for the hint after `bind: EADDRINUSE`: the address's
// sockets by inode from this network namespace's /proc/net tables, then every /proc/PID/fd we may read for a link
// to one of those inodes (what `ss -p` does). Processes we may not read (another user's, without root) are
// skipped; the answer is for people, never a check.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { decodeSockAddr, encodeInet } from "../sys/index.ts";
import { readSocketTables } from "./proc-net.ts";
import type { SocketDescription } from "./types.ts";
import { escapeText } from "../text.ts";

/** Most holders named: a hint is one line. */
const MAX_HOLDERS = 4;

export interface Holder {
  pid: number;
  command: string;
}

/**
 * The command name of a process, as /proc has it: "?" when the pid is gone or in another pid namespace (it reads 0).
 * Read after the fact, so a pid reused in between would show another's; escaped, as any text from another process.
 */
export function commandOf(pid: number): string {
  try {
    return escapeText(readFileSync(`/proc/${pid}/comm`, "utf8").replace(/\n$/, ""));
  } catch {
    return "?";
  }
}

const WILDCARD = new Set(["0.0.0.0", "::"]);

/**
 * Whether a socket in the tables conflicts with binding `label`: a UNIX path or @name exactly; `tcp:HOST:PORT`
 * a listener on that port at that host or a wildcard one (either side), `udp:HOST:PORT` any socket bound so.
 */
function matcher(label: string): ((s: SocketDescription) => boolean) | null {
  const inet = /^(tcp|udp):(.*):(\d+)$/.exec(label);
  if (!inet) return (s) => s.family === "unix" && s.local === label;
  let want;
  try {
    const bytes = encodeInet(inet[2]!, Number(inet[3]));
    want = decodeSockAddr(bytes, bytes.length);
  } catch {
    return null;
  }
  if (want.family !== "inet" && want.family !== "inet6") return null;
  const { host, port } = want;
  const type = inet[1] === "tcp" ? "stream" : "dgram";
  return (s) => {
    const at = s.localAddress;
    if (s.type !== type || (type === "stream" && !s.listening) || !at || !("port" in at) || at.port !== port) return false;
    return at.host === host || WILDCARD.has(at.host) || WILDCARD.has(host);
  };
}

/** Up to MAX_HOLDERS processes that hold a socket bound at `label` (a bind error's address), lowest pid first. */
export function socketHolders(label: string): Holder[] {
  const matches = matcher(label);
  if (!matches) return [];
  const inodes = new Set<string>();
  for (const [inode, s] of readSocketTables("self")) if (matches(s)) inodes.add(`socket:[${inode}]`);
  if (inodes.size === 0) return [];
  const holders: Holder[] = [];
  const pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  for (const pid of pids) {
    if (holders.length >= MAX_HOLDERS) break;
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited, or not ours to read
    }
    const holds = fds.some((fd) => {
      try {
        return inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (holds) holders.push({ pid, command: commandOf(pid) });
  }
  return holders;
}
