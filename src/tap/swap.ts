// --swap PATH: tap a running server without reconfiguring its clients. The server's socket file gets a second
// name (a hard link: connecting by either name reaches the same socket), tap's own socket is bound under a
// temporary name with the original's mode and owner, then renamed over PATH: rename(2) replaces atomically, so a
// client connecting at any moment finds one socket or the other, never none. Restoring renames the server's
// file back over PATH, atomically too.
//
// The server's file is pinned by an O_PATH fd, and tap connects to it through /proc/self/fd/N, never by the second
// name: in a sticky world-writable directory (/tmp) the server's owner may remove that name (the file is theirs)
// and put a symlink there, and a root tap connecting by name would reach, as root, whatever it points at.
import { chownSync, closeSync, fstatSync, linkSync, openSync, renameSync, unlinkSync, type Stats } from "node:fs";
import { UsageError } from "../errors.ts";
import { parseUnixAddress, type UnixAddress } from "../peer/address.ts";
import { bindUnix, sameFileId, socketFileOf, type FileId } from "../peer/listen.ts";
import { C, close, fromNodeError, type SocketType } from "../sys/index.ts";

export interface Swap {
  /** The server's socket file's original path, where tap now listens. */
  path: string;
  /** The second name of the server's socket file. */
  aside: UnixAddress;
  /** The server's socket file, pinned (O_PATH): what tap connects to, whatever its names become. */
  pinned: number;
  /** That file as it was pinned: its identity, mode and owner. */
  server: Stats;
  /** Connecting to `pinned` (/proc/self/fd/N), labelled with the second name. */
  upstream: UnixAddress;
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
  const aside = parseUnixAddress(`${path}.tap-${process.pid}`);
  // Checked before anything moves: the temporary name must fit in a socket address too.
  parseUnixAddress(`${aside.label}.new`);
  const pinned = fsCall(() => openSync(path, C.O_PATH | C.O_NOFOLLOW | C.O_CLOEXEC), path);
  try {
    const st = fsCall(() => fstatSync(pinned), path);
    if (!st.isSocket()) throw new UsageError(`--swap ${path}: not a socket file`);
    fsCall(() => linkSync(path, aside.label), aside.label);
    // PATH may have been replaced between the open and the link: the second name must be the pinned file.
    if (!sameFileId(socketFileOf(aside.label), st)) {
      unlinkSync(aside.label);
      throw new UsageError(`--swap ${path}: the file changed while it was being set aside`);
    }
    const upstream = { ...parseUnixAddress(`/proc/self/fd/${pinned}`), label: aside.label };
    return { path, aside, pinned, server: st, upstream, ours: null };
  } catch (e) {
    closeSync(pinned);
    throw e;
  }
}

/**
 * Bind tap's socket under a temporary name with the server's file's mode and owner, and rename it over PATH.
 * `listenOn` makes it listen (or not, for datagrams) before it takes PATH, so no client finds it deaf.
 */
export function takePlace(swap: Swap, type: SocketType, listenOn: (fd: number) => void): number {
  const st = swap.server;
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
  closeSync(swap.pinned);
  // Never took PATH: the server's file is still there, and only its second name goes (renaming one hard link over
  // another of the same file would do nothing).
  if (swap.ours === null) return removeAside(swap);
  const now = socketFileOf(swap.path);
  if (now !== null && !sameFileId(now, swap.ours)) return `${swap.path} was replaced while tapped; the server's socket is left at ${swap.aside.label}`;
  // Moving whatever now has the second name to PATH would publish someone else's file (a symlink) there.
  if (!sameFileId(socketFileOf(swap.aside.label), swap.server)) return `${swap.aside.label} was replaced while tapped; ${swap.path} is left as it is`;
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
