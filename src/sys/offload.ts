// close() and fstat() of fds that other processes supplied, on threads other than the caller's. Both can block in
// the kernel for as long as someone else likes: close() of the last reference to a TCP socket with SO_LINGER
// waits for its send queue to drain (up to a linger time its owner chose); close() of any fd on a FUSE file waits
// for the server to answer FLUSH, which FUSE sends on every close; fstat() waits for it to answer GETATTR. A
// broker's poll loop must never make those calls itself.
//
// They run in a small pool of Workers (src/sys/offload-worker.ts). Jobs go to idle workers at once (up to BATCH
// closes, or one fstat, per job), or wait in a queue; a worker reports completion in shared memory plus one byte
// on a wake pipe that the poll loop watches (`offloadWakeFd`), so the loop learns of it without a timer;
// `tendOffload` collects results and hands out what is queued.
//
// A worker can be stuck for good (a FUSE server that never answers holds it until the server dies), so nothing
// may wait behind it: once its job has run for STUCK_MS, the closes of its batch it has not reached are taken back
// and queued again, and while jobs are queued with every worker stuck, one more worker starts, up to `maxThreads`.
// With that many stuck, jobs wait in the queue, and a queued close keeps its fd open; `offloadBacklogged` says
// when the queue holds `maxQueued`, for the caller to stop taking in fds (the broker stops reading and
// accepting). So the bound is `maxThreads` threads blocked in the kernel plus `maxQueued` fds waiting (and what the
// caller already held). Workers beyond the first retire after IDLE_RETIRE_MS idle.
//
// Bun ends the whole process when a new Worker cannot open its own fds (an epoll and an eventfd), so the pool
// keeps RESERVE_FDS fds aside, frees them for the worker it starts and waits (at most GROW_WAIT_MS) for it to be
// up before the caller can open anything else; with no room for the reserve, no worker is started.
//
// No worker runs until the first job: a Worker is a JavaScript VM of its own, about 5 MiB that Bun never gives
// back, and the first costs 10-20 ms to start. A broker that has never closed a client's fd pays neither, nor does
// a broker taking over.
//
// Ownership: an fd given to closeOffThread belongs to the pool from then on, and its number may be reused by the
// next open or accept as soon as a worker's close() has begun: the caller forgets it at once. fstatOffThread only
// borrows the fd: the caller keeps it open until the job is settled, or cancels the job first (a cancelled job a
// worker has begun ends on its own, and its result is dropped).
//
// Nothing is set up before startOffload (a broker calls it), so clients pay nothing; without a pool, or once a
// worker has failed, the calls run on the caller's thread, as they would without this module.
import { release } from "node:os";
import { abi, E } from "./abi.ts";
import { SysError } from "./errors.ts";
import { close, closeAll, decodeStat, dupCloexec, fstat, pipe, read, type Stat } from "./fd.ts";
import { libcName } from "./libc.ts";
import { BATCH, FDS_AT, OP, SLOT, SLOT_INTS, STAT_AT, STATE, WORKER_SOURCE, type WorkerInit } from "./offload-worker.ts";

/** A job running this long makes its worker count as stuck: normal closes and fstats take microseconds. */
const STUCK_MS = 5;
const IDLE_RETIRE_MS = 5000;
/** How long the first job waits for the first worker to come up (10-20 ms is usual). */
const READY_WAIT_MS = 5000;
/** How long the caller waits for a worker started to relieve stuck ones (about 10 ms is usual). */
const GROW_WAIT_MS = 50;
/** fds set aside for the next worker's own: it opens two. */
const RESERVE_FDS = 4;
/** Without a poll loop to tend the pool (a library's broker stopped), queued jobs are started from a timer. */
const FALLBACK_TEND_MS = 20;
/** Written to SLOT.next to take back a batch's unclaimed closes: the worker's next claim lands past the end. */
const TAKEN = 1 << 30;

interface OffloadOptions {
  /** Most worker threads; 8 by default. */
  maxThreads?: number;
  /** Queued jobs at which offloadBacklogged() turns true; 1024 by default. */
  maxQueued?: number;
}

export interface FstatJob {
  readonly settled: boolean;
  /** The stat, or the error fstat failed with; null until settled (and for a cancelled job). */
  readonly result: Stat | SysError | null;
  /** Drop the job: a queued one never runs, a running one's result is ignored. */
  cancel(): void;
}

interface FstatWork {
  fd: number;
  settled: boolean;
  result: Stat | SysError | null;
  cancelled: boolean;
}

