// What a SPEC names, parsed without opening anything: KIND:ADDRESS, then optional `?PARAM=VALUE&...`, the options
// systemd's .socket units offer. Each kind takes its own parameters; any other, a repeated one or a bad value is a
// usage error naming the parameter and the SPEC, before anything is opened.
import { UsageError } from "../errors.ts";
import { gidOf, uidOf } from "../sys/index.ts";

export type FileMode = "r" | "w" | "a" | "rw";
export type UnixKind = "unix" | "unix-dgram" | "unix-seqpacket";

/** Socket options set before bind; an absent one keeps the kernel's default. */
export interface InetParams {
  /** listen() backlog (tcp only; default 4096, capped by the kernel at net.core.somaxconn). */
  backlog?: number;
  /** IPV6_V6ONLY: only for an IPv6 address; unset, the kernel's net.ipv6.bindv6only decides. */
  v6only?: boolean;
  reuseport?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address no interface has (yet). */
  freebind?: boolean;
}

/** Who may use a socket file or FIFO: `mode` (default 0600); `owner` and `group` are set before anyone can connect. */
export interface PathParams {
  mode?: number;
  owner?: number;
  group?: number;
}

export type Spec =
  | { kind: "file"; path: string; mode: FileMode }
  // host "": every address, IPv6 and IPv4 on one socket where the machine has IPv6.
  | ({ kind: "tcp" | "udp"; host: string; port: number } & InetParams)
  | ({ kind: UnixKind; path: string; backlog?: number } & PathParams)
  | ({ kind: "fifo"; path: string } & PathParams)
  | { kind: "fd"; fd: number }
  // Outbound: a socket connected to a server (src/open/connect.ts), for pools of connections.
  | { kind: "tcp-connect"; host: string; port: number }
  | { kind: "unix-connect"; path: string };

type Kind = Spec["kind"];

const KINDS_HELP =
  "file:PATH, tcp:[HOST:]PORT, udp:[HOST:]PORT, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, fifo:PATH, fd:N, tcp-connect:HOST:PORT or unix-connect:PATH";
export const SPEC_HELP = `${KINDS_HELP}, with ?PARAM=VALUE&... (SPEC kinds below)`;

const pathParams = ["mode", "owner", "group"];
const PARAMS: Record<Kind, readonly string[]> = {
  file: ["mode"],
  tcp: ["backlog", "v6only", "reuseport", "freebind"],
  udp: ["v6only", "reuseport", "freebind"],
  unix: ["backlog", ...pathParams],
  "unix-seqpacket": ["backlog", ...pathParams],
  "unix-dgram": pathParams,
  fifo: pathParams,
  fd: [],
  "tcp-connect": [],
  "unix-connect": [],
};

/** One line per kind, for help text: what each takes. */
export const SPEC_PARAMS_HELP = `SPEC kinds and their ?PARAM=VALUE parameters (flags take 1 or 0; ?reuseport
alone means 1):
  file:PATH            mode=r|w|a|rw (default r)
  tcp:[HOST:]PORT      backlog=N (4096), v6only, reuseport, freebind; no HOST:
                       every address, IPv6 and IPv4
  udp:[HOST:]PORT      v6only, reuseport, freebind
  unix:PATH            backlog=N, mode=0600 (octal), owner=USER, group=GROUP
                       (names or numbers); @NAME: abstract
  unix-seqpacket:PATH  as unix:
  unix-dgram:PATH      mode, owner, group (bound, not listening)
  fifo:PATH            mode, owner, group (created if absent; opened
                       read-write and non-blocking)
  fd:N                 an fd fdbroker inherited
  tcp-connect:HOST:PORT, unix-connect:PATH
                       a socket connected to that server (HOST numeric or
                       localhost)`;

/**
 * Not a SPEC of this module (src/peer/haproxy.ts takes the listeners), but accepted where listeners are: recv's
 * ADDR, exec's and run's --listen, serve's --hold. Their help says it in these words.
 */
export const HAPROXY_HELP = `haproxy:PATH takes every listener of a running HAProxy from its stats socket
(_getsocks; the socket needs expose-fd listeners), each named by its address.`;

