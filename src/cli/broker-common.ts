// What every broker command shares: the -s/--socket option with its default chain, --broker-uid, number and
// duration parsing, repeatable options.
import type { Option } from "commander";
import { defaultSocket } from "../client/address.ts";
import { UsageError } from "../errors.ts";
import { parseTrustedUid } from "../peer/trust.ts";

const SOCKET_DEFAULT_HELP =
  "$FDBROKER_SOCKET; for root /run/fdbroker.sock ($RUNTIME_DIRECTORY/fdbroker.sock under systemd); for others $XDG_RUNTIME_DIR/fdbroker.sock, else /tmp/fdbroker-UID/fdbroker.sock in a 0700 directory";

/**
 * An option as data, in commander's terms: commander reads it for help and errors, and `serve` parses the plain
 * forms of its arguments from the same rows without loading commander (serve-fast.ts).
 */
export interface OptionRow {
  /** `-s, --socket <ADDR>`, `--takeover`: a `<VALUE>` makes it take one. */
  flags: string;
  help: string;
  /** Each value given, with the option's value so far (its default, or what earlier occurrences made). */
  parse?: (value: string, previous: any) => unknown;
  default?: unknown;
  /** The default as help shows it, when not the value itself. */
  defaultHelp?: string;
  choices?: readonly string[];
}

/** commander's Option for a row. Required when called, not imported: the rows are used without commander too. */
export function optionOf(row: OptionRow): Option {
  const { Option } = require("commander") as typeof import("commander");
  const o = new Option(row.flags, row.help);
  if (row.parse) o.argParser(row.parse);
  if (row.default !== undefined) o.default(row.default, row.defaultHelp);
  if (row.choices) o.choices(row.choices);
  return o;
}

export const SOCKET_OPTION: OptionRow = { flags: "-s, --socket <ADDR>", help: `broker socket: a path or @abstract (default ${SOCKET_DEFAULT_HELP})` };
export const socketOption = () => optionOf(SOCKET_OPTION);

/** The address given, else the default; `create` (serve) makes the default's private directory if it is missing. */
export const socketOf = (opts: { socket?: string }, create = false) => opts.socket ?? defaultSocket(process.env, undefined, { create });

export const brokerUidRow = (help = "also deal with a broker running as this uid"): OptionRow => ({
  flags: "--broker-uid <UID>",
  help: `${help} (default: only your own uid or root; or $FDBROKER_BROKER_UID)`,
  parse: (s) => parseTrustedUid(s, "--broker-uid") as number,
});
export const brokerUidOption = (help?: string) => optionOf(brokerUidRow(help));

/** An option parser for a repeatable option: each value parsed and appended, in command-line order. */
export const collect = <T>(parse: (s: string) => T) => (text: string, prev: T[] = []) => [...prev, parse(text)];

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Every time option's syntax: `500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of milliseconds (as s6's -t and
 * -T, and so that `--ttl 1500` and `--grace 1500` mean the same); returns ms.
 */
export function parseDuration(text: string, what = "duration", { allowZero = false } = {}): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * units[m[2] ?? "ms"]! : NaN;
  if (!Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero)) throw new UsageError(`bad ${what} ${JSON.stringify(text)}: expected e.g. 500ms, 30s, 5m, 2h (a bare number is ms)`);
  return ms;
}

const sizeUnits: Record<string, number> = { "": 1, K: 1024, KiB: 1024, M: 1 << 20, MiB: 1 << 20, G: 1 << 30, GiB: 1 << 30 };

/** `512KiB`, `8MiB`, `1GiB` (K, M, G too), or a bare number of bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)(K|KiB|M|MiB|G|GiB)?$/.exec(text.trim());
  const bytes = m ? Number(m[1]) * sizeUnits[m[2] ?? ""]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`bad ${what} ${JSON.stringify(text)}: expected e.g. 512KiB, 8MiB, 1GiB`);
  return bytes;
}

/** Every integer option (and inspect's fd numbers): a decimal integer of at least `min`, or one usage error naming both. */
export function parseCount(text: string, what: string, min = 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`bad ${what} ${JSON.stringify(text)}: expected an integer >= ${min}`);
  return Number(text);
}

/** `1h 2m`, `45s`, `800ms`: a short human age or remaining time. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ""}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)}m` : ""}`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** A socket file's permission bits, octal (serve --mode, tap --mode). */
export function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new UsageError(`bad --mode ${text}: octal, like 0600 or 0666`);
  return parseInt(text, 8);
}
