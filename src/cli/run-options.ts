// Values of `run`'s compound options, readiness and backoff, with durations in the syntax every time option takes
// (parseDuration: 500ms, 30s, 5m, a bare number of ms).
import { UsageError } from "../errors.ts";
import type { Readiness } from "../supervise/ready.ts";
import { parseDuration } from "./broker-common.ts";

export function parseReady(v: string): Readiness {
  if (v === "notify" || v === "accept") return { kind: v };
  if (v.startsWith("delay:")) return { kind: "delay", ms: parseDuration(v.slice(6), "--ready delay") };
  if (v.startsWith("exec:") && v.slice(5).trim()) return { kind: "exec", command: v.slice(5) };
  throw new UsageError(`bad --ready ${v}: notify, accept, delay:DURATION or exec:COMMAND`);
}

export function parseBackoff(v: string): { minMs: number; maxMs: number } {
  const [min, max, ...rest] = v.split(":");
  const minMs = parseDuration(min!, "--backoff MIN");
  if (rest.length > 0 || minMs < 1) throw new UsageError(`bad --backoff ${v}: MIN[:MAX] (500ms, 2s; a bare number is ms), MIN at least 1 ms`);
  return { minMs, maxMs: Math.max(minMs, max === undefined ? minMs * 100 : parseDuration(max, "--backoff MAX")) };
}
