// Tapping a datagram socket: one listening socket receives from every sender; each sender address gets its own
// socket connected to the upstream (bound to a kernel-chosen abstract name when the sender has a name, so the
// server's answers come back to it), and answers go back to the sender from the listening socket.
//
// Back-pressure: while a datagram waits for room at the upstream, nothing more is read from the listening socket;
// while an answer waits for room at its sender (which epoll cannot report for an unconnected socket), nothing
// more is read from that sender's upstream socket and the loop retries shortly.
import { autobindUnix, C, close, connect, decodeSockAddr, formatSockAddr, socket } from "../sys/index.ts";
import { closeAllOffThread } from "../sys/offload.ts";
import type { UnixAddress } from "../peer/address.ts";
import { unwatch, want, watch, type Loop, type Watch } from "./loop.ts";
import { closePump, flushPump, newPump, receive, take, type Pump } from "./pump.ts";
import type { TapLimits, TapSink } from "./types.ts";

const READS_PER_WAKE = 16;
/** How soon an answer held for a full sender is tried again. */
const RETRY_MS = 5;

interface Sender {
  id: number;
  key: string;
  /** The sender's address bytes, where answers go; null for an unnamed sender (who cannot be answered). */
  address: Uint8Array | null;
  fd: number;
  w: Watch;
  toServer: ReturnType<typeof newPump>;
  toClient: ReturnType<typeof newPump>;
}

export interface DgramTap {
  loop: Loop;
  listenFd: number;
  upstream: UnixAddress;
  limits: TapLimits;
  sink: TapSink;
  /** In order of last use: the first is evicted when a new sender needs its slot. */
  senders: Map<string, Sender>;
  nextId: number;
  listener: Watch | null;
  /** The sender whose datagram waits for room at the upstream; the listening socket is not read meanwhile. */
  stalled: Sender | null;
}

export function startDgramTap(t: Pick<DgramTap, "loop" | "listenFd" | "upstream" | "limits" | "sink">): DgramTap {
  const tap: DgramTap = { ...t, senders: new Map(), nextId: 1, listener: null, stalled: null };
  tap.listener = watch(tap.loop, tap.listenFd, C.EPOLLIN, () => fromClients(tap));
  return tap;
}

function fromClients(tap: DgramTap): void {
  for (let i = 0; i < READS_PER_WAKE && tap.stalled === null; i++) {
    const m = receive(tap.listenFd, tap.limits, true);
    if (m === null) return;
    let s: Sender;
    try {
      s = senderFor(tap, m.sender!);
    } catch (e) {
      closeAllOffThread(m.fds);
      tap.sink.record({ event: "error", time: new Date(), conn: null, message: `datagram not passed on: ${(e as Error).message}` });
      continue;
    }
    tap.sink.record(take(s.toServer, m, tap.limits));
    forward(tap, s);
  }
}

function forward(tap: DgramTap, s: Sender): void {
  try {
    if (flushPump(s.toServer, s.fd)) {
      if (tap.stalled === s) tap.stalled = null;
    } else tap.stalled = s;
  } catch (e) {
    dropSender(tap, s, (e as Error).message);
  }
  want(tap.loop, tap.listener!, tap.stalled === null ? C.EPOLLIN : 0);
  interest(tap, s);
}

function senderFor(tap: DgramTap, address: Uint8Array): Sender {
  const name = decodeSockAddr(address, address.length);
  const key = formatSockAddr(name);
  const known = tap.senders.get(key);
  if (known) {
    // Moved to the end: the map's order is the order of last use.
    tap.senders.delete(key);
    tap.senders.set(key, known);
    return known;
  }
  if (tap.senders.size >= tap.limits.maxConns) {
    // Never the stalled sender: this runs only while none is (fromClients).
    dropSender(tap, tap.senders.values().next().value!, `evicted: more than ${tap.limits.maxConns} senders`);
  }
  const named = name.family === "unix" && name.path !== "";
  const fd = socket(C.AF_UNIX, "dgram");
  const id = tap.nextId++;
  const s: Sender = {
    id, key, address: named ? address.slice() : null, fd, w: null as unknown as Watch,
    toServer: newPump(id, "c>s"), toClient: newPump(id, "s>c"),
  };
  try {
    if (named) autobindUnix(fd);
    connect(fd, tap.upstream.bytes, tap.upstream.label, tap.limits.connectTimeoutMs);
    s.w = watch(tap.loop, fd, C.EPOLLIN, (ev) => fromServer(tap, s, ev));
  } catch (e) {
    close(fd);
    throw e;
  }
  tap.senders.set(key, s);
  tap.sink.record({ event: "open", time: new Date(), conn: id, client: { pid: null, uid: null, gid: null, command: null, address: key } });
  return s;
}

function fromServer(tap: DgramTap, s: Sender, events: number): void {
  if (events & C.EPOLLOUT && tap.stalled === s) forward(tap, s);
  try {
    for (let i = 0; i < READS_PER_WAKE; i++) {
      if (!answer(tap, s)) break;
      const m = receive(s.fd, tap.limits);
      if (m === null) break;
      tap.sink.record(take(s.toClient, m, tap.limits));
    }
    answer(tap, s);
  } catch (e) {
    return dropSender(tap, s, (e as Error).message);
  }
  interest(tap, s);
}

/** Send the held answer to its sender: true once nothing is held. An unnamed sender's answers have nowhere to go. */
function answer(tap: DgramTap, s: Sender): boolean {
  if (s.toClient.pending === null) return true;
  if (s.address === null) {
    tap.sink.record({ event: "error", time: new Date(), conn: s.id, message: "an answer to an unnamed sender cannot be delivered (bind the sender)" });
    closePump(s.toClient);
    return true;
  }
  return flushPump(s.toClient, tap.listenFd, s.address);
}

function interest(tap: DgramTap, s: Sender): void {
  if (!tap.senders.has(s.key)) return;
  const read = s.toClient.pending === null;
  want(tap.loop, s.w, (read ? C.EPOLLIN : 0) | (tap.stalled === s ? C.EPOLLOUT : 0));
  if (!read) tap.loop.retryMs = Math.min(tap.loop.retryMs, RETRY_MS);
}

/** Each turn: answers held for full senders are tried again (nothing else would wake them). */
export function retryDgramTap(tap: DgramTap): void {
  for (const s of [...tap.senders.values()]) if (s.toClient.pending !== null) fromServer(tap, s, 0);
}

function dropSender(tap: DgramTap, s: Sender, reason: string | null): void {
  if (tap.senders.get(s.key) !== s) return;
  tap.senders.delete(s.key);
  if (tap.stalled === s) tap.stalled = null;
  unwatch(tap.loop, s.w);
  closePump(s.toServer);
  closePump(s.toClient);
  close(s.fd);
  tap.sink.record({ event: "close", time: new Date(), conn: s.id, reason });
}

export function stopDgramTap(tap: DgramTap): void {
  for (const s of [...tap.senders.values()]) dropSender(tap, s, "tap stopping");
  if (tap.listener) unwatch(tap.loop, tap.listener);
}
