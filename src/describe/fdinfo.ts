// /proc/PID/fdinfo/N: offset, open flags and per-kind extras, as text the kernel formats.
import { C } from "../sys/index.ts";

export interface FdInfo {
  pos: number;
  flags: number;
  ino: number | null;
  /** Every other `key: value` line; keys that repeat (an epoll's `tfd:` lines) are joined with ", ". */
  extra: Record<string, string>;
}

export function parseFdinfo(text: string): FdInfo {
  const extra: Record<string, string> = {};
  let pos = 0;
  let flags = 0;
  let ino: number | null = null;
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === "pos") pos = Number(value);
    // The kernel prints flags in octal.
    else if (key === "flags") flags = parseInt(value, 8);
    else if (key === "ino") ino = Number(value);
    else if (key === "tfd") extra.tfd = extra.tfd ? `${extra.tfd}, ${tfdSummary(value)}` : tfdSummary(value);
    else if (key !== "mnt_id") extra[key] = extra[key] ? `${extra[key]}, ${value}` : value;
  }
  return { pos, flags, ino, extra };
}

// "4 events: 80000019 data: 25d416e0340  pos:0 ino:12 sdev:10" -> "4"; only the watched fd number reads well.
const tfdSummary = (v: string) => v.split(/\s+/)[0] ?? v;

/** The fd numbers an epoll instance watches, from its fdinfo. */
export function epollTargets(info: FdInfo): number[] {
  return (info.extra.tfd ?? "").split(", ").filter(Boolean).map(Number);
}

const namedFlags: [number, string][] = [
  [C.O_APPEND, "append"], [C.O_NONBLOCK, "nonblock"], [C.O_SYNC, "sync"], [C.O_DSYNC, "dsync"],
  [C.O_DIRECT, "direct"], [C.O_NOATIME, "noatime"], [C.O_DIRECTORY, "directory"], [C.O_NOFOLLOW, "nofollow"],
  [C.O_CLOEXEC, "cloexec"],
];

export function accessOf(flags: number): "r" | "w" | "rw" | "path" {
  if (flags & C.O_PATH) return "path";
  const acc = flags & C.O_ACCMODE;
  return acc === C.O_RDONLY ? "r" : acc === C.O_WRONLY ? "w" : "rw";
}

/**
 * Flag names, with close-on-exec from `cloexec` when the caller knows it: fdinfo reports O_CLOEXEC when the fd
 * was opened with it even if FD_CLOEXEC was cleared later (Python's set_inheritable does exactly that).
 */
export function flagNames(flags: number, cloexec?: boolean): string[] {
  const names: string[] = [];
  for (const [bit, name] of namedFlags) {
    if (name === "cloexec") continue;
    // O_SYNC contains O_DSYNC's bit; name only the stronger one.
    if (name === "dsync" && (flags & C.O_SYNC) === C.O_SYNC) continue;
    if ((flags & bit) === bit) names.push(name);
  }
  if (cloexec ?? (flags & C.O_CLOEXEC) !== 0) names.push("cloexec");
  return names;
}