interface Slot {
  worker: Worker;
  ctl: Int32Array;
  stat: DataView;
  /** The running job: a batch of closes, or an fstat. */
  job: "close" | FstatWork | null;
  /** When the current job started, or when the worker last became idle. */
  since: number;
  /** The closes of the running batch it had not reached were queued again. */
  takenBack: boolean;
}

interface Pool {
  maxThreads: number;
  maxQueued: number;
  /** Read end polled by the caller, write end written by the workers; both non-blocking. */
  wake: [number, number];
  /** The workers' source as a Blob URL, made when the first one starts. */
  url: string | null;
  slots: Slot[];
  closes: number[];
  fstats: FstatWork[];
  /** Closes that failed other than with EINTR (EBADF would mean an fd was not the pool's to close). */
  failures: number;
  /** Workers that retired when idle and have exited. */
  retired: number;
  timer: ReturnType<typeof setTimeout> | null;
  /** Duplicates of the wake pipe, closed to make room for a worker being started. */
  reserve: number[];
  /** A worker failed: run everything on the caller's thread from now on. */
  broken: boolean;
  /** The first worker has been started. */
  started: boolean;
}

let pool: Pool | null = null;

/** Set the pool up (once; a later call only changes its limits); its first worker starts with its first job. */
export function startOffload(opts: OffloadOptions = {}): void {
  if (pool) return void Object.assign(pool, limitsOf(opts, pool));
  const p: Pool = {
    ...limitsOf(opts),
    wake: pipe(true),
    url: null,
    slots: [],
    closes: [],
    fstats: [],
    failures: 0,
    retired: 0,
    timer: null,
    reserve: [],
    broken: false,
    started: false,
  };
  pool = p;
  fillReserve(p);
}

function limitsOf(opts: OffloadOptions, base?: Pool): { maxThreads: number; maxQueued: number } {
  return { maxThreads: Math.max(1, opts.maxThreads ?? base?.maxThreads ?? 8), maxQueued: Math.max(1, opts.maxQueued ?? base?.maxQueued ?? 1024) };
}

function startWorker(p: Pool): Slot | null {
  const sab = new SharedArrayBuffer(STAT_AT + abi.stat.size);
  let worker: Worker;
  try {
    p.url ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    worker = new Worker(p.url);
    const init: WorkerInit = { sab, libc: libcName, errnoSymbol: abi.errnoSymbol, wakeFd: p.wake[1], statSize: abi.stat.size };
    worker.postMessage(init);
  } catch {
    p.broken = true;
    return null;
  }
  // The pool must never keep a process alive: at exit the kernel closes whatever is still queued.
  worker.unref();
  const slot: Slot = { worker, ctl: new Int32Array(sab, 0, SLOT_INTS), stat: new DataView(sab, STAT_AT, abi.stat.size), job: null, since: Date.now(), takenBack: false };
  // A worker the pool let go (retireIdle) is no longer in `slots`: its end is expected, never a failure.
  worker.addEventListener("error", () => p.slots.includes(slot) && failed(p, slot));
  worker.addEventListener("close", () => p.slots.includes(slot) ? failed(p, slot) : p.retired++);
  p.slots.push(slot);
  return slot;
}

/** A worker died: what it had not claimed runs here, and so does everything after. */
function failed(p: Pool, slot: Slot): void {
  p.slots = p.slots.filter((s) => s !== slot);
  p.broken = true;
  if (slot.job === "close") takeBack(p, slot);
  else if (slot.job) settle(slot.job, new SysError("fstat", E.EIO, `fd ${slot.job.fd}`, "its worker thread failed"));
  for (const fd of p.closes.splice(0)) closeHere(fd);
  for (const work of p.fstats.splice(0)) fstatHere(work);
}

/** Top the reserve up; false when there is no room for it (then no worker is started). */
function fillReserve(p: Pool): boolean {
  try {
    while (p.reserve.length < RESERVE_FDS) p.reserve.push(dupCloexec(p.wake[0]));
    return true;
  } catch {
    return false;
  }
}

/** One more worker, started into the room the reserve leaves. */
function grow(p: Pool): void {
  if (!fillReserve(p)) return;
  const first = !p.started;
  closeAll(p.reserve.splice(0));
  p.started = true;
  const slot = startWorker(p);
  if (slot) Atomics.wait(slot.ctl, SLOT.state, STATE.starting, first ? READY_WAIT_MS : GROW_WAIT_MS);
  fillReserve(p);
}

/** Hand `fd` over to be closed off this thread. It is the pool's now: never use the number again. */
export function closeOffThread(fd: number): void {
  closeAllOffThread([fd]);
}

