// execve as a shell would do it: the new program starts with default signal dispositions and an empty mask.
// Bun ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve; left alone, `yes | head` under fdbroker
// would never end. Nothing here uses node:fs: `get NAME -- CMD` sits in services' start paths, where loading it
// costs about a millisecond. For the same reason the code here uses plain loops: in a fresh process the first
// call of each of JSC's JavaScript-written builtins (map, forEach, flatMap, ...) compiles it, 20-130 us apiece.
import { abi, C } from "./abi.ts";
import { sysError } from "./errors.ts";
import { libc } from "./libc.ts";
import { addressOf, cString, cStringBlock, getU64, putU64, scratch } from "./mem.ts";

/** The signals whose disposition is SIG_IGN, asked of sigaction(2) one by one. */
function ignoredSignals(): number[] {
  const old = scratch(abi.sigaction.size);
  const view = new DataView(old.buffer);
  const out: number[] = [];
  // libc refuses the signals it keeps for itself (EINVAL): they are never ignored.
  for (let sig = 1; sig < C.NSIG; sig++)
    if (libc.sigaction(sig, null, old) === 0 && getU64(view, abi.sigaction.handler) === C.SIG_IGN) out.push(sig);
  return out;
}

/** A NULL-terminated array of pointers to C strings; both buffers must stay reachable while C reads them. */
function cStringArray(items: readonly string[]): { array: Uint8Array; strings: Uint8Array } {
  const { bytes, offsets } = cStringBlock(items);
  const array = scratch((items.length + 1) * abi.ptrSize);
  const view = new DataView(array.buffer);
  const base = addressOf(bytes);
  for (let i = 0; i < offsets.length; i++) putU64(view, i * abi.ptrSize, base + offsets[i]!);
  return { array, strings: bytes };
}

/** Whether access(2) allows `mode` on `path`; for a yes/no question, where the errno does not matter. */
export function isAccessible(path: string, mode: number): boolean {
  return libc.access(cString(path), mode) === 0;
}

/** access(2): throws a SysError naming `path` unless this process may access it with `mode` (C.X_OK, ...). */
export function access(path: string, mode: number): void {
  if (libc.access(cString(path), mode) !== 0) throw sysError("access", path);
}

// What execve's arguments point into, held here for the length of the call: a module-level reference cannot be
// optimised away the way an unused local can.
let pinned: unknown = null;

/**
 * Replace this process with `path`. Returns only by throwing. The fds the new program should have must
 * already be in place and without FD_CLOEXEC; everything else must be CLOEXEC.
 */
export function execve(path: string, argv: readonly string[], env: Record<string, string | undefined>): never {
  const file = cString(path);
  const args = cStringArray(argv);
  const vars: string[] = [];
  for (const k in env) if (env[k] !== undefined) vars.push(`${k}=${env[k]}`);
  const envp = cStringArray(vars);
  for (const sig of ignoredSignals()) libc.signal(sig, null);
  libc.pthread_sigmask(C.SIG_SETMASK, scratch(abi.sigsetBytes), null);
  pinned = [file, args, envp];
  libc.execve(file, args.array, envp.array);
  const err = sysError("execve", path);
  pinned = null;
  throw err;
}
