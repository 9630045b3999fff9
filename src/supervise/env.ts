// Everything `run`'s supervisor does to the world, behind one small record (tableflip's seam): starting and
// signalling children, watching them for readiness, timers, the clock, the log and sd_notify to run's own manager.
// The supervisor's transitions (transitions.ts) reach it through the state, so tests drive them with a fake one
// (tests/supervise/); this file is the real one, and fds are only ever passed for real.
import { UsageError } from "../errors.ts";
import type { PassedFd } from "../launch/exec.ts";
import { listenerInodes, watchAccept } from "./accept.ts";
import { deathSignalPrefix, startChild, type Child, type ExitStatus } from "./child.ts";
import { notifyDir, openNotifySocket, type NotifySocket } from "./notify.ts";
import { watchDelay, watchProbe, type Readiness, type ReadyWatch } from "./ready.ts";

/** What a child reports to the supervisor. Never called synchronously from within `spawn`. */
export interface ChildEvents {
  /** It counts as ready (once at most, and only while its readiness is watched). */
  ready(): void;
  exited(status: ExitStatus): void;
}

export interface ChildHandle {
  pid: number;
  kill(signal: string): void;
  /** Stop looking for readiness (it is ready, or no longer wanted); idempotent. */
  stopWatching(): void;
}

export type TimerId = unknown;

export interface SupervisorEnv {
  now(): number;
  log(line: string): void;
  /** sd_notify to whoever supervises run (systemd's NOTIFY_SOCKET); a no-op without one. */
  notifyParent(message: string): void;
  /** Start child number `generation` and watch it for readiness; throws if it cannot be started. */
  spawn(generation: number, events: ChildEvents): ChildHandle;
  setTimer(ms: number, fire: () => void): TimerId;
  clearTimer(t: TimerId): void;
  /** The run is over: release what the env holds (notify sockets, probes, polling); children are already killed. */
  close(): void;
}

interface RealEnvOptions {
  argv: readonly string[];
  fds: readonly PassedFd[];
  env: Record<string, string | undefined>;
  ready: Readiness;
  log: (line: string) => void;
  notifyParent?: (message: string) => void;
}

export function realEnv(o: RealEnvOptions): SupervisorEnv {
  const inodes = o.ready.kind === "accept" ? listenerInodes(o.fds.map((f) => f.fd)) : [];
  if (o.ready.kind === "accept" && inodes.length === 0)
    throw new UsageError("--ready accept needs a listening socket to watch (--listen, --get or an inherited one)");
  const deathSignal = deathSignalPrefix(o.env);
  if (deathSignal.length === 0) o.log("no setpriv with --pdeathsig here: children will outlive a run killed by SIGKILL");
  const dir = o.ready.kind === "notify" ? notifyDir() : null;
  const notifying = new Set<{ socket: NotifySocket; pid: number; ready: boolean; report: () => void }>();
  const watches = new Set<ReadyWatch>();

  /**
   * Every child's notify socket is drained for its whole life: sd_notify blocks a sender whose queue is full.
   * STATUS= is logged only until READY=1 (start-up progress); a server updating it per request must not flood
   * the log.
   */
  function drainNotifications(): void {
    for (const n of notifying) {
      for (const msg of n.socket.drain()) {
        if (msg.has("STATUS") && !n.ready) o.log(`pid ${n.pid} status: ${msg.get("STATUS")}`);
        if (msg.get("READY") === "1" && !n.ready) {
          n.ready = true;
          n.report();
        }
      }
    }
  }
  // Polled, not watched: Bun has no API to wait on a datagram socket we recvmsg on ourselves.
  const drainTimer = dir ? setInterval(drainNotifications, 10) : null;

  function watch(how: Readiness, pid: number, ready: () => void): ReadyWatch | null {
    if (how.kind === "delay") return watchDelay(how.ms, ready);
    if (how.kind === "exec") return watchProbe({ command: how.command, pid, env: o.env, deathSignal }, ready);
    if (how.kind === "accept") return watchAccept(pid, inodes, ready);
    return null;
  }

  return {
    now: () => Date.now(),
    log: o.log,
    notifyParent: o.notifyParent ?? (() => {}),
    setTimer: (ms, fire) => setTimeout(fire, ms),
    clearTimer: (t) => clearTimeout(t as Timer),
    spawn(generation, events) {
      const socket = dir ? openNotifySocket(dir.path, `notify-${generation}`) : undefined;
      let child: Child;
      try {
        child = startChild({ argv: o.argv, fds: o.fds, env: o.env, notifySocket: socket?.path, deathSignal });
      } catch (e) {
        socket?.close();
        throw e;
      }
      let watching = true;
      const report = () => {
        if (!watching) return;
        watching = false;
        events.ready();
      };
      // Drained until the child exits, even once it no longer counts: only the reporting stops.
      const notified = socket ? { socket, pid: child.pid, ready: false, report } : null;
      if (notified) notifying.add(notified);
      const w = watch(o.ready, child.pid, report);
      if (w) watches.add(w);
      const stopWatching = () => {
        watching = false;
        w?.stop();
        if (w) watches.delete(w);
      };
      child.exited.then((status) => {
        stopWatching();
        if (notified) {
          notifying.delete(notified);
          socket!.close();
        }
        events.exited(status);
      });
      return { pid: child.pid, kill: (signal) => child.kill(signal), stopWatching };
    },
    close() {
      if (drainTimer) clearInterval(drainTimer);
      for (const n of notifying) n.socket.close();
      notifying.clear();
      for (const w of watches) w.stop();
      watches.clear();
      dir?.remove();
    },
  };
}
