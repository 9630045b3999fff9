// fstat through the ABI table against node:fs on the same fds: a wrong offset in src/sys/abi.ts (the layout
// differs between x86-64 and arm64) shows here as a field that disagrees.
import { expect, test } from "bun:test";
import { fstatSync, lstatSync, openSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { close, fstat, isSysError, lstat, mkdir, pipe, socketpair } from "../../src/sys/index.ts";
import { tempDir } from "../helpers.ts";

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

test("lstat describes a symlink itself and agrees with node:fs; mkdir applies the mode and says false for EEXIST", () => {
  const dir = tempDir();
  try {
    const d = join(dir.path, "d");
    expect(mkdir(d, 0o700)).toBe(true);
    expect(mkdir(d, 0o700)).toBe(false);
    symlinkSync(d, join(dir.path, "link"));
    for (const p of [d, join(dir.path, "link")]) {
      const theirs = lstatSync(p);
      expect(lstat(p)).toEqual({ dev: theirs.dev, ino: theirs.ino, mode: theirs.mode, nlink: theirs.nlink, uid: theirs.uid, gid: theirs.gid, rdev: theirs.rdev, size: theirs.size });
    }
    expect(statSync(d).mode & 0o777).toBe(0o700 & ~process.umask());
    expect(lstat(join(dir.path, "link")).ino).not.toBe(lstat(d).ino);
    let caught: unknown;
    try {
      lstat(join(dir.path, "missing"));
    } catch (e) {
      caught = e;
    }
    expect(isSysError(caught, "ENOENT")).toBe(true);
    expect((caught as Error).message).toBe(`lstat: ENOENT (${join(dir.path, "missing")})`);
  } finally {
    dir.cleanup();
  }
});
