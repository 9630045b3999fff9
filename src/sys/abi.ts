// Every ABI fact fdbroker relies on: struct sizes, field offsets and constants, keyed by platform and arch.
// Nothing else in the tree spells a kernel number. A target missing from this table fails with a named error
// rather than running on guessed offsets.
//
// macOS, when it comes: msghdr is also 56 bytes but msg_iovlen/msg_controllen are int; cmsghdr is 12 bytes with
// 4-aligned data; SOL_SOCKET is 0xffff; sockaddr_un starts with a length byte; errno is `__error`.

export interface Abi {
  target: string;
  ptrSize: 8;
  // struct msghdr
  msghdr: { size: number; name: number; namelen: number; iov: number; iovlen: number; control: number; controllen: number; flags: number };
  iovec: { size: number; base: number; len: number };
  // struct cmsghdr: len is size_t on Linux; data is aligned to `align`
  cmsghdr: { size: number; len: number; level: number; type: number; align: number };
  ucred: { size: number; pid: number; uid: number; gid: number };
  pollfd: { size: number; fd: number; events: number; revents: number };
  // struct epoll_event: packed on x86-64 (data right after events), naturally aligned on arm64.
  epollEvent: { size: number; events: number; data: number };
  rlimit: { size: number; cur: number; max: number };
  stat: { size: number; dev: number; ino: number; mode: number; nlink: number; nlinkSize: 4 | 8; uid: number; gid: number; rdev: number; size_: number };
  sockaddrUn: { size: number; pathOffset: number; pathMax: number };
  sockaddrIn: { size: number };
  sockaddrIn6: { size: number };
  sigsetBytes: number;
  // struct sigaction as libc's sigaction() takes it: only the handler is read (to find ignored signals).
  sigaction: { size: number; handler: number };
  // struct passwd and struct group as getpwnam/getgrnam return them: only the id is read (SPEC owner= and group=).
  passwd: { size: number; uid: number };
  group: { size: number; gid: number };
  errnoSymbol: string;
  c: Constants;
  // Netlink sock_diag (inspect: a UNIX socket's peer and queues). Kernel ABI from <linux/*.h>, the same for every
  // libc: struct nlmsghdr, struct nlmsgerr (only its error), struct rtattr (sock_diag's attributes are nlattrs,
  // laid out alike), struct unix_diag_req, struct unix_diag_msg, struct unix_diag_rqlen.
  nlmsghdr: { size: number; len: number; type: number; flags: number; seq: number; pid: number };
  nlmsgerr: { size: number; error: number };
  rtattr: { size: number; len: number; type: number };
  unixDiagReq: { size: number; family: number; protocol: number; states: number; ino: number; show: number; cookie: number };
  unixDiagMsg: { size: number; family: number; type: number; state: number; ino: number; cookie: number };
  unixDiagRqlen: { size: number; rqueue: number; wqueue: number };
}

