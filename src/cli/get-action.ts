// What `get` does once its options are known. Kept free of commander so the `get NAME -- CMD` fast path
// (get-fast.ts) and the full command (get.ts) run the same code.
import { get, openSession } from "../client/index.ts";
import { UsageError } from "../errors.ts";
import { requireName } from "../proto/index.ts";
import { expandEnv, namesUsed, type EnvTemplate } from "../launch/env-template.ts";
import type { PassedFd } from "../launch/exec.ts";
import { closeAll } from "../sys/index.ts";

export interface GetOpts {
  socket?: string;
  brokerUid?: number;
  all?: boolean;
  rm?: boolean;
  cat?: boolean;
  stdin?: boolean;
  as: number[];
  json?: boolean;
  env?: EnvTemplate[];
}

/** The numbers asked for in CMD: --stdin puts the first fd at 0, --as numbers come next in order. */
function chosenTargets(stdin: boolean, as: readonly number[]): number[] {
  const chosen = stdin ? [0, ...as] : [...as];
  if (new Set(chosen).size !== chosen.length) throw new UsageError(`two fds placed at the same number: ${chosen.join(", ")}`);
  return chosen;
}

/** Where each of `count` fds goes in CMD: the chosen numbers, then 3, 4, ... */
function targetsFor(count: number, chosen: readonly number[]): number[] {
  const targets = chosen.slice(0, count);
  for (let next = 3; targets.length < count; next++) if (!targets.includes(next)) targets.push(next);
  return targets;
}

/**
 * --env is checked before the broker is asked, {fd:NAME} against the names asked for: with --rm, a template that
 * fails after the get would cost the entries. With --all the names are not known beforehand, so --rm is refused.
 */
function checkEnv(names: readonly string[], opts: GetOpts, cmd: readonly string[]): void {
  const env = opts.env ?? [];
  if (env.length === 0) return;
  if (cmd.length === 0) throw new UsageError("--env needs a command after --");
  if (namesUsed(env).length === 0) return;
  if (opts.all && opts.rm) throw new UsageError("--env {fd:NAME} with --all --rm: the entries would be gone before NAME could be checked");
  if (!opts.all) expandEnv(env, names.map((name, number) => ({ number, name })));
}

export async function runGet(names: string[], opts: GetOpts, cmd: string[]): Promise<void> {
  if (names.length === 0 && !opts.all) throw new UsageError("name at least one entry, or use --all");
  if (cmd.length === 0 && (opts.stdin || opts.as.length > 0)) throw new UsageError("--stdin and --as need a command after --");
  if (cmd.length > 0 && opts.cat) throw new UsageError("--cat and a command cannot be combined");
  checkEnv(names, opts, cmd);
  // Everything that can be checked is checked before the broker is asked: with --rm, the entries would be lost.
  for (let i = 0; i < names.length; i++) requireName(names[i]!);
  const chosen = chosenTargets(!!opts.stdin, opts.as);
  const exec = cmd.length > 0 ? await import("../launch/exec.ts") : null;
  const path = exec?.resolveCommand(cmd[0]!);
  const session = openSession({ socket: opts.socket, brokerUid: opts.brokerUid });
  let got;
  try {
    got = get(session, names, { all: opts.all, remove: opts.rm });
  } finally {
    session.close();
  }
  // Each path loads only what it needs: `get NAME -- CMD` sits in services' start-up paths.
  try {
    if (exec) {
      // A loop, not got.map: see src/sys/exec.ts on builtins in a fresh process.
      const fds: PassedFd[] = [];
      for (const g of got) fds.push({ fd: g.fd, name: g.entry.name });
      exec.execWithFds(cmd, fds, { path, targets: targetsFor(got.length, chosen), envTemplates: opts.env });
    }
    if (opts.cat) {
      const { catFd } = await import("./cat-fd.ts");
      for (const g of got) catFd(g.fd, `entry ${JSON.stringify(g.entry.name)}`);
    } else {
      const [{ describeFd }, { printGroups }] = await Promise.all([import("../describe/index.ts"), import("./describe-view.ts")]);
      printGroups([{ fds: got.map((g, i) => ({ id: i, name: g.entry.name, desc: describeFd(g.fd) })) }], !!opts.json, "#");
    }
  } finally {
    closeAll(got.map((g) => g.fd));
  }
}
