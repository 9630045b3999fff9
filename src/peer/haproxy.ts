// Taking every listener of a running HAProxy through its stats socket (`stats socket PATH level admin expose-fd
// listeners`), as a new HAProxy does with `-x PATH`. The SPEC kind `haproxy:PATH` of `serve --hold`, `exec` and
// `run --listen`, and `recv haproxy:PATH`, all come here. Synchronous with bounded waits, so it fits wherever a
// SPEC is opened. Every fd received is ours (CLOEXEC) from the moment it arrives; on any error all are closed.
import { RefusedError } from "../errors.ts";
import { ProtocolError } from "../proto/frame.ts";
import {
  GETSOCKS_ACK, GETSOCKS_COUNT_BYTES, GETSOCKS_MAX_RECORD, GETSOCKS_REQUEST, getsocksCount, parseGetsocksRecords, readGetsocksRecords,
} from "../proto/getsocks.ts";
import { C, close, closeAll, connect, formatSockAddr, isSysError, sockName, socket, socketInfo } from "../sys/index.ts";
import { parseUnixAddress } from "./address.ts";
import { recvFds, sendFds, type FdMessage } from "./transfer.ts";
import { checkPeer, type TrustedUid } from "./trust.ts";

export const HAPROXY_PREFIX = "haproxy:";

/** The stats socket a `haproxy:PATH` SPEC names, or null for any other SPEC. */
export function haproxyStatsPath(spec: string): string | null {
  return spec.startsWith(HAPROXY_PREFIX) ? spec.slice(HAPROXY_PREFIX.length) : null;
}

export interface TakenSocket {
  fd: number;
  /** From the listener's own address (getsockname), fit for LISTEN_FDNAMES: `tcp-127.0.0.1-8080`. */
  name: string;
  /** As `inspect` shows it: `127.0.0.1:8080`, `[::]:443`, `/run/haproxy/admin.sock`. */
  address: string;
  namespace: string;
  iface: string;
}

export interface TakeOptions {
  /** Longest single wait (connect, each message), ms; default 5000. */
  timeoutMs?: number;
  /** Most fds accepted (default 4096); HAProxy announcing more is an error before any arrives. */
  maxFds?: number;
  /** Take sockets from an HAProxy of this uid too; by default only one of our own uid or root. */
  peerUid?: TrustedUid;
}

/**
 * HAProxy binds a UNIX listener to PATH.PID.tmp and renames it to PATH, so getsockname still says PATH.PID.tmp
 * (HAProxy's own -x client discounts the suffix the same way when it matches sockets to bind lines).
 */
const unixPath = (address: string) => address.replace(/\.\d+\.tmp$/, "");

/** `tcp-127.0.0.1-8080`, `udp-[--]-443`, `unix-/run/web.sock`: no ':' (LISTEN_FDNAMES splits on it), printable. */
function nameOf(fd: number, address: string): string {
  const { domain, type } = socketInfo(fd);
  const inet = domain === C.AF_INET || domain === C.AF_INET6;
  const kind = type === C.SOCK_STREAM ? (inet ? "tcp" : "unix") : type === C.SOCK_DGRAM ? (inet ? "udp" : "unix-dgram") : `type${type}`;
  return `${kind}-${address}`.replace(/:/g, "-").replace(/[^\x21-\x7e]/g, "_").slice(0, 240);
}