const linuxConstants = {
  AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16, AF_PACKET: 17,
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_RAW: 3, SOCK_SEQPACKET: 5,
  SOCK_NONBLOCK: 0o4000, SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1, SCM_RIGHTS: 1, SCM_CREDENTIALS: 2,
  SO_REUSEADDR: 2, SO_TYPE: 3, SO_ERROR: 4, SO_SNDBUF: 7, SO_RCVBUF: 8, SO_REUSEPORT: 15, SO_PEERCRED: 17,
  SO_ACCEPTCONN: 30, SO_PROTOCOL: 38, SO_DOMAIN: 39, SO_PEERGROUPS: 59,
  IPPROTO_IP: 0, IP_FREEBIND: 15, IPPROTO_IPV6: 41, IPV6_V6ONLY: 26, IPV6_FREEBIND: 78,
  MSG_CTRUNC: 0x8, MSG_TRUNC: 0x20, MSG_DONTWAIT: 0x40, MSG_NOSIGNAL: 0x4000, MSG_CMSG_CLOEXEC: 0x40000000,
  SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
  F_DUPFD: 0, F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_DUPFD_CLOEXEC: 1030,
  FD_CLOEXEC: 1,
  // O_ACCMODE and O_LARGEFILE as the kernel reports them in fdinfo: libc's O_ACCMODE also covers O_PATH, and
  // glibc's O_LARGEFILE is 0 on 64-bit targets.
  O_ACCMODE: 0o3, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_TRUNC: 0o1000, O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000, O_DIRECT: 0o40000, O_LARGEFILE: 0o100000, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000,
  O_NOATIME: 0o1000000, O_CLOEXEC: 0o2000000, O_PATH: 0o10000000, O_SYNC: 0o4010000, O_DSYNC: 0o10000,
  POLLIN: 0x1, POLLPRI: 0x2, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20, POLLRDHUP: 0x2000,
  EPOLLIN: 0x1, EPOLLOUT: 0x4, EPOLLERR: 0x8, EPOLLHUP: 0x10, EPOLL_CTL_ADD: 1, EPOLL_CTL_DEL: 2, EPOLL_CTL_MOD: 3,
  EPOLL_CLOEXEC: 0o2000000,
  RLIMIT_NOFILE: 7,
  SIG_BLOCK: 0, SIG_UNBLOCK: 1, SIG_SETMASK: 2, SIG_DFL: 0, SIG_IGN: 1,
  F_OK: 0, X_OK: 1,
  // close_range(2) has one number on x86-64 and arm64 (it came after the syscall tables were unified); its
  // CLOEXEC flag needs Linux 5.11, and musl's headers do not spell it.
  SYS_close_range: 436, CLOSE_RANGE_CLOEXEC: 4,
  // pidfd_open(2) (Linux 5.3) is numbered alike on both too; glibc wraps it only from 2.36.
  SYS_pidfd_open: 434,
  // pidfd_getfd(2) (Linux 5.6), numbered alike on both too; glibc does not wrap it.
  SYS_pidfd_getfd: 438,
  // Never called, only read from /proc/PID/task/TID/syscall: `run --ready accept` looks for a blocked accept.
  SYS_accept: 43, SYS_accept4: 288,
  S_IFMT: 0o170000, S_IFSOCK: 0o140000, S_IFLNK: 0o120000, S_IFREG: 0o100000, S_IFBLK: 0o60000,
  S_IFDIR: 0o40000, S_IFCHR: 0o20000, S_IFIFO: 0o10000,
  // The kernel refuses more fds than this in one SCM_RIGHTS message (include/net/scm.h).
  SCM_MAX_FD: 253,
  NSIG: 65,
  // sock_diag over netlink (Linux 3.3): one UNIX socket by inode, with its peer's inode and its queue lengths.
  NETLINK_SOCK_DIAG: 4, SOCK_DIAG_BY_FAMILY: 20, NLM_F_REQUEST: 1, NLMSG_ERROR: 2, NLMSG_DONE: 3, NLMSG_ALIGNTO: 4,
  UDIAG_SHOW_NAME: 1, UDIAG_SHOW_PEER: 4, UDIAG_SHOW_RQLEN: 0x10, UNIX_DIAG_NAME: 0, UNIX_DIAG_PEER: 2,
  UNIX_DIAG_RQLEN: 4,
  // The protocol column of /proc/net/netlink, named for people (<linux/netlink.h>).
  NETLINK_ROUTE: 0, NETLINK_USERSOCK: 2, NETLINK_FIREWALL: 3, NETLINK_NFLOG: 5, NETLINK_XFRM: 6,
  NETLINK_SELINUX: 7, NETLINK_ISCSI: 8, NETLINK_AUDIT: 9, NETLINK_FIB_LOOKUP: 10, NETLINK_CONNECTOR: 11,
  NETLINK_NETFILTER: 12, NETLINK_IP6_FW: 13, NETLINK_DNRTMSG: 14, NETLINK_KOBJECT_UEVENT: 15, NETLINK_GENERIC: 16,
  NETLINK_SCSITRANSPORT: 18, NETLINK_ECRYPTFS: 19, NETLINK_RDMA: 20, NETLINK_CRYPTO: 21, NETLINK_SMC: 22,
  // The st column of /proc/net/tcp (an enum in <netinet/tcp.h>); UNIX sockets use the same numbers in sock_diag.
  TCP_ESTABLISHED: 1, TCP_SYN_SENT: 2, TCP_SYN_RECV: 3, TCP_FIN_WAIT1: 4, TCP_FIN_WAIT2: 5, TCP_TIME_WAIT: 6,
  TCP_CLOSE: 7, TCP_CLOSE_WAIT: 8, TCP_LAST_ACK: 9, TCP_LISTEN: 10, TCP_CLOSING: 11,
  // kcmp(2) (Linux 3.5): whether two fds, of two processes, are one open file description. arm64 numbers it 272.
  SYS_kcmp: 312, KCMP_FILE: 0,
  // src/tap peeks at a stream's queue to learn whether fds wait in it, and splices what carries none.
  MSG_PEEK: 0x2, FIONREAD: 0x541b, SPLICE_F_MOVE: 1, SPLICE_F_NONBLOCK: 2, F_SETPIPE_SZ: 1031,
} as const;

type Constants = { readonly [K in keyof typeof linuxConstants]: number };

