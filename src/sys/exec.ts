// execve as a shell would do it: the new program starts with default signal dispositions and an empty mask.
// Bun ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve; left alone, `yes | head` under fdbroker
// would never end.
import { readFileSync } from "node:fs";
import { abi, C } from "./abi.ts";
import { sysError } from "./errors.ts";
import { libc } from "./libc.ts";
import { addressOf, cString, putU64, scratch } from "./mem.ts";

function ignoredSignals(): number[] {
  const status = readFileSync("/proc/self/status", "utf8");
  const m = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) return [];
  const mask = BigInt(`0x${m[1]}`);
  const out: number[] = [];
  for (let sig = 1; sig < C.NSIG; sig++) if (mask & (1n << BigInt(sig - 1))) out.push(sig);
  return out;
}

/** A NULL-terminated array of C-string pointers; `keep` holds the strings so they outlive the call. */
function cStringArray(items: readonly string[], keep: Uint8Array[]): Uint8Array {
  const arr = scratch((items.length + 1) * abi.ptrSize);
  const view = new DataView(arr.buffer);
  items.forEach((s, i) => {
    const c = cString(s);
    keep.push(c);
    putU64(view, i * abi.ptrSize, addressOf(c));
  });
  return arr;
}

/**
 * Replace this process with `path`. Returns only by throwing. The fds the new program should have must
 * already be in place and without FD_CLOEXEC; everything else must be CLOEXEC.
 */
export function execve(path: string, argv: readonly string[], env: Record<string, string | undefined>): never {
  const keep: Uint8Array[] = [];
  const file = cString(path);
  const argvBuf = cStringArray(argv, keep);
  const envBuf = cStringArray(
    Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])),
    keep,
  );
  for (const sig of ignoredSignals()) libc.signal(sig, null);
  const empty = scratch(abi.sigsetBytes);
  libc.pthread_sigmask(C.SIG_SETMASK, empty, null);
  libc.execve(file, argvBuf, envBuf);
  const err = sysError("execve", path);
  // Touched after the call so the strings argv and envp point at stay reachable until execve has read them.
  keep.length = 0;
  throw err;
}
