// `run --ready accept`: a child is ready once some process of its tree waits for connections on each listener
// run passes, seen from outside through /proc, for servers that never say so themselves:
// - an epoll instance of the tree watches the listener: the epoll's /proc/PID/fdinfo/N has a line
//   `tfd: 3 events: 19 data: 3  pos:0 ino:7b2f5 sdev:9` per watched file, `ino` being the listener's inode in hex;
// - or a thread of the tree is blocked in accept(2)/accept4(2) on it: /proc/PID/task/TID/syscall reads
//   `288 0x3 ...` (the syscall's number, then its arguments, the first being the fd).
// A process in poll(2) or select(2) cannot be told apart this way (their fd sets are in its memory): such a
// server needs notify or exec. Only the child's own tree counts: during a reload the old child watches the same
// listener, and must not make the new one look ready.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { C, fstat, getIntOpt } from "../sys/index.ts";
import type { ReadyWatch } from "./ready.ts";

/** How often the tree is looked at while a child is not ready yet. */
export const ACCEPT_SCAN_INTERVAL_MS = 100;
/** At most this many processes of a tree are looked at per scan (a fork bomb must not stall run). */
const MAX_TREE = 1024;

/** Inodes of the listening sockets among `fds` (each once); files, datagram sockets and the like are not waited on. */
export function listenerInodes(fds: readonly number[]): number[] {
  const inodes = new Set<number>();
  for (const fd of fds) {
    const st = fstat(fd);
    if ((st.mode & C.S_IFMT) !== C.S_IFSOCK) continue;
    if (getIntOpt(fd, C.SOL_SOCKET, C.SO_ACCEPTCONN) === 1) inodes.add(st.ino);
  }
  return [...inodes];
}

/** The inodes an epoll watches, from its fdinfo text. */
export function epollInodes(fdinfo: string): number[] {
  const out: number[] = [];
  for (const m of fdinfo.matchAll(/^tfd:.*\bino:([0-9a-f]+)/gm)) out.push(parseInt(m[1]!, 16));
  return out;
}

/** The fd a thread is blocked accepting on, from its /proc/PID/task/TID/syscall text; null if it is not. */
export function acceptingFd(syscall: string): number | null {
  const [nr, fd] = syscall.trim().split(" ");
  if (nr !== String(C.SYS_accept) && nr !== String(C.SYS_accept4)) return null;
  const n = Number.parseInt(fd ?? "", 16);
  return Number.isFinite(n) ? n : null;
}

const socketInode = (link: string) => /^socket:\[(\d+)\]$/.exec(link)?.[1];

/** Which of `wanted` the process waits on; failures to read (it exited, it is not ours to read) count as none. */
function waitedOn(pid: number, wanted: ReadonlySet<number>, found: Set<number>): void {
  const dir = `/proc/${pid}`;
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  let fds: string[] = [];
  try {
    fds = readdirSync(`${dir}/fd`);
  } catch {
    return;
  }
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`${dir}/fd/${fd}`);
    } catch {
      continue;
    }
    if (link !== "anon_inode:[eventpoll]") continue;
    for (const ino of epollInodes(read(`${dir}/fdinfo/${fd}`))) if (wanted.has(ino)) found.add(ino);
  }
  for (const tid of tasksOf(pid)) {
    const fd = acceptingFd(read(`${dir}/task/${tid}/syscall`));
    if (fd === null) continue;
    try {
      const ino = Number(socketInode(readlinkSync(`${dir}/fd/${fd}`)));
      if (wanted.has(ino)) found.add(ino);
    } catch {
      // The fd went away meanwhile.
    }
  }
}

function tasksOf(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
}

/** `pid` and its descendants, through each thread's `children` list (Linux 3.5+, CONFIG_PROC_CHILDREN). */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length && tree.length < MAX_TREE; i++) {
    for (const tid of tasksOf(tree[i]!)) {
      let text = "";
      try {
        text = readFileSync(`/proc/${tree[i]}/task/${tid}/children`, "utf8");
      } catch {
        continue;
      }
      for (const child of text.split(" ")) if (child.trim()) tree.push(Number(child));
    }
  }
  return tree.slice(0, MAX_TREE);
}

/** True once every inode in `inodes` is waited on by some process of `pid`'s tree. */
export function treeAccepts(pid: number, inodes: readonly number[]): boolean {
  const wanted = new Set(inodes);
  const found = new Set<number>();
  for (const p of processTree(pid)) {
    waitedOn(p, wanted, found);
    if (found.size === wanted.size) return true;
  }
  return false;
}

export function watchAccept(pid: number, inodes: readonly number[], onReady: () => void): ReadyWatch {
  const timer = setInterval(() => {
    if (!treeAccepts(pid, inodes)) return;
    clearInterval(timer);
    onReady();
  }, ACCEPT_SCAN_INTERVAL_MS);
  return { stop: () => clearInterval(timer) };
}
