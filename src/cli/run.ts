// `fdbroker run`: hold the listeners, run CMD with them, reload it without refusing a connection.
import { Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import { collectEnv, ENV_HELP, expandEnv, type EnvTemplate } from "../launch/env-template.ts";
import { resolveCommand } from "../launch/exec.ts";
import { SD_LISTEN_FDS_START } from "../launch/listen-fds.ts";
import { collectInto, gatherFds, parseGetSource, parseListenSource, type Source } from "../launch/sources.ts";
import { HAPROXY_HELP, SPEC_HELP, SPEC_PARAMS_HELP } from "../open/spec.ts";
import { ACCEPT_SCAN_INTERVAL_MS } from "../supervise/accept.ts";
import { parseSignal } from "../supervise/child.ts";
import { parentNotifier } from "../supervise/notify.ts";
import { PROBE_INTERVAL_MS, PROBE_RUN_LIMIT_MS } from "../supervise/ready.ts";
import { supervise } from "../supervise/supervisor.ts";
import { closeAll } from "../sys/index.ts";
import { escapeText } from "../text.ts";
import { brokerUidOption, parseCount, parseDuration, socketOf, socketOption } from "./broker-common.ts";
import { parseBackoff, parseReady } from "./run-options.ts";

const count = (name: string) => (v: string) => parseCount(v, name, 0);
/** A duration option, its default shown as it would be typed; zero only where it means none (`--settle 0`). */
function duration(flags: string, help: string, defaultMs: number, shown: string, allowZero = false): Option {
  const name = flags.split(" ")[0]!;
  return new Option(flags, help).argParser((v) => parseDuration(v, name, { allowZero })).default(defaultMs, shown);
}

export function command(): Command {
  const sources: Source[] = [];
  const add = collectInto(sources);
  return new Command("run")
    .description("supervise CMD holding its listeners; on the reload signal start a new CMD, then retire the old")
    .option("--listen <[NAME=]SPEC>", `open a listener (${SPEC_HELP}); repeatable`, add(parseListenSource))
    .option("--get <NAME>", "retrieve a broker entry once at start; repeatable", add(parseGetSource))
    .option("--reload-signal <SIG>", "signal that starts a reload", "SIGHUP")
    .option("--stop-signal <SIG>", "what retires an old child, and what run's SIGTERM is passed on as (nginx: QUIT)", "SIGTERM")
    .option("--ready <HOW>", "when a new child counts as ready: notify (READY=1 on NOTIFY_SOCKET), accept (its process tree waits on every listener), exec:CMD (until the probe CMD exits 0) or delay:DURATION", "delay:1s")
    .addOption(duration("--ready-timeout <DURATION>", "abandon a reload whose child is not ready by then", 60000, "60s"))
    .addOption(duration("--settle <DURATION>", "a reload's new child must stay up this long once ready before the old one is stopped", 0, "0", true))
    .addOption(duration("--grace <DURATION>", "time a stopped child gets to drain before SIGKILL", 10000, "10s"))
    .option("--backoff <MIN[:MAX]>", "restart delay after a crash, doubling from MIN to MAX", "100ms:10s")
    .option("--max-restarts <N>", "crashes in a row before giving up (0: never)", count("--max-restarts"), 10)
    .addOption(duration("--stable <DURATION>", "a child up this long resets the crash count", 10000, "10s"))
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--no-inherit", "ignore LISTEN_FDS passed to fdbroker (by default they come first)")
    .option("--env <NAME=TEMPLATE>", "set NAME to the listeners' fd numbers in each child, e.g. 'NGINX={fds;}' (below); repeatable", collectEnv)
    .argument("<CMD...>", "command and arguments (after --)")
    .addHelpText(
      "after",
      `
Each child gets the listeners at fd 3, 4, ... with LISTEN_FDS, LISTEN_PID (its
own pid) and LISTEN_FDNAMES. SIGTERM is passed to the child as --stop-signal,
SIGINT as it is; run exits with its status (128+N if killed by signal N).
Durations: 500ms, 30s, 5m; a bare number is milliseconds.
--ready exec:CMD runs "sh -c CMD" with FDBROKER_CHILD_PID set to the new child's
pid, every ${PROBE_INTERVAL_MS} ms until it exits 0 (each run killed after ${PROBE_RUN_LIMIT_MS / 1000} s); it
must check that child, not the shared listener (the old child answers there).
--ready accept looks in /proc every ${ACCEPT_SCAN_INTERVAL_MS} ms for an epoll of the child's process
tree watching each listener, or a thread blocked in accept on it (a server
waiting in poll or select is not seen).
If run is killed by SIGKILL, the kernel kills the child too (setpriv --pdeathsig
KILL, where available). Transitions are logged on stderr, one line each. Under
systemd (Type=notify), run itself reports READY=1, RELOADING=1 and STOPPING=1 to
NOTIFY_SOCKET.

Example: fdbroker run --listen tcp:0.0.0.0:8080 --ready notify -- ./server`,
    )
    .addHelpText("after", `\n${ENV_HELP}\n\n${SPEC_PARAMS_HELP}\n${HAPROXY_HELP}`)
    .action(async (cmd: string[], opts) => {
      const reloadSignal = parseSignal(opts.reloadSignal);
      if (reloadSignal === "SIGTERM" || reloadSignal === "SIGINT") throw new UsageError(`${reloadSignal} cannot be the reload signal: it stops run`);
      const stopSignal = parseSignal(opts.stopSignal);
      const ready = parseReady(opts.ready);
      const backoff = parseBackoff(opts.backoff);
      const argv = [resolveCommand(cmd[0]!), ...cmd.slice(1)];
      const fds = gatherFds(sources, opts.inherit, { socket: socketOf(opts), brokerUid: opts.brokerUid });
      // Lines quote what children say (a STATUS= from NOTIFY_SOCKET) and error messages: escaped, one line each.
      const log = (line: string) => process.stderr.write(`fdbroker run: ${escapeText(line)}\n`);
      let code: number;
      try {
        // Every child gets the same fds at 3, 4, ...: the variables are the same for each.
        const templates: EnvTemplate[] = opts.env ?? [];
        const env = { ...process.env, ...expandEnv(templates, fds.map((f, i) => ({ number: SD_LISTEN_FDS_START + i, name: f.name }))) };
        code = await supervise({
          argv, fds, env, reloadSignal, stopSignal, ready, backoff, log, notifyParent: parentNotifier(process.env.NOTIFY_SOCKET),
          readyTimeoutMs: opts.readyTimeout, settleMs: opts.settle, graceMs: opts.grace, maxRestarts: opts.maxRestarts, stableMs: opts.stable,
        });
      } finally {
        closeAll(fds.map((f) => f.fd));
      }
      process.exit(code);
    });
}
