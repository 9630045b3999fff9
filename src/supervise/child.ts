// Starting one child of `fdbroker run`: CMD with the held fds at 3, 4, ... and the LISTEN_FDS variables.
// Bun.spawn places stdio[i] at the child's fd i and passes no other fd, but it cannot set LISTEN_PID to the
// child's pid: a one-line shell shim sets it to its own pid ($$) and execs CMD, which keeps that pid.
//
// A `run` killed by SIGKILL (kill -9, the OOM killer) cannot stop its children; the kernel can, through
// PR_SET_PDEATHSIG, which setpriv (util-linux) sets and which survives the execs into the shim and CMD. It fires
// when the thread that forked exits: Bun.spawn forks (vfork) on the main thread (seen with strace), and that
// thread's exit is the process's. If run dies before setpriv's prctl, the shim sees a $PPID that is not run's
// and gives up. CMD's own children are not covered, and a CMD that changes its uid or gid loses the setting.
import { constants } from "node:os";
import { UsageError } from "../errors.ts";
import type { PassedFd } from "../launch/exec.ts";
import { dropListenEnv, listenEnv } from "../launch/listen-fds.ts";

const SHIM = '[ "$PPID" = "$1" ] || exit 1; shift; [ -z "${LISTEN_FDS-}" ] || { LISTEN_PID=$$; export LISTEN_PID; }; exec "$@"';

export interface Child {
  pid: number;
  /** Resolves with the exit status once the child has ended. */
  exited: Promise<ExitStatus>;
  kill(signal: string): void;
}

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

interface StartOptions {
  /** CMD resolved to a path (resolveCommand), then its arguments. */
  argv: readonly string[];
  fds: readonly PassedFd[];
  env: Record<string, string | undefined>;
  notifySocket?: string;
  /** From deathSignalPrefix(): what makes CMD die with run; empty where setpriv cannot. */
  deathSignal: readonly string[];
}

/**
 * `setpriv --pdeathsig KILL --` if this system's setpriv has the option (util-linux 2.33 and later), else empty.
 * Tried once for real rather than guessed from a version string.
 */
export function deathSignalPrefix(env: Record<string, string | undefined>): string[] {
  const setpriv = Bun.which("setpriv", { PATH: env.PATH ?? "/usr/local/bin:/usr/bin:/bin" });
  if (!setpriv) return [];
  const prefix = [setpriv, "--pdeathsig", "KILL", "--"];
  const probe = Bun.spawnSync([...prefix, "/bin/sh", "-c", ":"], { stdio: ["ignore", "ignore", "ignore"] });
  return probe.exitCode === 0 ? prefix : [];
}

/** The environment CMD gets: ours, without anything meant for us, plus its fds' and notify socket's names. */
export function childEnv(base: Record<string, string | undefined>, fds: readonly PassedFd[], notifySocket?: string) {
  const env: Record<string, string | undefined> = { ...base };
  dropListenEnv(env);
  delete env.NOTIFY_SOCKET;
  if (fds.length > 0) {
    // LISTEN_PID is the shim's to set: only it knows the pid CMD will have.
    const { LISTEN_FDS, LISTEN_FDNAMES } = listenEnv(fds.map((f) => f.name ?? ""), 0);
    Object.assign(env, { LISTEN_FDS, LISTEN_FDNAMES });
  }
  if (notifySocket) env.NOTIFY_SOCKET = notifySocket;
  return env;
}

export function startChild(opts: StartOptions): Child {
  const env = Object.fromEntries(
    Object.entries(childEnv(opts.env, opts.fds, opts.notifySocket)).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  const stdio = ["inherit", "inherit", "inherit", ...opts.fds.map((f) => f.fd)] as const;
  const cmd = [...opts.deathSignal, "/bin/sh", "-c", SHIM, "fdbroker-run", String(process.pid), ...opts.argv];
  // A session of its own (setsid): a shell's `kill -HUP %1` or a terminal's ^C signals run's whole process group,
  // and would otherwise kill the old child mid-reload or signal it twice; run passes on what is meant for it.
  const proc = Bun.spawn(cmd, { stdio: stdio as unknown as ["inherit", "inherit", "inherit"], env, detached: true });
  const exited = proc.exited.then(() => ({ code: proc.signalCode ? null : proc.exitCode, signal: signalText(proc.signalCode) }));
  return {
    pid: proc.pid,
    exited,
    kill(signal: string) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try {
        process.kill(proc.pid, signal as NodeJS.Signals);
      } catch {
        // Gone between the check and the kill (ESRCH): its exit is on its way through `exited`.
      }
    },
  };
}

/** The name of signal number `n` (SIGHUP for 1), if it has one here. */
const signalName = (n: number) => Object.entries(constants.signals).find(([, v]) => v === n)?.[0];

function signalText(sig: number | string | null): string | null {
  if (sig === null || typeof sig === "string") return sig;
  return signalName(sig) ?? `SIG${sig}`;
}

/** A signal as users write it: HUP, SIGHUP, sighup or 1. */
export function parseSignal(text: string): string {
  const upper = text.toUpperCase();
  const name = /^\d+$/.test(text) ? signalName(Number(text)) : upper.startsWith("SIG") ? upper : `SIG${upper}`;
  if (!name || !(name in constants.signals) || name === "SIGKILL" || name === "SIGSTOP")
    throw new UsageError(`bad signal: ${text} (a catchable signal name like HUP, USR2 or its number)`);
  return name;
}

/** Shell convention: the exit code, or 128 + the signal's number for a child killed by a signal. */
export function statusCode(s: ExitStatus): number {
  if (s.signal) return 128 + (constants.signals[s.signal as keyof typeof constants.signals] ?? 0);
  return s.code ?? 0;
}

export function describeExit(s: ExitStatus): string {
  return s.signal ? `killed by ${s.signal}` : `exited with code ${s.code}`;
}
