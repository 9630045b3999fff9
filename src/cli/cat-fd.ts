// Copying what a retrieved fd reads to stdout, for `get --cat`. A regular file is read from offset 0 with pread,
// so the offset it shares with every other holder does not move; a pipe or socket is read until EOF.
import { fstatSync, readSync } from "node:fs";
import { C, read, waitFd, writeAll } from "../sys/index.ts";

const CHUNK = 64 * 1024;

export function catFd(fd: number, out = 1): number {
  let total = 0;
  if (fstatSync(fd).isFile()) {
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
