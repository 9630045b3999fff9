// Copying what a retrieved fd reads to stdout, for `get --cat`. A regular file is read from offset 0 with pread,
// so the offset it shares with every other holder does not move; a pipe or socket is read until EOF.
import { fstatSync, readSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { C, isSysError, read, socketInfo, SysError, waitFd, writeAll } from "../sys/index.ts";

const CHUNK = 64 * 1024;

/** Copy what `fd` reads to `out`; `what` names it in errors (`entry "web"`), never an fd number of ours. */
export function catFd(fd: number, what: string, out = 1): number {
  try {
    return copy(fd, what, out);
  } catch (e) {
    if (isSysError(e) && !(e.syscall === "write" || e.path === `fd ${out}`)) throw new SysError(e.syscall, e.errno, what, e.detail);
    throw e;
  }
}

function copy(fd: number, what: string, out: number): number {
  let total = 0;
  const st = fstatSync(fd);
  const cannot = (kind: string, hint: string) => new UsageError(`--cat reads files, pipes and connected sockets; ${what} is ${kind} (${hint})`);
  if (st.isDirectory()) throw cannot("a directory", "list it with ls");
  if (st.isSocket() && socketInfo(fd).listening) throw cannot("a listening socket", `hand it to a server: fdbroker get NAME -- CMD`);
  if (st.isFile()) {
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, total);
      if (n === 0) return total;
      writeAll(out, buf.subarray(0, n));
      total += n;
    }
  }
  for (;;) {
    const data = read(fd, CHUNK);
    if (data === null) {
      waitFd(fd, C.POLLIN, Infinity);
      continue;
    }
    if (data.length === 0) return total;
    writeAll(out, data);
    total += data.length;
  }
}
