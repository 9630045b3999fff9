// Values of `run`'s options: readiness, backoff and durations, in the syntax every time option takes
// (parseDuration: 500ms, 30s, 5m, a bare number of ms). Zero is a duration only for --settle (no settling): a
// --ready-timeout or --grace of 0 would fail every reload or kill at once.
import { UsageError } from "../errors.ts";
import type { Readiness } from "../supervise/ready.ts";
import { parseDuration } from "./broker-common.ts";

export const parseMs = (text: string, what: string): number => parseDuration(text, what, { allowZero: what === "--settle" });

export function parseReady(v: string): Readiness {
  if (v === "notify" || v === "accept") return { kind: v };
  if (v.startsWith("delay:")) return { kind: "delay", ms: parseMs(v.slice(6), "--ready delay") };
  if (v.startsWith("exec:") && v.slice(5).trim()) return { kind: "exec", command: v.slice(5) };
  throw new UsageError(`bad --ready ${v}: notify, accept, delay:DURATION or exec:COMMAND`);
}

export function parseBackoff(v: string): { minMs: number; maxMs: number } {
  const [min, max, ...rest] = v.split(":");
  const minMs = parseMs(min!, "--backoff MIN");
  if (rest.length > 0 || minMs < 1) throw new UsageError(`bad --backoff ${v}: MIN[:MAX] (500ms, 2s; a bare number is ms), MIN at least 1 ms`);
  return { minMs, maxMs: Math.max(minMs, max === undefined ? minMs * 100 : parseMs(max, "--backoff MAX")) };
}
