// The documented exit codes, and the one place that turns an error into a line on stderr and a code.
import { RefusedError, UsageError } from "../errors.ts";
import { C, fromNodeError, lstat, SysError } from "../sys/index.ts";
import { escapeLines, escapeText } from "../text.ts";

export const EXIT = {
  ok: 0,
  /** The peer or broker refused the request (access denied, no such entry, ...). */
  refused: 1,
  /** Bad command line or input. */
  usage: 2,
  /** Could not reach the peer or broker, or a wait timed out. */
  unreachable: 3,
  /** Any other system error. */
  system: 4,
  /** CMD was found but could not be executed (not executable, not a program), as shells say it. */
  cannotExecute: 126,
  /** CMD was not found, as shells say it. */
  notFound: 127,
} as const;

export const EXIT_HELP = `Exit status:
  0    success
  1    refused by the peer or broker (denied, no such entry, limit reached;
       recv --count N from a peer that closed before sending N fds)
  2    usage error (bad option, spec or address)
  3    could not reach the peer or broker, or a wait timed out (inspect --pid:
       the process exited while it was being read)
  4    any other system error
  126  CMD (after --) found but could not be executed
  127  CMD (after --) not found`;

// connect EACCES is unreachable too: the socket is there, but this user may not open it.
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOENT", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EPIPE", "ENOTSOCK", "EACCES"]);

function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof RefusedError) return EXIT.refused;
  if (e instanceof SysError) {
    // As a shell would answer for the same command, so scripts can tell "no such program" from our own failures.
    if (e.syscall === "execve") return e.code === "ENOENT" ? EXIT.notFound : EXIT.cannotExecute;
    // ESRCH: the process being read (inspect --pid) exited under us; like a peer that went away, not our failure.
    if (e.code === "ETIMEDOUT" || e.code === "ESRCH") return EXIT.unreachable;
    if ((e.syscall === "connect" || e.syscall === "accept4") && UNREACHABLE.has(e.code)) return EXIT.unreachable;
    return EXIT.system;
  }
  return EXIT.system;
}

/** What is at a socket address's path, when that explains a failed connect better than the errno does. */
function notASocket(path: string | undefined): string | null {
  if (!path?.startsWith("/")) return null;
  try {
    const type = lstat(path).mode & C.S_IFMT;
    if (type === C.S_IFSOCK) return null;
    return type === C.S_IFDIR ? "a directory" : type === C.S_IFLNK ? "a symlink" : "a file";
  } catch {
    return null;
  }
}

/** The next step for the failures people meet most, each in the same form: `(what it means; what to do)`, no nesting. */
function hintFor(e: SysError): string | undefined {
  if (e.syscall === "connect") {
    const other = notASocket(e.path);
    // Said of every command's address (-s, send's and recv's ADDR, tap's --to): none is named.
    if (other) return `${e.path} is ${other}, not a socket; is the address right?`;
    if (e.code === "ECONNREFUSED")
      return e.path?.startsWith("@") ? "nothing listens on that abstract name" : "a socket file nobody listens on: the broker or peer is not running";
    if (e.code === "ENOENT") return "no socket at that path; is the broker, peer or server running, and the address right?";
    if (e.code === "EACCES") return "this user may not open that socket; its owner can widen its mode (a broker's: serve --mode 0660, with --allow rules)";
  }
  if ((e.syscall === "open" || e.syscall === "openat") && e.code === "ENOENT") return "no such file; mode=w or mode=a creates it";
  if (e.syscall === "execve" && e.code === "ENOEXEC") return "not a program this system can run: a script needs a #! line";
  if (e.syscall === "pidfd_getfd" || e.syscall === "pidfd_open") {
    if (e.code === "EPERM") return "copying another process's fd needs ptrace rights: the same uid with kernel.yama.ptrace_scope allowing it, or CAP_SYS_PTRACE";
    if (e.code === "ENOSYS") return "pidfd_getfd needs Linux 5.6 or later (pidfd_open 5.3)";
    if (e.code === "EBADF") return "that process has no such fd; fdbroker inspect --pid lists its fds";
  }
  if (e.code === "EMFILE") return "out of file descriptors (RLIMIT_NOFILE)";
  return undefined;
}

/**
 * Who holds an address bind() found in use, from /proc (src/describe/holders.ts); loaded only on this path, as
 * nothing else needs it. Said even after a detail: "another process is listening there" does not name it.
 */
function addressInUseHint(e: SysError): string | undefined {
  if (e.syscall !== "bind" || e.code !== "EADDRINUSE" || e.path === undefined) return undefined;
  const { socketHolders } = require("../describe/holders.ts") as typeof import("../describe/holders.ts");
  const holders = socketHolders(e.path);
  if (holders.length === 0) return "the address is taken; ss -lxp or ss -ltp names who holds it";
  return `held by ${holders.map((h) => `pid ${h.pid} ${h.command}`).join(", ")}; stop it, or choose another address`;
}

function describeError(e: unknown): string {
  if (e instanceof SysError) {
    // A detail already says more than the generic hint would.
    const hint = addressInUseHint(e) ?? (e.detail ? undefined : hintFor(e));
    return hint ? `${e.message} (${hint})` : e.message;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Print one line on stderr and exit with the documented code. A node:fs error reads like any SysError. */
export function fail(thrown: unknown): never {
  const e = fromNodeError(thrown);
  // Messages quote names, paths and what a broker or peer said: escaped, so the one line stays one line.
  process.stderr.write(`fdbroker: ${escapeText(describeError(e))}\n`);
  if (process.env.FDBROKER_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${escapeLines(e.stack)}\n`);
  process.exit(exitCodeFor(e));
}
