// What fdbroker reports about an open fd: plain data, the same for this process's fds and another's.

export type FdKind =
  | "file" | "directory" | "pipe" | "fifo" | "socket" | "chardev" | "blockdev" | "symlink" | "memfd"
  | "eventfd" | "epoll" | "signalfd" | "timerfd" | "pidfd" | "inotify" | "fanotify" | "io_uring" | "anon" | "unknown"
  /** Another process's fd that was listed but closed before it could be read (describeProcFds). */
  | "gone";

/** A socket address's parts: `{host, port}` (IPv6 without brackets), `{path}`, or `{abstract}` (without the `@`). */
export type SocketAddress = { host: string; port: number } | { path: string } | { abstract: string };

export interface SocketDescription {
  family: "unix" | "inet" | "inet6" | "netlink" | "packet" | "other";
  type: "stream" | "dgram" | "seqpacket" | "raw" | "other";
  /** Bound address (`/path`, `@abstract`, `127.0.0.1:80`, `[::1]:80`); null when unbound or unknown. */
  local: string | null;
  /** Connected peer's address; null when not connected, unnamed, or not knowable from /proc. */
  peer: string | null;
  /** `local` in parts, for scripts (null where `local` is). */
  localAddress: SocketAddress | null;
  /** `peer` in parts (null where `peer` is). */
  peerAddress: SocketAddress | null;
  listening: boolean;
  /** Netlink sockets only: the protocol by name (`route`, `sock_diag`, `audit`, ...; its number when unnamed). */
  protocol?: string;
  // The rest is inspect's, filled in for every socket it lists (src/describe/peers.ts; null where unknown or not
  // applicable) and absent elsewhere (recv, get, ls), since finding peers costs a scan of /proc.
  /** TCP sockets: the state as `ss` names it (`LISTEN`, `ESTABLISHED`, `TIME_WAIT`, ...); null for others. */
  state?: string | null;
  /** Bytes queued to be read; a TCP or UNIX listener: connections waiting to be accepted. Null when unknown. */
  recvQ?: number | null;
  /** TCP: bytes not yet acknowledged; UNIX: buffer bytes the peer has not read yet; a UNIX listener: its backlog. */
  sendQ?: number | null;
  /** UNIX sockets: fds sent to this socket and not yet received (fdinfo's `scm_fds`). */
  fdsInFlight?: number | null;
  /** UNIX sockets: the inode of the connected peer socket (sock_diag), null when unconnected or unknown. */
  peerInode?: number | null;
  /** The processes holding the peer socket, each fd of each; null when not looked for (no peer inode). */
  peers?: SocketPeer[] | null;
}

/** A process holding the other end of a socket; `command` as /proc/PID/comm has it. */
export interface SocketPeer {
  pid: number;
  fd: number;
  command: string;
}

export interface FdDescription {
  /** The fd number in the process it was read from. */
  fd: number;
  kind: FdKind;
  /** What /proc/PID/fd/N links to, verbatim (`socket:[123]`, `/etc/hosts`, `anon_inode:[eventfd]`). */
  target: string;
  /** Filesystem path (or `memfd:NAME`) when the fd has one, without the ` (deleted)` suffix. */
  path: string | null;
  /** The file was unlinked while open. */
  deleted: boolean;
  /** Open mode: read, write, both, or an O_PATH handle that can do neither; null for a `gone` fd. */
  access: "r" | "w" | "rw" | "path" | null;
  /** Status flags by name (append, nonblock, cloexec, ...); O_LARGEFILE is left out, 64-bit kernels set it always. */
  flags: string[];
  /**
   * Set on an inherited fd whose close-on-exec flag this process's runtime set at start-up (Bun does so from fd 4
   * up): the launcher cannot have, since an fd marked close-on-exec is not inherited. Only `inspect` sets it.
   */
  cloexecByRuntime?: true;
  /** The raw `flags:` word of /proc/PID/fdinfo/N. */
  rawFlags: number;
  /** File offset; null where the kernel keeps none worth showing (pipes, sockets, anon inodes). */
  offset: number | null;
  inode: number | null;
  /** Size in bytes, for regular files and memfds. */
  size: number | null;
  socket: SocketDescription | null;
  /**
   * Kind-specific facts from fdinfo: eventfd-count, pid of a pidfd, fds an epoll watches, clockid, ...; `scm_fds`
   * (fds in flight to a UNIX socket) as a number.
   */
  details: Record<string, string | number>;
}
