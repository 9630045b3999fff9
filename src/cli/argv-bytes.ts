// Arguments that are not valid UTF-8 reach a Bun program already decoded, each bad byte replaced by U+FFFD: an
// entry name, a path or a child's argument would silently become another (`put $'a\x85b'` stored "a\uFFFDb",
// which `get $'a\xffb'` then matched). /proc/self/cmdline still holds the bytes as given, so they are checked
// there, and only when an argument holds U+FFFD: nothing is read otherwise.
import { UsageError } from "../errors.ts";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Refuse (UsageError) the first of `args`, the command line's last args.length arguments, that was not UTF-8. */
export function requireUtf8Args(args: readonly string[]): void {
  if (!args.some((a) => a.includes("\uFFFD"))) return;
  let cmdline: Uint8Array;
  try {
    // Required here, not imported: node:fs costs every command's start-up several ms, and this runs rarely.
    const { readFileSync } = require("node:fs") as typeof import("node:fs");
    cmdline = readFileSync("/proc/self/cmdline");
  } catch {
    return; // No /proc (not Linux, or not mounted): nothing to compare with.
  }
  const raw: Uint8Array[] = [];
  for (let start = 0, i = 0; i < cmdline.length; i++) {
    if (cmdline[i] !== 0) continue;
    raw.push(cmdline.subarray(start, i));
    start = i + 1;
  }
  const mine = raw.slice(raw.length - args.length);
  if (mine.length !== args.length) return;
  const bad = mine.find((a) => !isUtf8(a));
  if (bad) throw new UsageError(`argument "${asBytes(bad)}" is not valid UTF-8: names, paths and a command's arguments must be, or they would change on the way`);
}

/** Printable ASCII as itself, every other byte as \xNN: the bytes as given, whatever they are. */
const asBytes = (bytes: Uint8Array) => Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
