// Which of this process's fds it inherited, as opposed to ones the runtime opened for itself.
//
// FD_CLOEXEC cannot tell them apart: Bun marks every inherited fd from 4 up close-on-exec at start-up. What it
// opens before any JavaScript runs is its event loop: one epoll instance and the eventfd that instance watches to
// wake itself. So: take the list of open fds first thing (src/describe/startup.ts, imported first by the CLI's
// entry; a library user gets the list from whenever it first imports fdbroker), and leave out each epoll whose
// own watch list holds an eventfd of ours, together with that eventfd. An inherited epoll watches fds of the
// process that registered them, so it only looks like ours if that process had an eventfd at the very same
// number: a corner case this rule gets wrong, and the price of not guessing by fd number.
import { readFileSync, readlinkSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { isOpen } from "../sys/index.ts";
import { epollTargets, parseFdinfo } from "./fdinfo.ts";
import { closedAtStartup, fdsAtStartup } from "./startup.ts";
import type { FdDescription } from "./types.ts";

function linkOf(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return "";
  }
}

/** The runtime's own event-loop fds among `fds`. */
function runtimeFds(fds: readonly number[]): Set<number> {
  const own = new Set<number>();
  for (const fd of fds) {
    if (linkOf(fd) !== "anon_inode:[eventpoll]") continue;
    let watched: number[];
    try {
      watched = epollTargets(parseFdinfo(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8")));
    } catch {
      continue;
    }
    const wake = watched.filter((w) => fds.includes(w) && linkOf(w) === "anon_inode:[eventfd]");
    if (wake.length === 0) continue;
    own.add(fd);
    for (const w of wake) own.add(w);
  }
  return own;
}

/** Fds this process inherited and still has open, ascending (0, 1 and 2 included when open). */
export function inheritedFds(): number[] {
  const own = runtimeFds(fdsAtStartup);
  return fdsAtStartup.filter((fd) => !own.has(fd) && isOpen(fd));
}

/**
 * Refuse an fd this process did not inherit (`inherited` is inheritedFds()): the runtime's own, its event loop's
 * epoll and eventfd, and the /dev/null it puts in place of a closed 0, 1 or 2, are open too, and must never be
 * sent, stored or handed to a program by mistake. `what` is how the user named it: `--fd 3`, `fd:4`.
 */
export function requireInherited(fd: number, what: string, inherited: ReadonlySet<number>): void {
  if (inherited.has(fd)) return;
  if (closedAtStartup.has(fd)) throw new UsageError(`fd ${fd} is not open`);
  throw new UsageError(`${what}: not an fd this process inherited`);
}

/**
 * `d`, a description of one of this process's fds, marked `cloexecByRuntime` when it was inherited and is now
 * close-on-exec: the launcher cannot have set that (exec would have closed the fd), so the runtime did, before
 * any JavaScript ran (Bun marks inherited fds from 4 up). `inherited` is inheritedFds().
 */
export function markRuntimeCloexec(d: FdDescription, inherited: ReadonlySet<number>): FdDescription {
  return inherited.has(d.fd) && d.flags.includes("cloexec") ? { ...d, cloexecByRuntime: true } : d;
}
