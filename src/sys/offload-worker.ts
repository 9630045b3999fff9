// The thread side of src/sys/offload.ts, as source text: a Worker is started from it through a Blob URL, so a
// bundled or `bun build --compile`d program still has it (a worker file would have to be an extra entrypoint).
// It imports nothing of ours: it loads libc itself (errno is per thread) and makes one call at a time.
//
// Each worker owns one slot of shared memory: Int32 words, then a `struct stat`. It waits in Atomics.wait until
// the slot says RUN, makes the call, writes the result, says DONE and writes one byte to the wake pipe so the
// caller's poll loop notices. EXIT ends it.

/** Int32 indexes into a slot. */
export const SLOT = { state: 0, op: 1, fd: 2, ret: 3, errno: 4 } as const;
export const SLOT_INTS = 8;
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

export const WORKER_SOURCE = `
import { dlopen, FFIType as T, read } from "bun:ffi";
const S = ${JSON.stringify(SLOT)}, ST = ${JSON.stringify(STATE)}, OP = ${JSON.stringify(OP)};
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
  // waiting in Atomics.wait instead (startOffload, for the first worker).
  const report = (state) => { Atomics.store(slot, S.state, state); Atomics.notify(slot, S.state); lib.write(wakeFd, byte, 1); };
  report(ST.idle);
  for (;;) {
    const state = Atomics.load(slot, S.state);
    if (state === ST.exit) break;
    if (state !== ST.run) { Atomics.wait(slot, S.state, state); continue; }
    const op = slot[S.op], fd = slot[S.fd];
    const ret = op === OP.close ? lib.close(fd) : lib.fstat(fd, statBuf);
    slot[S.errno] = ret < 0 ? read.i32(errnoAt, 0) : 0;
    slot[S.ret] = ret;
    if (ret === 0 && op === OP.fstat) statOut.set(statBuf);
    report(ST.done);
  }
  self.close();
};
`;
