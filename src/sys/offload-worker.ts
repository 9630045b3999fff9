// The thread side of src/sys/offload.ts, as source text: a Worker is started from it through a Blob URL, so a
// bundled or `bun build --compile`d program still has it (a worker file would have to be an extra entrypoint).
// It imports nothing of ours: it loads libc itself (errno is per thread) and runs one job at a time: up to BATCH
// closes, or one fstat.
//
// Each worker owns one slot of shared memory: a header of Int32 words, the job's fds, then a `struct stat`. It
// waits in Atomics.wait until the slot says RUN, does the job, writes the result, says DONE and, if SLOT.wake asks
// for it, writes one byte to the wake pipe so the caller's poll loop notices (a close nobody waits for need not
// wake it). EXIT ends it.

/** Int32 indexes into a slot's header. */
export const SLOT = { state: 0, op: 1, count: 2, next: 3, ret: 4, errno: 5, failures: 6, wake: 7 } as const;
const HEADER_INTS = 8;
/** Most fds one close job carries: a worker closes them in turn, claiming each through SLOT.next. */
export const BATCH = 128;
/** Int32 index of the job's fds. */
export const FDS_AT = HEADER_INTS;
export const SLOT_INTS = HEADER_INTS + BATCH;
/** Byte offset of the `struct stat` an fstat fills. */
export const STAT_AT = SLOT_INTS * 4;
/** Values of `SLOT.state`: who may write the slot next (the worker in RUN, the caller in IDLE and DONE). */
export const STATE = { starting: 0, idle: 1, run: 2, done: 3, exit: 4 } as const;
export const OP = { close: 1, fstat: 2 } as const;

/** What the caller posts once to a new worker. */
export interface WorkerInit {
  sab: SharedArrayBuffer;
  libc: string;
  errnoSymbol: string;
  wakeFd: number;
  statSize: number;
}

// A close job's fds are claimed one at a time with Atomics.add on SLOT.next, so the caller can take back those a
// stuck close has not reached (Atomics.exchange of SLOT.next) and give them to another worker: each fd is claimed
// by exactly one side. EINTR from close is no failure (the fd is released all the same).
export const WORKER_SOURCE = `
import { dlopen, FFIType as T, read } from "bun:ffi";
const S = ${JSON.stringify(SLOT)}, ST = ${JSON.stringify(STATE)}, OP = ${JSON.stringify(OP)}, EINTR = 4;
self.onmessage = ({ data }) => {
  const { sab, libc, errnoSymbol, wakeFd, statSize } = data;
  const lib = dlopen(libc, {
    close: { args: [T.i32], returns: T.i32 },
    fstat: { args: [T.i32, T.ptr], returns: T.i32 },
    write: { args: [T.i32, T.ptr, T.u64], returns: T.i32 },
    [errnoSymbol]: { args: [], returns: T.ptr },
  }).symbols;
  const slot = new Int32Array(sab, 0, ${SLOT_INTS});
  const statOut = new Uint8Array(sab, ${STAT_AT}, statSize);
  // Memory whose address goes to libc is this thread's own, over an explicit ArrayBuffer (see src/sys/mem.ts).
  const statBuf = new Uint8Array(new ArrayBuffer(statSize));
  const byte = new Uint8Array(new ArrayBuffer(1));
  const errnoAt = lib[errnoSymbol]();
  // The pipe is non-blocking: when it is full the caller has wake-ups pending already. notify is for a caller
  // waiting in Atomics.wait instead (for a worker to come up). SLOT.wake is read after
  // the state is stored, and the caller stores it before it reads the state: one of the two sees the other.
  const report = (state) => {
    Atomics.store(slot, S.state, state);
    Atomics.notify(slot, S.state);
    if (Atomics.load(slot, S.wake)) lib.write(wakeFd, byte, 1);
  };
  Atomics.store(slot, S.wake, 1);
  report(ST.idle);
  for (;;) {
    const state = Atomics.load(slot, S.state);
    if (state === ST.exit) break;
    if (state !== ST.run) { Atomics.wait(slot, S.state, state); continue; }
    if (slot[S.op] === OP.close) {
      for (let i; (i = Atomics.add(slot, S.next, 1)) < slot[S.count]; )
        if (lib.close(slot[${FDS_AT} + i]) < 0 && read.i32(errnoAt, 0) !== EINTR) slot[S.failures]++;
    } else {
      const ret = lib.fstat(slot[${FDS_AT}], statBuf);
      slot[S.errno] = ret < 0 ? read.i32(errnoAt, 0) : 0;
      slot[S.ret] = ret;
      if (ret === 0) statOut.set(statBuf);
    }
    report(ST.done);
  }
  // Bun's workers have no self.close(): calling it threw, which the pool took for a failed worker and from then on
  // closed every fd on the caller's thread. process.exit in a worker ends that worker alone.
  process.exit(0);
};
`;
