// sock_diag over netlink (Linux 3.3): what the kernel knows of a UNIX socket and /proc does not show, the inode of
// its peer and its queue lengths (what `ss -x` prints). One exact lookup per inode (unix_diag's udiag_ino), not a
// dump of every socket on the machine: the work grows with the sockets asked about, each reply fits one buffer,
// and a query reads at most MAX_MESSAGES messages. The kernel looks inodes up in the network namespace of the
// netlink socket, so a socket of another namespace is not found (null), as is one closed meanwhile.
//
// Ownership: unixDiag opens one netlink socket and closes it on every path; nothing it returns holds an fd.
import { abi, C, E } from "./abi.ts";
import { SysError, sysError } from "./errors.ts";
import { close, read, waitFd, write } from "./fd.ts";
import { libc } from "./libc.ts";
import { scratch } from "./mem.ts";

export interface UnixDiag {
  ino: number;
  /** The kernel's state of a UNIX socket, in TCP's numbers: C.TCP_LISTEN, C.TCP_ESTABLISHED or C.TCP_CLOSE. */
  state: number;
  /** The connected peer's inode; null when not connected (or the peer is gone). */
  peer: number | null;
  /** Bytes queued to be read here; a listener: connections waiting for accept. Null if the kernel did not say. */
  rqueue: number | null;
  /** Bytes sent and not yet read by the peer; a listener: its backlog. */
  wqueue: number | null;
}

/** One reply is one message of at most a few hundred bytes (header, unix_diag_msg, a name of up to 108). */
const REPLY_BYTES = 8192;
/** Messages read for one query before it is given up: stale replies (another seq) are skipped, not waited on. */
const MAX_MESSAGES = 8;

const align = (n: number) => (n + C.NLMSG_ALIGNTO - 1) & ~(C.NLMSG_ALIGNTO - 1);
const u32 = (n: number) => n >>> 0;

/** A SOCK_DIAG_BY_FAMILY request for the UNIX socket with inode `ino`. */
export function encodeUnixDiagRequest(ino: number, seq: number): Uint8Array {
  const h = abi.nlmsghdr;
  const r = abi.unixDiagReq;
  const buf = scratch(h.size + r.size);
  const v = new DataView(buf.buffer);
  v.setUint32(h.len, buf.length, true);
  v.setUint16(h.type, C.SOCK_DIAG_BY_FAMILY, true);
  v.setUint16(h.flags, C.NLM_F_REQUEST, true);
  v.setUint32(h.seq, u32(seq), true);
  const o = h.size;
  v.setUint8(o + r.family, C.AF_UNIX);
  v.setUint32(o + r.states, 0xffffffff, true);
  v.setUint32(o + r.ino, u32(ino), true);
  v.setUint32(o + r.show, C.UDIAG_SHOW_NAME | C.UDIAG_SHOW_PEER | C.UDIAG_SHOW_RQLEN, true);
  // All ones: "no cookie", which the kernel does not check (sock_diag_check_cookie).
  v.setUint32(o + r.cookie, 0xffffffff, true);
  v.setUint32(o + r.cookie + 4, 0xffffffff, true);
  return buf;
}

export type DiagMessage = { seq: number; diag: UnixDiag } | { seq: number; errno: number } | { seq: number; done: true };

const malformed = (what: string) => new SysError("recv", E.EBADMSG, "sock_diag", what);

/**
 * The messages in one datagram from the kernel, in order; messages of other types are left out. A length that
 * runs past the datagram or below a header is EBADMSG, never a read out of bounds.
 */
export function parseDiagReply(bytes: Uint8Array): DiagMessage[] {
  const h = abi.nlmsghdr;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: DiagMessage[] = [];
  for (let at = 0; at + h.size <= bytes.length; ) {
    const len = v.getUint32(at + h.len, true);
    if (len < h.size || len > bytes.length - at) throw malformed(`message length ${len} at byte ${at}`);
    const type = v.getUint16(at + h.type, true);
    const seq = v.getUint32(at + h.seq, true);
    const body = at + h.size;
    if (type === C.NLMSG_ERROR) {
      if (len < h.size + 4) throw malformed("short error message");
      out.push({ seq, errno: -v.getInt32(body + abi.nlmsgerr.error, true) });
    } else if (type === C.NLMSG_DONE) out.push({ seq, done: true });
    else if (type === C.SOCK_DIAG_BY_FAMILY) out.push({ seq, diag: parseUnixDiagMsg(v, body, at + len) });
    at += align(len);
  }
  return out;
}

