// `serve`'s options as one table, free of commander: serve.ts builds its command from it (help, errors) and
// serve-fast.ts parses plain arguments with it. A broker started by a supervisor takes the second path: commander's
// matching of 23 options costs the start-up about 2 MiB of RSS (docs/benchmarks.md).
import { parseRule, type Rule } from "../broker/index.ts";
import { UsageError } from "../errors.ts";
import { parseSpec, SPEC_HELP } from "../open/spec.ts";
import { requireName } from "../proto/index.ts";
import { brokerUidRow, collect, parseCount, parseDuration, parseMode, parseSize, SOCKET_OPTION, type OptionRow } from "./broker-common.ts";

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

/** Each thread is a Worker with its own heap (about 2 MB): a few are plenty, since normal closes take microseconds. */
function parseCloserThreads(text: string): number {
  const n = parseCount(text, "--closer-threads");
  if (n > 256) throw new UsageError(`bad --closer-threads ${text}: at most 256`);
  return n;
}

export interface ServeOpts {
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

/** In help's order; each row's value lands in ServeOpts under the camel-cased long name, as commander puts it. */
export const SERVE_OPTIONS: readonly OptionRow[] = [
  SOCKET_OPTION,
  { flags: "--mode <OCTAL>", help: "permissions of the socket file", parse: parseMode, default: 0o600, defaultHelp: "0600" },
  { flags: "--hold <NAME=SPEC>", help: `hold an entry from the start (${SPEC_HELP}); repeatable`, parse: collect(parseHold) },
  { flags: "--pool <NAME=SIZE:SPEC>", help: "a pool of SIZE members opened from SPEC (any --hold SPEC, or tcp-connect:HOST:PORT, unix-connect:PATH), lent one at a time by `fdbroker lease`; repeatable", parse: collect(parsePool) },
  { flags: "--adopt-listen-fds", help: "hold the fds of socket activation (LISTEN_FDS), named by LISTEN_FDNAMES" },
  { flags: "--allow <RULE>", help: "grant uid:N or gid:N operations (get,put,rm,ls,lease, all for those five; pool-put and takeover only by name) on a name glob; e.g. uid:1000:get,ls:web.*; repeatable", parse: collect(parseRule) },
  { flags: "--max-conns <N>", help: "connections served at once", parse: (s) => parseCount(s, "--max-conns"), default: 1000 },
  { flags: "--max-conns-per-uid <N>", help: "connections one uid other than the owner and root may hold", parse: (s) => parseCount(s, "--max-conns-per-uid"), default: 100 },
  { flags: "--reserved-conns <N>", help: "of --max-conns, slots only the owner and root may take (default: 16, at most a quarter of --max-conns)", parse: (s) => parseCount(s, "--reserved-conns", 0) },
  { flags: "--max-fds <N>", help: "fds held at once (RLIMIT_NOFILE is raised to fit)", parse: (s) => parseCount(s, "--max-fds"), default: 10000 },
  { flags: "--max-names <N>", help: "names in one request", parse: (s) => parseCount(s, "--max-names"), default: 1024 },
  // Sizes and durations shown as a user would write them.
  { flags: "--max-request-bytes <SIZE>", help: "request bytes held across all clients (frames arriving or waiting)", parse: (s) => parseSize(s, "--max-request-bytes"), default: 8 << 20, defaultHelp: "8MiB" },
  { flags: "--max-reply-bytes <SIZE>", help: "reply bytes queued across all clients", parse: (s) => parseSize(s, "--max-reply-bytes"), default: 16 << 20, defaultHelp: "16MiB" },
  { flags: "--max-queued-fds <N>", help: "fds duplicated for replies not yet taken, across all clients (default: as --max-fds)", parse: (s) => parseCount(s, "--max-queued-fds") },
  { flags: "--client-timeout <DURATION>", help: "cut off clients with no whole request in, or no whole reply taken, for this long (500ms, 30s, 5m)", parse: (s) => parseDuration(s, "--client-timeout"), default: 60_000, defaultHelp: "60s" },
  { flags: "--drain-timeout <DURATION>", help: "at SIGTERM, and for busy clients when a new broker takes over, wait this long for replies owed; a takeover stalled this long is abandoned", parse: (s) => parseDuration(s, "--drain-timeout"), default: 2000, defaultHelp: "2s" },
  { flags: "--describe-timeout <DURATION>", help: "longest wait for a put's fd to be described (fstat of a file whose FUSE or NFS server does not answer); then it is stored as not answering", parse: (s) => parseDuration(s, "--describe-timeout"), default: 1000, defaultHelp: "1s" },
  { flags: "--max-lease-ttl <DURATION>", help: "revoke any lease after this long, whatever --ttl its client asked for (default: none, a lease lasts as long as its lessee)", parse: (s) => parseDuration(s, "--max-lease-ttl") },
  { flags: "--closer-threads <N>", help: "most threads closing and describing client fds off the serving loop", parse: (s) => parseCloserThreads(s), default: 8 },
  { flags: "--takeover", help: "take the listening socket, entries and clients over from the broker running at the address; it exits once done" },
  brokerUidRow("with --takeover: also take over from a broker running as this uid"),
  { flags: "--ready-fd <N>", help: "write a newline to fd N once accepting, then close it", parse: (s) => parseCount(s, "--ready-fd", 0) },
  { flags: "--log <FORMAT>", help: "log line format, on stderr", choices: ["text", "json"], default: "text" },
];
