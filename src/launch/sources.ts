// Where the fds a launched command gets come from, in the order it gets them: inherited LISTEN_FDS first
// (a server started under systemd keeps its sockets at 3, 4, ... unchanged), then --listen, --fd and --get
// in the order they appear on the command line (--get from the broker). Shared by `exec` and `run`.
import { get, openSession, type SessionOptions } from "../client/index.ts";
import { inheritedFds, requireInherited } from "../describe/inherited.ts";
import { UsageError } from "../errors.ts";
import { openSpec, parseSpec, type Spec } from "../open/spec.ts";
import { haproxyStatsPath, takeHaproxySockets } from "../peer/haproxy.ts";
import { closeAll, setCloexec } from "../sys/index.ts";
import type { PassedFd } from "./exec.ts";
import { adoptListenFds, checkFdName } from "./listen-fds.ts";

export type Source =
  | { kind: "listen"; name?: string; spec: Spec; text: string }
  | { kind: "fd"; name?: string; fd: number }
  | { kind: "get"; name: string }
  | { kind: "haproxy"; name?: string; path: string };

/** Split `NAME=REST`. A name holds no ':' (LISTEN_FDNAMES separates with it), so `file:/a=b` has no name. */
function splitName(text: string): [string | undefined, string] {
  const m = /^([^=:]+)=(.*)$/s.exec(text);
  return m ? [checkFdName(m[1]!), m[2]!] : [undefined, text];
}

export function parseListenSource(text: string): Source {
  const [name, rest] = splitName(text);
  const stats = haproxyStatsPath(rest);
  if (stats !== null) return { kind: "haproxy", name, path: stats };
  return { kind: "listen", name, spec: parseSpec(rest), text: rest };
}

export function parseFdSource(text: string): Source {
  const [name, rest] = splitName(text);
  if (!/^\d+$/.test(rest)) throw new UsageError(`bad --fd ${text}: expected [NAME=]N`);
  return { kind: "fd", name, fd: Number(rest) };
}

export function parseGetSource(text: string): Source {
  if (text.length === 0) throw new UsageError("--get needs an entry name");
  return { kind: "get", name: text };
}

/**
 * An option parser that appends what it parses to `list`. CLI parsers run in command-line order, so the list
 * keeps the order the user wrote --listen, --fd and --get in.
 */
export function collectInto(list: Source[]) {
  return (parse: (text: string) => Source) => (text: string) => {
    list.push(parse(text));
    return text;
  };
}

/** Refuse --fd N and --listen fd:N for an fd fdbroker did not inherit, before anything is opened. */
function checkInherited(sources: readonly Source[], inherited: ReadonlySet<number>): void {
  for (const s of sources) {
    const fd = s.kind === "fd" ? s.fd : s.kind === "listen" && s.spec.kind === "fd" ? s.spec.fd : null;
    if (fd !== null) requireInherited(fd, `fd ${fd}`, inherited);
  }
}

/** Entries by name from the broker `broker` names, in one round trip; the fds are the caller's. */
function getEntries(names: string[], broker: SessionOptions): PassedFd[] {
  const session = openSession(broker);
  try {
    return get(session, names).map((r) => ({ fd: r.fd, name: r.entry.name }));
  } finally {
    session.close();
  }
}

/**
 * Open or fetch every source, in order. Every returned fd is a CLOEXEC fd owned by the caller; if any source
 * fails, the ones already opened are closed before the error propagates. Runs of --get are fetched from the broker
 * at `broker` in one round trip each.
 */
export function openSources(sources: readonly Source[], broker: SessionOptions = {}): PassedFd[] {
  const out: PassedFd[] = [];
  try {
    for (let i = 0; i < sources.length; i++) {
      const s = sources[i]!;
      if (s.kind === "get") {
        let j = i;
        while (j < sources.length && sources[j]!.kind === "get") j++;
        const names = sources.slice(i, j).flatMap((g) => (g.kind === "get" ? [g.name] : []));
        out.push(...getEntries(names, broker));
        i = j - 1;
      } else if (s.kind === "listen") {
        out.push({ fd: openSpec(s.spec), name: s.name });
      } else if (s.kind === "haproxy") {
        out.push(...takeHaproxySockets(s.path).map((t) => ({ fd: t.fd, name: s.name ? `${s.name}/${t.name}` : t.name })));
      } else {
        out.push({ fd: openSpec({ kind: "fd", fd: s.fd }), name: s.name });
      }
    }
    return out;
  } catch (e) {
    closeAll(out.map((p) => p.fd));
    throw e;
  }
}

/**
 * Every fd `exec` or `run` hands CMD, in order: those inherited through LISTEN_FDS (unless `inherit` is false),
 * then `sources`, which are checked against what this process inherited before any is opened.
 */
export function gatherFds(sources: readonly Source[], inherit: boolean, broker: SessionOptions = {}): PassedFd[] {
  const inherited = new Set(inheritedFds());
  checkInherited(sources, inherited);
  return [...(inherit ? adoptListenFds(inherited) : []), ...openSources(sources, broker)];
}
