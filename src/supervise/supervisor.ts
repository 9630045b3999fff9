// `fdbroker run`'s loop: one current child holding the listeners; on the reload signal a new child starts,
// and only once it is ready is the old one told to stop. Everything is driven by promises and timers (child
// exits, readiness, signals), so the main thread never blocks in FFI and signal handlers run promptly.
import type { PassedFd } from "../launch/exec.ts";
import { deathSignalPrefix, describeExit, startChild, statusCode, type Child, type ExitStatus } from "./child.ts";
import { notifyDir, openNotifySocket, type NotifySocket } from "./notify.ts";
import { waitReady, type Readiness, type ReadyOutcome } from "./ready.ts";

export type { Readiness } from "./ready.ts";

export interface SuperviseOptions {
  /** CMD resolved to a path, then its arguments. */
  argv: readonly string[];
  /** Held for the whole run (the caller owns and closes them); every child gets them at 3, 4, ... */
  fds: readonly PassedFd[];
  env: Record<string, string | undefined>;
  reloadSignal: string;
  ready: Readiness;
  /** How long a new child may take to become ready before the reload is abandoned. */
  readyTimeoutMs: number;
  /** Between SIGTERM and SIGKILL, for a retired child and at shutdown. */
  graceMs: number;
  /** Restart delay after an unexpected exit: doubles per consecutive failure from min up to max. */
  backoff: { minMs: number; maxMs: number };
  /** Consecutive unexpected exits before giving up (0: never give up). */
  maxRestarts: number;
  /** A child that ran at least this long before exiting starts the count (and the delay) afresh. */
  stableMs: number;
  log: (line: string) => void;
  /** Tells whoever supervises `run` (systemd's NOTIFY_SOCKET) about readiness, reloads and stopping. */
  notifyParent?: (message: string) => void;
}

interface Tracked {
  child: Child;
  notify?: NotifySocket;
  /** Called on the child's READY=1. */
  onReady: () => void;
  notifiedReady: boolean;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Run until told to stop (SIGTERM/SIGINT) or until restarts are exhausted; resolves with the exit code. */
export function supervise(o: SuperviseOptions): Promise<number> {
  const dir = o.ready.kind === "notify" ? notifyDir() : null;
  const deathSignal = deathSignalPrefix(o.env);
  if (deathSignal.length === 0) o.log("no setpriv with --pdeathsig here: children will outlive a run killed by SIGKILL");
  const alive = new Map<Child, Tracked>();
  let generation = 0;
  let current: Child | null = null;
  let starting: Child | null = null;
  let reloadQueued = false;
  let stopping = false;
  let failures = 0;
  /** The current child's last exit: run's own status once it stops. */
  let lastStatus: ExitStatus = { code: 0, signal: null };
  let restartTimer: Timer | null = null;
  let killTimer: Timer | null = null;
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => (done = r));
  const tell = o.notifyParent ?? (() => {});

  function launch(): Child {
    const g = ++generation;
    const notify = dir ? openNotifySocket(dir.path, `notify-${g}`) : undefined;
    let child: Child;
    try {
      child = startChild({ argv: o.argv, fds: o.fds, env: o.env, generation: g, notifySocket: notify?.path, deathSignal });
    } catch (e) {
      notify?.close();
      throw e;
    }
    alive.set(child, { child, notify, onReady: () => {}, notifiedReady: false });
    o.log(`started pid ${child.pid} (#${g})`);
    child.exited.then((s) => onExit(child, s));
    return child;
  }

  /**
   * Every child's notify socket is drained for its whole life: sd_notify blocks a sender whose queue is full.
   * STATUS= is logged only until READY=1 (start-up progress); a server updating it per request must not flood
   * the log.
   */
  function drainNotifications(): void {
    for (const t of alive.values()) {
      for (const msg of t.notify?.drain() ?? []) {
        if (msg.has("STATUS") && !t.notifiedReady) o.log(`pid ${t.child.pid} status: ${msg.get("STATUS")}`);
        if (msg.get("READY") === "1" && !t.notifiedReady) {
          t.notifiedReady = true;
          t.onReady();
        }
      }
    }
  }

  function ready(child: Child): Promise<ReadyOutcome> {
    const t = alive.get(child);
    const notified = new Promise<void>((r) => t && (t.onReady = r));
    return waitReady(child, o.ready, o.readyTimeoutMs, notified);
  }

  async function startFirst(): Promise<void> {
    const child = launch();
    current = child;
    const outcome = await ready(child);
    if (outcome === "ready" && child.running()) {
      o.log(`pid ${child.pid} is ready`);
      tell(`READY=1\nMAINPID=${process.pid}\nSTATUS=pid ${child.pid} serving`);
    } else if (outcome === "timeout") {
      // Nothing better to run instead: it keeps running, but say so (a service manager would time out too).
      o.log(`pid ${child.pid} not ready after ${o.readyTimeoutMs} ms; leaving it running`);
    }
  }

  function retire(child: Child, why: string): void {
    o.log(`stopping ${why} pid ${child.pid} (SIGTERM, ${o.graceMs} ms grace)`);
    child.kill("SIGTERM");
    const t = setTimeout(() => {
      if (!child.running()) return;
      o.log(`pid ${child.pid} still running after ${o.graceMs} ms: SIGKILL`);
      child.kill("SIGKILL");
    }, o.graceMs);
    child.exited.then(() => clearTimeout(t));
  }

