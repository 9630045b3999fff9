// One peer, start to end: the library side of `fdbroker recv` and `fdbroker send`. Either side may listen or
// connect; the listening side serves exactly one peer and removes its socket file as soon as the peer is in.
// Only a peer of our own uid or root counts, unless `peerUid` says otherwise (issue 8): an abstract name has no
// permissions at all, and a socket file's may be wider than meant.
import { RefusedError, UsageError } from "../errors.ts";
import { accept, C, E, close, closeAll, isOpen, SysError, isSysError, type PeerCred } from "../sys/index.ts";
import { parseUnixAddress, type UnixAddress } from "./address.ts";
import { listenUnix, socketFileOf, unlinkAddress } from "./listen.ts";
import { recvFds, sendFds } from "./transfer.ts";
import { checkPeer, type TrustedUid } from "./trust.ts";
import { connectWaiting, waitReady, type ConnectWait } from "./wait.ts";

export interface PeerOptions {
  /** Connect to the address instead of listening on it. */
  connect?: boolean;
  /** Longest single wait (for the peer, for the next message, for buffer space), ms; default: connect 5000, else none. */
  timeoutMs?: number;
  /** Called once the socket listens (or is connected): the moment a peer may start. */
  onReady?: () => void;
  /** Aborting it (SIGINT, SIGTERM) ends any wait with the signal's reason; everything held is closed. */
  signal?: AbortSignal;
  /** Permission bits of a socket file we create (default 0o600). */
  mode?: number;
  /** Deal with a peer of this uid too, or of any uid; by default only with one of our own uid or root. */
  peerUid?: TrustedUid;
  /**
   * Called with each peer's credentials (SO_PEERCRED) as it is met, and whether it is dealt with. A listener closes
   * a refused peer's connection without reading or writing and waits for the next; a connecting side throws a
   * RefusedError after this returns.
   */
  onPeer?: (peer: PeerCred, trusted: boolean) => void;
  /** Connecting: called once for each thing the connect waits for (no socket yet, nobody listening, a full queue). */
  onWait?: (what: ConnectWait, code: string) => void;
}

/** How long a connecting side waits for the address to appear and accept when no timeout is given. */
export const CONNECT_TIMEOUT_MS = 5000;

/** A connected socket to the one peer; a listening socket and its file live only until the peer is in. */
async function peerSocket(addr: UnixAddress, opts: PeerOptions): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? Infinity;
  if (opts.connect) {
    const fd = await connectWaiting(addr, opts.timeoutMs ?? CONNECT_TIMEOUT_MS, opts.signal, opts.onWait);
    try {
      checkPeer(fd, `the peer at ${addr.label}`, opts.peerUid, "--peer-uid", opts.onPeer);
      opts.onReady?.();
    } catch (e) {
      close(fd);
      throw e;
    }
    return fd;
  }
  const lfd = listenUnix(addr, { mode: opts.mode, backlog: 1 });
  const ownFile = socketFileOf(addr);
  const deadline = Date.now() + timeoutMs;
  let fd = -1;
  try {
    opts.onReady?.();
    // A refused peer is closed before anything is read or written, and the wait goes on in the same time limit.
    while (fd < 0) {
      await waitReady(lfd, C.POLLIN, timeoutMs, { syscall: "accept4", label: addr.label, detail: "no peer connected" }, opts.signal, deadline);
      const got = accept(lfd);
      if (got === null) continue;
      try {
        checkPeer(got, "", opts.peerUid, "--peer-uid", opts.onPeer);
        fd = got;
      } catch (e) {
        close(got);
        // A refused peer is not an error here: the listener waits for the right one.
        if (!(e instanceof RefusedError)) throw e;
      }
    }
  } finally {
    close(lfd);
    try {
      unlinkAddress(addr, ownFile);
    } catch (e) {
      // The peer is already in: a socket file we cannot remove must not leave its connection open.
      if (fd >= 0) close(fd);
      throw e;
    }
  }
  return fd;
}

export interface Arrival {
  data: Uint8Array;
  fds: number[];
}

