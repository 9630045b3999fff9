// --swap PATH: tap a running server without reconfiguring its clients. The server's socket file gets a second
// name (a hard link: connecting by either name reaches the same socket), tap's own socket is bound under a
// temporary name with the original's mode and owner, then renamed over PATH: rename(2) replaces atomically, so a
// client connecting at any moment finds one socket or the other, never none. Restoring renames the server's
// file back over PATH, atomically too.
import { chownSync, linkSync, lstatSync, renameSync, unlinkSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { parseUnixAddress, type UnixAddress } from "../peer/address.ts";
import { bindUnix, socketFileOf, type FileId } from "../peer/listen.ts";
import { close, fromNodeError, type SocketType } from "../sys/index.ts";

export interface Swap {
  /** The server's socket file's original path, where tap now listens. */
  path: string;
  /** The second name of the server's socket file, connected to as the upstream. */
  aside: UnixAddress;
  /** Tap's own socket file at `path`, so restoring never removes a file someone else put there since. */
  ours: FileId | null;
}

function fsCall<T>(call: () => T, path: string): T {
  try {
    return call();
  } catch (e) {
    throw fromNodeError(e, path);
  }
}

/** Give the server's socket file at `path` a second name beside it; what it connects upstream to. */
export function setAside(path: string): Swap {
  const st = fsCall(() => lstatSync(path), path);
  if (!st.isSocket()) throw new UsageError(`--swap ${path}: not a socket file`);
  const aside = parseUnixAddress(`${path}.tap-${process.pid}`);
  // Checked before anything moves: the temporary name must fit in a socket address too.
  parseUnixAddress(`${aside.label}.new`);
  fsCall(() => linkSync(path, aside.label), aside.label);
  return { path, aside, ours: null };
}

/**
 * Bind tap's socket under a temporary name with the server's file's mode and owner, and rename it over PATH.
 * `listenOn` makes it listen (or not, for datagrams) before it takes PATH, so no client finds it deaf.
 */
export function takePlace(swap: Swap, type: SocketType, listenOn: (fd: number) => void): number {
  const st = fsCall(() => lstatSync(swap.aside.label), swap.aside.label);
  const temp = parseUnixAddress(`${swap.aside.label}.new`);
  const fd = bindUnix(temp, { mode: st.mode & 0o777, type });
  try {
    fsCall(() => chownSync(temp.label, st.uid, st.gid), temp.label);
    listenOn(fd);
    fsCall(() => renameSync(temp.label, swap.path), swap.path);
    swap.ours = socketFileOf(swap.path);
    return fd;
  } catch (e) {
    close(fd);
    try {
      unlinkSync(temp.label);
    } catch {}
    throw e;
  }
}

/**
 * Put the server's file back at PATH. When PATH no longer holds tap's file (someone replaced or removed it), the
 * server's file keeps its second name, and the message says where it is.
 */
export function restore(swap: Swap): string | null {
  // Never took PATH: the server's file is still there, and only its second name goes (renaming one hard link over
  // another of the same file would do nothing).
  if (swap.ours === null) return removeAside(swap);
  const now = socketFileOf(swap.path);
  const stillOurs = (now !== null && now.dev === swap.ours.dev && now.ino === swap.ours.ino);
  if (now !== null && !stillOurs) return `${swap.path} was replaced while tapped; the server's socket is left at ${swap.aside.label}`;
  try {
    renameSync(swap.aside.label, swap.path);
    return null;
  } catch (e) {
    return `could not restore ${swap.path} from ${swap.aside.label}: ${(fromNodeError(e) as Error).message}`;
  }
}

function removeAside(swap: Swap): string | null {
  try {
    unlinkSync(swap.aside.label);
    return null;
  } catch (e) {
    return `could not remove ${swap.aside.label}: ${(fromNodeError(e) as Error).message}`;
  }
}
