// `run`'s supervisor as a state machine: one current child holding the listeners; on the reload signal an
// incoming child starts, and only once it is ready (and, with --settle, has stayed up a while) is the current one
// told to stop. Every event (a signal, a child's readiness or exit, a timer) is one transition function from a
// table, and every effect goes through the env (env.ts), so tests drive the transitions with a fake env, without
// real time or real children (tests/supervise/). Nothing here blocks: signal handlers run promptly.
import { describeExit, statusCode, type ExitStatus } from "./child.ts";
import type { ChildRecord, SupervisorEvent, SupervisorState } from "./state.ts";

type Of<T extends SupervisorEvent["type"]> = Extract<SupervisorEvent, { type: T }>;
const transitions: { [T in SupervisorEvent["type"]]: (s: SupervisorState, e: Of<T>) => void } = {
  start(s) {
    try {
      startCurrent(s);
    } catch (e) {
      // The first child failing to spawn (fork or its notify socket failing, say) ends the run: there is nothing
      // to supervise yet. Later failures are retried (restart) or leave the old child serving (reload).
      s.env.log(`cannot start a child: ${errorText(e)}`);
      finish(s, 127);
    }
  },
  reload(s) {
    if (s.stopping) return;
    s.env.log(`${s.config.reloadSignal}: reload`);
    beginReload(s);
  },
  stop(s, e) {
    // SIGTERM is how service managers stop a service: the child gets its own graceful signal instead. SIGINT (^C)
    // is passed as it is.
    const signal = e.signal === "SIGTERM" ? s.config.stopSignal : e.signal;
    const all = [...s.children.values()];
    if (s.stopping) {
      for (const c of all) c.handle.kill(signal);
      return;
    }
    s.stopping = true;
    s.env.notifyParent("STOPPING=1");
    clearRestart(s);
    const pids = all.length ? `pid ${all.map((c) => c.pid).join(", ")}` : "no child";
    s.env.log(`${e.signal}: passing it to ${pids}${signal === e.signal ? "" : ` as ${signal}`}`);
    for (const c of all) {
      c.handle.kill(signal);
      // A child already retiring keeps the grace it was given.
      if (c.phase !== "stopping") startGrace(s, c);
    }
    if (all.length === 0) finish(s, statusCode(s.lastStatus));
  },
  ready(s, e) {
    const c = s.children.get(e.generation);
    if (!c || c.phase !== "readying") return;
    stopWaiting(s, c);
    if (c !== s.incoming) {
      c.phase = "serving";
      s.env.log(`pid ${c.pid} is ready`);
      s.env.notifyParent(`READY=1\nMAINPID=${process.pid}\nSTATUS=pid ${c.pid} serving`);
    } else if (s.config.settleMs > 0 && s.current) {
      c.phase = "settling";
      s.env.log(`pid ${c.pid} is ready; settling for ${s.config.settleMs} ms before pid ${s.current.pid} is stopped`);
      c.timer = s.env.setTimer(s.config.settleMs, () => handle(s, { type: "settled", generation: c.generation }));
    } else {
      s.env.log(`pid ${c.pid} is ready`);
      promote(s, c);
    }
  },
  "ready-timeout"(s, e) {
    const c = s.children.get(e.generation);
    if (!c || c.phase !== "readying") return;
    c.timer = null;
    c.handle.stopWatching();
    if (c !== s.incoming) {
      // Nothing better to run instead: it keeps running, but say so (a service manager would time out too).
      c.phase = "serving";
      s.env.log(`pid ${c.pid} not ready after ${s.config.readyTimeoutMs} ms; leaving it running`);
      return;
    }
    s.incoming = null;
    s.env.log(`reload failed: pid ${c.pid} not ready after ${s.config.readyTimeoutMs} ms; ${keeping(s)}`);
    retire(s, c, "unready");
    reloadFailed(s);
  },
  settled(s, e) {
    const c = s.children.get(e.generation);
    if (!c || c.phase !== "settling") return;
    c.timer = null;
    s.env.log(`pid ${c.pid} stayed up ${s.config.settleMs} ms`);
    promote(s, c);
  },
  "grace-over"(s, e) {
    const c = s.children.get(e.generation);
    if (!c) return;
    c.timer = null;
    s.env.log(`pid ${c.pid} still running after ${s.config.graceMs} ms: SIGKILL`);
    c.handle.kill("SIGKILL");
  },
  exited(s, e) {
    const c = s.children.get(e.generation);
    if (!c) return;
    s.children.delete(e.generation);
    if (c.timer !== null) s.env.clearTimer(c.timer);
    const how = describeExit(e.status);
    if (c === s.current) exitedCurrent(s, c, e.status);
    else if (c === s.incoming) {
      s.incoming = null;
      if (s.stopping) s.env.log(`pid ${c.pid} ${how}`);
      else {
        const why = c.phase === "settling" ? `${how} within the ${s.config.settleMs} ms --settle` : "ended before it was ready";
        s.env.log(`reload failed: pid ${c.pid} ${why}; ${keeping(s)}`);
        reloadFailed(s, `pid ${c.pid} ${why}`);
      }
    } else s.env.log(`pid ${c.pid} ${how} (retired)`);
    if (s.stopping && s.children.size === 0) finish(s, statusCode(s.lastStatus));
  },
  restart(s) {
    s.restartTimer = null;
    if (s.stopping || s.current || s.incoming) return;
    tryStart(s);
  },
};

/** Apply one event. Events after the run is over change nothing. */
export function handle(s: SupervisorState, e: SupervisorEvent): void {
  if (s.exitCode !== null) return;
  (transitions[e.type] as (s: SupervisorState, e: SupervisorEvent) => void)(s, e);
}