const linuxCommon = {
  ptrSize: 8 as const,
  msghdr: { size: 56, name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48 },
  iovec: { size: 16, base: 0, len: 8 },
  cmsghdr: { size: 16, len: 0, level: 8, type: 12, align: 8 },
  ucred: { size: 12, pid: 0, uid: 4, gid: 8 },
  pollfd: { size: 8, fd: 0, events: 4, revents: 6 },
  rlimit: { size: 16, cur: 0, max: 8 },
  sockaddrUn: { size: 110, pathOffset: 2, pathMax: 108 },
  sockaddrIn: { size: 16 },
  sockaddrIn6: { size: 28 },
  // The kernel's sigset_t is 64 bits; glibc's is 1024. pthread_sigmask reads the kernel's part only.
  sigsetBytes: 128,
  sigaction: { size: 152, handler: 0 },
  passwd: { size: 48, uid: 16 },
  group: { size: 32, gid: 16 },
  errnoSymbol: "__errno_location",
  c: linuxConstants,
  nlmsghdr: { size: 16, len: 0, type: 4, flags: 6, seq: 8, pid: 12 },
  nlmsgerr: { size: 20, error: 0 },
  rtattr: { size: 4, len: 0, type: 2 },
  unixDiagReq: { size: 24, family: 0, protocol: 1, states: 4, ino: 8, show: 12, cookie: 16 },
  unixDiagMsg: { size: 16, family: 0, type: 1, state: 2, ino: 4, cookie: 8 },
  unixDiagRqlen: { size: 8, rqueue: 0, wqueue: 4 },
};

const table: Record<string, Abi> = {
  "linux-x64": {
    ...linuxCommon,
    target: "linux-x64",
    epollEvent: { size: 12, events: 0, data: 4 },
    stat: { size: 144, dev: 0, ino: 8, nlink: 16, nlinkSize: 8, mode: 24, uid: 28, gid: 32, rdev: 40, size_: 48 },
  },
  // arm64 uses the asm-generic stat layout.
  "linux-arm64": {
    ...linuxCommon,
    target: "linux-arm64",
    epollEvent: { size: 16, events: 0, data: 8 },
    stat: { size: 128, dev: 0, ino: 8, mode: 16, nlink: 20, nlinkSize: 4, uid: 24, gid: 28, rdev: 32, size_: 48 },
    // arch/arm64/include/uapi/asm/fcntl.h moves these four, and arm64 takes asm-generic's syscall numbers; every
    // other constant here is the same as x86-64's.
    c: {
      ...linuxConstants, O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000, O_DIRECT: 0o200000, O_LARGEFILE: 0o400000,
      SYS_accept: 202, SYS_accept4: 242,
      SYS_kcmp: 272,
    },
  },
};

export class UnsupportedTargetError extends Error {
  constructor(target: string) {
    super(`unsupported platform ${target}: fdbroker knows the ABI of ${Object.keys(table).join(", ")}`);
    this.name = "UnsupportedTargetError";
  }
}

export function abiFor(platform: string, arch: string): Abi {
  const target = `${platform}-${arch}`;
  const abi = table[target];
  if (!abi) throw new UnsupportedTargetError(target);
  return abi;
}

export const abi: Abi = abiFor(process.platform, process.arch);
export const C = abi.c;

/** CMSG_ALIGN, CMSG_SPACE and CMSG_LEN as <sys/socket.h> defines them. */
export const cmsgAlign = (n: number) => (n + abi.cmsghdr.align - 1) & ~(abi.cmsghdr.align - 1);
export const cmsgSpace = (n: number) => abi.cmsghdr.size + cmsgAlign(n);
export const cmsgLen = (n: number) => abi.cmsghdr.size + n;

// asm-generic errno numbers, shared by x86-64 and arm64 Linux. Code that raises or tests a particular one names it
// here (E.ETIMEDOUT) rather than spelling the number.
export const E = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10,
  EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28,
  ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37,
  ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENOMSG: 42, ENODATA: 61, ETIME: 62, EPROTO: 71, EBADMSG: 74, EOVERFLOW: 75,
  EILSEQ: 84, EUSERS: 87, ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94, EOPNOTSUPP: 95, EPFNOSUPPORT: 96, EAFNOSUPPORT: 97, EADDRINUSE: 98,
  EADDRNOTAVAIL: 99, ENETDOWN: 100, ENETUNREACH: 101, ENETRESET: 102, ECONNABORTED: 103, ECONNRESET: 104,
  ENOBUFS: 105, EISCONN: 106, ENOTCONN: 107, ESHUTDOWN: 108, ETOOMANYREFS: 109, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EHOSTDOWN: 112, EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ESTALE: 116, EDQUOT: 122, ECANCELED: 125,
} as const;

// Built on first use, with a loop: module start-up is on every command's path (see src/sys/exec.ts).
let errnoNames: Record<number, string> | null = null;

export function errnoName(errno: number): string {
  if (errnoNames === null) {
    errnoNames = {};
    for (const name in E) errnoNames[E[name as keyof typeof E]] = name;
  }
  return errnoNames[errno] ?? `E${errno}`;
}
export function errnoNumber(name: string): number | undefined {
  return (E as Record<string, number>)[name];
}
