// `fdbroker run`'s supervisor: options in, exit code out. The state (state.ts) and its transitions
// (transitions.ts) are driven here by run's signals; the real env (env.ts) starts the children.
import type { PassedFd } from "../launch/exec.ts";
import { realEnv, type SupervisorEnv } from "./env.ts";
import type { Readiness } from "./ready.ts";
import { createState, type SupervisorConfig } from "./state.ts";
import { handle } from "./transitions.ts";

export type { Readiness } from "./ready.ts";

export interface SuperviseOptions extends Omit<SupervisorConfig, "stopSignal" | "settleMs"> {
  /** CMD resolved to a path, then its arguments. */
  argv: readonly string[];
  /** Held for the whole run (the caller owns and closes them); every child gets them at 3, 4, ... */
  fds: readonly PassedFd[];
  env: Record<string, string | undefined>;
  ready: Readiness;
  /** Default SIGTERM. */
  stopSignal?: string;
  /** Default 0: a ready child replaces the old one at once. */
  settleMs?: number;
  log: (line: string) => void;
  /** Tells whoever supervises `run` (systemd's NOTIFY_SOCKET) about readiness, reloads and stopping. */
  notifyParent?: (message: string) => void;
}

/** Run until told to stop (SIGTERM/SIGINT) or until restarts are exhausted; resolves with the exit code. */
export function supervise(o: SuperviseOptions, env: SupervisorEnv = realEnv(o)): Promise<number> {
  const s = createState({
    reloadSignal: o.reloadSignal, stopSignal: o.stopSignal ?? "SIGTERM", readyTimeoutMs: o.readyTimeoutMs,
    settleMs: o.settleMs ?? 0, graceMs: o.graceMs, backoff: o.backoff, maxRestarts: o.maxRestarts, stableMs: o.stableMs,
  }, env);
  const on: [string, () => void][] = [
    [o.reloadSignal, () => handle(s, { type: "reload" })],
    ["SIGTERM", () => handle(s, { type: "stop", signal: "SIGTERM" })],
    ["SIGINT", () => handle(s, { type: "stop", signal: "SIGINT" })],
  ];
  for (const [sig, f] of on) process.on(sig as NodeJS.Signals, f);
  handle(s, { type: "start" });
  return s.finished.finally(() => {
    for (const [sig, f] of on) process.off(sig as NodeJS.Signals, f);
  });
}
