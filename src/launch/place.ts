// Exact fd placement before exec: any map from source fds to target numbers, including targets that collide
// with sources and cycles (swap 3 and 4; 5 to 0 while 0 goes to 5).
import { UsageError } from "../errors.ts";
import { cloexecRange, closeAll, dup3, dupCloexec, isSysError, MAX_FD_NUMBER, setCloexec } from "../sys/index.ts";

export interface Placement {
  from: number;
  to: number;
}

/**
 * Put each `from` at its `to`, without FD_CLOEXEC. Every source is first copied above all numbers in play (the
 * copies are CLOEXEC), so no dup3 can clobber a source that a later step still needs; that makes collisions and
 * cycles need no special case. Sources are left open as they were.
 */
export function placeFds(map: readonly Placement[]): void {
  const targets = new Set<number>();
  for (const { to } of map) {
    if (!Number.isInteger(to) || to < 0) throw new UsageError(`bad target fd: ${to}`);
    if (targets.has(to)) throw new UsageError(`two fds placed at ${to}`);
    targets.add(to);
  }
  let floor = 10;
  for (const { from, to } of map) floor = Math.max(floor, from + 1, to + 1);
  const copies: number[] = [];
  try {
    for (const { from } of map) copies.push(dupCloexec(from, floor));
    for (let i = 0; i < map.length; i++) dup3(copies[i]!, map[i]!.to, false);
  } finally {
    closeAll(copies);
  }
}

/**
 * Mark every open fd outside `keep` CLOEXEC, so an exec passes exactly `keep` on: one close_range(2) per gap
 * between kept numbers, or, on Linux before 5.11 or under a seccomp filter that predates close_range, each fd
 * listed in /proc/self/fd.
 */
export function cloexecAllBut(keep: readonly number[]): void {
  try {
    // A typed array sorts numerically, natively: `get NAME -- CMD`'s path avoids JSC's JavaScript-written
    // builtins (Array sort, Set iteration), whose first call in a process compiles them (see src/sys/exec.ts).
    const sorted = new Uint32Array(keep.length);
    for (let i = 0; i < keep.length; i++) {
      // A number no fd can have (-1, 3.5, 2^32 + 3) keeps nothing, so it becomes the top one, which no fd has
      // either: the array's own conversion would wrap it onto a real fd (3), or past the top back to 0.
      const k = keep[i]!;
      sorted[i] = k >= 0 && k < MAX_FD_NUMBER && Math.floor(k) === k ? k : MAX_FD_NUMBER;
    }
    sorted.sort();
    let first = 0;
    for (let i = 0; i < sorted.length; i++) {
      const k = sorted[i]!;
      if (k > first) cloexecRange(first, k - 1);
      first = Math.max(first, k + 1);
    }
    if (first <= MAX_FD_NUMBER) cloexecRange(first);
  } catch (e) {
    // ENOSYS before 5.9, EINVAL (the flag) on 5.9 and 5.10; EPERM from a container's seccomp profile written
    // before close_range existed (older container runtimes answer EPERM for any call their profile does not list).
    if (!isSysError(e, "ENOSYS") && !isSysError(e, "EINVAL") && !isSysError(e, "EPERM")) throw e;
    cloexecListed(keep);
  }
}

/** cloexecAllBut the slow way, for kernels without CLOSE_RANGE_CLOEXEC. Exported for its test. */
export function cloexecListed(keepList: readonly number[]): void {
  const keep = new Set(keepList);
  // Loaded here, not at the top: node:fs costs the fast path about a millisecond (docs/benchmarks.md).
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (keep.has(fd)) continue;
    try {
      setCloexec(fd, true);
    } catch {
      // The fd readdir itself used is gone by now (EBADF): nothing to mark.
    }
  }
}