/** closeOffThread for each fd. */
export function closeAllOffThread(fds: Iterable<number>): void {
  const p = pool;
  if (!p || p.broken) {
    for (const fd of fds) closeHere(fd);
    return;
  }
  const before = p.closes.length;
  for (const fd of fds) p.closes.push(fd);
  if (p.closes.length > before) pump(p, Date.now());
}

/** fstat `fd` off this thread; the fd stays the caller's and must stay open until the job is settled or cancelled. */
export function fstatOffThread(fd: number): FstatJob {
  const work: FstatWork = { fd, settled: false, result: null, cancelled: false };
  const p = pool;
  if (!p || p.broken) fstatHere(work);
  else {
    p.fstats.push(work);
    pump(p, Date.now());
  }
  return {
    get settled() {
      return work.settled;
    },
    get result() {
      return work.result;
    },
    cancel() {
      work.cancelled = true;
      const q = pool?.fstats;
      if (q?.includes(work)) q.splice(q.indexOf(work), 1);
    },
  };
}

const gcRunsInKernelWorker = ((): boolean => {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return process.platform === "linux" && m !== null && (Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 9));
})();

/**
 * Close a stream UNIX socket read to end of file: its peer has shut down its side, so nothing is queued on it or
 * can be, and closing it releases no fd that a client sent. Nothing but the kernel's garbage collector of UNIX
 * sockets in flight, which every close of a UNIX socket runs when any fds are in flight: since Linux 6.9 in a
 * kernel worker, before that in the closing thread, where it can release (and close, with SO_LINGER) a client's
 * sockets. So it is closed on the caller's thread from 6.9 on, and given to the pool on older kernels.
 */
export function closeDrainedSocket(fd: number): void {
  if (gcRunsInKernelWorker) closeHere(fd);
  else closeOffThread(fd);
}

function closeHere(fd: number): void {
  try {
    close(fd);
  } catch {
    if (pool) pool.failures++;
  }
}

function fstatHere(work: FstatWork): void {
  let result: Stat | SysError;
  try {
    result = fstat(work.fd);
  } catch (e) {
    result = e as SysError;
  }
  settle(work, result);
}

function settle(work: FstatWork, result: Stat | SysError): void {
  work.result = work.cancelled ? null : result;
  work.settled = true;
}

/** The fd to poll for POLLIN: readable when a worker has finished a job. Null until a worker has started. */
export function offloadWakeFd(): number | null {
  return pool?.started ? pool.wake[0] : null;
}

/** Collect finished jobs, start queued ones, grow or shrink the pool. `woken`: the wake fd was readable. */
export function tendOffload(woken = false): void {
  const p = pool;
  if (!p) return;
  if (woken) while (read(p.wake[0], 512)?.length) {}
  pump(p, Date.now());
}

const queued = (p: Pool) => p.closes.length + p.fstats.length;

function pump(p: Pool, now: number): void {
  for (const s of p.slots) {
    if (s.job && Atomics.load(s.ctl, SLOT.state) === STATE.done) finish(p, s, now);
    else if (s.job === "close" && !s.takenBack && now - s.since >= STUCK_MS) takeBack(p, s);
  }
  startQueued(p, now);
  if (queued(p) > 0) wakeOnDone(p, now);
  if (queued(p) > 0 && canGrow(p) && now >= growAt(p)) {
    grow(p);
    startQueued(p, Date.now());
  }
  if (queued(p) === 0) retireIdle(p, now);
  armFallback(p);
}

function finish(p: Pool, s: Slot, now: number): void {
  const job = s.job!;
  p.failures += s.ctl[SLOT.failures]!;
  s.ctl[SLOT.failures] = 0;
  if (job !== "close") {
    const ret = s.ctl[SLOT.ret]!;
    settle(job, ret < 0 ? new SysError("fstat", s.ctl[SLOT.errno]!, `fd ${job.fd}`) : decodeStat(s.stat));
  }
  s.job = null;
  s.since = now;
  Atomics.store(s.ctl, SLOT.state, STATE.idle);
}

/**
 * Jobs wait: have every busy worker wake the loop when done, to take one. The flag is stored before the state is
 * read again, and the worker reads it after storing DONE: either it writes to the wake pipe, or this sees DONE.
 */
function wakeOnDone(p: Pool, now: number): void {
  for (const s of p.slots) {
    if (s.job !== "close" || Atomics.load(s.ctl, SLOT.wake)) continue;
    Atomics.store(s.ctl, SLOT.wake, 1);
    if (Atomics.load(s.ctl, SLOT.state) === STATE.done) finish(p, s, now);
  }
  startQueued(p, now);
}

