// HAProxy's `_getsocks` answer, the protocol behind `haproxy -x` (HAProxy's src/cli.c sends it, src/sock.c reads
// it). Sent `_getsocks\n` on a stats socket with `expose-fd listeners`, HAProxy answers with a native-endian int32
// count of fds, then messages of at most 253 fds (SCM_MAX_FD) whose bytes hold one record per fd, in fd order:
// u8 namespace length, namespace, u8 interface length, interface, int32 options (always 0 since HAProxy 2.3). The
// client acks each message that carried fds with 4 bytes before HAProxy sends the next. Pure functions over bytes:
// the fds themselves are the caller's (src/peer/haproxy.ts), which closes them all if anything here throws.
import { ProtocolError } from "./frame.ts";

export const GETSOCKS_REQUEST = "_getsocks\n";
/** What the ack says does not matter to HAProxy: it only waits for 4 bytes. */
export const GETSOCKS_ACK = new Uint8Array(4);
export const GETSOCKS_COUNT_BYTES = 4;
/** The longest record: two length bytes, two names of at most 255 bytes, the options. */
export const GETSOCKS_MAX_RECORD = 1 + 255 + 1 + 255 + 4;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface GetsocksRecord {
  /** The network namespace HAProxy bound it in ("" for its own). */
  namespace: string;
  /** The interface it is bound to (`interface` on the bind line; "" for none). */
  iface: string;
  options: number;
}

/** The fd count that heads the answer, or null while fewer than 4 bytes have arrived. */
export function getsocksCount(bytes: Uint8Array): number | null {
  if (bytes.length < GETSOCKS_COUNT_BYTES) return null;
  return new DataView(bytes.buffer, bytes.byteOffset, GETSOCKS_COUNT_BYTES).getInt32(0, LITTLE_ENDIAN);
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * The `count` records at the start of `bytes` and where they end, or null while they are incomplete (the bytes of a
 * batch may come in more reads than its fds). A length that runs past the end is incompleteness, not an error:
 * only the caller knows whether more can come.
 */
export function readGetsocksRecords(bytes: Uint8Array, count: number): { records: GetsocksRecord[]; end: number } | null {
  const records: GetsocksRecord[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let off = 0;
  const name = (): string | null => {
    if (off >= bytes.length || off + 1 + bytes[off]! > bytes.length) return null;
    const len = bytes[off++]!;
    off += len;
    return decoder.decode(bytes.subarray(off - len, off));
  };
  while (records.length < count) {
    const namespace = name();
    const iface = namespace === null ? null : name();
    if (iface === null || off + 4 > bytes.length) return null;
    records.push({ namespace: namespace!, iface, options: view.getInt32(off, LITTLE_ENDIAN) });
    off += 4;
  }
  return { records, end: off };
}

/** The `count` records that follow the count, exactly: a short or long answer is a ProtocolError. */
export function parseGetsocksRecords(bytes: Uint8Array, count: number): GetsocksRecord[] {
  const got = readGetsocksRecords(bytes, count);
  if (got === null) throw new ProtocolError(`_getsocks: the answer ends before its ${count} records do`);
  if (got.end !== bytes.length) throw new ProtocolError(`_getsocks: ${bytes.length - got.end} bytes after the ${count} records`);
  return got.records;
}
