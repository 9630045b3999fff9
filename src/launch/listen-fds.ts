// systemd's socket-activation protocol (sd_listen_fds(3)): fds from 3 on, LISTEN_FDS counting them,
// LISTEN_PID naming the process they are for, LISTEN_FDNAMES naming each, colon-separated.
import { UsageError } from "../errors.ts";
import { setCloexec } from "../sys/index.ts";

export const SD_LISTEN_FDS_START = 3;

/** A name LISTEN_FDNAMES can carry: what sd_listen_fds_with_names accepts (no colon, printable, at most 255). */
const isFdName = (name: string) => name.length > 0 && name.length <= 255 && /^[\x21-\x7e]+$/.test(name) && !name.includes(":");

export function checkFdName(name: string): string {
  if (!isFdName(name)) throw new UsageError(`bad fd name ${JSON.stringify(name)}: 1-255 printable characters, no ':' or spaces`);
  return name;
}

/**
 * The variables for fds at 3, 4, ... A name LISTEN_FDNAMES cannot carry (a broker entry may be called
 * `unix:/run/app.sock`, and a ':' would split it in two) is passed as `unknown`, so every later name still
 * lines up with its fd.
 */
export function listenEnv(names: readonly string[], pid: number): Record<string, string> {
  let joined = "";
  for (let i = 0; i < names.length; i++) joined += `${i > 0 ? ":" : ""}${isFdName(names[i]!) ? names[i] : "unknown"}`;
  return { LISTEN_FDS: String(names.length), LISTEN_PID: String(pid), LISTEN_FDNAMES: joined };
}

/**
 * Remove the protocol's variables from `env`. They describe this process's own fds: a child that got them unchanged
 * would take fds it was never given (or refuse to start, its pid not matching), whether or not we pass it any.
 */
export function dropListenEnv(env: Record<string, string | undefined>): void {
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
}

export interface Inherited {
  fds: number[];
  names: string[];
}

/**
 * The fds systemd (or systemd-socket-activate, or fdbroker) passed to this process. As sd_listen_fds does, the
 * variables are removed from `env` whatever the outcome, so they do not leak into children, and fds meant for
 * another pid are not ours. Unlike sd_listen_fds, a missing LISTEN_PID is accepted: a parent such as Bun.spawn
 * cannot know the child's pid in advance. `inherited` is what this process really inherited
 * (inheritedFds()): under Bun, a LISTEN_FDS larger than what was passed would otherwise take the runtime's own
 * event-loop fds, which sit at the lowest free numbers, for listeners.
 */
export function takeListenFds(env: Record<string, string | undefined>, pid: number, inherited: ReadonlySet<number>): Inherited {
  const { LISTEN_FDS: count, LISTEN_PID: forPid, LISTEN_FDNAMES: names } = env;
  dropListenEnv(env);
  if (count === undefined || (forPid !== undefined && Number(forPid) !== pid)) return { fds: [], names: [] };
  const n = Number(count);
  if (!/^\d+$/.test(count) || n > inherited.size) throw new UsageError(`bad LISTEN_FDS: ${count} (${inherited.size} fds inherited)`);
  const list = names === undefined ? [] : names.split(":");
  if (names !== undefined && list.length !== n)
    throw new UsageError(`LISTEN_FDNAMES names ${list.length} fds but LISTEN_FDS is ${n}`);
  const fds = Array.from({ length: n }, (_, i) => SD_LISTEN_FDS_START + i);
  const missing = fds.find((fd) => !inherited.has(fd));
  if (missing !== undefined) throw new UsageError(`LISTEN_FDS is ${n}, but fd ${missing} was not inherited`);
  return { fds, names: Array.from({ length: n }, (_, i) => list[i] || "unknown") };
}

/**
 * The LISTEN_FDS fds this process inherited, made ours: CLOEXEC, so a child gets one only when we pass it on. What
 * `exec` and `run` hand CMD first, and what `serve --adopt-listen-fds` holds. The variables leave `env` either way.
 */
export function adoptListenFds(inherited: ReadonlySet<number>, env: Record<string, string | undefined> = process.env, pid = process.pid): { fd: number; name: string }[] {
  const { fds, names } = takeListenFds(env, pid, inherited);
  for (const fd of fds) setCloexec(fd, true);
  return fds.map((fd, i) => ({ fd, name: names[i]! }));
}
