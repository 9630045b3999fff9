// Opening what a SPEC names: a file, a TCP or UDP listener, a UNIX listener, or an inherited fd. Shared by
// `send --open`, `serve --hold`, `exec --listen` and `run --listen`.
import { constants, openSync } from "node:fs";
import { requireInherited } from "../describe/inherited.ts";
import { UsageError } from "../errors.ts";
import { listenUnix, unlinkAddress } from "../peer/listen.ts";
import { parseUnixAddress } from "../peer/address.ts";
import { boundSocket, C, close, dupCloexec, encodeInet, isOpen, listen, setCloexec, setNonBlocking } from "../sys/index.ts";

export type Spec =
  | { kind: "file"; path: string; mode: "r" | "w" | "a" | "rw" }
  | { kind: "tcp" | "udp"; host: string; port: number }
  | { kind: "unix"; path: string; mode: number }
  | { kind: "fd"; fd: number };

export const SPEC_HELP = "file:PATH[?mode=r|w|a|rw], tcp:HOST:PORT, udp:HOST:PORT, unix:PATH[?mode=0666] or fd:N";

function hostPort(rest: string, spec: string): { host: string; port: number } {
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(rest);
  if (!m) throw new UsageError(`bad address in ${spec}: expected HOST:PORT ([::1]:PORT for IPv6)`);
  const port = Number(m[2]);
  if (port > 65535) throw new UsageError(`bad port in ${spec}: ${m[2]}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function query(rest: string): [string, URLSearchParams] {
  const q = rest.lastIndexOf("?");
  return q < 0 ? [rest, new URLSearchParams()] : [rest.slice(0, q), new URLSearchParams(rest.slice(q + 1))];
}

export function parseSpec(spec: string): Spec {
  const colon = spec.indexOf(":");
  const scheme = colon < 0 ? "" : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  switch (scheme) {
    case "file": {
      const [path, q] = query(rest);
      const mode = q.get("mode") ?? "r";
      if (!["r", "w", "a", "rw"].includes(mode)) throw new UsageError(`bad mode in ${spec}: ${mode} (r, w, a or rw)`);
      if (!path) throw new UsageError(`no path in ${spec}`);
      return { kind: "file", path, mode: mode as "r" };
    }
    case "tcp":
    case "udp":
      return { kind: scheme, ...hostPort(rest, spec) };
    case "unix": {
      const [path, q] = query(rest);
      const m = q.get("mode") ?? "0666";
      if (!/^0?[0-7]{3}$/.test(m)) throw new UsageError(`bad mode in ${spec}: ${m} (octal, like 0660)`);
      if (!path) throw new UsageError(`no path in ${spec}`);
      return { kind: "unix", path, mode: parseInt(m, 8) };
    }
    case "fd":
      if (/^\d+$/.test(rest)) return { kind: "fd", fd: Number(rest) };
      break;
  }
  throw new UsageError(`bad spec: ${spec} (expected ${SPEC_HELP})`);
}

const fileFlags = {
  r: constants.O_RDONLY,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
  rw: constants.O_RDWR | constants.O_CREAT,
};

function inetListener(kind: "tcp" | "udp", host: string, port: number, label: string): number {
  let addr: Uint8Array;
  try {
    addr = encodeInet(host, port);
  } catch (e) {
    throw new UsageError(`${label}: ${(e as Error).message}`);
  }
  const family = addr.length > 16 ? C.AF_INET6 : C.AF_INET;
  // Blocking, as systemd hands them out: the server that gets one decides for itself.
  const fd = boundSocket(family, kind === "tcp" ? "stream" : "dgram", addr, label, false);
  return kind === "tcp" ? settle(fd, () => listen(fd, 4096, label)) : fd;
}

/** Finish setting up a fresh fd; if that fails, close it (and undo what opening did) before rethrowing. */
function settle(fd: number, setup: (fd: number) => void, undo?: () => void): number {
  try {
    setup(fd);
    return fd;
  } catch (e) {
    close(fd);
    undo?.();
    throw e;
  }
}

/**
 * Open what a spec names; the fd is ours (CLOEXEC). `inherited`, when given, is what an `fd:N` must be one of:
 * the CLI passes the fds it inherited, so the runtime's own (its event loop) are never handed out.
 */
export function openSpec(spec: Spec | string, inherited?: ReadonlySet<number>): number {
  const s = typeof spec === "string" ? parseSpec(spec) : spec;
  switch (s.kind) {
    case "file":
      // node:fs opens with O_CLOEXEC under Bun; set it anyway so the rule does not depend on the runtime.
      return settle(openSync(s.path, fileFlags[s.mode], 0o666), (fd) => setCloexec(fd, true));
    case "tcp":
    case "udp":
      return inetListener(s.kind, s.host, s.port, `${s.kind}:${s.host}:${s.port}`);
    case "unix": {
      const addr = parseUnixAddress(s.path);
      // Blocking like the inet listeners: O_NONBLOCK lives on the open file description, so a server whose
      // plain accept loop gets this fd would otherwise see EAGAIN.
      return settle(listenUnix(addr, { mode: s.mode, backlog: 4096 }), (fd) => setNonBlocking(fd, false), () => unlinkAddress(addr));
    }
    case "fd":
      if (inherited) requireInherited(s.fd, `fd:${s.fd}`, inherited);
      if (!isOpen(s.fd)) throw new UsageError(`fd:${s.fd}: no such open fd`);
      return dupCloexec(s.fd);
  }
}

