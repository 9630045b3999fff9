// close() and fstat() of fds that other processes supplied, on threads other than the caller's. Both can block in
// the kernel for as long as someone else likes: close() of the last reference to a TCP socket with SO_LINGER
// waits for its send queue to drain (up to a linger time its owner chose); close() of any fd on a FUSE file waits
// for the server to answer FLUSH, which FUSE sends on every close; fstat() waits for it to answer GETATTR. A
// broker's poll loop must never make those calls itself.
//
// They run in a small pool of Workers (src/sys/offload-worker.ts). A caller's job goes to an idle worker at once,
// or waits in a queue; a worker reports completion in shared memory plus one byte on a wake pipe that the poll
// loop watches (`offloadWakeFd`), so the loop learns of it without a timer; `tendOffload` collects results.
//
// A worker can be stuck for good (a FUSE server that never answers holds it until the server dies), so later jobs
// must not wait behind it: when jobs are queued and every busy worker's job has run for STUCK_MS, one more worker
// starts, up to `maxThreads`. With that many stuck, jobs wait in the queue, and a queued close keeps its fd open;
// `offloadBacklogged` says when the queue holds `maxQueued`, for the caller to stop taking in fds (the broker stops
// reading and accepting). So the bound is `maxThreads` threads blocked in the kernel plus `maxQueued` open fds.
// Extra workers idle for IDLE_RETIRE_MS are retired.
//
// Ownership: an fd given to closeOffThread belongs to the pool from then on, and its number may be reused by the
// next open or accept as soon as a worker's close() has begun: the caller forgets it at once. fstatOffThread only
// borrows the fd: the caller keeps it open until the job is settled, or cancels the job first (a cancelled job a
// worker has begun ends on its own, and its result is dropped).
//
// Nothing starts before startOffload (a broker calls it), so clients pay nothing; without a pool, or if a worker
// cannot be started at all, the calls run on the caller's thread, as they would without this module.
import { abi, E } from "./abi.ts";
import { SysError } from "./errors.ts";
import { close, decodeStat, fstat, pipe, read, type Stat } from "./fd.ts";
import { libcName } from "./libc.ts";
import { OP, SLOT, SLOT_INTS, STAT_AT, STATE, WORKER_SOURCE, type WorkerInit } from "./offload-worker.ts";

/** A job running this long makes its worker count as stuck: normal closes and fstats take microseconds. */
const STUCK_MS = 5;
const IDLE_RETIRE_MS = 5000;
/** How long startOffload waits for its first worker (its fds then exist before anyone counts the caller's). */
const READY_WAIT_MS = 5000;
/** Without a poll loop to tend the pool (a library's broker stopped), queued jobs are started from a timer. */
const FALLBACK_TEND_MS = 20;

export interface OffloadOptions {
  /** Most worker threads; 8 by default. */
  maxThreads?: number;
  /** Queued jobs at which offloadBacklogged() turns true; 1024 by default. */
  maxQueued?: number;
}

export interface FstatJob {
  readonly settled: boolean;
  /** The stat, or the error fstat failed with; null until settled. */
  readonly result: Stat | SysError | null;
  /** Drop the job: a queued one never runs, a running one's result is ignored. */
  cancel(): void;
}

interface Job {
  op: number;
  fd: number;
  settled: boolean;
  result: Stat | SysError | null;
  cancelled: boolean;
}

interface Slot {
  worker: Worker;
  ctl: Int32Array;
  stat: DataView;
  job: Job | null;
  /** When the current job started, or when the worker last became idle. */
  since: number;
}

interface Pool {
  maxThreads: number;
  maxQueued: number;
  /** Read end polled by the caller, write end written by the workers; both non-blocking. */
  wake: [number, number];
  url: string;
  slots: Slot[];
  queue: Job[];
  timer: ReturnType<typeof setTimeout> | null;
  /** A worker could not be started: run everything on the caller's thread. */
  broken: boolean;
}

let pool: Pool | null = null;

/** Start the pool (once; a later call only changes its limits) and wait for its first worker. */
export function startOffload(opts: OffloadOptions = {}): void {
  if (pool) return void Object.assign(pool, limitsOf(opts, pool));
  const p: Pool = {
    ...limitsOf(opts),
    wake: pipe(true),
    url: URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" })),
    slots: [],
    queue: [],
    timer: null,
    broken: false,
  };
  pool = p;
  const first = startWorker(p);
  if (first) Atomics.wait(first.ctl, SLOT.state, STATE.starting, READY_WAIT_MS);
}

function limitsOf(opts: OffloadOptions, base?: Pool): { maxThreads: number; maxQueued: number } {
  return { maxThreads: Math.max(1, opts.maxThreads ?? base?.maxThreads ?? 8), maxQueued: Math.max(1, opts.maxQueued ?? base?.maxQueued ?? 1024) };
}