/** Queue again the closes of a stuck worker's batch that it has not claimed. */
function takeBack(p: Pool, s: Slot): void {
  s.takenBack = true;
  const from = Atomics.exchange(s.ctl, SLOT.next, TAKEN);
  const count = s.ctl[SLOT.count]!;
  if (from < count) p.closes.unshift(...s.ctl.subarray(FDS_AT + from, FDS_AT + count));
}

/** Give queued jobs to idle workers, fstats first: a put waits for each. */
function startQueued(p: Pool, now: number): void {
  for (const s of p.slots) {
    if (queued(p) === 0) return;
    if (s.job || Atomics.load(s.ctl, SLOT.state) !== STATE.idle) continue;
    const work = p.fstats.shift();
    // A put waits for an fstat; a close only matters to the loop if more jobs wait (see wakeOnDone).
    Atomics.store(s.ctl, SLOT.wake, work || queued(p) > BATCH ? 1 : 0);
    if (work) {
      s.ctl[SLOT.op] = OP.fstat;
      s.ctl[FDS_AT] = work.fd;
      s.job = work;
    } else {
      const fds = p.closes.splice(0, BATCH);
      s.ctl.set(fds, FDS_AT);
      s.ctl[SLOT.op] = OP.close;
      s.ctl[SLOT.count] = fds.length;
      s.ctl[SLOT.next] = 0;
      s.job = "close";
    }
    s.since = now;
    s.takenBack = false;
    Atomics.store(s.ctl, SLOT.state, STATE.run);
    Atomics.notify(s.ctl, SLOT.state);
  }
}

/** Room for one more worker, and none on its way (a starting one takes the queue as soon as it is up). */
function canGrow(p: Pool): boolean {
  return p.slots.length < p.maxThreads && !p.slots.some((s) => Atomics.load(s.ctl, SLOT.state) === STATE.starting);
}

/** When every worker will have been busy with its job for STUCK_MS. */
function growAt(p: Pool): number {
  let at = -Infinity;
  for (const s of p.slots) at = Math.max(at, s.job ? s.since + STUCK_MS : Infinity);
  return at;
}

function retireIdle(p: Pool, now: number): void {
  if (p.slots.length <= 1) return;
  const s = p.slots.find((s) => !s.job && Atomics.load(s.ctl, SLOT.state) === STATE.idle && now - s.since >= IDLE_RETIRE_MS);
  if (!s) return;
  p.slots = p.slots.filter((x) => x !== s);
  Atomics.store(s.ctl, SLOT.state, STATE.exit);
  Atomics.notify(s.ctl, SLOT.state);
}

function armFallback(p: Pool): void {
  if (p.timer || queued(p) === 0) return;
  p.timer = setTimeout(() => {
    p.timer = null;
    tendOffload(true);
  }, FALLBACK_TEND_MS);
  p.timer.unref();
}

/** How soon (ms) tendOffload should run even if no job finishes (to take back, grow or retire), or Infinity. */
export function offloadCheckInMs(): number {
  const p = pool;
  if (!p) return Infinity;
  let at = queued(p) > 0 && canGrow(p) ? growAt(p) : Infinity;
  for (const s of p.slots) {
    if (s.job === "close" && !s.takenBack) at = Math.min(at, s.since + STUCK_MS);
    if (!s.job && p.slots.length > 1) at = Math.min(at, s.since + IDLE_RETIRE_MS);
  }
  return Math.max(0, at - Date.now());
}

/** The queue is full: take in no more fds until a worker frees up. */
export function offloadBacklogged(): boolean {
  return pool !== null && queued(pool) >= pool.maxQueued;
}

interface OffloadStats {
  threads: number;
  /** Workers whose job has run for STUCK_MS or more. */
  stuck: number;
  queued: number;
  /** Closes that failed (other than EINTR) since the start. */
  failures: number;
  /** Idle workers that retired and have exited. */
  retired: number;
  /** A worker failed: closes and fstats now run on the caller's thread. */
  broken: boolean;
}

export function offloadStats(): OffloadStats {
  const p = pool;
  if (!p) return { threads: 0, stuck: 0, queued: 0, failures: 0, retired: 0, broken: false };
  const now = Date.now();
  return {
    threads: p.slots.length, stuck: p.slots.filter((s) => s.job && now - s.since >= STUCK_MS).length, queued: queued(p),
    failures: p.failures, retired: p.retired, broken: p.broken,
  };
}