  async function reload(): Promise<void> {
    if (stopping) return;
    if (starting) {
      reloadQueued = true;
      return;
    }
    if (!current) {
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = null;
      failures = 0;
      return startFirst().catch(retryStart);
    }
    let child: Child;
    try {
      child = starting = launch();
    } catch (e) {
      o.log(`reload failed: cannot start a child (${errorText(e)}); keeping pid ${current.pid}`);
      return;
    }
    tell("RELOADING=1");
    const outcome = await ready(child);
    starting = null;
    if (outcome === "ready" && child.running() && !stopping) {
      o.log(`pid ${child.pid} is ready`);
      const old = current;
      current = child;
      if (old) retire(old, "old");
      tell(`READY=1\nSTATUS=pid ${child.pid} serving`);
    } else if (!stopping) {
      const keeping = current ? `keeping pid ${current.pid}` : "no child running";
      if (outcome === "timeout") {
        o.log(`reload failed: pid ${child.pid} not ready after ${o.readyTimeoutMs} ms; ${keeping}`);
        retire(child, "unready");
      } else {
        o.log(`reload failed: pid ${child.pid} ended before it was ready; ${keeping}`);
      }
      if (!current) scheduleRestart();
      tell(`READY=1\nSTATUS=reload failed; ${keeping}`);
    }
    if (reloadQueued && !stopping) {
      reloadQueued = false;
      await reload();
    }
  }

  function scheduleRestart(): void {
    if (stopping || restartTimer) return;
    failures++;
    if (o.maxRestarts > 0 && failures > o.maxRestarts) {
      o.log(`giving up after ${o.maxRestarts} restarts in a row`);
      return finish(statusCode(lastStatus));
    }
    const delay = Math.min(o.backoff.maxMs, o.backoff.minMs * 2 ** (failures - 1));
    o.log(`restarting in ${delay} ms (restart ${failures}${o.maxRestarts > 0 ? ` of ${o.maxRestarts}` : ""})`);
    restartTimer = setTimeout(() => {
      restartTimer = null;
      if (stopping || current || starting) return;
      startFirst().catch(retryStart);
    }, delay);
  }

  function retryStart(e: unknown): void {
    o.log(`cannot start a child: ${errorText(e)}`);
    scheduleRestart();
  }

  function onExit(child: Child, s: ExitStatus): void {
    alive.get(child)?.notify?.close();
    alive.delete(child);
    const ran = Date.now() - child.startedAt;
    if (child === current) {
      current = null;
      lastStatus = s;
      if (stopping) {
        o.log(`pid ${child.pid} ${describeExit(s)}`);
      } else {
        if (ran >= o.stableMs) failures = 0;
        o.log(`pid ${child.pid} ${describeExit(s)} unexpectedly${starting ? `; pid ${starting.pid} is starting` : ""}`);
        if (!starting) scheduleRestart();
      }
    } else if (child !== starting) {
      o.log(`pid ${child.pid} ${describeExit(s)} (retired)`);
    }
    if (stopping && alive.size === 0) finish(statusCode(lastStatus));
  }

  function stop(signal: string): void {
    if (stopping) {
      for (const c of alive.keys()) c.kill(signal);
      return;
    }
    stopping = true;
    tell("STOPPING=1");
    if (restartTimer) clearTimeout(restartTimer);
    const pids = [...alive.keys()].map((c) => c.pid);
    o.log(`${signal}: passing it to ${pids.length ? `pid ${pids.join(", ")}` : "no child"}`);
    for (const c of alive.keys()) c.kill(signal);
    if (alive.size === 0) return finish(statusCode(lastStatus));
    killTimer = setTimeout(() => {
      for (const c of alive.keys()) {
        o.log(`pid ${c.pid} still running after ${o.graceMs} ms: SIGKILL`);
        c.kill("SIGKILL");
      }
    }, o.graceMs);
  }

  const onReload = () => {
    if (stopping) return;
    o.log(`${o.reloadSignal}: reload`);
    reload().catch(fatal);
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");

  function finish(code: number): void {
    stopping = true;
    if (restartTimer) clearTimeout(restartTimer);
    if (killTimer) clearTimeout(killTimer);
    if (drainTimer) clearInterval(drainTimer);
    process.off(o.reloadSignal as NodeJS.Signals, onReload);
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onInt);
    for (const t of alive.values()) {
      t.child.kill("SIGKILL");
      t.notify?.close();
    }
    dir?.remove();
    done(code);
  }

  // The first child failing to spawn (fork or the notify socket failing, say) ends the run: there is nothing
  // to supervise yet. Later failures are retried (restart) or leave the old child serving (reload).
  function fatal(e: unknown): void {
    o.log(`cannot start a child: ${errorText(e)}`);
    finish(127);
  }

  // Polled, not watched: Bun has no API to wait on a datagram socket we recvmsg on ourselves.
  const drainTimer = dir ? setInterval(drainNotifications, 10) : null;
  process.on(o.reloadSignal as NodeJS.Signals, onReload);
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  startFirst().catch(fatal);
  return finished;
}