function parseUnixDiagMsg(v: DataView, start: number, end: number): UnixDiag {
  const m = abi.unixDiagMsg;
  const a = abi.rtattr;
  if (end - start < m.size) throw malformed("short unix_diag_msg");
  const diag: UnixDiag = {
    ino: v.getUint32(start + m.ino, true), state: v.getUint8(start + m.state), peer: null, rqueue: null, wqueue: null,
  };
  for (let at = start + align(m.size); at + a.size <= end; ) {
    const len = v.getUint16(at + a.len, true);
    if (len < a.size || len > end - at) throw malformed(`attribute length ${len}`);
    const type = v.getUint16(at + a.type, true);
    const data = at + a.size;
    if (type === C.UNIX_DIAG_PEER && len >= a.size + 4) diag.peer = v.getUint32(data, true) || null;
    else if (type === C.UNIX_DIAG_RQLEN && len >= a.size + abi.unixDiagRqlen.size) {
      diag.rqueue = v.getUint32(data + abi.unixDiagRqlen.rqueue, true);
      diag.wqueue = v.getUint32(data + abi.unixDiagRqlen.wqueue, true);
    }
    at += align(len);
  }
  return diag;
}

function openSockDiag(): number {
  const fd = libc.socket(C.AF_NETLINK, C.SOCK_DGRAM | C.SOCK_CLOEXEC | C.SOCK_NONBLOCK, C.NETLINK_SOCK_DIAG);
  if (fd < 0) throw sysError("socket", "AF_NETLINK NETLINK_SOCK_DIAG");
  return fd;
}

/** The reply to one request, read within `deadline`; null when the kernel has no such socket (ENOENT). */
function queryOne(fd: number, ino: number, seq: number, deadline: number): UnixDiag | null {
  // write(2) on an unconnected netlink socket goes to the kernel, which answers before write returns.
  if (write(fd, encodeUnixDiagRequest(ino, seq)) < 0) throw new SysError("send", E.EAGAIN, "sock_diag");
  for (let n = 0; n < MAX_MESSAGES; ) {
    const left = deadline - Date.now();
    if (left <= 0 || waitFd(fd, C.POLLIN, left) === 0) throw new SysError("recv", E.ETIMEDOUT, "sock_diag", `no reply for inode ${ino}`);
    const bytes = read(fd, REPLY_BYTES);
    if (bytes === null) continue;
    for (const m of parseDiagReply(bytes)) {
      n++;
      if (m.seq !== u32(seq)) continue;
      if ("diag" in m) return m.diag.ino === u32(ino) ? m.diag : null;
      if ("errno" in m) {
        if (m.errno === E.ENOENT) return null;
        throw new SysError("sock_diag", m.errno, `inode ${ino}`);
      }
      return null;
    }
  }
  throw new SysError("recv", E.EBADMSG, "sock_diag", `no reply for inode ${ino} in ${MAX_MESSAGES} messages`);
}

/**
 * What sock_diag says of each UNIX socket inode in `inodes` that it finds in this network namespace. Throws
 * SysError when netlink or sock_diag itself fails (EPROTONOSUPPORT without netlink, a seccomp filter's EPERM,
 * a reply that takes over `timeoutMs`): the caller decides whether that matters.
 */
export function unixDiag(inodes: Iterable<number>, timeoutMs = 1000): Map<number, UnixDiag> {
  const found = new Map<number, UnixDiag>();
  const fd = openSockDiag();
  try {
    let seq = 0;
    for (const ino of inodes) {
      const d = queryOne(fd, ino, ++seq, Date.now() + timeoutMs);
      if (d) found.set(ino, d);
    }
  } finally {
    close(fd);
  }
  return found;
}
