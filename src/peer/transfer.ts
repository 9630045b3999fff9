// Sending and receiving fds with the rules in one place: at least one payload byte, at most SCM_MAX_FD fds per
// message (larger sets split), partial writes finished, bounded waits, received fds owned the moment they arrive.
import { C, E, closeAll, recvmsg, sendmsg, SysError, waitFd } from "../sys/index.ts";

// Never written to: sendmsg copies the payload into its own buffer.
const ONE_NUL = new Uint8Array(1);
const encoder = new TextEncoder();

export interface SendOptions {
  /** Longest wait for the socket to take more data, in ms (default: no limit). */
  timeoutMs?: number;
  /** Fds per message, at most 253 (SCM_MAX_FD). */
  chunk?: number;
}

/** Write all of `bytes` (fds with the first byte) to a non-blocking or blocking socket. */
function sendAll(sock: number, bytes: Uint8Array, fds: readonly number[], deadline: number, timeoutMs: number): void {
  let off = 0;
  let withFds = fds;
  while (off < bytes.length) {
    const n = sendmsg(sock, off === 0 ? bytes : bytes.subarray(off), withFds, C.MSG_DONTWAIT);
    if (n >= 0) {
      off += n;
      withFds = [];
      continue;
    }
    if (waitFd(sock, C.POLLOUT, Math.max(0, deadline - Date.now())) === 0)
      throw new SysError("sendmsg", E.ETIMEDOUT, `fd ${sock}`, `peer took nothing for ${timeoutMs} ms`);
  }
}

/**
 * Send `fds` with `payload` (default one NUL byte). More than `chunk` fds go in several messages; the payload is
 * spread over them so the byte stream the peer reads is exactly `payload`, padded with one NUL byte for each
 * message the payload was too short to cover.
 */
export function sendFds(sock: number, fds: readonly number[], payload?: Uint8Array | string, opts: SendOptions = {}): void {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : (payload ?? ONE_NUL);
  const chunk = Math.min(opts.chunk ?? C.SCM_MAX_FD, C.SCM_MAX_FD);
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunk: expected a whole number of fds from 1 to ${C.SCM_MAX_FD}, got ${opts.chunk}`);
  const timeoutMs = opts.timeoutMs ?? Infinity;
  // Date.now() only when there is a limit: this runs once per message.
  const deadline = timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
  // The common case, one message, without the slicing below (it shows in the per-fd cost: bench/roundtrip.ts).
  if (fds.length <= chunk) return sendAll(sock, bytes.length > 0 ? bytes : ONE_NUL, fds, deadline, timeoutMs);
  const messages = Math.ceil(fds.length / chunk);
  for (let i = 0; i < messages; i++) {
    const part = fds.slice(i * chunk, (i + 1) * chunk);
    const last = i === messages - 1;
    const data = last ? bytes.subarray(Math.min(i, bytes.length)) : bytes.subarray(i, i + 1);
    sendAll(sock, data.length > 0 ? data : ONE_NUL, part, deadline, timeoutMs);
  }
}

export interface RecvOptions {
  /** Most fds accepted in one message (default and ceiling 253); more arriving is an error and all are closed. */
  maxFds?: number;
  /** Most payload bytes read in one call (default 65536). */
  maxBytes?: number;
  /** Longest wait for a message, in ms (default: no limit). */
  timeoutMs?: number;
}

export interface FdMessage {
  data: Uint8Array;
  fds: number[];
  /** True at end of stream: the peer closed and nothing arrived. */
  eof: boolean;
  /** Close every fd of the message that the caller has not taken out of `fds`. */
  close(): void;
  [Symbol.dispose](): void;
}

function message(data: Uint8Array, fds: number[]): FdMessage {
  const close = () => closeAll(fds.splice(0));
  return { data, fds, eof: data.length === 0 && fds.length === 0, close, [Symbol.dispose]: close };
}

/**
 * Receive one message: its payload bytes and fds (CLOEXEC, owned by the caller). On MSG_CTRUNC every fd that did
 * arrive is closed before the error is thrown, so a flood of fds leaks nothing.
 */
export function recvFds(sock: number, opts: RecvOptions = {}): FdMessage {
  const maxFds = Math.min(opts.maxFds ?? C.SCM_MAX_FD, C.SCM_MAX_FD);
  const maxBytes = opts.maxBytes ?? 65536;
  const timeoutMs = opts.timeoutMs ?? Infinity;
  const deadline = timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
  for (;;) {
    const got = recvmsg(sock, maxBytes, maxFds, C.MSG_DONTWAIT);
    if (got !== null) {
      if (got.truncated)
        throw new SysError(
          "recvmsg", E.ENOBUFS, `fd ${sock}`,
          `MSG_CTRUNC: the peer sent more fds than the ${maxFds} accepted (or RLIMIT_NOFILE was reached); ${got.closedFds} that arrived were closed`,
        );
      return message(got.data, got.fds);
    }
    if (waitFd(sock, C.POLLIN, Math.max(0, deadline - Date.now())) === 0)
      throw new SysError("recvmsg", E.ETIMEDOUT, `fd ${sock}`, `nothing arrived in ${timeoutMs} ms`);
  }
}
