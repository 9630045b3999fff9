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

// A busy broker logs many lines within one millisecond: the time is formatted once for them all.
let lastMs = NaN;
let lastTime = "";
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastTime = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastTime;
}

export function logEvent(state: BrokerState, ev: LogEvent): void {
  const time = isoTime(state.env.now());
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
  // Built by concatenation rather than an array joined: this runs for every request.
  let line = `${time} ${ev.op}`;
  const shown = Math.min(names.length, MAX_LOGGED_NAMES);
  for (let i = 0; i < shown; i++) line += ` ${JSON.stringify(names[i])}`;
  if (names.length > shown) line += ` "(+${names.length - shown})"`;
  if (peer) line += ` uid=${peer.uid} pid=${peer.pid}`;
  line += ` ${ev.result}`;
  if (ev.detail) line += ` (${ev.detail})`;
  // Names a client sent (even refused ones) and details quoting paths: escaped, so a line stays one line.
  state.env.log(escapeText(line));
}

/** "1 entry", "2 entries": counts in log lines. */
export const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
