// When a new child counts as ready. Each way is a watch the supervisor's env starts with the child and stops once
// the child is ready, given up on, or gone; the supervisor itself only sees the "ready" it reports.
// notify is read from the child's notify socket (env.ts); delay, exec and accept are here and in accept.ts.
import { childEnv } from "./child.ts";

export type Readiness =
  | { kind: "notify" }
  | { kind: "delay"; ms: number }
  | { kind: "exec"; command: string }
  | { kind: "accept" };

/** Looking for one child's readiness; `stop` ends whatever it runs (a timer, a probe, a scan) and is idempotent. */
export interface ReadyWatch {
  stop(): void;
}

/** Pause between the end of one probe run and the start of the next. */
export const PROBE_INTERVAL_MS = 250;
/** One probe run that takes longer is killed (its whole process group) and counts as a failure. */
export const PROBE_RUN_LIMIT_MS = 5000;

export function watchDelay(ms: number, onReady: () => void): ReadyWatch {
  const t = setTimeout(onReady, ms);
  return { stop: () => clearTimeout(t) };
}

interface ProbeOptions {
  /** A shell command line, run with /bin/sh -c. */
  command: string;
  /** The child being probed: the probe gets it as FDBROKER_CHILD_PID. */
  pid: number;
  env: Record<string, string | undefined>;
  /** From deathSignalPrefix(): a probe dies with a SIGKILLed run too. */
  deathSignal: readonly string[];
}

/**
 * Runs the probe until it exits 0, then calls onReady. A probe cannot ask the shared listener (the old child
 * would answer): it checks the child it is given, which is why it gets the pid. Its output is discarded.
 */
export function watchProbe(o: ProbeOptions, onReady: () => void): ReadyWatch {
  const env = probeEnv(o.env, o.pid);
  let stopped = false;
  let running: { pid: number; limit: Timer } | null = null;
  let pause: Timer | null = null;
  const again = () => {
    if (!stopped) pause = setTimeout(runOnce, PROBE_INTERVAL_MS);
  };
  function runOnce(): void {
    pause = null;
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      // A session (and process group) of its own: a probe that hangs is killed with everything it started.
      proc = Bun.spawn([...o.deathSignal, "/bin/sh", "-c", o.command], { env, stdio: ["ignore", "ignore", "ignore"], detached: true });
    } catch {
      return again(); // fork failing now (EAGAIN, ENOMEM) may not fail next time
    }
    const run = { pid: proc.pid, limit: setTimeout(() => killGroup(proc.pid), PROBE_RUN_LIMIT_MS) };
    running = run;
    proc.exited.then((code) => {
      clearTimeout(run.limit);
      running = null;
      if (stopped) return;
      if (code === 0 && proc.signalCode === null) {
        stopped = true;
        onReady();
      } else again();
    });
  }
  runOnce();
  return {
    stop() {
      stopped = true;
      if (pause) clearTimeout(pause);
      if (running) {
        clearTimeout(running.limit);
        killGroup(running.pid);
      }
    },
  };
}

/** The probe's environment: run's own, without what is meant for children or for run, plus the child's pid. */
export function probeEnv(base: Record<string, string | undefined>, pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(childEnv(base, []))) if (v !== undefined) env[k] = v;
  env.FDBROKER_CHILD_PID = String(pid);
  return env;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone (ESRCH): its exit is on its way.
  }
}
