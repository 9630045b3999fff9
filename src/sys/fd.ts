// Plain fd syscalls, the two path calls the default socket directory needs (lstat, mkdir), and mkfifo for SPECs.
// Each throws a SysError naming the call on failure and retries EINTR where retrying is right.
import { abi, C, E } from "./abi.ts";
import { sysError } from "./errors.ts";
import { libc, lastErrno } from "./libc.ts";
import { cString, getU64, putU64, scratch } from "./mem.ts";

export function close(fd: number): void {
  // Never retry close on EINTR: Linux has already released the fd, and retrying could close someone else's.
  if (libc.close(fd) !== 0) {
    const e = sysError("close", `fd ${fd}`);
    if (e.errno !== E.EINTR) throw e;
  }
}

/** Close every fd in the list, best effort; used on error paths where the first error matters more. */
export function closeAll(fds: Iterable<number>): void {
  for (const fd of fds) libc.close(fd);
}

export function fcntl(fd: number, cmd: number, arg = 0, name = "fcntl"): number {
  const r = libc.fcntl(fd, cmd, arg);
  if (r < 0) throw sysError(name, `fd ${fd}`);
  return r;
}

export const getFdFlags = (fd: number) => fcntl(fd, C.F_GETFD);
export const getStatusFlags = (fd: number) => fcntl(fd, C.F_GETFL);

export function setCloexec(fd: number, on: boolean): void {
  const flags = getFdFlags(fd);
  const next = on ? flags | C.FD_CLOEXEC : flags & ~C.FD_CLOEXEC;
  if (next !== flags) fcntl(fd, C.F_SETFD, next);
}

export function setNonBlocking(fd: number, on: boolean): void {
  const flags = getStatusFlags(fd);
  const next = on ? flags | C.O_NONBLOCK : flags & ~C.O_NONBLOCK;
  if (next !== flags) fcntl(fd, C.F_SETFL, next);
}

/** The highest number close_range(2) accepts: its bounds are unsigned int. */
export const MAX_FD_NUMBER = 0xffff_ffff;

/**
 * Mark every open fd numbered `first` to `last` (inclusive) CLOEXEC in one close_range(2) call. Linux before 5.11
 * answers ENOSYS or EINVAL, a seccomp filter that does not know the call often EPERM; the caller decides what to
 * do instead.
 */
export function cloexecRange(first: number, last: number = MAX_FD_NUMBER): void {
  if (libc.syscall(C.SYS_close_range, first, last, C.CLOSE_RANGE_CLOEXEC) !== 0) throw sysError("close_range", `fds ${first}-${last}`);
}

/** isatty(3): whether `fd` is a terminal. */
export function isTerminal(fd: number): boolean {
  return libc.isatty(fd) === 1;
}

/** True when `fd` is open in this process. */
/** A pidfd for `pid` (close-on-exec): it polls readable once that process has exited. */
export function pidfdOpen(pid: number): number {
  const fd = libc.syscall(C.SYS_pidfd_open, pid, 0, 0);
  if (fd < 0) throw sysError("pidfd_open", `pid ${pid}`);
  return fd;
}

/**
 * A copy of fd `target` of the process `pidfd` refers to (close-on-exec, as pidfd_getfd(2) makes it). Needs
 * ptrace rights over that process (PTRACE_MODE_ATTACH_REALCREDS).
 */
export function pidfdGetfd(pidfd: number, target: number, label: string): number {
  const fd = libc.syscall(C.SYS_pidfd_getfd, pidfd, target, 0);
  if (fd < 0) throw sysError("pidfd_getfd", label);
  return fd;
}

export function isOpen(fd: number): boolean {
  return libc.fcntl(fd, C.F_GETFD, 0) >= 0;
}

/** A CLOEXEC duplicate of `fd` numbered at least `min`. */
export function dupCloexec(fd: number, min = 0): number {
  return fcntl(fd, C.F_DUPFD_CLOEXEC, min, "dup");
}

/** dup3(from, to, flags); `to` is closed first if open. */
export function dup3(from: number, to: number, cloexec = false): number {
  for (;;) {
    const r = libc.dup3(from, to, cloexec ? C.O_CLOEXEC : 0);
    if (r >= 0) return r;
    if (lastErrno() !== E.EINTR) throw sysError("dup3", `fd ${from} -> ${to}`);
  }
}