export function parseSpec(spec: string): Spec {
  const colon = spec.indexOf(":");
  const kind = (colon < 0 ? "" : spec.slice(0, colon)) as Kind;
  if (!Object.hasOwn(PARAMS, kind)) throw new UsageError(`bad spec: ${spec} (expected ${KINDS_HELP})`);
  // The last '?' starts the parameters: a path holding '?' is written with a trailing one (file:/a?b?).
  const rest = spec.slice(colon + 1);
  const q = rest.lastIndexOf("?");
  const address = q < 0 ? rest : rest.slice(0, q);
  const p = new Params(spec, kind, q < 0 ? "" : rest.slice(q + 1));
  switch (kind) {
    case "file": {
      const mode = p.take("mode") ?? "r";
      if (!["r", "w", "a", "rw"].includes(mode)) throw p.bad("mode", "r, w, a or rw");
      return { kind, path: nonEmpty(address, spec), mode: mode as FileMode };
    }
    case "tcp":
    case "udp":
      return { kind, ...hostPort(address, spec), ...inetParams(p, address) };
    case "unix":
    case "unix-seqpacket":
    case "unix-dgram":
    case "fifo": {
      const path = nonEmpty(address, spec);
      const backlog = p.count("backlog");
      return { kind, path, ...(backlog === undefined ? {} : { backlog }), ...pathParamsOf(p, path, kind) };
    }
    case "fd":
      if (/^\d+$/.test(address) && q < 0) return { kind, fd: Number(address) };
      throw new UsageError(`bad spec: ${spec} (expected fd:N)`);
    case "tcp-connect": {
      const hp = hostPort(address, spec);
      if (!hp.host) throw new UsageError(`bad address in ${spec}: expected tcp-connect:HOST:PORT`);
      return { kind, ...hp };
    }
    case "unix-connect":
      return { kind, path: nonEmpty(address, spec) };
  }
}

function nonEmpty(path: string, spec: string): string {
  if (!path) throw new UsageError(`no path in ${spec}`);
  return path;
}

function hostPort(address: string, spec: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]*\]|[^:]*):)?(\d+)$/.exec(address);
  if (!m) throw new UsageError(`bad address in ${spec}: expected [HOST:]PORT ([::1]:PORT for IPv6)`);
  const port = Number(m[2]);
  if (port > 65535) throw new UsageError(`bad port in ${spec}: ${m[2]}`);
  return { host: (m[1] ?? "").replace(/^\[|\]$/g, ""), port };
}

function inetParams(p: Params, address: string): InetParams {
  const out: InetParams = {};
  const backlog = p.count("backlog");
  if (backlog !== undefined) out.backlog = backlog;
  for (const name of ["v6only", "reuseport", "freebind"] as const) {
    const v = p.flag(name);
    if (v !== undefined) out[name] = v;
  }
  // Only an IPv6 socket has the option; "every address" means both families, which v6only would contradict.
  if (out.v6only !== undefined && !address.startsWith("["))
    throw new UsageError(`v6only does not apply to ${p.spec}: only an IPv6 address ([::]:PORT) has it`);
  return out;
}

function pathParamsOf(p: Params, path: string, kind: Kind): PathParams {
  const out: PathParams = {};
  const mode = p.take("mode");
  if (mode !== undefined) {
    if (!/^0?[0-7]{3}$/.test(mode)) throw p.bad("mode", "octal, like 0660");
    out.mode = parseInt(mode, 8);
  }
  const owner = p.id("owner", uidOf, "user");
  if (owner !== undefined) out.owner = owner;
  const group = p.id("group", gidOf, "group");
  if (group !== undefined) out.group = group;
  if (kind !== "fifo" && path.startsWith("@") && Object.keys(out).length > 0)
    throw new UsageError(`${Object.keys(out)[0]} does not apply to ${p.spec}: an abstract address has no file to own or protect`);
  return out;
}

/** The parameters of one SPEC; each is taken at most once, and only those its kind accepts exist at all. */
class Params {
  private readonly values = new Map<string, string>();
  constructor(readonly spec: string, kind: Kind, text: string) {
    const accepted = PARAMS[kind];
    for (const [name, value] of new URLSearchParams(text)) {
      if (!accepted.includes(name)) {
        const takes = accepted.length ? `${kind} takes ${accepted.join(", ")}` : `${kind} takes none`;
        throw new UsageError(`unknown parameter ${JSON.stringify(name)} in ${spec} (${takes})`);
      }
      if (this.values.has(name)) throw new UsageError(`${name} given twice in ${spec}`);
      this.values.set(name, value);
    }
  }

  take(name: string): string | undefined {
    return this.values.get(name);
  }

  bad(name: string, expected: string): UsageError {
    return new UsageError(`bad ${name} in ${this.spec}: ${JSON.stringify(this.values.get(name))} (${expected})`);
  }

  count(name: string): number | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (!/^\d{1,10}$/.test(v) || Number(v) > 2 ** 31 - 1) throw this.bad(name, "a whole number up to 2147483647");
    return Number(v);
  }

  flag(name: string): boolean | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (["", "1", "true", "yes"].includes(v)) return true;
    if (["0", "false", "no"].includes(v)) return false;
    throw this.bad(name, "1 or 0");
  }

  /** A uid or gid: a number, or a name looked up as chown(1) does. */
  id(name: string, lookup: (n: string) => number | null, what: string): number | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    // (uid_t)-1 means "leave unchanged" to chown(2), so it is no id.
    if (/^\d{1,10}$/.test(v) && Number(v) < 2 ** 32 - 1) return Number(v);
    const id = v === "" || v.includes("\0") ? null : lookup(v);
    if (id === null) throw this.bad(name, `no ${what} of that name`);
    return id;
  }
}
