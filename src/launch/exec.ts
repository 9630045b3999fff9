// Replacing fdbroker with a command that gets exactly the fds it was meant to: the common end of `recv --`,
// `get --`, `exec` and (in each child) `run`.
import { UsageError } from "../errors.ts";
import { access, C, E, execve, isAccessible, isSysError, SysError } from "../sys/index.ts";
import { expandEnv, type EnvTemplate, type PlacedFd } from "./env-template.ts";
import { dropListenEnv, listenEnv, SD_LISTEN_FDS_START } from "./listen-fds.ts";
import { cloexecAllBut, placeFds, type Placement } from "./place.ts";

export interface PassedFd {
  fd: number;
  name?: string;
}

export interface ExecOptions {
  /** Target numbers for the fds, in order (default 3, 4, ...). */
  targets?: number[];
  /** Set LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (default: when there are fds and they sit at 3, 4, ...). */
  listenFds?: boolean;
  /** Extra fds that keep their number (besides 0, 1, 2). */
  keep?: number[];
  env?: Record<string, string | undefined>;
  /** `--env NAME=TEMPLATE` variables, expanded with the fds' target numbers and names. */
  envTemplates?: readonly EnvTemplate[];
  /** The executable, when the caller has resolved argv[0] already (resolveCommand). */
  path?: string;
}

const NOT_RUNNABLE: Record<string, string> = {
  EACCES: "not executable: no x permission for this user, or on a noexec mount",
  ENOENT: "no such file",
  ENOTDIR: "a component of the path is not a directory",
};

/** The executable `cmd` names: a path, or the first match on PATH. */
export function resolveCommand(cmd: string, env: Record<string, string | undefined> = process.env): string {
  if (cmd.includes("/")) {
    try {
      access(cmd, C.X_OK);
    } catch (e) {
      // EACCES (not executable) and ENOTDIR say more than ENOENT would: keep what access(2) said, in words.
      throw isSysError(e) ? new SysError("execve", e.errno, cmd, NOT_RUNNABLE[e.code] ?? "cannot run it") : e;
    }
    // A directory passes X_OK (it can be searched) but execve refuses it: say so now, not in every child `run`
    // starts. "DIR/." exists only for a directory, and access(2) keeps node:fs off `get -- CMD`'s start-up path.
    if (isAccessible(`${cmd}/.`, C.F_OK)) throw new SysError("execve", E.EACCES, cmd, "a directory");
    return cmd;
  }
  const found = Bun.which(cmd, { PATH: env.PATH ?? "/usr/local/bin:/usr/bin:/bin" });
  if (!found) throw new SysError("execve", E.ENOENT, cmd, "not found on PATH");
  return found;
}

/**
 * exec `argv` in this process (same pid) with `fds` placed at their targets. Only 0, 1, 2, the targets and
 * `keep` survive: every other fd, Bun's own and any fdbroker inherited, is CLOEXEC by the time execve runs.
 * Returns only by throwing; by then fds above 2 may have been rearranged, so the caller should exit.
 */
export function execWithFds(argv: readonly string[], fds: readonly PassedFd[], opts: ExecOptions = {}): never {
  if (argv.length === 0) throw new UsageError("no command to run");
  const env = { ...(opts.env ?? process.env) };
  const path = opts.path ?? resolveCommand(argv[0]!, env);
  // Plain loops: this is `get NAME -- CMD`'s path (see src/sys/exec.ts).
  let targets = opts.targets;
  if (!targets) {
    targets = [];
    for (let i = 0; i < fds.length; i++) targets.push(SD_LISTEN_FDS_START + i);
  }
  if (targets.length !== fds.length) throw new UsageError(`${fds.length} fds but ${targets.length} target numbers`);
  let sequential = true;
  const names: string[] = [];
  const map: Placement[] = [];
  const placed: PlacedFd[] = [];
  for (let i = 0; i < fds.length; i++) {
    sequential &&= targets[i] === SD_LISTEN_FDS_START + i;
    names.push(fds[i]!.name ?? "unknown");
    map.push({ from: fds[i]!.fd, to: targets[i]! });
    placed.push({ number: targets[i]!, name: fds[i]!.name });
  }
  dropListenEnv(env);
  if ((opts.listenFds ?? sequential) && fds.length > 0) Object.assign(env, listenEnv(names, process.pid));
  // Before any fd moves: a template naming no fd fails here, and the caller still owns every fd as it was.
  if (opts.envTemplates?.length) Object.assign(env, expandEnv(opts.envTemplates, placed));
  placeFds(map);
  cloexecAllBut([0, 1, 2, ...targets, ...(opts.keep ?? [])]);
  return execve(path, argv, env);
}