const pipeBuf = scratch(8);
const pipeView = new DataView(pipeBuf.buffer);
/** A pipe, both ends CLOEXEC: [readEnd, writeEnd]. */
export function pipe(nonBlocking = false): [number, number] {
  if (libc.pipe2(pipeBuf, C.O_CLOEXEC | (nonBlocking ? C.O_NONBLOCK : 0)) !== 0) throw sysError("pipe2");
  return [pipeView.getInt32(0, true), pipeView.getInt32(4, true)];
}

/** read(2) into a copy; null means EAGAIN on a non-blocking fd; an empty array means EOF. */
export function read(fd: number, max: number): Uint8Array | null {
  const buf = scratch(max);
  for (;;) {
    const n = libc.read(fd, buf, max);
    if (n >= 0) return buf.subarray(0, n);
    const errno = lastErrno();
    if (errno === E.EAGAIN) return null;
    if (errno !== E.EINTR) throw sysError("read", `fd ${fd}`);
  }
}

/** write(2) from a copy; returns bytes written, or -1 on EAGAIN. */
export function write(fd: number, data: Uint8Array): number {
  const buf = scratch(data.length);
  buf.set(data);
  for (;;) {
    const n = libc.write(fd, buf, data.length);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno === E.EAGAIN) return -1;
    if (errno !== E.EINTR) throw sysError("write", `fd ${fd}`);
  }
}

export interface Stat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
}

const statBuf = scratch(abi.stat.size);
const statView = new DataView(statBuf.buffer);
export function fstat(fd: number): Stat {
  if (libc.fstat(fd, statBuf) !== 0) throw sysError("fstat", `fd ${fd}`);
  return decodeStat(statView);
}

/**
 * lstat(2): the file `path` names, a symlink itself rather than what it points to. Through libc rather than
 * node:fs because the client's start-up path (`get NAME -- CMD`) checks the default socket's directory with it.
 */
export function lstat(path: string): Stat {
  if (libc.lstat(cString(path), statBuf) !== 0) throw sysError("lstat", path);
  return decodeStat(statView);
}

/** mkdir(2) with `mode` (less the umask). False when something already exists at `path`: the caller checks what. */
export const mkdir = (path: string, mode: number): boolean => created(libc.mkdir(cString(path), mode), "mkdir", path);

/** mkfifo(3) with `mode` (less the umask). False when something already exists at `path`, as for mkdir. */
export const mkfifo = (path: string, mode: number): boolean => created(libc.mkfifo(cString(path), mode), "mkfifo", path);

function created(result: number, syscall: string, path: string): boolean {
  if (result === 0) return true;
  const e = sysError(syscall, path);
  if (e.errno === E.EEXIST) return false;
  throw e;
}

/** A `struct stat` as the kernel filled it in (here, or in another thread's memory). */
export function decodeStat(view: DataView): Stat {
  const s = abi.stat;
  return {
    dev: getU64(view, s.dev),
    ino: getU64(view, s.ino),
    mode: view.getUint32(s.mode, true),
    nlink: s.nlinkSize === 8 ? getU64(view, s.nlink) : view.getUint32(s.nlink, true),
    uid: view.getUint32(s.uid, true),
    gid: view.getUint32(s.gid, true),
    rdev: getU64(view, s.rdev),
    size: getU64(view, s.size_),
  };
}

interface Rlimit {
  soft: number;
  hard: number;
}
const rlimBuf = scratch(abi.rlimit.size);
const rlimView = new DataView(rlimBuf.buffer);
// RLIM_INFINITY is all ones; it is reported as Infinity.
const rlimIn = (off: number) =>
  rlimView.getUint32(off, true) === 0xffffffff && rlimView.getUint32(off + 4, true) === 0xffffffff
    ? Infinity
    : getU64(rlimView, off);
const rlimOut = (off: number, v: number) => {
  if (v === Infinity) {
    rlimView.setUint32(off, 0xffffffff, true);
    rlimView.setUint32(off + 4, 0xffffffff, true);
  } else putU64(rlimView, off, v);
};

export function getNofileLimit(): Rlimit {
  if (libc.getrlimit(C.RLIMIT_NOFILE, rlimBuf) !== 0) throw sysError("getrlimit", "RLIMIT_NOFILE");
  return { soft: rlimIn(abi.rlimit.cur), hard: rlimIn(abi.rlimit.max) };
}

export function setNofileLimit(lim: Rlimit): void {
  rlimOut(abi.rlimit.cur, lim.soft);
  rlimOut(abi.rlimit.max, lim.hard);
  if (libc.setrlimit(C.RLIMIT_NOFILE, rlimBuf) !== 0) throw sysError("setrlimit", "RLIMIT_NOFILE");
}

