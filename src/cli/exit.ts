// The documented exit codes, and the one place that turns an error into a line on stderr and a code.
import { RefusedError, UsageError } from "../errors.ts";
import { fromNodeError, SysError } from "../sys/index.ts";
import { escapeText } from "../text.ts";

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
  1    refused by the peer or broker (denied, no such entry, limit reached)
  2    usage error (bad option, spec or address)
  3    could not reach the peer or broker, or a wait timed out (inspect --pid:
       the process exited while it was being read)
  4    any other system error
  126  CMD (after --) found but could not be executed
  127  CMD (after --) not found`;

const UNREACHABLE = new Set(["ECONNREFUSED", "ENOENT", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EPIPE", "ENOTSOCK"]);

const HINTS: Record<string, string> = {
  ECONNREFUSED: "is anything listening?",
  ENOENT: "no socket at that path; is anything listening?",
  EADDRINUSE: "the address is taken",
  EACCES: "permission denied",
  EMFILE: "out of file descriptors (RLIMIT_NOFILE)",
};

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

function describeError(e: unknown): string {
  if (e instanceof SysError) {
    // A detail already says more than the generic hint would.
    const hint = e.syscall === "connect" && !e.detail ? HINTS[e.code] : undefined;
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
  if (process.env.FDBROKER_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack.split("\n").map(escapeText).join("\n")}\n`);
  process.exit(exitCodeFor(e));
}
