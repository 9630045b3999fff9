// Frame layout: pure functions over bytes. Nothing here touches a socket or an fd; fd numbers are only data.
//
//   0  u8   version      (1)
//   1  u8   kind         request op or reply kind (OP and REPLY in messages.ts)
//   2  u16  fds          how many fds travel with this frame (0..253), big-endian
//   4  u32  length       body bytes that follow the header, big-endian
//   8  u32  id           request id, echoed by every reply frame to that request
//  12  ...  body         UTF-8 JSON object
//
// The fds of a frame are sent in the same sendmsg as its first byte, so they arrive no later than the header.

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 12;
/** The kernel refuses more fds than this in one SCM_RIGHTS message (SCM_MAX_FD). */
export const MAX_FDS_PER_FRAME = 253;
/** Default ceiling on one body; every side may lower or raise it, and a frame above it is a protocol error. */
export const DEFAULT_MAX_BODY = 1 << 20;

export interface Frame {
  kind: number;
  id: number;
  /** How many fds the frame announces. */
  fds: number;
  body: Record<string, unknown>;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encode one frame; throws ProtocolError if it breaks a limit, so a bad frame never reaches the wire. */
export function encodeFrame(frame: Frame, maxBody = DEFAULT_MAX_BODY): Uint8Array {
  return keptFrame(encodeFrameShared(frame, maxBody));
}

/** Bytes of encodeFrameShared (or part of them) that the caller may keep: a copy only if they are in the shared buffer. */
export const keptFrame = (bytes: Uint8Array): Uint8Array => (bytes.buffer === shared.buffer ? bytes.slice() : bytes);

// Frames up to this size are encoded into one buffer kept for the purpose; larger ones (a long listing, a
// takeover's snapshot parts) get their own, so a rare large frame does not keep its size allocated for good.
const shared = new Uint8Array(16 * 1024);
const sharedBody = shared.subarray(HEADER_SIZE);
const sharedView = new DataView(shared.buffer);

/**
 * encodeFrame, into a buffer the next call overwrites: for a caller that sends the bytes at once and copies what
 * it keeps (a reply the socket did not take whole). Saves allocating the encoded body and the frame per request.
 */
export function encodeFrameShared(frame: Frame, maxBody = DEFAULT_MAX_BODY): Uint8Array {
  return encodeJsonFrameShared(frame.kind, frame.id, frame.fds, JSON.stringify(frame.body), maxBody);
}

/** encodeFrameShared of a body already written as JSON text (a broker's reply built from JSON it keeps). */
export function encodeJsonFrameShared(kind: number, id: number, fds: number, json: string, maxBody = DEFAULT_MAX_BODY): Uint8Array {
  // encodeInto stops short rather than overflow (n UTF-16 units take up to 3n bytes): then the frame gets its own.
  const r = json.length <= sharedBody.length ? encoder.encodeInto(json, sharedBody) : null;
  let out = shared;
  let length = r?.written ?? 0;
  if (r?.read !== json.length) {
    const body = encoder.encode(json);
    length = body.length;
    out = new Uint8Array(HEADER_SIZE + length);
    out.set(body, HEADER_SIZE);
  }
  if (length > maxBody) throw new ProtocolError(`frame body of ${length} bytes exceeds ${maxBody}`);
  checkHeaderFields(kind, fds, id);
  const v = out === shared ? sharedView : new DataView(out.buffer);
  v.setUint8(0, PROTOCOL_VERSION);
  v.setUint8(1, kind);
  v.setUint16(2, fds);
  v.setUint32(4, length);
  v.setUint32(8, id);
  return out.subarray(0, HEADER_SIZE + length);
}

function checkHeaderFields(kind: number, fds: number, id: number): void {
  if (!Number.isInteger(kind) || kind < 0 || kind > 255) throw new ProtocolError(`bad frame kind ${kind}`);
  if (!Number.isInteger(fds) || fds < 0 || fds > MAX_FDS_PER_FRAME)
    throw new ProtocolError(`a frame carries 0..${MAX_FDS_PER_FRAME} fds, not ${fds}`);
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new ProtocolError(`bad request id ${id}`);
}

interface Header {
  version: number;
  kind: number;
  fds: number;
  length: number;
  id: number;
}

/** Read a header from the HEADER_SIZE bytes of `buf` at `at` (which must hold that many). */
export function decodeHeader(buf: Uint8Array, at = 0): Header {
  if (buf.length < at + HEADER_SIZE) throw new RangeError(`a frame header needs ${HEADER_SIZE} bytes, not ${buf.length - at}`);
  // Bytes read one by one rather than through a DataView made for each: every frame of every request comes here.
  return { version: buf[at]!, kind: buf[at + 1]!, fds: be16(buf, at + 2), length: be32(buf, at + 4), id: be32(buf, at + 8) };
}

const be16 = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!;
const be32 = (b: Uint8Array, i: number) => ((be16(b, i) << 16) | be16(b, i + 2)) >>> 0;

/** Why a header cannot start a frame (the stream cannot be resynchronised after it), or null if it can. */
export function headerProblem(h: Header, maxBody: number): string | null {
  if (h.version !== PROTOCOL_VERSION) return `protocol version ${h.version} (this side speaks ${PROTOCOL_VERSION})`;
  if (h.fds > MAX_FDS_PER_FRAME) return `frame announces ${h.fds} fds (at most ${MAX_FDS_PER_FRAME})`;
  if (h.length > maxBody) return `frame body of ${h.length} bytes (at most ${maxBody})`;
  return null;
}

/** Parse a body: a JSON object, or a ProtocolError. */
export function decodeBody(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new ProtocolError("frame body is not UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ProtocolError("frame body is not a JSON object");
  return value as Record<string, unknown>;
}
