// One line per operation: readable text, or one JSON object per line (--log json) for log collectors.
import { escapeText, jsonText } from "../text.ts";
import type { BrokerState, Conn } from "./state.ts";

interface LogEvent {
  op: string;
  names?: string[];
  /** "ok", or an errno name such as EACCES. */
  result: string;
  detail?: string;
  conn?: Conn;
}

const MAX_LOGGED_NAMES = 8;

export function logEvent(state: BrokerState, ev: LogEvent): void {
  const time = new Date(state.env.now()).toISOString();
  const peer = ev.conn?.peer;
  const names = ev.names ?? [];
  if (state.config.log === "json") {
    const rec: Record<string, unknown> = { time, op: ev.op, result: ev.result };
    if (names.length) rec.names = names;
    if (peer) Object.assign(rec, { uid: peer.uid, gid: peer.gid, pid: peer.pid });
    if (ev.detail) rec.detail = ev.detail;
    state.env.log(jsonText(rec));
    return;
  }
  const shown = names.length > MAX_LOGGED_NAMES ? [...names.slice(0, MAX_LOGGED_NAMES), `(+${names.length - MAX_LOGGED_NAMES})`] : names;
  const parts = [time, ev.op, ...shown.map((n) => JSON.stringify(n))];
  if (peer) parts.push(`uid=${peer.uid}`, `pid=${peer.pid}`);
  parts.push(ev.result);
  if (ev.detail) parts.push(`(${ev.detail})`);
  // Names a client sent (even refused ones) and details quoting paths: escaped, so a line stays one line.
  state.env.log(escapeText(parts.join(" ")));
}

/** "1 entry", "2 entries": counts in log lines. */
export const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
