// Waiting on an fd, or for a socket to connect to, without shutting out signal handlers. poll(2) on the main
// thread returns EINTR when a signal arrives, but Bun runs the JavaScript handler only at the next macrotask;
// yielding after every wake-up lets a SIGINT or SIGTERM handler abort the wait, so a command can remove its
// socket file before it exits.
import { E, isSysError, poll, SysError } from "../sys/index.ts";
import type { UnixAddress } from "./address.ts";
import { connectTo } from "./endpoint.ts";
import { socketFileOf } from "./listen.ts";

// Caps one poll, so a signal that lands between the abort check and poll(2) is noticed within this long.
const SLICE_MS = 500;
// Caps one connect attempt to a full listen queue (retried every few ms inside connectTo) for the same reason.
const CONNECT_SLICE_MS = 50;

export const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Resolve when `fd` reports one of `events`; throw SysError ETIMEDOUT (naming `syscall` and `what`) after
 * `timeoutMs`, or at `deadline` when a longer wait of `timeoutMs` in all is going on, or the signal's reason once
 * `signal` is aborted.
 */
export async function waitReady(
  fd: number, events: number, timeoutMs: number, what: { syscall: string; label?: string; detail: string },
  signal?: AbortSignal, deadline = Date.now() + timeoutMs, // Infinity when there is no limit
): Promise<number> {
  for (;;) {
    signal?.throwIfAborted();
    const rev = poll([{ fd, events }], Math.min(Math.max(0, deadline - Date.now()), SLICE_MS))[0]!;
    if (rev !== 0) return rev;
    if (Date.now() >= deadline) throw new SysError(what.syscall, E.ETIMEDOUT, what.label, `${what.detail} in ${timeoutMs} ms`);
    await macrotask();
  }
}

/** What a connecting side is waiting for, as `onWait` hears it once per kind (for `-v`). */
export type ConnectWait = "socket" | "listener" | "room";

// Between attempts while nothing is there yet: short at first (a peer about to listen), then at most this.
const FIRST_RETRY_MS = 5;
const MAX_RETRY_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Connect to a UNIX address, waiting up to `timeoutMs` for it to exist (ENOENT), for someone to listen on it
 * (ECONNREFUSED from a socket file or an abstract name), or for room in a full listen queue, so a script may
 * start both ends at once instead of sleeping. Anything at the path that is not a socket fails at once: no wait
 * would change it. Retries back off from 5 to 100 ms, and the event loop runs in between, so an aborted `signal`
 * (SIGINT) ends the wait as it ends the others. After the deadline: SysError naming connect, the last errno and
 * the address.
 */
export async function connectWaiting(
  addr: UnixAddress, timeoutMs: number, signal?: AbortSignal, onWait?: (what: ConnectWait, code: string) => void,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const heard = new Set<ConnectWait>();
  for (let pause = FIRST_RETRY_MS; ; pause = Math.min(pause * 2, MAX_RETRY_MS)) {
    signal?.throwIfAborted();
    let what: ConnectWait;
    try {
      return connectTo(addr, Math.min(CONNECT_SLICE_MS, Math.max(0, deadline - Date.now())));
    } catch (e) {
      what = waitable(e, addr);
      if (Date.now() >= deadline) throw new SysError("connect", (e as SysError).errno, addr.label, GAVE_UP[what](timeoutMs));
      if (!heard.has(what)) onWait?.(what, (e as SysError).code);
      heard.add(what);
    }
    if (what === "room") await macrotask();
    else await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
  }
}

const GAVE_UP: Record<ConnectWait, (ms: number) => string> = {
  socket: (ms) => `no socket appeared in ${ms} ms`,
  listener: (ms) => `nobody accepted in ${ms} ms`,
  room: (ms) => `listen queue still full after ${ms} ms`,
};

/** What a failed connect is worth waiting for, or the error itself thrown again. */
function waitable(e: unknown, addr: UnixAddress): ConnectWait {
  if (isSysError(e, "ETIMEDOUT")) return "room";
  if (isSysError(e, "ENOENT")) return "socket";
  // A regular file or directory at the path refuses too: that is a wrong address, not one to wait on.
  if (isSysError(e, "ECONNREFUSED") && (addr.path === null || socketFileOf(addr) !== null)) return "listener";
  throw e;
}
