// epoll(7), level-triggered: a loop registers each fd once, changes its interest only when what it waits for
// changes, and each wait returns only the fds that are ready, so a turn costs what is ready rather than what is
// open.
//
// Each registration carries a key of the caller's: the fd and a generation number, so an event that a wait
// returned for an fd closed (and its number reused) before the caller got to it can be told from one for the new
// fd. The kernel drops a registration only when the last reference to the open file goes, which may be later
// than the close (a copy in flight, or in another process): callers remove an fd before they close or hand it on.
import { abi, C, E } from "./abi.ts";
import { sysError } from "./errors.ts";
import { lastErrno, libc } from "./libc.ts";
import { scratch } from "./mem.ts";

const EV = abi.epollEvent;
const ctlBuf = scratch(EV.size);
const ctlView = new DataView(ctlBuf.buffer);

/** Events one wait returns at most; more ready fds are returned by the next wait (level-triggered). */
export const EPOLL_BATCH = 256;
const waitBuf = scratch(EV.size * EPOLL_BATCH);
const waitView = new DataView(waitBuf.buffer);

/** What a wait returned, in arrays reused by the next wait: entries 0 to count - 1. */
export interface EpollBatch {
  count: number;
  events: Uint32Array;
  fds: Int32Array;
  gens: Uint32Array;
}
const batch: EpollBatch = {
  count: 0,
  events: new Uint32Array(EPOLL_BATCH),
  fds: new Int32Array(EPOLL_BATCH),
  gens: new Uint32Array(EPOLL_BATCH),
};

/** A new epoll instance, close-on-exec. */
export function epollCreate(): number {
  const ep = libc.epoll_create1(C.EPOLL_CLOEXEC);
  if (ep < 0) throw sysError("epoll_create1");
  return ep;
}

function ctl(ep: number, op: number, fd: number, events: number, gen: number, name: string): void {
  ctlView.setUint32(EV.events, events, true);
  ctlView.setInt32(EV.data, fd, true);
  ctlView.setUint32(EV.data + 4, gen, true);
  if (libc.epoll_ctl(ep, op, fd, ctlBuf) !== 0) throw sysError(name, `fd ${fd}`);
}

/** Watch `fd` for `events` (EPOLLIN, EPOLLOUT or none: errors and hang-ups are always reported). */
export function epollAdd(ep: number, fd: number, events: number, gen = 0): void {
  ctl(ep, C.EPOLL_CTL_ADD, fd, events, gen, "epoll_ctl(ADD)");
}

/** Change what `fd` is watched for; the key is given again (the kernel replaces it too). */
export function epollModify(ep: number, fd: number, events: number, gen = 0): void {
  ctl(ep, C.EPOLL_CTL_MOD, fd, events, gen, "epoll_ctl(MOD)");
}

/** Stop watching `fd`. One that is not watched (ENOENT) or already closed (EBADF) is no error. */
export function epollRemove(ep: number, fd: number): void {
  if (libc.epoll_ctl(ep, C.EPOLL_CTL_DEL, fd, ctlBuf) === 0) return;
  const errno = lastErrno();
  if (errno !== E.ENOENT && errno !== E.EBADF) throw sysError("epoll_ctl(DEL)", `fd ${fd}`);
}

/**
 * Wait up to `timeoutMs` (Infinity: no limit) for ready fds. EINTR returns an empty batch instead of retrying, so
 * the caller's loop gets back to the event loop, where signal handlers run. The batch is reused by the next call.
 */
export function epollWait(ep: number, timeoutMs: number): EpollBatch {
  const timeout = timeoutMs === Infinity ? -1 : Math.max(0, Math.min(Math.ceil(timeoutMs), 0x7fffffff));
  const n = libc.epoll_wait(ep, waitBuf, EPOLL_BATCH, timeout);
  if (n < 0) {
    if (lastErrno() !== E.EINTR) throw sysError("epoll_wait");
    batch.count = 0;
    return batch;
  }
  for (let i = 0; i < n; i++) {
    const o = i * EV.size;
    batch.events[i] = waitView.getUint32(o + EV.events, true);
    batch.fds[i] = waitView.getInt32(o + EV.data, true);
    batch.gens[i] = waitView.getUint32(o + EV.data + 4, true);
  }
  batch.count = n;
  return batch;
}
