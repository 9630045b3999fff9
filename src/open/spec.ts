// Opening what a SPEC names: a file, a TCP or UDP listener, a UNIX socket, a FIFO, or an inherited fd. Shared by
// `send --open`, `put --open`, `serve --hold`, `exec --listen` and `run --listen`.
import { constants, openSync } from "node:fs";
import { requireInherited } from "../describe/inherited.ts";
import { UsageError } from "../errors.ts";
import { close, dupCloexec, isOpen, setCloexec } from "../sys/index.ts";
import { connectTarget, openConnected } from "./connect.ts";
import { openInet } from "./inet.ts";
import { parseSpec, type Spec } from "./parse.ts";
import { openFifo, openUnix } from "./unix.ts";

export { HAPROXY_HELP, parseSpec, SPEC_HELP, SPEC_PARAMS_HELP, type Spec } from "./parse.ts";

/** Longest wait for a connect SPEC's server to accept. */
const CONNECT_TIMEOUT_MS = 5000;

const fileFlags = {
  r: constants.O_RDONLY,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
  rw: constants.O_RDWR | constants.O_CREAT,
};

/**
 * Open what a spec names; the fd is ours (CLOEXEC). `inherited`, when given, is what an `fd:N` must be one of:
 * the CLI passes the fds it inherited, so the runtime's own (its event loop) are never handed out.
 */
export function openSpec(spec: Spec | string, inherited?: ReadonlySet<number>): number {
  const s = typeof spec === "string" ? parseSpec(spec) : spec;
  switch (s.kind) {
    case "file": {
      // node:fs opens with O_CLOEXEC under Bun; set it anyway so the rule does not depend on the runtime.
      const fd = openSync(s.path, fileFlags[s.mode], 0o666);
      try {
        setCloexec(fd, true);
        return fd;
      } catch (e) {
        close(fd);
        throw e;
      }
    }
    case "tcp":
    case "udp":
      return openInet(s);
    case "unix":
    case "unix-dgram":
    case "unix-seqpacket":
      return openUnix(s);
    case "fifo":
      return openFifo(s);
    case "fd":
      if (inherited) requireInherited(s.fd, `fd:${s.fd}`, inherited);
      if (!isOpen(s.fd)) throw new UsageError(`fd:${s.fd}: no such open fd`);
      return dupCloexec(s.fd);
    case "tcp-connect":
    case "unix-connect":
      return openConnected(connectTarget(s)!, CONNECT_TIMEOUT_MS);
  }
}
