// The one dlopen of libc. Loaded with dlopen rather than bun:ffi's cc(): cc() needs a compiler and headers at run
// time and fails inside a `bun build --compile` binary.
import { dlopen, FFIType as T, read, type Pointer } from "bun:ffi";
import { abi } from "./abi.ts";

// ssize_t results are declared i32: the value sits in the low half of the return register on x86-64 and arm64,
// every transfer here is bounded far below 2 GiB, and an i32 return avoids a BigInt per call.
const symbols = {
  socket: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  socketpair: { args: [T.i32, T.i32, T.i32, T.ptr], returns: T.i32 },
  bind: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
  listen: { args: [T.i32, T.i32], returns: T.i32 },
  accept4: { args: [T.i32, T.ptr, T.ptr, T.i32], returns: T.i32 },
  connect: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
  shutdown: { args: [T.i32, T.i32], returns: T.i32 },
  sendmsg: { args: [T.i32, T.ptr, T.i32], returns: T.i32 },
  recvmsg: { args: [T.i32, T.ptr, T.i32], returns: T.i32 },
  read: { args: [T.i32, T.ptr, T.u64], returns: T.i32 },
  write: { args: [T.i32, T.ptr, T.u64], returns: T.i32 },
  close: { args: [T.i32], returns: T.i32 },
  isatty: { args: [T.i32], returns: T.i32 },
  // fcntl is variadic; on Linux x86-64 and arm64 an int vararg travels exactly like a fixed one.
  // Apple arm64 puts varargs on the stack: a macOS port needs its own binding.
  fcntl: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  dup3: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  pipe2: { args: [T.ptr, T.i32], returns: T.i32 },
  poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
  epoll_create1: { args: [T.i32], returns: T.i32 },
  epoll_ctl: { args: [T.i32, T.i32, T.i32, T.ptr], returns: T.i32 },
  epoll_wait: { args: [T.i32, T.ptr, T.i32, T.i32], returns: T.i32 },
  getsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.ptr], returns: T.i32 },
  setsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.u32], returns: T.i32 },
  getsockname: { args: [T.i32, T.ptr, T.ptr], returns: T.i32 },
  getpeername: { args: [T.i32, T.ptr, T.ptr], returns: T.i32 },
  fstat: { args: [T.i32, T.ptr], returns: T.i32 },
  lstat: { args: [T.ptr, T.ptr], returns: T.i32 },
  mkdir: { args: [T.ptr, T.u32], returns: T.i32 },
  mkfifo: { args: [T.ptr, T.u32], returns: T.i32 },
  // Through libc rather than /etc/passwd, so names from NSS (LDAP, systemd-userdb) resolve as they do for chown(1).
  getpwnam: { args: [T.ptr], returns: T.ptr },
  getgrnam: { args: [T.ptr], returns: T.ptr },
  getrlimit: { args: [T.i32, T.ptr], returns: T.i32 },
  setrlimit: { args: [T.i32, T.ptr], returns: T.i32 },
  execve: { args: [T.ptr, T.ptr, T.ptr], returns: T.i32 },
  signal: { args: [T.i32, T.ptr], returns: T.ptr },
  sigaction: { args: [T.i32, T.ptr, T.ptr], returns: T.i32 },
  access: { args: [T.ptr, T.i32], returns: T.i32 },
  // For calls libc may not wrap (close_range: glibc only from 2.34, musl not at all). Variadic like fcntl, with
  // the same Linux caveat; the arguments are longs, so they are passed as 64-bit integers.
  syscall: { args: [T.i64, T.i64, T.i64, T.i64], returns: T.i32 },
  pthread_sigmask: { args: [T.i32, T.ptr, T.ptr], returns: T.i32 },
  splice: { args: [T.i32, T.ptr, T.i32, T.ptr, T.u64, T.u32], returns: T.i32 },
  // Variadic like fcntl, with the same Linux caveat; only FIONREAD, whose argument is an int pointer, is used.
  ioctl: { args: [T.i32, T.u64, T.ptr], returns: T.i32 },
} as const;

type Symbols = typeof symbols;
// errno's accessor is named per platform (__errno_location on Linux, __error on macOS): a computed key would turn
// the table's type into an index signature and every binding into a union, so it is added at load time only.
const withErrno = { ...symbols, [abi.errnoSymbol]: { args: [], returns: T.ptr } } as const;

function candidates(): string[] {
  const fromEnv = process.env.FDBROKER_LIBC;
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  // glibc answers to its soname; musl's libc is its dynamic loader. "libc.so" alone is a linker script on glibc.
  const list = ["libc.so.6", `/lib/ld-musl-${arch}.so.1`, "/usr/lib/libc.so"];
  return fromEnv ? [fromEnv, ...list] : list;
}

function load() {
  const errors: string[] = [];
  for (const name of candidates()) {
    try {
      return { lib: dlopen(name, withErrno as Symbols), name };
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw new Error(`cannot load libc (tried ${errors.join("; ")}); set FDBROKER_LIBC to its path`);
}

const loaded = load();
/** The name libc was loaded by; a Worker that calls into libc itself (src/sys/offload.ts) loads the same one. */
export const libcName = loaded.name;
const lib = loaded.lib;
/** Every binding with its declared signature: a wrong argument count or type fails `npm run typecheck`. */
export const libc = lib.symbols;

const errnoLocation = (lib.symbols as unknown as Record<string, () => Pointer>)[abi.errnoSymbol]!;
// errno lives at a fixed address per thread; a module instance belongs to one thread (Workers load their own).
let errnoPtr: Pointer | null = null;

/** errno of the last failed call on this thread; read it before anything else can call into libc. */
export function lastErrno(): number {
  if (errnoPtr === null) errnoPtr = errnoLocation();
  return read.i32(errnoPtr, 0);
}
