// `fdbroker serve`: run a broker holding named fds until SIGTERM/SIGINT.
import { Command, Option } from "commander";
import { parseRule, runLoop, startBroker, type Rule } from "../broker/index.ts";
import { UsageError } from "../errors.ts";
import { parseSpec, SPEC_HELP, SPEC_PARAMS_HELP } from "../open/spec.ts";
import { requireName } from "../proto/index.ts";
import { brokerUidOption, collect, parseCount, parseDuration, parseSize, socketOf, socketOption } from "./broker-common.ts";

function parseHold(text: string): { name: string; spec: string } {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new UsageError(`bad --hold ${JSON.stringify(text)}: expected NAME=SPEC`);
  return { name: text.slice(0, eq), spec: text.slice(eq + 1) };
}

/** `--pool NAME=SIZE:SPEC`: the SPEC is checked now (a usage error), opened by the broker. */
function parsePool(text: string): { name: string; size: number; spec: string } {
  const m = /^([^=]+)=(\d+):(.+)$/.exec(text);
  if (!m) throw new UsageError(`bad --pool ${JSON.stringify(text)}: expected NAME=SIZE:SPEC, e.g. db=4:tcp-connect:127.0.0.1:6379`);
  const size = parseCount(m[2]!, "--pool SIZE");
  if (size > 4096) throw new UsageError(`bad --pool ${JSON.stringify(text)}: at most 4096 members`);
  requireName(m[1]!);
  parseSpec(m[3]!);
  return { name: m[1]!, size, spec: m[3]! };
}

export function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new UsageError(`bad --mode ${text}: octal, like 0600 or 0666`);
  return parseInt(text, 8);
}

/** Each thread is a Worker with its own heap (about 2 MB): a few are plenty, since normal closes take microseconds. */
function parseCloserThreads(text: string): number {
  const n = parseCount(text, "--closer-threads");
  if (n > 256) throw new UsageError(`bad --closer-threads ${text}: at most 256`);
  return n;
}

interface ServeOpts {
  socket?: string;
  mode: number;
  hold: { name: string; spec: string }[];
  pool: { name: string; size: number; spec: string }[];
  adoptListenFds?: boolean;
  allow: Rule[];
  maxConns: number;
  maxConnsPerUid: number;
  reservedConns?: number;
  maxFds: number;
  maxNames: number;
  maxRequestBytes: number;
  maxReplyBytes: number;
  maxQueuedFds?: number;
  clientTimeout: number;
  drainTimeout: number;
  describeTimeout: number;
  closerThreads: number;
  maxLeaseTtl?: number;
  readyFd?: number;
  takeover?: boolean;
  brokerUid?: number;
  log: "text" | "json";
}

