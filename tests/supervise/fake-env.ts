// A SupervisorEnv with a hand-driven clock and pretend children, for testing the supervisor's transitions
// without real time or real processes. Children are told apart by generation (#1 has pid 1001, #2 pid 1002...).
import type { ExitStatus } from "../../src/supervise/child.ts";
import type { ChildEvents, SupervisorEnv } from "../../src/supervise/env.ts";
import { createState, type SupervisorConfig, type SupervisorState } from "../../src/supervise/state.ts";
import { handle } from "../../src/supervise/transitions.ts";

export interface FakeChild {
  pid: number;
  events: ChildEvents;
  /** Signals sent to it, in order. */
  kills: string[];
  watching: boolean;
}

export const CONFIG: SupervisorConfig = {
  reloadSignal: "SIGHUP", stopSignal: "SIGTERM", readyTimeoutMs: 60000, settleMs: 0, graceMs: 10000,
  backoff: { minMs: 100, maxMs: 10000 }, maxRestarts: 10, stableMs: 10000,
};

export function fakeSupervisor(config: Partial<SupervisorConfig> = {}) {
  let clock = 0;
  let nextTimer = 1;
  const timers = new Map<number, { due: number; fire: () => void }>();
  const log: string[] = [];
  const told: string[] = [];
  const children = new Map<number, FakeChild>();
  let spawnError: Error | null = null;
  let closed = 0;
  const env: SupervisorEnv = {
    now: () => clock,
    log: (line) => log.push(line),
    notifyParent: (m) => told.push(m),
    spawn(generation, events) {
      if (spawnError) throw spawnError;
      const c: FakeChild = { pid: 1000 + generation, events, kills: [], watching: true };
      children.set(generation, c);
      return { pid: c.pid, kill: (sig) => c.kills.push(sig), stopWatching: () => (c.watching = false) };
    },
    setTimer(ms, fire) {
      const id = nextTimer++;
      timers.set(id, { due: clock + ms, fire });
      return id;
    },
    clearTimer: (id) => timers.delete(id as number),
    close: () => closed++,
  };
  const s: SupervisorState = createState({ ...CONFIG, ...config }, env);
  const child = (generation: number) => {
    const c = children.get(generation);
    if (!c) throw new Error(`no child #${generation}`);
    return c;
  };
  return {
    s,
    log,
    told,
    child,
    /** Log lines from index `from` on. */
    since: (from: number) => log.slice(from),
    spawned: () => children.size,
    closed: () => closed,
    failSpawns: (e: Error | null) => (spawnError = e),
    send: (e: Parameters<typeof handle>[1]) => handle(s, e),
    ready: (generation: number) => child(generation).events.ready(),
    exit: (generation: number, status: Partial<ExitStatus> = {}) => child(generation).events.exited({ code: 0, signal: null, ...status }),
    /** Move the clock on by `ms`, firing every timer that comes due on the way, in order. */
    advance(ms: number) {
      const until = clock + ms;
      for (;;) {
        const next = [...timers.entries()].filter(([, t]) => t.due <= until).sort((a, b) => a[1].due - b[1].due || a[0] - b[0])[0];
        if (!next) break;
        timers.delete(next[0]);
        clock = next[1].due;
        next[1].fire();
      }
      clock = until;
    },
    pendingTimers: () => timers.size,
  };
}
