// `fdbroker tap`: a man-in-the-middle for UNIX sockets that records every message and every fd passing through.
// It finds what kind of socket the upstream is, listens (or swaps itself in at a live server's path), relays until
// told to stop, and on every way out closes what it holds and puts a swapped socket file back.
import { existsSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { parseUnixAddress, type UnixAddress } from "../peer/address.ts";
import { bindUnix, listenUnix, socketFileOf, unlinkAddress } from "../peer/listen.ts";
import { C, close, connect, E, isSysError, listen, socket, SysError, type SocketType } from "../sys/index.ts";
import { closeLoop, openLoop, runLoop } from "./loop.ts";
import { retryDgramTap, startDgramTap, stopDgramTap } from "./dgram.ts";
import { startStreamTap, stopStreamTap } from "./stream.ts";
import { restore, setAside, takePlace } from "./swap.ts";
import type { TapLimits, TapSink } from "./types.ts";

export { DEFAULT_LIMITS, type Client, type Direction, type TapLimits, type TapRecord, type TapSink } from "./types.ts";

export interface TapOptions {
  /** Where clients connect: a path or @name. Absent with `swap`, which listens at the swapped path. */
  listen?: string;
  upstream?: string;
  swap?: string;
  /** Relay clients whose uid is not tap's own (stream and seqpacket; datagram senders are not identified). */
  anyUid?: boolean;
  /** Permission bits of tap's socket file (default 0600); --swap copies the server's file's instead. */
  mode?: number;
  limits: TapLimits;
  sink: TapSink;
  /** Set to stop: the loop ends within a wait. */
  signal: AbortSignal;
}

const BACKLOG = 128;

/**
 * The upstream's socket type, found by connecting: a UNIX connect to a socket of another type fails EPROTOTYPE.
 * The probe connects and closes at once; a server sees one empty connection (or nothing, for datagrams).
 */
export function probeType(addr: UnixAddress, timeoutMs: number): SocketType {
  for (const type of ["stream", "seqpacket", "dgram"] as const) {
    const fd = socket(C.AF_UNIX, type);
    try {
      connect(fd, addr.bytes, addr.label, timeoutMs);
      return type;
    } catch (e) {
      if (!isSysError(e, "EPROTOTYPE")) throw e;
    } finally {
      close(fd);
    }
  }
  throw new SysError("connect", E.EPROTOTYPE, addr.label, "not a stream, seqpacket or datagram socket");
}

export async function runTap(o: TapOptions): Promise<void> {
  if (o.swap !== undefined && (o.listen !== undefined || o.upstream !== undefined))
    throw new UsageError("--swap PATH listens at PATH and connects to the server moved aside: give no LISTEN or --to with it");
  if (o.swap === undefined && (o.listen === undefined || o.upstream === undefined)) throw new UsageError("give LISTEN and --to UPSTREAM, or --swap PATH");
  // No file at PATH: the server is not there to reach. Connecting says so as it does for --to (exit 3), where
  // lstat's ENOENT would read as a system error.
  if (o.swap !== undefined && !existsSync(o.swap)) probeType(parseUnixAddress(o.swap), o.limits.connectTimeoutMs);
  const swap = o.swap !== undefined ? setAside(o.swap) : null;
  try {
    const upstream = swap ? swap.upstream : parseUnixAddress(o.upstream!);
    const type = probeType(upstream, o.limits.connectTimeoutMs);
    const listenOn = (fd: number) => {
      if (type !== "dgram") listen(fd, BACKLOG, o.swap);
    };
    const listenAddr = swap ? null : parseUnixAddress(o.listen!);
    const listenFd = swap
      ? takePlace(swap, type, listenOn)
      : type === "dgram" ? bindUnix(listenAddr!, { mode: o.mode, type }) : listenUnix(listenAddr!, { mode: o.mode, type, backlog: BACKLOG });
    const ownFile = listenAddr ? socketFileOf(listenAddr) : null;
    let opened: ReturnType<typeof openLoop> | null = null;
    try {
      const loop = (opened = openLoop());
      const common = { loop, listenFd, upstream, limits: o.limits, sink: o.sink };
      const dgram = type === "dgram" ? startDgramTap(common) : null;
      const stream = type !== "dgram" ? startStreamTap({ ...common, type, anyUid: !!o.anyUid }) : null;
      o.sink.record({ event: "listening", time: new Date(), listen: swap ? swap.path : listenAddr!.label, upstream: upstream.label, type, swapped: swap?.path ?? null });
      o.sink.flush();
      o.signal.addEventListener("abort", () => (loop.stopping = true));
      if (o.signal.aborted) loop.stopping = true;
      try {
        await runLoop(loop, () => {
          if (dgram) retryDgramTap(dgram);
          o.sink.flush();
        });
      } finally {
        if (dgram) stopDgramTap(dgram);
        if (stream) stopStreamTap(stream);
        o.sink.flush();
      }
    } finally {
      // An epoll that could not be made still leaves the listening socket and its file to put away.
      if (opened) closeLoop(opened);
      close(listenFd);
      if (listenAddr) unlinkAddress(listenAddr, ownFile);
    }
  } finally {
    const problem = swap ? restore(swap) : null;
    if (problem) o.sink.record({ event: "error", time: new Date(), conn: null, message: problem });
    o.sink.flush();
  }
}
