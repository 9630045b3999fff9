// Everything `run`'s supervisor knows, as one plain record (as the broker's BrokerState is): the children by
// generation, which one serves and which one a reload is bringing up, restart bookkeeping. Only the transitions
// (transitions.ts) change it; every effect they have goes through `env`.
import type { ExitStatus } from "./child.ts";
import type { ChildHandle, SupervisorEnv, TimerId } from "./env.ts";

export interface SupervisorConfig {
  /** Named in the log line of a reload. */
  reloadSignal: string;
  /** What retires an old child, and what a SIGTERM to run is passed on as. */
  stopSignal: string;
  /** How long a new child may take to become ready before the reload is abandoned (a first child is left running). */
  readyTimeoutMs: number;
  /** How long a reload's new child must stay up once ready before the old one is stopped (0: not at all). */
  settleMs: number;
  /** Between the stop signal and SIGKILL, for a retired child and at shutdown. */
  graceMs: number;
  /** Restart delay after an unexpected exit: doubles per consecutive failure from min up to max. */
  backoff: { minMs: number; maxMs: number };
  /** Consecutive unexpected exits before giving up (0: never give up). */
  maxRestarts: number;
  /** A child that ran at least this long before exiting starts the count (and the delay) afresh. */
  stableMs: number;
}

/**
 * readying: started, not ready yet (its ready-timeout runs); settling: a reload's child that is ready and must
 * stay up for --settle; serving; stopping: sent the stop signal (its grace runs).
 */
type Phase = "readying" | "settling" | "serving" | "stopping";

export interface ChildRecord {
  generation: number;
  pid: number;
  startedAt: number;
  handle: ChildHandle;
  phase: Phase;
  /** A child has one timer at a time, by phase: ready-timeout, settle, or grace. */
  timer: TimerId | null;
}

export interface SupervisorState {
  config: SupervisorConfig;
  env: SupervisorEnv;
  /** Every child not yet seen to exit, by generation. */
  children: Map<number, ChildRecord>;
  generation: number;
  /** The child that serves (or the first one, while it becomes ready); null between a crash and its restart. */
  current: ChildRecord | null;
  /** A reload's new child, from its start until it replaces `current` or the reload is given up. */
  incoming: ChildRecord | null;
  /** A reload signal that came while another reload was under way: run once that one is over. */
  reloadQueued: boolean;
  stopping: boolean;
  /** Unexpected exits in a row. */
  failures: number;
  /** The current child's last exit: run's own status once it stops. */
  lastStatus: ExitStatus;
  restartTimer: TimerId | null;
  /** Set once the run is over; no event changes anything after that. */
  exitCode: number | null;
  finished: Promise<number>;
  onFinished: (code: number) => void;
}

export type SupervisorEvent =
  | { type: "start" }
  | { type: "reload" }
  /** SIGTERM or SIGINT to run. */
  | { type: "stop"; signal: string }
  | { type: "ready"; generation: number }
  | { type: "ready-timeout"; generation: number }
  | { type: "settled"; generation: number }
  | { type: "grace-over"; generation: number }
  | { type: "exited"; generation: number; status: ExitStatus }
  | { type: "restart" };

export function createState(config: SupervisorConfig, env: SupervisorEnv): SupervisorState {
  let onFinished: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => (onFinished = r));
  return {
    config, env, children: new Map(), generation: 0, current: null, incoming: null, reloadQueued: false,
    stopping: false, failures: 0, lastStatus: { code: 0, signal: null }, restartTimer: null, exitCode: null,
    finished, onFinished,
  };
}
