// kcmp(2) (Linux 3.5) with KCMP_FILE: whether an fd of one process and an fd of another are one open file
// description (a dup, an inherited copy, one passed with SCM_RIGHTS), which no /proc file says. The kernel asks
// for ptrace-read access to both processes (PTRACE_MODE_READ_REALCREDS), as for reading their /proc/PID/fd.
import { CFunction, FFIType as T, type Pointer } from "bun:ffi";
import { C } from "./abi.ts";
import { sysError } from "./errors.ts";
import { libc } from "./libc.ts";

// kcmp takes five arguments and the shared `syscall` binding declares three: the same libc function, bound once
// more with room for them (Linux x86-64 and arm64 pass variadic longs as fixed ones; see libc.ts). Bound at the
// first call: a binding is compiled when made, and every command loads this module, only inspect calls it.
type Syscall5 = (nr: number, a: number, b: number, c: number, d: number, e: number) => number;
let syscall5: Syscall5 | null = null;
const bindSyscall5 = () =>
  CFunction({ ptr: (libc.syscall as unknown as { ptr: Pointer }).ptr, args: [T.i64, T.i64, T.i64, T.i64, T.i64, T.i64], returns: T.i32 }) as unknown as Syscall5;

/**
 * True when fd `fd1` of `pid1` and fd `fd2` of `pid2` are one open file description. SysError EPERM without
 * ptrace-read access to either, EBADF when an fd is not open, ESRCH when a process is gone, ENOSYS on a kernel
 * built without CONFIG_KCMP.
 */
export function kcmpFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean {
  syscall5 ??= bindSyscall5();
  const r = syscall5(C.SYS_kcmp, pid1, pid2, C.KCMP_FILE, fd1, fd2);
  if (r < 0) throw sysError("kcmp", `fd ${fd1} of pid ${pid1}, fd ${fd2} of pid ${pid2}`);
  return r === 0;
}
