// Starting a broker: open what --hold names and adopt socket-activation fds (before listening, so a bad spec
// fails before anyone can connect), raise RLIMIT_NOFILE for the configured limits, listen, signal readiness.
import { UsageError } from "../errors.ts";
import { takeListenFds } from "../launch/listen-fds.ts";
import { parseUnixAddress } from "../peer/address.ts";
import { listen } from "../peer/endpoint.ts";
import { openSpec } from "../open/spec.ts";
import { checkName, ProtocolError } from "../proto/index.ts";
import { closeAll, getNofileLimit, setCloexec, setNofileLimit } from "../sys/index.ts";
import type { Rule } from "./access.ts";
import { newEntryInfo, storeEntry } from "./entries.ts";
import { logEvent } from "./log.ts";
import { notifySupervisor, writeReadyFd } from "./notify.ts";
import { createState, DEFAULT_LIMITS, realEnv, type BrokerEnv, type BrokerState, type Limits } from "./state.ts";

export interface StartOptions {
  socket: string;
  /** Socket file permissions (default 0o600). */
  mode?: number;
  /** Entries opened at start: name and SPEC (file:, tcp:, udp:, unix:, fd:). */
  holds?: { name: string; spec: string }[];
  /** Adopt LISTEN_FDS/LISTEN_FDNAMES fds as entries. */
  adoptListenFds?: boolean;
  rules?: Rule[];
  limits?: Partial<Limits>;
  log?: "text" | "json";
  /** Write a newline here (then close it) once accepting. */
  readyFd?: number;
  env?: BrokerEnv;
}

/** fds beyond held entries: connections and the runtime's own; below this the limits cannot be met. */
function nofileNeeded(l: Limits): number {
  return l.maxFds + l.maxConns + 128;
}

/** Room as well for duplicates queued for clients that are slow to take their replies. */
function nofileWanted(l: Limits): number {
  return l.maxFds * 2 + l.maxConns + 256;
}

function raiseNofile(need: number): { soft: number; hard: number } {
  const lim = getNofileLimit();
  const target = Math.min(lim.hard, need);
  if (lim.soft < target) setNofileLimit({ soft: target, hard: lim.hard });
  return getNofileLimit();
}

function entryName(name: string): string {
  try {
    return checkName(name);
  } catch (e) {
    throw new UsageError(`bad entry name ${JSON.stringify(name)}: ${(e as ProtocolError).message}`);
  }
}

/** Open every --hold and adopted fd; on any failure, close those already opened. */
function openInitial(opts: StartOptions): { name: string; fd: number }[] {
  const opened: { name: string; fd: number }[] = [];
  try {
    for (const h of opts.holds ?? []) opened.push({ name: entryName(h.name), fd: openSpec(h.spec) });
    if (opts.adoptListenFds) {
      const got = takeListenFds(process.env, process.pid);
      got.fds.forEach((fd, i) => {
        setCloexec(fd, true);
        let name = entryName(got.names[i]!);
        for (let n = 1; opened.some((o) => o.name === name); n++) name = `${got.names[i]}.${n}`;
        opened.push({ name, fd });
      });
    }
    const seen = new Set<string>();
    for (const o of opened) {
      if (seen.has(o.name)) throw new UsageError(`entry ${JSON.stringify(o.name)} is held twice`);
      seen.add(o.name);
    }
    return opened;
  } catch (e) {
    closeAll(opened.map((o) => o.fd));
    throw e;
  }
}

export function startBroker(opts: StartOptions): BrokerState {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const addr = parseUnixAddress(opts.socket);
  const env = opts.env ?? realEnv;
  const initial = openInitial(opts);
  let listenFd: number;
  let nofile: { soft: number; hard: number };
  try {
    nofile = raiseNofile(nofileWanted(limits));
    listenFd = listen(addr, { mode: opts.mode ?? 0o600, backlog: Math.max(128, Math.min(limits.maxConns, 4096)) });
  } catch (e) {
    closeAll(initial.map((o) => o.fd));
    throw e;
  }
  const config = { label: addr.label, path: addr.path, rules: opts.rules ?? [], ownerUid: process.getuid?.() ?? 0, log: opts.log ?? "text", limits };
  const state = createState(config, listenFd, env);
  state.nofile = nofile;
  const owner = { uid: config.ownerUid, gid: process.getgid?.() ?? 0, pid: process.pid };
  for (const o of initial) storeEntry(state, o.fd, newEntryInfo(state, o.name, o.fd, owner, null));
  if (nofile.soft < nofileNeeded(limits))
    logEvent(state, { op: "start", result: "warning", detail: `RLIMIT_NOFILE is ${nofile.soft} (hard ${nofile.hard}); --max-fds ${limits.maxFds} may not be reachable` });
  logEvent(state, { op: "start", result: "ok", detail: `listening on ${addr.label}, holding ${state.entries.size} entries, pid ${process.pid}` });
  if (opts.readyFd !== undefined) writeReadyFd(opts.readyFd);
  try {
    notifySupervisor("READY=1");
  } catch (e) {
    logEvent(state, { op: "notify", result: "error", detail: (e as Error).message });
  }
  return state;
}
