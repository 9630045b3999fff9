// A short description of a held fd for `ls`: its kind and what it refers to. Taken once, when the entry is
// stored, so listing 10,000 entries costs no syscalls.
import { describeFd, type FdDescription } from "../describe/index.ts";

function whatOf(d: FdDescription): string {
  if (d.socket) {
    const s = d.socket;
    const where = s.local ?? (s.peer ? `-> ${s.peer}` : "(unnamed)");
    return `${s.family} ${s.type}${s.listening ? " listening" : ""} ${where}`;
  }
  return d.path !== null ? `${d.path}${d.deleted ? " (deleted)" : ""} (${d.access})` : d.target;
}

/** Longest `what` kept: bounds every entry's size in replies (a path may be 4096 bytes). */
const MAX_WHAT = 1024;

export function describeEntryFd(fd: number): { kind: string; what: string } {
  try {
    const d = describeFd(fd);
    const what = whatOf(d);
    return { kind: d.kind, what: what.length > MAX_WHAT ? `${what.slice(0, MAX_WHAT - 3)}...` : what };
  } catch (e) {
    return { kind: "unknown", what: (e as Error).message };
  }
}
