import { E, errnoName, errnoNumber } from "./abi.ts";
import { lastErrno } from "./libc.ts";

/** A failed system call: which call, the errno name as the kernel spells it, and what it was acting on. */
export class SysError extends Error {
  readonly syscall: string;
  readonly code: string;
  readonly errno: number;
  readonly path?: string;
  /** What the errno name alone would not say (the limit that was hit, the wait that ran out). */
  readonly detail?: string;
  constructor(syscall: string, errno: number, path?: string, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}: ${code}${path !== undefined ? ` (${path})` : ""}${detail ? `: ${detail}` : ""}`);
    this.name = "SysError";
    this.syscall = syscall;
    this.code = code;
    this.errno = errno;
    this.path = path;
    this.detail = detail;
  }
}

/** Build the error for the call that just failed; must run before any other libc call. */
export function sysError(syscall: string, path?: string, detail?: string): SysError {
  return new SysError(syscall, lastErrno(), path, detail);
}

export const isSysError = (e: unknown, code?: string): e is SysError =>
  e instanceof SysError && (code === undefined || e.code === code);

/** A node:fs failure (code "EACCES", syscall "unlink") as a SysError, so it reads like any other; else `e`. */
export function fromNodeError(e: unknown, path?: string): unknown {
  const err = e as { code?: unknown; syscall?: unknown; path?: unknown };
  if (e instanceof SysError || !(e instanceof Error) || typeof err.code !== "string" || !/^E[A-Z0-9]+$/.test(err.code) || typeof err.syscall !== "string") return e;
  return new SysError(err.syscall, errnoNumber(err.code) ?? E.EIO, path ?? (typeof err.path === "string" ? err.path : undefined));
}
