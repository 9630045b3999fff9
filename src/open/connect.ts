// The outbound SPEC kinds: `tcp-connect:HOST:PORT` and `unix-connect:PATH`, a socket connected to a server (a
// database, a daemon) rather than one listening. A broker's pool re-opens its members from them without ever
// waiting on the loop's thread, so connecting is split: begin (non-blocking), then finish once writable.
import { UsageError } from "../errors.ts";
import type { Spec } from "./parse.ts";
import { C, close, connect, connectError, connectStart, encodeInet, encodeUnix, poll, setNonBlocking, socket, SysError } from "../sys/index.ts";

export interface ConnectSpec {
  label: string;
  domain: number;
  addr: Uint8Array;
}

/** Where a connect SPEC leads, or null for a SPEC of another kind. */
export function connectTarget(spec: Spec): ConnectSpec | null {
  if (spec.kind === "unix-connect") return { label: spec.path, domain: C.AF_UNIX, addr: encodeUnix(spec.path) };
  if (spec.kind !== "tcp-connect") return null;
  let addr: Uint8Array;
  try {
    addr = encodeInet(spec.host, spec.port);
  } catch (e) {
    throw new UsageError(`bad address in tcp-connect:${spec.host}:${spec.port}: ${(e as Error).message}`);
  }
  const label = `${spec.host.includes(":") ? `[${spec.host}]` : spec.host}:${spec.port}`;
  return { label, domain: new DataView(addr.buffer).getUint16(0, true), addr };
}

/** A connect under way: `fd` polls writable when it has ended (finishConnect says how). */
export interface Connecting {
  fd: number;
  spec: ConnectSpec;
  done: boolean;
}

/** Begin connecting; the socket is non-blocking and close-on-exec until finishConnect. */
export function beginConnect(spec: ConnectSpec): Connecting {
  const fd = socket(spec.domain, "stream", true);
  try {
    return { fd, spec, done: connectStart(fd, spec.addr, spec.label) };
  } catch (e) {
    close(fd);
    throw e;
  }
}

/**
 * Whether the connect has ended: false while under way; true when connected, the socket then blocking again (its
 * open file description is shared with whoever receives it, who expects an ordinary socket). Throws the refusal.
 */
export function finishConnect(c: Connecting): boolean {
  if (!c.done) {
    if (poll([{ fd: c.fd, events: C.POLLOUT }], 0)[0] === 0) return false;
    const err = connectError(c.fd);
    if (err !== 0) throw new SysError("connect", err, c.spec.label);
    c.done = true;
  }
  setNonBlocking(c.fd, false);
  return true;
}

/** Connect and wait up to `timeoutMs` (for `--hold`, `put --open`, `send --open`: not on a loop's thread). */
export function openConnected(spec: ConnectSpec, timeoutMs: number): number {
  const fd = socket(spec.domain, "stream", true);
  try {
    connect(fd, spec.addr, spec.label, timeoutMs);
    setNonBlocking(fd, false);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}
