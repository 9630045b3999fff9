// Human output for people (colour only on a TTY, NO_COLOR respected) and JSON for scripts.
//
// Written to fd 1 directly, and picocolors loaded only when colour is on, because nothing here may touch
// process.stdout: its first use (picocolors reads `process.stdout.isTTY` at import) sets up Bun's stream machinery
// and dups fd 1, about 9 ms of a compiled binary's 13 ms start (measured: 12.8 ms against 3.8 ms for a program
// that does not touch it). A synchronous write also cannot be cut short by process.exit().
import type { Colors } from "picocolors/types";
import { isSysError, isTerminal, writeAll } from "../sys/index.ts";
import { escapeText, jsonText } from "../text.ts";
import { chosenColorMode, type ColorMode } from "./globals.ts";

const SIGPIPE_STATUS = 128 + 13;

/**
 * --color always/never decides; with auto (the default), NO_COLOR turns colour off, FORCE_COLOR (anything but 0)
 * turns it on, and otherwise a terminal that is not "dumb" gets it. NO_COLOR wins over FORCE_COLOR, as in picocolors.
 */
function wantColour(mode: ColorMode, env: Record<string, string | undefined>): boolean {
  if (mode !== "auto") return mode === "always";
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true;
  return isTerminal(1) && env.TERM !== "dumb";
}

const colour = wantColour(chosenColorMode(), process.env);

// Every formatter of picocolors' interface as String, as its createColors(false) would give, without loading it.
const plain = new Proxy({} as Colors, { get: (_, key) => (key === "isColorSupported" ? false : String) });

export const out: Colors = colour ? (require("picocolors") as typeof import("picocolors")).createColors(true) : plain;

const encoder = new TextEncoder();

/** Write text to stdout. A reader that went away (`fdbroker ls | head -1`) ends the process as SIGPIPE would. */
export function printText(text: string): void {
  try {
    writeAll(1, encoder.encode(text));
  } catch (e) {
    if (isSysError(e, "EPIPE")) process.exit(SIGPIPE_STATUS);
    throw e;
  }
}

/** JSON for scripts: exact, with characters a terminal would act on written as \u escapes (src/text.ts). */
export function printJson(value: unknown): void {
  printText(`${jsonText(value, 2)}\n`);
}

/** A table cell with its colour: the text is escaped and measured before the colour goes on. */
export interface Styled {
  text: string;
  paint: (s: string) => string;
}

export const styled = (text: string, paint: (s: string) => string): Styled => ({ text, paint });

/**
 * Left-aligned columns, widths from the widest cell; the header is dimmed when colour is on. Every cell is
 * escaped here (escapeText), so no path, name or address can end a row or reach the terminal as a control.
 */
export function table(header: string[], rows: (string | Styled)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === "string" ? { text: escapeText(c), paint: String } : { ...c, text: escapeText(c.text) })));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.text.length ?? 0)));
  const line = (row: Styled[]) =>
    row.map((c, i) => c.paint(c.text) + (i === row.length - 1 ? "" : " ".repeat(widths[i]! - c.text.length))).join("  ").trimEnd();
  return [out.dim(line(header.map((text) => ({ text, paint: String })))), ...cells.map(line)].join("\n");
}