function startWorker(p: Pool): Slot | null {
  const sab = new SharedArrayBuffer(STAT_AT + abi.stat.size);
  let worker: Worker;
  try {
    worker = new Worker(p.url);
    const init: WorkerInit = { sab, libc: libcName, errnoSymbol: abi.errnoSymbol, wakeFd: p.wake[1], statSize: abi.stat.size };
    worker.postMessage(init);
  } catch {
    p.broken = true;
    return null;
  }
  // The pool must never keep a process alive: at exit the kernel closes whatever is still queued.
  worker.unref();
  const slot: Slot = { worker, ctl: new Int32Array(sab, 0, SLOT_INTS), stat: new DataView(sab, STAT_AT, abi.stat.size), job: null, since: Date.now() };
  worker.addEventListener("error", () => {
    p.slots = p.slots.filter((s) => s !== slot);
    if (slot.job) settle(slot.job, new SysError(slot.job.op === OP.close ? "close" : "fstat", E.EIO, `fd ${slot.job.fd}`, "its worker thread failed"));
    p.broken = true;
    drainInline(p);
  });
  p.slots.push(slot);
  return slot;
}

/** Hand `fd` over to be closed off this thread. It is the pool's now: never use the number again. */
export function closeOffThread(fd: number): void {
  submit(OP.close, fd);
}

/** closeOffThread for each fd. */
export function closeAllOffThread(fds: Iterable<number>): void {
  for (const fd of fds) submit(OP.close, fd);
}

/** fstat `fd` off this thread; the fd stays the caller's and must stay open until the job is settled or cancelled. */
export function fstatOffThread(fd: number): FstatJob {
  const job = submit(OP.fstat, fd);
  return {
    get settled() {
      return job.settled;
    },
    get result() {
      return job.result;
    },
    cancel() {
      job.cancelled = true;
      const q = pool?.queue;
      if (q?.includes(job)) q.splice(q.indexOf(job), 1);
    },
  };
}

function submit(op: number, fd: number): Job {
  const job: Job = { op, fd, settled: false, result: null, cancelled: false };
  const p = pool;
  if (!p || p.broken) runInline(job);
  else {
    p.queue.push(job);
    pump(p, Date.now());
  }
  return job;
}

function runInline(job: Job): void {
  try {
    if (job.op === OP.close) close(job.fd);
    else job.result = fstat(job.fd);
  } catch (e) {
    job.result = e as SysError;
  }
  job.settled = true;
}

function drainInline(p: Pool): void {
  for (const job of p.queue.splice(0)) runInline(job);
}

function settle(job: Job, result: Stat | SysError | null): void {
  job.result = job.cancelled ? null : result;
  job.settled = true;
}

/** The fd to poll for POLLIN: readable when a worker has finished a job. Null before startOffload. */
export function offloadWakeFd(): number | null {
  return pool?.wake[0] ?? null;
}

/** Collect finished jobs, start queued ones, grow or shrink the pool. `woken`: the wake fd was readable. */
export function tendOffload(woken = false): void {
  const p = pool;
  if (!p) return;
  if (woken) while (read(p.wake[0], 512)?.length) {}
  pump(p, Date.now());
}

function pump(p: Pool, now: number): void {
  for (const s of p.slots) if (s.job && Atomics.load(s.ctl, SLOT.state) === STATE.done) finish(s, now);
  for (const s of p.slots) {
    if (p.queue.length === 0) break;
    if (!s.job && Atomics.load(s.ctl, SLOT.state) === STATE.idle) assign(s, p.queue.shift()!, now);
  }
  if (p.queue.length > 0 && canGrow(p) && now >= growAt(p)) startWorker(p);
  if (p.queue.length === 0) retireIdle(p, now);
  armFallback(p);
}

function finish(s: Slot, now: number): void {
  const job = s.job!;
  const ret = s.ctl[SLOT.ret]!;
  const failed = ret < 0 ? new SysError(job.op === OP.close ? "close" : "fstat", s.ctl[SLOT.errno]!, `fd ${job.fd}`) : null;
  settle(job, failed ?? (job.op === OP.fstat ? decodeStat(s.stat) : null));
  s.job = null;
  s.since = now;
  Atomics.store(s.ctl, SLOT.state, STATE.idle);
}

function assign(s: Slot, job: Job, now: number): void {
  s.job = job;
  s.since = now;
  s.ctl[SLOT.op] = job.op;
  s.ctl[SLOT.fd] = job.fd;
  Atomics.store(s.ctl, SLOT.state, STATE.run);
  Atomics.notify(s.ctl, SLOT.state);
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
  if (p.timer || p.queue.length === 0) return;
  p.timer = setTimeout(() => {
    p.timer = null;
    tendOffload(true);
  }, FALLBACK_TEND_MS);
  p.timer.unref();
}

/** How soon (ms) tendOffload should run even if no job finishes (to grow or shrink the pool), or Infinity. */
export function offloadCheckInMs(): number {
  const p = pool;
  if (!p) return Infinity;
  let at = p.queue.length > 0 && canGrow(p) ? growAt(p) : Infinity;
  if (p.slots.length > 1) for (const s of p.slots) if (!s.job) at = Math.min(at, s.since + IDLE_RETIRE_MS);
  return Math.max(0, at - Date.now());
}

/** The queue is full: take in no more fds until a worker frees up. */
export function offloadBacklogged(): boolean {
  return pool !== null && pool.queue.length >= pool.maxQueued;
}

export interface OffloadStats {
  threads: number;
  /** Workers whose job has run for STUCK_MS or more. */
  stuck: number;
  queued: number;
}

export function offloadStats(): OffloadStats {
  const p = pool;
  if (!p) return { threads: 0, stuck: 0, queued: 0 };
  const now = Date.now();
  return { threads: p.slots.length, stuck: p.slots.filter((s) => s.job && now - s.since >= STUCK_MS).length, queued: p.queue.length };
}
