// Copying what a retrieved fd reads to stdout, for `get --cat` and `grab --cat`. A regular file is read from offset
// 0 with pread, so the offset it shares with every other holder does not move; a pipe or socket is read until EOF,
// or until nothing has come for `timeoutMs`.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { C, E, fromNodeError, getStatusFlags, isSysError, read, recvmsg, socketInfo, SysError, waitFd, writeAll } from "../sys/index.ts";

const CHUNK = 64 * 1024;

/** Copy what `fd` reads to `out`; `what` names it in errors (`entry "web"`), never an fd number of ours. */
export function catFd(fd: number, what: string, out = 1, timeoutMs = Infinity): number {
  try {
    return copy(fd, what, out, timeoutMs);
  } catch (e) {
    const err = fromNodeError(e);
    if (isSysError(err) && !(err.syscall === "write" || err.path === `fd ${out}`)) throw new SysError(err.syscall, err.errno, what, err.detail);
    throw err;
  }
}

function copy(fd: number, what: string, out: number, timeoutMs: number): number {
  let total = 0;
  const st = fstatSync(fd);
  const cannot = (kind: string, hint: string) => new UsageError(`--cat reads files, pipes and connected sockets; ${what} is ${kind} (${hint})`);
  if (st.isDirectory()) throw cannot("a directory", "list it with ls");
  if (st.isSocket() && socketInfo(fd).listening) throw cannot("a listening socket", `hand it to a server: fdbroker get NAME -- CMD`);
  if (st.isFile()) {
    // A daemon's log is open write-only (O_APPEND), where pread fails EBADF: read it through a description of our
    // own, opened read-only through /proc, which reaches the inode even once the file is deleted.
    const own = (getStatusFlags(fd) & C.O_ACCMODE) === C.O_WRONLY ? openSync(`/proc/self/fd/${fd}`, C.O_RDONLY | C.O_CLOEXEC) : null;
    try {
      const buf = new Uint8Array(CHUNK);
      for (;;) {
        const n = readSync(own ?? fd, buf, 0, CHUNK, total);
        if (n === 0) return total;
        writeAll(out, buf.subarray(0, n));
        total += n;
      }
    } finally {
      if (own !== null) closeSync(own);
    }
  }
  if (st.isFIFO() && (getStatusFlags(fd) & C.O_ACCMODE) === C.O_WRONLY) throw cannot("a pipe's write end", "its read end has the same inode: fdbroker inspect --pid lists it");
  const stream = streamOf(fd, st.isFIFO(), st.isSocket());
  try {
    for (;;) {
      const data = stream.read();
      if (data === null) {
        if (waitFd(stream.fd, C.POLLIN, timeoutMs) === 0)
          throw new SysError("poll", E.ETIMEDOUT, undefined, `nothing more in ${timeoutMs} ms, and its writer is still open (--timeout sets the wait)`);
        continue;
      }
      if (data.length === 0) return total;
      writeAll(out, data);
      total += data.length;
    }
  } finally {
    stream.close();
  }
}

/**
 * Reads that never block, whatever the fd's own O_NONBLOCK says: that flag belongs to the open file description
 * every holder shares (a grabbed fd's is the holder's), so setting it would change how the holder's own reads
 * behave. A pipe is opened anew through /proc (a description of our own on the same pipe), a socket read with
 * MSG_DONTWAIT; anything else is read only once poll says it will not block (a holder reading the same fd may still
 * take the data first; such an fd may then block until more comes).
 */
function streamOf(fd: number, pipe: boolean, socket: boolean): { fd: number; read(): Uint8Array | null; close(): void } {
  if (pipe) {
    const own = openSync(`/proc/self/fd/${fd}`, C.O_RDONLY | C.O_NONBLOCK | C.O_CLOEXEC);
    return { fd: own, read: () => read(own, CHUNK), close: () => closeSync(own) };
  }
  if (socket) return { fd, read: () => recvmsg(fd, CHUNK, 0, C.MSG_DONTWAIT)?.data ?? null, close: () => {} };
  return { fd, read: () => (waitFd(fd, C.POLLIN, 0) === 0 ? null : read(fd, CHUNK)), close: () => {} };
}