/** Names made unique in order: a second listener on the same address (HAProxy's `shards`) becomes NAME.2. */
function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n}.${k}`;
  });
}

/**
 * HAProxy waits for 4 bytes after each full batch of fds before it sends the next. Newer versions wait after the
 * last batch too (for at most a second); 2.6 has hung up by then (EPIPE), which is fine once every fd is in.
 */
function ack(sock: number, timeoutMs: number, got: number, count: number | null, label: string): void {
  try {
    sendFds(sock, [], GETSOCKS_ACK, { timeoutMs });
  } catch (e) {
    if (!isSysError(e, "EPIPE") && !isSysError(e, "ECONNRESET")) throw e;
    if (got !== count) throw new ProtocolError(`_getsocks: HAProxy at ${label} hung up after ${got} of ${count ?? "?"} fds`);
  }
}

/** The next message, or null once HAProxy has hung up (ECONNRESET: it closed with our ack unread). */
function nextMessage(sock: number, timeoutMs: number): FdMessage | null {
  try {
    const msg = recvFds(sock, { timeoutMs });
    return msg.eof ? null : msg;
  } catch (e) {
    if (isSysError(e, "ECONNRESET")) return null;
    throw e;
  }
}

/** Read the whole answer: the count, every fd, every record byte. Each message that brought fds is acked. */
function receiveAnswer(sock: number, label: string, timeoutMs: number, maxFds: number, fds: number[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let count: number | null = null;
  const complete = () =>
    count !== null && fds.length === count && readGetsocksRecords(Buffer.concat(chunks).subarray(GETSOCKS_COUNT_BYTES), count) !== null;
  while (!complete()) {
    const msg = nextMessage(sock, timeoutMs);
    const batch = msg?.fds.splice(0) ?? [];
    fds.push(...batch);
    if (msg === null) {
      const said = new TextDecoder().decode(Buffer.concat(chunks)).trim().split("\n")[0];
      if (fds.length === 0)
        throw new RefusedError("EACCES", `HAProxy at ${label} sent no sockets${said ? ` (it said ${JSON.stringify(said.slice(0, 120))})` : ""}: its stats socket needs "level admin expose-fd listeners", and HAProxy at least one listener`);
      throw new ProtocolError(`_getsocks: HAProxy at ${label} hung up after ${fds.length} of ${count ?? "?"} fds`);
    }
    chunks.push(msg.data);
    bytes += msg.data.length;
    count ??= getsocksCount(Buffer.concat(chunks));
    if (batch.length > 0) ack(sock, timeoutMs, fds.length, count, label);
    if (count === null) continue;
    if (count < 1 || count > maxFds) throw new ProtocolError(`_getsocks: HAProxy at ${label} announced ${count} fds (at most ${maxFds} accepted)`);
    if (fds.length > count) throw new ProtocolError(`_getsocks: HAProxy at ${label} sent ${fds.length} fds, announced ${count}`);
    if (bytes > GETSOCKS_COUNT_BYTES + count * GETSOCKS_MAX_RECORD)
      throw new ProtocolError(`_getsocks: HAProxy at ${label} sent more bytes than ${count} records can hold`);
  }
  return Buffer.concat(chunks);
}

/**
 * Every listener a running HAProxy holds, taken over its stats socket at `path`. HAProxy keeps its own copies and
 * goes on serving: these are duplicates of the same listening sockets (as `haproxy -x` gets them).
 */
export function takeHaproxySockets(path: string, opts: TakeOptions = {}): TakenSocket[] {
  const addr = parseUnixAddress(path);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const fds: number[] = [];
  const sock = socket(C.AF_UNIX, "stream", true);
  try {
    connect(sock, addr.bytes, addr.label, timeoutMs);
    checkPeer(sock, `HAProxy at ${addr.label}`, opts.peerUid, "--peer-uid");
    sendFds(sock, [], GETSOCKS_REQUEST, { timeoutMs });
    const answer = receiveAnswer(sock, addr.label, timeoutMs, opts.maxFds ?? 4096, fds);
    const records = parseGetsocksRecords(answer.subarray(GETSOCKS_COUNT_BYTES), fds.length);
    const addresses = fds.map((fd) => {
      try {
        const a = sockName(fd);
        return a.family === "unix" ? unixPath(a.path) : formatSockAddr(a);
      } catch {
        throw new ProtocolError(`_getsocks: HAProxy at ${addr.label} sent fd ${fd}, which is not a socket`);
      }
    });
    const names = uniqueNames(fds.map((fd, i) => nameOf(fd, addresses[i]!)));
    return fds.map((fd, i) => ({ fd, name: names[i]!, address: addresses[i]!, namespace: records[i]!.namespace, iface: records[i]!.iface }));
  } catch (e) {
    closeAll(fds);
    throw e;
  } finally {
    close(sock);
  }
}
