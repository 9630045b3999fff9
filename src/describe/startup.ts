// The fds open when fdbroker started, recorded by the CLI's entry module before anything else runs: Bun dups
// fd 1 or 2 for its own writer the first time anything touches process.stdout or process.stderr (a library, an
// error message), and that copy must not pass for an inherited fd. Kept tiny because every command pays for it.
//
// Bun also fills a closed fd 0, 1 or 2 with /dev/null before any JavaScript runs, opened O_RDWR|O_CLOEXEC (seen
// in /proc/self/fdinfo: flags 02100002 for `<&-`, 0100000 for `</dev/null`). An inherited fd can never be
// close-on-exec: execve would have closed it. So a close-on-exec 0, 1 or 2 here is the runtime's, and fdbroker
// treats it as the closed fd it was (issue 8): `fdbroker put x <&-` must not store /dev/null.
import { readdirSync } from "node:fs";
import { C, getFdFlags, isOpen } from "../sys/index.ts";

const filledByRuntime = (fd: number) => fd <= 2 && (getFdFlags(fd) & C.FD_CLOEXEC) !== 0;

// readdir's own directory fd is listed too, and closed by the time the list is checked.
const open = readdirSync("/proc/self/fd").map(Number).filter(isOpen).sort((a, b) => a - b);

/** Which of 0, 1, 2 were closed when fdbroker started (the runtime's /dev/null is there now). */
export const closedAtStartup: ReadonlySet<number> = new Set(open.filter(filledByRuntime));
export const fdsAtStartup: readonly number[] = open.filter((fd) => !closedAtStartup.has(fd));
