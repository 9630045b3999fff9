// Values of `run`'s options: readiness, backoff and durations. A duration takes the units every other command's
// durations take (parseDuration: 500ms, 30s, 5m); a bare number stays milliseconds, as run's options have read
// since they were added (`--grace 30000` in scripts and units out there), where serve's bare numbers are seconds.
import { UsageError } from "../errors.ts";
import type { Readiness } from "../supervise/ready.ts";
import { parseDuration } from "./broker-common.ts";

export function parseMs(text: string, what: string): number {
  return /^\d+$/.test(text.trim()) ? Number(text) : parseDuration(text, what);
}

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
