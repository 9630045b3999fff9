// The tap's event loop: one epoll, level-triggered, a handler per registered fd. Interest changes only when what a
// side waits for changes (want), so a turn costs what is ready. Between turns it yields to Bun's event loop, where
// SIGINT and SIGTERM handlers run (epoll_wait returns EINTR at once), after a quiet wait or every few ms. Peers' fds
// are closed, and described, on offload threads (pump.ts, describe.ts); the loop watches their wake fd and tends
// them after every turn.
import { macrotask } from "../peer/wait.ts";
import { C, close, epollAdd, epollCreate, epollModify, epollRemove, epollWait } from "../sys/index.ts";
import { offloadCheckInMs, offloadWakeFd, startOffload, tendOffload } from "../sys/offload.ts";

/** Longest single wait, so a stop request is seen soon even if a signal lands between the check and the wait. */
const MAX_WAIT_MS = 250;

export interface Watch {
  fd: number;
  gen: number;
  events: number;
  onReady: (events: number) => void;
}

export interface Loop {
  ep: number;
  watches: Map<number, Watch>;
  nextGen: number;
  stopping: boolean;
  /** Shortest wait asked for by a side that must retry without an fd to wake it (a full datagram receiver). */
  retryMs: number;
}

export function openLoop(): Loop {
  startOffload();
  return { ep: epollCreate(), watches: new Map(), nextGen: 1, stopping: false, retryMs: Infinity };
}

export function watch(loop: Loop, fd: number, events: number, onReady: (events: number) => void): Watch {
  const w = { fd, gen: loop.nextGen++ >>> 0, events, onReady };
  epollAdd(loop.ep, fd, events, w.gen);
  loop.watches.set(fd, w);
  return w;
}

export function want(loop: Loop, w: Watch, events: number): void {
  if (w.events === events || loop.watches.get(w.fd) !== w) return;
  epollModify(loop.ep, w.fd, events, w.gen);
  w.events = events;
}

/** Stop watching; done before the fd is closed or handed on. */
export function unwatch(loop: Loop, w: Watch): void {
  if (loop.watches.get(w.fd) !== w) return;
  loop.watches.delete(w.fd);
  epollRemove(loop.ep, w.fd);
}

/** Longest run of busy turns without a yield to Bun's event loop (where SIGINT and SIGTERM handlers run). */
const YIELD_EVERY_MS = 5;

/**
 * Run until `stopping` is set: wait, call the handlers of what is ready, let `afterTurn` flush output. Bun's event
 * loop gets a turn when a wait ends with nothing ready (a timeout, or EINTR: a signal arrived) and otherwise every
 * YIELD_EVERY_MS: a yield per turn (a promise, a setImmediate and a wait of Bun's own) cost about as much as
 * relaying a bulk message.
 */
export async function runLoop(loop: Loop, afterTurn: () => void): Promise<void> {
  let yielded = performance.now();
  while (!loop.stopping) {
    const timeout = Math.min(MAX_WAIT_MS, loop.retryMs);
    loop.retryMs = Infinity;
    const batch = epollWait(loop.ep, timeout);
    for (let i = 0; i < batch.count; i++) {
      const w = loop.watches.get(batch.fds[i]!);
      // An fd closed earlier in this batch (and its number perhaps reused) is skipped by its generation.
      if (w && w.gen === batch.gens[i]) w.onReady(batch.events[i]!);
    }
    tendOffloadIn(loop);
    afterTurn();
    const now = performance.now();
    if (batch.count > 0 && now - yielded < YIELD_EVERY_MS) continue;
    await macrotask();
    yielded = now;
  }
}

/** Collect finished closes and fstats, start queued ones; wake for the next when it is due. */
function tendOffloadIn(loop: Loop): void {
  tendOffload();
  const wake = offloadWakeFd();
  if (wake !== null && !loop.watches.has(wake)) watch(loop, wake, C.EPOLLIN, () => tendOffload(true));
  loop.retryMs = Math.min(loop.retryMs, offloadCheckInMs());
}

export function closeLoop(loop: Loop): void {
  close(loop.ep);
}