function launch(s: SupervisorState): ChildRecord {
  const generation = ++s.generation;
  const h = s.env.spawn(generation, {
    ready: () => handle(s, { type: "ready", generation }),
    exited: (status) => handle(s, { type: "exited", generation, status }),
  });
  const c: ChildRecord = { generation, pid: h.pid, startedAt: s.env.now(), handle: h, phase: "readying", timer: null };
  c.timer = s.env.setTimer(s.config.readyTimeoutMs, () => handle(s, { type: "ready-timeout", generation }));
  s.children.set(generation, c);
  s.env.log(`started pid ${c.pid} (#${generation})`);
  return c;
}

/** A child with no other to replace: at start, and after a crash. It serves from the start. */
function startCurrent(s: SupervisorState): void {
  s.current = launch(s);
}

function tryStart(s: SupervisorState): void {
  try {
    startCurrent(s);
  } catch (e) {
    s.env.log(`cannot start a child: ${errorText(e)}`);
    scheduleRestart(s);
  }
}

function beginReload(s: SupervisorState): void {
  if (s.incoming) {
    s.reloadQueued = true;
    return;
  }
  if (!s.current) {
    // Waiting to restart after a crash: a reload is a restart now, with a fresh count.
    clearRestart(s);
    s.failures = 0;
    return tryStart(s);
  }
  try {
    s.incoming = launch(s);
  } catch (e) {
    s.env.log(`reload failed: cannot start a child (${errorText(e)}); keeping pid ${s.current.pid}`);
    return;
  }
  s.env.notifyParent("RELOADING=1");
}

/** The incoming child takes over: the current one (if any is left) is retired. */
function promote(s: SupervisorState, c: ChildRecord): void {
  const old = s.current;
  s.current = c;
  s.incoming = null;
  c.phase = "serving";
  if (old) retire(s, old, "old");
  s.env.notifyParent(`READY=1\nSTATUS=pid ${c.pid} serving`);
  reloadOver(s);
}

function reloadFailed(s: SupervisorState, why?: string): void {
  if (!s.current) scheduleRestart(s);
  s.env.notifyParent(`READY=1\nSTATUS=reload failed${why ? ` (${why})` : ""}; ${keeping(s)}`);
  reloadOver(s);
}

function reloadOver(s: SupervisorState): void {
  if (!s.reloadQueued || s.stopping) return;
  s.reloadQueued = false;
  beginReload(s);
}

function exitedCurrent(s: SupervisorState, c: ChildRecord, status: ExitStatus): void {
  s.current = null;
  s.lastStatus = status;
  if (s.stopping) return s.env.log(`pid ${c.pid} ${describeExit(status)}`);
  if (s.env.now() - c.startedAt >= s.config.stableMs) s.failures = 0;
  const next = s.incoming;
  s.env.log(`pid ${c.pid} ${describeExit(status)} unexpectedly${next ? `; pid ${next.pid} is starting` : ""}`);
  if (!next) scheduleRestart(s);
  else if (next.phase === "settling") {
    // Nothing is left to fall back on: the ready successor serves now rather than after its settle time.
    stopWaiting(s, next);
    promote(s, next);
  }
  // A successor still becoming ready takes over once it is (promote, with no one left to retire).
}

function retire(s: SupervisorState, c: ChildRecord, why: string): void {
  s.env.log(`stopping ${why} pid ${c.pid} (${s.config.stopSignal}, ${s.config.graceMs} ms grace)`);
  c.handle.kill(s.config.stopSignal);
  startGrace(s, c);
}

function startGrace(s: SupervisorState, c: ChildRecord): void {
  stopWaiting(s, c);
  c.phase = "stopping";
  c.timer = s.env.setTimer(s.config.graceMs, () => handle(s, { type: "grace-over", generation: c.generation }));
}

/** Drop a child's timer and readiness watch. */
function stopWaiting(s: SupervisorState, c: ChildRecord): void {
  if (c.timer !== null) s.env.clearTimer(c.timer);
  c.timer = null;
  c.handle.stopWatching();
}

function scheduleRestart(s: SupervisorState): void {
  if (s.stopping || s.restartTimer !== null) return;
  const { maxRestarts, backoff } = s.config;
  s.failures++;
  if (maxRestarts > 0 && s.failures > maxRestarts) {
    s.env.log(`giving up after ${maxRestarts} restarts in a row`);
    return finish(s, statusCode(s.lastStatus));
  }
  const delay = Math.min(backoff.maxMs, backoff.minMs * 2 ** (s.failures - 1));
  s.env.log(`restarting in ${delay} ms (restart ${s.failures}${maxRestarts > 0 ? ` of ${maxRestarts}` : ""})`);
  s.restartTimer = s.env.setTimer(delay, () => handle(s, { type: "restart" }));
}

function clearRestart(s: SupervisorState): void {
  if (s.restartTimer !== null) s.env.clearTimer(s.restartTimer);
  s.restartTimer = null;
}

function finish(s: SupervisorState, code: number): void {
  // Giving up from within an exit's transition would otherwise finish again as that transition ends.
  if (s.exitCode !== null) return;
  s.stopping = true;
  s.exitCode = code;
  clearRestart(s);
  for (const c of s.children.values()) {
    stopWaiting(s, c);
    c.handle.kill("SIGKILL");
  }
  s.env.close();
  s.onFinished(code);
}

const keeping = (s: SupervisorState) => (s.current ? `keeping pid ${s.current.pid}` : "no child running");
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

