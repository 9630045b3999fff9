// A short description of a held fd for `ls`: its kind and what it refers to. Taken once, when the entry is
// stored, so listing 10,000 entries costs no syscalls.
//
// Of the calls describing makes, only fstat asks the file's file system, whose server (FUSE, NFS) may never
// answer; so for an fd with a path it runs off the loop's thread and the put waits for it, up to a deadline. The
// rest is answered by the kernel from the open file alone: readlink of /proc/self/fd/N, /proc/self/fdinfo/N,
// fcntl(F_GETFD). Sockets, pipes and anonymous inodes have no file system server behind them: described at once.
import { readlinkSync } from "node:fs";
// From their own modules, not the describe/ index: that would load the holder scans too, which serve never runs.
import { describeFd } from "../describe/describe.ts";
import { summarizeFd } from "../describe/summary.ts";
import type { Stat } from "../sys/index.ts";
import { fstatOffThread, type FstatJob } from "../sys/offload.ts";

export interface EntryDescription {
  kind: string;
  what: string;
}

/** Longest `what` kept: bounds every entry's size in replies (a path may be 4096 bytes). */
const MAX_WHAT = 1024;

export function describeEntryFd(fd: number, stat?: Stat): EntryDescription {
  try {
    const d = describeFd(fd, stat);
    const what = summarizeFd(d, { access: true });
    return { kind: d.kind, what: what.length > MAX_WHAT ? `${what.slice(0, MAX_WHAT - 3)}...` : what };
  } catch (e) {
    return { kind: "unknown", what: (e as Error).message };
  }
}

/** A description under way: the fd stays its owner's (a put's frame) and open until this is done or stopped. */
export interface Describing {
  fd: number;
  deadline: number;
  timeoutMs: number;
  job: FstatJob | null;
  done: EntryDescription | null;
}

/** Start describing `fd`; an fd without a path is described before this returns. */
export function startDescribing(fd: number, now: number, timeoutMs: number): Describing {
  const d: Describing = { fd, deadline: now + timeoutMs, timeoutMs, job: null, done: null };
  if (hasPath(fd)) d.job = fstatOffThread(fd);
  else d.done = describeEntryFd(fd);
  return d;
}

/** The description once fstat has answered, or once `now` is past the deadline; null while still waiting. */
export function described(d: Describing, now: number): EntryDescription | null {
  const job = d.job;
  if (d.done || !job) return d.done;
  if (job.settled) d.done = job.result instanceof Error ? { kind: "unknown", what: job.result.message } : describeEntryFd(d.fd, job.result!);
  else if (now >= d.deadline) {
    job.cancel();
    d.done = { kind: "unknown", what: `not answering: fstat took longer than ${d.timeoutMs} ms (a FUSE or network file system's server?)` };
  }
  return d.done;
}

/** Stop and forget the description `key` was waiting for, if any (its fd stays with its owner). */
export function stopDescribing<K>(waiting: Map<K, Describing>, key: K): void {
  waiting.get(key)?.job?.cancel();
  waiting.delete(key);
}

/** Whether the fd is a file with a path: what /proc/self/fd/N links to starts with `/` exactly then. */
function hasPath(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith("/");
  } catch {
    return false; // describeEntryFd reports why
  }
}
