// The fds open when fdbroker started, recorded by the CLI's entry module before anything else runs: Bun dups
// fd 1 or 2 for its own writer the first time anything touches process.stdout or process.stderr (a library, an
// error message), and that copy must not pass for an inherited fd. Kept tiny because every command pays for it.
import { readdirSync } from "node:fs";
import { isOpen } from "../sys/index.ts";

// readdir's own directory fd is listed too, and closed by the time the list is checked.
export const fdsAtStartup: readonly number[] = readdirSync("/proc/self/fd").map(Number).filter(isOpen).sort((a, b) => a - b);
