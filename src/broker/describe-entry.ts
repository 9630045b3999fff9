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

export function describeEntryFd(fd: number): { kind: string; what: string } {
  try {
    const d = describeFd(fd);
    return { kind: d.kind, what: whatOf(d) };
  } catch (e) {
    return { kind: "unknown", what: (e as Error).message };
  }
}