export interface PollRequest {
  fd: number;
  events: number;
}

let pollBuf = scratch(abi.pollfd.size * 64);
let pollView = new DataView(pollBuf.buffer);
const pollTimeout = (ms: number) => (ms === Infinity ? -1 : Math.max(0, Math.min(Math.ceil(ms), 0x7fffffff)));
/**
 * poll(2). Returns the revents of each request, in order. EINTR returns all zeros instead of retrying, so a
 * caller's loop gets back to the event loop, where signal handlers run.
 */
export function poll(reqs: readonly PollRequest[], timeoutMs: number): Uint16Array {
  const p = abi.pollfd;
  if (pollBuf.length < reqs.length * p.size) {
    pollBuf = scratch(reqs.length * p.size * 2);
    pollView = new DataView(pollBuf.buffer);
  }
  for (let i = 0; i < reqs.length; i++) setPollfd(i, reqs[i]!.fd, reqs[i]!.events);
  const out = new Uint16Array(reqs.length);
  if (pollFirst(reqs.length, timeoutMs) > 0) for (let i = 0; i < reqs.length; i++) out[i] = pollView.getUint16(i * p.size + p.revents, true);
  return out;
}

/** poll(2) of one fd, without the arrays: a client waits this way for every reply. */
function pollOne(fd: number, events: number, timeoutMs: number): number {
  setPollfd(0, fd, events);
  return pollFirst(1, timeoutMs) > 0 ? pollView.getUint16(abi.pollfd.revents, true) : 0;
}

function setPollfd(i: number, fd: number, events: number): void {
  const p = abi.pollfd;
  const o = i * p.size;
  pollView.setInt32(o + p.fd, fd, true);
  pollView.setInt16(o + p.events, events, true);
  pollView.setInt16(o + p.revents, 0, true);
}

/** poll(2) over the first `n` entries of the buffer: how many are ready, 0 on EINTR (see poll). */
function pollFirst(n: number, timeoutMs: number): number {
  const r = libc.poll(pollBuf, n, pollTimeout(timeoutMs));
  if (r >= 0) return r;
  if (lastErrno() === E.EINTR) return 0;
  throw sysError("poll");
}

/** Wait until one fd is ready for `events` or `timeoutMs` passes; returns revents (0 on timeout). */
export function waitFd(fd: number, events: number, timeoutMs: number): number {
  // No limit needs no special case: Date.now() + Infinity is Infinity, and so is what is left of it.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, deadline - Date.now());
    const rev = pollOne(fd, events, left);
    if (rev !== 0) return rev;
    if (left === 0 || Date.now() >= deadline) return 0;
  }
}

/** Write all of `data`, waiting for room when `fd` is non-blocking (a terminal or pipe someone else set so). */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) {
    const n = write(fd, off === 0 ? data : data.subarray(off));
    if (n >= 0) off += n;
    else waitFd(fd, C.POLLOUT, Infinity);
  }
}

/**
 * splice(2) up to `len` bytes from `from` to `to` (one of them a pipe) without blocking: the pages move, the bytes
 * are not copied through user space. Returns the bytes moved, 0 at end of input, -1 when it would block. Spliced
 * from a socket, any fds sent with those bytes are discarded by the kernel: callers splice only bytes known to
 * carry none.
 */
export function splice(from: number, to: number, len: number): number {
  for (;;) {
    const n = libc.splice(from, null, to, null, len, C.SPLICE_F_MOVE | C.SPLICE_F_NONBLOCK);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno === E.EAGAIN) return -1;
    if (errno !== E.EINTR) throw sysError("splice", `fd ${from} -> ${to}`);
  }
}

/** Ask for a pipe of `bytes` capacity (F_SETPIPE_SZ); returns the capacity it has. */
export const setPipeSize = (fd: number, bytes: number): number => fcntl(fd, C.F_SETPIPE_SZ, bytes, "fcntl(F_SETPIPE_SZ)");

const inqBuf = scratch(4);
const inqView = new DataView(inqBuf.buffer);
/** Bytes waiting to be read on a socket (FIONREAD): on a UNIX stream socket, everything queued. */
export function queuedBytes(fd: number): number {
  if (libc.ioctl(fd, C.FIONREAD, inqBuf) !== 0) throw sysError("ioctl(FIONREAD)", `fd ${fd}`);
  return inqView.getInt32(0, true);
}
