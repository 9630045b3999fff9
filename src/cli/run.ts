// `fdbroker run`: hold the listeners, run CMD with them, reload it without refusing a connection.
import { Command } from "commander";
import { UsageError } from "../errors.ts";
import { resolveCommand } from "../launch/exec.ts";
import { brokerGetter } from "../launch/from-broker.ts";
import { collectInto, gatherFds, parseGetSource, parseListenSource, type Source } from "../launch/sources.ts";
import { SPEC_HELP } from "../open/spec.ts";
import { parseSignal } from "../supervise/child.ts";
import { parentNotifier } from "../supervise/notify.ts";
import { supervise, type Readiness } from "../supervise/supervisor.ts";
import { closeAll } from "../sys/index.ts";
import { escapeText } from "../text.ts";
import { brokerUidOption, parseCount, socketOf, socketOption } from "./broker-common.ts";

const count = (name: string) => (v: string) => parseCount(v, name, 0);

function parseReady(v: string): Readiness {
  if (v === "notify") return { kind: "notify" };
  const m = /^delay:(\d+)$/.exec(v);
  if (m) return { kind: "delay", ms: Number(m[1]) };
  throw new UsageError(`bad --ready ${v}: notify or delay:MS`);
}

function parseBackoff(v: string): { minMs: number; maxMs: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(v);
  if (!m || Number(m[1]) < 1) throw new UsageError(`bad --backoff ${v}: MIN[:MAX] milliseconds, MIN at least 1`);
  const minMs = Number(m[1]);
  return { minMs, maxMs: Math.max(minMs, Number(m[2] ?? minMs * 100)) };
}

export function command(): Command {
  const sources: Source[] = [];
  const add = collectInto(sources);
  return new Command("run")
    .description("supervise CMD holding its listeners; on the reload signal start a new CMD, then retire the old")
    .option("--listen <[NAME=]SPEC>", `open a listener (${SPEC_HELP}); repeatable`, add(parseListenSource))
    .option("--get <NAME>", "retrieve a broker entry once at start; repeatable", add(parseGetSource))
    .option("--reload-signal <SIG>", "signal that starts a reload", "SIGHUP")
    .option("--ready <HOW>", "when a new child counts as ready: notify (READY=1 on NOTIFY_SOCKET) or delay:MS", "delay:1000")
    .option("--ready-timeout <MS>", "abandon a reload whose child is not ready by then", count("--ready-timeout"), 60000)
    .option("--grace <MS>", "time a stopped child gets to drain before SIGKILL", count("--grace"), 10000)
    .option("--backoff <MIN[:MAX]>", "restart delay after a crash, doubling from MIN to MAX", "100:10000")
    .option("--max-restarts <N>", "crashes in a row before giving up (0: never)", count("--max-restarts"), 10)
    .option("--stable <MS>", "a child up this long resets the crash count", count("--stable"), 10000)
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--no-inherit", "ignore LISTEN_FDS passed to fdbroker (by default they come first)")
    .argument("<cmd...>", "command and arguments (after --)")
    .addHelpText(
      "after",
      `
Each child gets the listeners at fd 3, 4, ... with LISTEN_FDS, LISTEN_PID (its own pid) and LISTEN_FDNAMES.
SIGTERM and SIGINT are passed to the child; run exits with its status (128+N if killed by signal N).
If run is killed by SIGKILL, the kernel kills the child too (setpriv --pdeathsig KILL, where available).
Transitions are logged on stderr, one line each. Under systemd (Type=notify), run itself reports READY=1,
RELOADING=1 and STOPPING=1 to NOTIFY_SOCKET.

Example: fdbroker run --listen tcp:0.0.0.0:8080 --ready notify -- ./server`,
    )
    .action(async (cmd: string[], opts) => {
      const reloadSignal = parseSignal(opts.reloadSignal);
      if (reloadSignal === "SIGTERM" || reloadSignal === "SIGINT") throw new UsageError(`${reloadSignal} cannot be the reload signal: it stops run`);
      const ready = parseReady(opts.ready);
      const backoff = parseBackoff(opts.backoff);
      const argv = [resolveCommand(cmd[0]!), ...cmd.slice(1)];
      const fds = await gatherFds(sources, opts.inherit, brokerGetter({ socket: socketOf(opts), brokerUid: opts.brokerUid }));
      // Lines quote what children say (a STATUS= from NOTIFY_SOCKET) and error messages: escaped, one line each.
      const log = (line: string) => process.stderr.write(`fdbroker run: ${escapeText(line)}\n`);
      const code = await supervise({
        argv, fds, env: process.env, reloadSignal, ready, backoff, log, notifyParent: parentNotifier(process.env.NOTIFY_SOCKET),
        readyTimeoutMs: opts.readyTimeout, graceMs: opts.grace, maxRestarts: opts.maxRestarts, stableMs: opts.stable,
      });
      closeAll(fds.map((f) => f.fd));
      process.exit(code);
    });
}
