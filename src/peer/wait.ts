// Waiting on an fd, or for a listener with room, without shutting out signal handlers. poll(2) on the main
// thread returns EINTR when a signal arrives, but Bun runs the JavaScript handler only at the next macrotask;
// yielding after every wake-up lets a SIGINT or SIGTERM handler abort the wait, so a command can remove its
// socket file before it exits.
import { E, isSysError, poll, SysError } from "../sys/index.ts";
import type { UnixAddress } from "./address.ts";
import { connectTo } from "./endpoint.ts";

// Caps one poll, so a signal that lands between the abort check and poll(2) is noticed within this long.
const SLICE_MS = 500;
// Caps one run of connect attempts (each retried every few ms inside connectTo) for the same reason.
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

/**
 * Connect to a UNIX address. A listener whose queue is full keeps us retrying for up to `timeoutMs`; between
 * attempts the event loop runs, so an aborted `signal` (SIGINT) ends that wait as it ends the others.
 */
export async function connectWaiting(addr: UnixAddress, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    try {
      return connectTo(addr, Math.min(CONNECT_SLICE_MS, Math.max(0, deadline - Date.now())));
    } catch (e) {
      if (!isSysError(e, "ETIMEDOUT")) throw e;
      if (Date.now() >= deadline) throw new SysError("connect", E.ETIMEDOUT, addr.label, `listen queue still full after ${timeoutMs} ms`);
    }
    await macrotask();
  }
}
