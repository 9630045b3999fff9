// Socket credentials: SO_PEERGROUPS as the kernel recorded it at connect, whatever the peer does afterwards.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { listenUnix } from "../../src/peer/listen.ts";
import { accept, C, close, closeAll, peerCred, peerGroups, socketpair, waitFd } from "../../src/sys/index.ts";
import { fdCount, fdSnapshot, lineReader, newFdsSince, spawn, tempDir } from "../helpers.ts";

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

test("peerGroups of a socketpair is this process's supplementary groups", () => {
  const before = fdCount();
  const [a, b] = socketpair();
  try {
    expect(sorted(peerGroups(a))).toEqual(sorted(readGroups("self")));
  } finally {
    closeAll([a, b]);
  }
  expect(fdCount()).toBe(before);
});

/** Supplementary groups from /proc/PID/status (what the broker read before SO_PEERGROUPS). */
function readGroups(pid: number | "self"): number[] {
  const m = /^Groups:[ \t]*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))!;
  return m[1]!.trim().split(/\s+/).filter(Boolean).map(Number);
}

// 200 groups take more than the 64 the first try has room for: the ERANGE path. Groups set after connect() are
// in /proc but not in SO_PEERGROUPS: only the groups the peer connected with may count for gid rules.
test.skipIf(process.getuid?.() !== 0)("peerGroups: 200 groups (past the first buffer), as at connect, not as changed after", async () => {
  const dir = tempDir();
  const path = join(dir.path, "s.sock");
  const before = fdSnapshot();
  const lfd = listenUnix(path);
  const py = [
    "import os, socket, sys",
    "os.setgroups(list(range(5000, 5200)))",
    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
    "os.setgroups([77])",
    "print('connected', flush=True); sys.stdin.read()",
  ].join("\n");
  const child = spawn(["python3", "-c", py, path], { stdin: "pipe" });
  try {
    await lineReader(child.stdout as ReadableStream).next(/^connected$/);
    expect(waitFd(lfd, C.POLLIN, 30000)).not.toBe(0);
    const fd = accept(lfd)!;
    try {
      expect(peerCred(fd).pid).toBe(child.pid);
      expect(peerGroups(fd)).toEqual(Array.from({ length: 200 }, (_, i) => 5000 + i));
      expect(readGroups(child.pid)).toEqual([77]);
    } finally {
      close(fd);
    }
  } finally {
    (child.stdin as { end(): void }).end();
    await child.exited;
    close(lfd);
    dir.cleanup();
  }
  expect(await newFdsSince(before)).toEqual([]);
});