export function command(): Command {
  return new Command("serve")
    .description("run a broker that holds named fds and hands copies to allowed clients")
    .addOption(socketOption())
    .addOption(new Option("--mode <OCTAL>", "permissions of the socket file").argParser(parseMode).default(0o600, "0600"))
    .option("--hold <NAME=SPEC>", `hold an entry from the start (${SPEC_HELP}); repeatable`, collect(parseHold))
    .option("--pool <NAME=SIZE:SPEC>", "a pool of SIZE members opened from SPEC (any --hold SPEC, or tcp-connect:HOST:PORT, unix-connect:PATH), lent one at a time by `fdbroker lease`; repeatable", collect(parsePool))
    .option("--adopt-listen-fds", "hold the fds of socket activation (LISTEN_FDS), named by LISTEN_FDNAMES")
    .option("--allow <RULE>", "grant uid:N or gid:N operations (get,put,rm,ls,lease, all for those five; pool-put and takeover only by name) on a name glob; e.g. uid:1000:get,ls:web.*; repeatable", collect(parseRule))
    .option("--max-conns <N>", "connections served at once", (s) => parseCount(s, "--max-conns"), 1000)
    .option("--max-conns-per-uid <N>", "connections one uid other than the owner and root may hold", (s) => parseCount(s, "--max-conns-per-uid"), 100)
    .option("--reserved-conns <N>", "of --max-conns, slots only the owner and root may take (default: 16, at most a quarter of --max-conns)", (s) => parseCount(s, "--reserved-conns", 0))
    .option("--max-fds <N>", "fds held at once (RLIMIT_NOFILE is raised to fit)", (s) => parseCount(s, "--max-fds"), 10000)
    .option("--max-names <N>", "names in one request", (s) => parseCount(s, "--max-names"), 1024)
    // Sizes and durations shown as a user would write them.
    .addOption(new Option("--max-request-bytes <SIZE>", "request bytes held across all clients (frames arriving or waiting)").argParser((s) => parseSize(s, "--max-request-bytes")).default(8 << 20, "8MiB"))
    .addOption(new Option("--max-reply-bytes <SIZE>", "reply bytes queued across all clients").argParser((s) => parseSize(s, "--max-reply-bytes")).default(16 << 20, "16MiB"))
    .option("--max-queued-fds <N>", "fds duplicated for replies not yet taken, across all clients (default: as --max-fds)", (s) => parseCount(s, "--max-queued-fds"))
    .addOption(new Option("--client-timeout <DURATION>", "cut off clients with no whole request in, or no whole reply taken, for this long (500ms, 30s, 5m)").argParser((s) => parseDuration(s, "--client-timeout")).default(60_000, "60s"))
    .addOption(new Option("--drain-timeout <DURATION>", "at SIGTERM, and for busy clients when a new broker takes over, wait this long for replies owed; a takeover stalled this long is abandoned").argParser((s) => parseDuration(s, "--drain-timeout")).default(2000, "2s"))
    .addOption(new Option("--describe-timeout <DURATION>", "longest wait for a put's fd to be described (fstat of a file whose FUSE or NFS server does not answer); then it is stored as not answering").argParser((s) => parseDuration(s, "--describe-timeout")).default(1000, "1s"))
    .addOption(new Option("--max-lease-ttl <DURATION>", "revoke any lease after this long, whatever --ttl its client asked for (default: none, a lease lasts as long as its lessee)").argParser((s) => parseDuration(s, "--max-lease-ttl")))
    .option("--closer-threads <N>", "most threads closing and describing client fds off the serving loop", (s) => parseCloserThreads(s), 8)
    .option("--takeover", "take the listening socket, entries and clients over from the broker running at the address; it exits once done")
    .addOption(brokerUidOption("with --takeover: also take over from a broker running as this uid"))
    .option("--ready-fd <N>", "write a newline to fd N once accepting, then close it", (s) => parseCount(s, "--ready-fd", 0))
    .addOption(new Option("--log <FORMAT>", "log line format, on stderr").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nBy default only the broker's own uid and root may do anything; a uid no --allow\nrule names is refused at accept. SIGTERM or SIGINT: stop accepting, finish\npending replies, close every held fd, remove the socket file if it is still the\none it bound.")
    .addHelpText("after", `\n${SPEC_PARAMS_HELP}`)
    .action(async (opts: ServeOpts) => {
      // Handlers go in before startBroker writes --ready-fd: a supervisor may send SIGTERM the moment it reads
      // that, and without a handler Bun would die of the signal (143) instead of shutting down cleanly. A signal
      // during start-up is handled at the first turn of the loop, by when `state` exists.
      let state: ReturnType<typeof startBroker> | null = null;
      let stopRequested = false;
      const stop = () => {
        stopRequested = true;
        if (state) state.stopping = true;
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      state = startBroker({
        socket: socketOf(opts, true), mode: opts.mode, holds: opts.hold, pools: opts.pool, adoptListenFds: opts.adoptListenFds, rules: opts.allow,
        limits: {
          maxConns: opts.maxConns, maxConnsPerUid: opts.maxConnsPerUid, reservedConns: opts.reservedConns, maxFds: opts.maxFds, maxNames: opts.maxNames,
          maxRequestBytes: opts.maxRequestBytes, maxReplyBytes: opts.maxReplyBytes, maxQueuedFds: opts.maxQueuedFds,
          clientTimeoutMs: opts.clientTimeout, drainMs: opts.drainTimeout, describeTimeoutMs: opts.describeTimeout, closerThreads: opts.closerThreads,
          maxLeaseTtlMs: opts.maxLeaseTtl,
        },
        log: opts.log, readyFd: opts.readyFd,
        takeover: opts.takeover, brokerUid: opts.brokerUid,
      });
      state.stopping ||= stopRequested;
      await runLoop(state);
      process.exit(0);
    });
}
