// When a new child counts as ready: on its READY=1 (sd_notify), or after a fixed delay; never later than a
// timeout, and never if it exits first.
import type { Child } from "./child.ts";

export type Readiness = { kind: "notify" } | { kind: "delay"; ms: number };
export type ReadyOutcome = "ready" | "exited" | "timeout";

/**
 * Resolves with whichever comes first. `notified` resolves when the child's READY=1 arrives; it is only
 * awaited in notify mode.
 */
export function waitReady(child: Child, how: Readiness, timeoutMs: number, notified: Promise<void>): Promise<ReadyOutcome> {
  return new Promise((resolve) => {
    const timers: Timer[] = [];
    const settle = (r: ReadyOutcome) => {
      for (const t of timers) clearTimeout(t);
      resolve(r);
    };
    child.exited.then(() => settle("exited"));
    timers.push(setTimeout(() => settle("timeout"), timeoutMs));
    if (how.kind === "delay") timers.push(setTimeout(() => settle("ready"), how.ms));
    else notified.then(() => settle("ready"));
  });
}
