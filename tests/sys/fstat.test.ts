// fstat through the ABI table against node:fs on the same fds: a wrong offset in src/sys/abi.ts (the layout
// differs between x86-64 and arm64) shows here as a field that disagrees.
import { expect, test } from "bun:test";
import { fstatSync, openSync } from "node:fs";
import { close, fstat, pipe, socketpair } from "../../src/sys/index.ts";

test("fstat fields agree with node:fs for a file, a pipe and a socket", () => {
  const file = openSync(import.meta.path, "r");
  const [r, w] = pipe();
  const [a, b] = socketpair();
  try {
    for (const fd of [file, r, a]) {
      const mine = fstat(fd);
      const theirs = fstatSync(fd);
      expect(mine).toEqual({
        dev: theirs.dev, ino: theirs.ino, mode: theirs.mode, nlink: theirs.nlink,
        uid: theirs.uid, gid: theirs.gid, rdev: theirs.rdev, size: theirs.size,
      });
    }
    expect(fstat(file).size).toBeGreaterThan(100);
  } finally {
    for (const fd of [file, r, w, a, b]) close(fd);
  }
});
