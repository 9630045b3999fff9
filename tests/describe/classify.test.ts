// Kinds from the /proc link text and the file mode, including anon inodes no test here can create (signalfd,
// timerfd without Python 3.13, fanotify, io_uring).
import { expect, test } from "bun:test";
import { classify } from "../../src/describe/describe.ts";
import { C } from "../../src/sys/index.ts";

test.each([
  ["socket:[123]", null, "socket", null],
  ["pipe:[9]", null, "pipe", null],
  ["anon_inode:[eventfd]", null, "eventfd", null],
  ["anon_inode:[eventpoll]", null, "epoll", null],
  ["anon_inode:[signalfd]", null, "signalfd", null],
  ["anon_inode:[timerfd]", null, "timerfd", null],
  ["anon_inode:[pidfd]", null, "pidfd", null],
  ["pidfd:[5912]", null, "pidfd", null],
  ["anon_inode:inotify", null, "inotify", null],
  ["anon_inode:[fanotify]", null, "fanotify", null],
  ["anon_inode:[io_uring]", null, "io_uring", null],
  ["anon_inode:[userfaultfd]", null, "anon", null],
  ["/memfd:buf (deleted)", C.S_IFREG, "memfd", "memfd:buf"],
  ["/etc/hosts", C.S_IFREG, "file", "/etc/hosts"],
  ["/tmp", C.S_IFDIR, "directory", "/tmp"],
  ["/dev/null", C.S_IFCHR, "chardev", "/dev/null"],
  ["/dev/sda", C.S_IFBLK, "blockdev", "/dev/sda"],
  ["/run/fifo", C.S_IFIFO, "fifo", "/run/fifo"],
  ["/run/x.sock", C.S_IFSOCK, "socket", "/run/x.sock"],
  ["/etc/link", C.S_IFLNK, "symlink", "/etc/link"],
  ["/gone", null, "unknown", "/gone"],
  ["net:[4026531840]", null, "unknown", null],
] as const)("%s", (target, mode, kind, path) => {
  expect(classify(target, mode)).toMatchObject({ kind, path });
});

test("a deleted file keeps its path without the suffix", () => {
  expect(classify("/var/tmp/x (deleted)", C.S_IFREG)).toEqual({ kind: "file", path: "/var/tmp/x", deleted: true });
});