export interface ReceiveOptions extends PeerOptions {
  /** Stop once this many fds have arrived; fds beyond it in the last message are closed. Default: until EOF. */
  count?: number;
  /** Most fds accepted in all (default 4096); a peer sending more is an error and everything is closed. */
  maxFds?: number;
  /** Most payload bytes accepted in all (default 1 MiB). */
  maxBytes?: number;
}

export interface Reception {
  messages: Arrival[];
  /** Every received fd, in arrival order; owned by the caller. */
  fds: number[];
  /** Fds that arrived past `count` and were closed. */
  extraClosed: number;
  /** Close every fd still in `fds`. */
  close(): void;
  [Symbol.dispose](): void;
}

/**
 * Receive from one peer every message and fd until it closes (or `count` fds arrived). On any error every fd
 * received so far is closed. On a stream socket a "message" is what one recvmsg returns: the kernel never merges
 * two fd-carrying sends, but plain bytes may join the message before them.
 */
export async function receiveFrom(text: string, opts: ReceiveOptions = {}): Promise<Reception> {
  const maxFds = opts.maxFds ?? 4096;
  const maxBytes = opts.maxBytes ?? 1 << 20;
  const count = opts.count ?? Infinity;
  const timeoutMs = opts.timeoutMs ?? Infinity;
  const sock = await peerSocket(parseUnixAddress(text), opts);
  const fds: number[] = [];
  const closeFds = () => closeAll(fds.splice(0));
  const got: Reception = { messages: [], fds, extraClosed: 0, close: closeFds, [Symbol.dispose]: closeFds };
  let bytes = 0;
  try {
    while (got.fds.length < count) {
      await waitReady(sock, C.POLLIN, timeoutMs, { syscall: "recvmsg", label: text, detail: "nothing arrived" }, opts.signal);
      // One byte past the limit is read on purpose: it tells "at the limit" from "over it".
      const msg = recvFds(sock, {
        maxFds: maxFds - got.fds.length,
        maxBytes: Math.min(65536, maxBytes - bytes + 1),
        timeoutMs: 1000,
      });
      if (msg.eof) {
        // The peer ended its side normally: nothing was reset, it sent fewer fds than asked for (exit 1, as a refusal).
        if (count !== Infinity) throw new RefusedError("ENODATA", `the peer at ${text} closed after ${got.fds.length} of the ${count} fds --count asked for`);
        break;
      }
      const keep = msg.fds.splice(0, count - got.fds.length);
      got.extraClosed += msg.fds.length;
      msg.close();
      got.fds.push(...keep);
      bytes += msg.data.length;
      got.messages.push({ data: msg.data, fds: keep });
      if (bytes > maxBytes) throw new SysError("recvmsg", E.EMSGSIZE, text, `peer sent more than the limit of ${maxBytes} payload bytes`);
    }
    return got;
  } catch (e) {
    got.close();
    if (isSysError(e, "ENOBUFS")) throw new SysError("recvmsg", E.ENOBUFS, text, `peer sent more than the limit of ${maxFds} fds (or RLIMIT_NOFILE was reached); everything received was closed`);
    throw e;
  } finally {
    close(sock);
  }
}

export interface SendToOptions extends PeerOptions {
  /** Payload; default one NUL byte. Spread over the messages when more than 253 fds go. */
  payload?: Uint8Array | string;
}

/**
 * Send `fds` (ours: they stay open, the caller closes them) to one peer, in order. The peer layer only moves fds:
 * opening what a SPEC names is the caller's (src/open/spec.ts), done before the peer is contacted so that a bad
 * spec fails without a half-done transfer.
 */
export async function sendTo(text: string, fds: readonly number[], opts: SendToOptions = {}): Promise<void> {
  const addr = parseUnixAddress(text);
  for (const fd of fds) if (!isOpen(fd)) throw new UsageError(`fd ${fd} is not open`);
  const sock = await peerSocket(addr, opts);
  try {
    sendFds(sock, fds, opts.payload, { timeoutMs: opts.timeoutMs });
  } finally {
    close(sock);
  }
}
