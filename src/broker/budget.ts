// Global budgets: request bytes held, reply bytes and duplicated fds queued, across every connection. Per-client
// limits alone do not bound the broker: a hundred connections each within its own limits can still hold hundreds
// of MiB or every fd. A budget never turns into a lockout, though: when one is spent, whoever holds it and has
// made no progress the longest is cut off so the others can go on.
import { OP, type ReceivedFrame } from "../proto/index.ts";
import type { BrokerState, Conn } from "./state.ts";

/** Whether connections may be read from: the request bytes held are within budget. */
export function mayRead(state: BrokerState): boolean {
  return state.load.requestBytes < state.config.limits.maxRequestBytes;
}

/** fds a reply to `frame` may need duplicated: one per name of a get (every entry, for `all`). */
function fdsWanted(state: BrokerState, frame: ReceivedFrame): number {
  if (frame.kind !== OP.get) return 0;
  if (frame.body.all === true) return state.entries.size;
  return Array.isArray(frame.body.names) ? frame.body.names.length : 0;
}

/**
 * Whether `frame` may be handled now without queued replies going over budget. With nothing queued anywhere it
 * always may, so one request larger than the budget is served alone rather than never.
 */
export function fitsReplyBudget(state: BrokerState, frame: ReceivedFrame): boolean {
  const { load } = state;
  const { maxReplyBytes, maxQueuedFds } = state.config.limits;
  if (load.replyBytes >= maxReplyBytes) return false;
  const fds = fdsWanted(state, frame);
  return fds === 0 || load.replyFds === 0 || load.replyFds + fds <= maxQueuedFds;
}

/**
 * Over the budget of request bytes: the connection that has held request bytes the longest (the first byte of a
 * request it never finished, or requests it sent while not reading its replies). A real client's request arrives
 * within moments; a drip, or a frame announced and never sent, is the oldest. Null when within budget.
 */
export function requestHog(state: BrokerState): Conn | null {
  if (mayRead(state)) return null;
  let hog: Conn | null = null;
  for (const c of state.conns.values())
    if (c.inSince !== null && c !== state.takeover?.conn && (hog === null || c.inSince < hog.inSince!)) hog = c;
  return hog;
}

/**
 * A request waits on the reply budget: the connection holding queued replies that has taken none of them for
 * the longest, once that is over --drain-timeout (a client reading its replies is never the one).
 */
export function replyHog(state: BrokerState, now: number): Conn | null {
  if (state.waiting.size === 0) return null;
  // byActivity keeps the connection with the oldest progress first.
  for (const c of state.byActivity)
    if ((c.outBytes > 0 || c.outFds > 0) && c !== state.takeover?.conn) return now - c.lastActive >= state.config.limits.drainMs ? c : null;
  return null;
}
