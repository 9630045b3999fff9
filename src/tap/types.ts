// What a tap reports: plain data, formatted by the CLI (src/cli/tap-view.ts).
import type { FdDescription } from "../describe/index.ts";
import type { SocketType } from "../sys/index.ts";

export interface TapLimits {
  /** Connections (datagram senders) relayed at once; more wait in the listen backlog (the oldest sender goes). */
  maxConns: number;
  /** Payload bytes read per message; a datagram or seqpacket message longer than this is cut (and reported). */
  bufferBytes: number;
  /** Fds accepted per message; a message with more is reported MSG_CTRUNC and passed on without them. */
  maxFds: number;
  /** Longest wait to connect to the upstream per client. */
  connectTimeoutMs: number;
  /** Payload bytes kept for the record's preview. */
  previewBytes: number;
}

export const DEFAULT_LIMITS: TapLimits = {
  maxConns: 64,
  // The kernel's default wmem_max (212992): no datagram a default-configured sender can send is longer.
  bufferBytes: 256 * 1024,
  maxFds: 253,
  connectTimeoutMs: 5000,
  previewBytes: 32,
};

/** "c>s": from the client to the upstream server; "s>c": back. */
export type Direction = "c>s" | "s>c";

/** Who is on the client side: SO_PEERCRED for a connection, the sender's address for datagrams. */
export interface Client {
  pid: number | null;
  uid: number | null;
  gid: number | null;
  command: string | null;
  /** A datagram sender's address (`@name` when autobound); null for connections, "(unnamed)" for an unbound one. */
  address: string | null;
}

export type TapRecord =
  | { event: "listening"; time: Date; listen: string; upstream: string; type: SocketType; swapped: string | null }
  | { event: "open"; time: Date; conn: number; client: Client }
  | {
    event: "message"; time: Date; conn: number; dir: Direction; bytes: number; preview: Uint8Array;
    fds: FdDescription[];
    /** MSG_CTRUNC: the sender sent more fds than --max-fds (or than tap could take); this many arrived and were closed. */
    ctrunc: { closedFds: number } | null;
    /** MSG_TRUNC: the message was longer than --buffer and was passed on cut. */
    payloadTruncated: boolean;
  }
  | { event: "close"; time: Date; conn: number; reason: string | null }
  | { event: "error"; time: Date; conn: number | null; message: string };

export interface TapSink {
  record(r: TapRecord): void;
  /** After each turn of the loop: write what was recorded. */
  flush(): void;
}
