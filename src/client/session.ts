// A connection to a broker and the request/reply exchange every operation uses. Many requests may share one
// session. Received fds are owned by the caller once returned; on any failure mid-reply they are closed here.
import { RefusedError } from "../errors.ts";
import { connectTo } from "../peer/endpoint.ts";
import { sendFds } from "../peer/transfer.ts";
import { checkPeer, parseTrustedUid } from "../peer/trust.ts";
import { createReader, drainReader, encodeFrameShared, feed, REPLY, type Reader, type ReceivedFrame } from "../proto/index.ts";
import { C, close, closeAll, E, recvmsg, SysError, waitFd, type PeerCred } from "../sys/index.ts";
import { defaultSocket } from "./address.ts";

export interface Session {
  fd: number;
  label: string;
  /** Who the broker is (SO_PEERCRED at connect): status shows it; the uid was checked before anything was sent. */
  broker: PeerCred;
  timeoutMs: number;
  reader: Reader;
  queued: ReceivedFrame[];
  nextId: number;
  close(): void;
  [Symbol.dispose](): void;
}

export interface SessionOptions {
  /** Broker address (default: defaultSocket(), see src/client/address.ts). */
  socket?: string;
  /** Longest wait to connect and for each reply, in ms (default 10000). */
  timeoutMs?: number;
  /**
   * A broker running as this uid is dealt with too; by default (and from $FDBROKER_BROKER_UID) only one running as
   * our own uid or root is. Anyone else is refused before anything is sent.
   */
  brokerUid?: number;
}

export function openSession(opts: SessionOptions = {}): Session {
  const label = opts.socket ?? defaultSocket();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const env = process.env.FDBROKER_BROKER_UID;
  const brokerUid = opts.brokerUid ?? (env ? parseTrustedUid(env, "FDBROKER_BROKER_UID") : undefined);
  const fd = connectTo(label, timeoutMs);
  let broker: PeerCred;
  try {
    // Whoever listens at the address first answers it (a squatter, a fake broker): ask the kernel who that is.
    broker = checkPeer(fd, `the broker at ${label}`, brokerUid, "--broker-uid");
  } catch (e) {
    close(fd);
    throw e;
  }
  const reader = createReader();
  const s: Session = {
    fd, label, broker, timeoutMs, reader, queued: [], nextId: 1,
    close: () => {
      if (s.fd < 0) return;
      for (const f of s.queued.splice(0)) closeAll(f.fds);
      closeAll(drainReader(reader));
      close(s.fd);
      s.fd = -1;
    },
    [Symbol.dispose]: () => s.close(),
  };
  return s;
}

function nextFrame(s: Session, deadline: number): ReceivedFrame {
  for (;;) {
    const queued = s.queued.shift();
    if (queued) return queued;
    // Wait first: a reply is rarely in by the time its request is sent, and a recvmsg would only say EAGAIN.
    if (waitFd(s.fd, C.POLLIN, Math.max(0, deadline - Date.now())) === 0)
      throw new SysError("recvmsg", E.ETIMEDOUT, s.label, `the broker did not answer in ${s.timeoutMs} ms`);
    // A view of the syscall layer's buffer, not a copy: the reader parses it or copies what it keeps at once.
    const got = recvmsg(s.fd, 64 * 1024, C.SCM_MAX_FD, C.MSG_DONTWAIT, false);
    if (got === null) continue;
    if (got.data.length === 0 && got.fds.length === 0) throw new SysError("recvmsg", E.ECONNRESET, s.label, "the broker closed the connection");
    const fed = feed(s.reader, got.data, got.fds);
    closeAll(fed.discard);
    s.queued.push(...fed.frames);
    if (fed.error) throw new RefusedError("EPROTO", `bad reply from the broker: ${fed.error}`);
    if (got.truncated) throw new RefusedError("ENOBUFS", "the kernel dropped fds the broker sent (RLIMIT_NOFILE reached?)");
  }
}

export interface Reply {
  body: Record<string, unknown>;
  /** Every fd of the reply, across all its parts, in order. */
  fds: number[];
  /** Body and fd count of each further part, for replies whose parts carry data of their own (takeover). */
  more: { body: Record<string, unknown>; fds: number }[];
}

/** Send a request that gets no reply (a quiet release): the next call's reply is the next frame. */
export function notify(s: Session, kind: number, body: Record<string, unknown>): void {
  const id = s.nextId++;
  try {
    sendFds(s.fd, [], encodeFrameShared({ kind, id, fds: 0, body }), { timeoutMs: s.timeoutMs });
  } catch (e) {
    throw reasonForHangUp(s, e);
  }
}

/**
 * Send one request and wait for its whole reply. A reply announcing `parts` > 1 is followed by that many
 * `more` frames, each with its own fds. A broker error becomes a RefusedError with its errno name.
 */
export function call(s: Session, kind: number, body: Record<string, unknown>, fds: readonly number[] = []): Reply {
  const id = s.nextId++;
  try {
    // sendFds is done with the bytes before anything else can encode a frame.
    sendFds(s.fd, fds, encodeFrameShared({ kind, id, fds: fds.length, body }), { timeoutMs: s.timeoutMs });
  } catch (e) {
    throw reasonForHangUp(s, e);
  }
  const deadline = Date.now() + s.timeoutMs;
  const collected: number[] = [];
  try {
    const first = expectFrame(s, id, deadline);
    collected.push(...first.fds.splice(0));
    const parts = typeof first.body.parts === "number" ? first.body.parts : 1;
    const more: Reply["more"] = [];
    for (let i = 1; i < parts; i++) {
      const f = expectFrame(s, id, deadline, REPLY.more);
      more.push({ body: f.body, fds: f.fds.length });
      collected.push(...f.fds.splice(0));
    }
    return { body: first.body, fds: collected, more };
  } catch (e) {
    closeAll(collected);
    throw e;
  }
}

/**
 * The broker may have refused us (too many connections, out of fds) and hung up before our request went out:
 * its error frame is then waiting to be read, and says more than EPIPE.
 */
function reasonForHangUp(s: Session, sendError: unknown): unknown {
  if (!(sendError instanceof SysError) || !["EPIPE", "ECONNRESET"].includes(sendError.code)) return sendError;
  try {
    const f = nextFrame(s, Date.now() + 1000);
    closeAll(f.fds);
    if (f.kind === REPLY.error && typeof f.body.code === "string") return new RefusedError(f.body.code, `${String(f.body.message)} [${f.body.code}]`);
  } catch {}
  return sendError;
}

function expectFrame(s: Session, id: number, deadline: number, kind: number = REPLY.ok): ReceivedFrame {
  const f = nextFrame(s, deadline);
  if (f.kind === REPLY.error) {
    closeAll(f.fds);
    const code = typeof f.body.code === "string" ? f.body.code : "EIO";
    throw new RefusedError(code, `${String(f.body.message ?? code)} [${code}]`);
  }
  if (f.problem || f.kind !== kind || (f.id !== id && f.id !== 0)) {
    closeAll(f.fds);
    throw new RefusedError("EPROTO", `unexpected reply from the broker (kind ${f.kind}, id ${f.id}${f.problem ? `: ${f.problem}` : ""})`);
  }
  return f;
}
