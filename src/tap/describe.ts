// Describing the fds of a relayed message for its record, without letting a peer hold the tap up. Of the calls
// describing makes, only fstat asks the file's file system, and a FUSE or network file system's server may never
// answer it (a peer can pass an fd of a file on a FUSE mount it serves itself). So for an fd with a path it runs on
// an offload thread (src/sys/offload.ts), and the message waits for it at most DESCRIBE_WAIT_MS in all; an fd
// not described by then is recorded as such and passed on regardless. The rest is answered by the kernel from the
// open file alone (readlink of /proc/self/fd/N, /proc/self/fdinfo/N, fcntl).
import { readlinkSync } from "node:fs";
import { describeFd, type FdDescription } from "../describe/index.ts";
import { C, waitFd, type Stat } from "../sys/index.ts";
import { fstatOffThread, offloadCheckInMs, offloadWakeFd, tendOffload } from "../sys/offload.ts";

/** Longest a message waits for its fds' fstat: a local file answers in microseconds. */
const DESCRIBE_WAIT_MS = 50;

export function describeForRecord(fds: readonly number[]): FdDescription[] {
  // Counted from the first job's start, not before it: the first job starts the first offload thread (10-20 ms).
  const wait = { deadline: Infinity };
  return fds.map((fd) => {
    try {
      const d = describeFd(fd, hasPath(fd) ? statWithin(fd, wait) : undefined);
      // Close-on-exec belongs to an fd number, not to what is passed: it is tap's own copy's (MSG_CMSG_CLOEXEC).
      return { ...d, flags: d.flags.filter((f) => f !== "cloexec") };
    } catch (e) {
      return notDescribed(fd, (e as Error).message);
    }
  });
}

/** The fd's fstat, taken off this thread; throws once the deadline has passed without an answer. */
function statWithin(fd: number, wait: { deadline: number }): Stat {
  const job = fstatOffThread(fd);
  if (wait.deadline === Infinity) wait.deadline = Date.now() + DESCRIBE_WAIT_MS;
  for (let left = wait.deadline - Date.now(); !job.settled && left > 0; left = wait.deadline - Date.now()) {
    const wake = offloadWakeFd();
    // Woken early when the pool must act without a job ending: a thread stuck in a peer's close() is replaced.
    if (wake !== null) waitFd(wake, C.POLLIN, Math.min(left, Math.ceil(offloadCheckInMs())));
    tendOffload(wake !== null);
  }
  if (!job.settled) {
    // The fd may be closed once the job is cancelled: a worker still in fstat holds the file, not the number.
    job.cancel();
    throw new Error(`not answering: fstat took longer than ${DESCRIBE_WAIT_MS} ms (a FUSE or network file system's server?)`);
  }
  if (job.result instanceof Error) throw job.result;
  return job.result!;
}

/** A file with a path: what /proc/self/fd/N links to starts with `/` exactly then. */
function hasPath(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith("/");
  } catch {
    return false; // describeFd says why
  }
}

// Describing is for the record only: a failure here must not stop the fd from being passed on.
const notDescribed = (fd: number, why: string): FdDescription => ({
  fd, kind: "unknown", target: `(not described: ${why})`, path: null, deleted: false, access: null,
  flags: [], rawFlags: 0, offset: null, inode: null, size: null, socket: null, details: {},
});
