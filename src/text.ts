// Text that came from outside (a path, a socket address, a payload, an entry name, a peer's or broker's message)
// on its way to a terminal. A file can be named `x\e]0;pwned\a\n0 file fake-row`: printed raw, that retitles the
// terminal and fakes a table row. Every human renderer passes such text through escapeText, and JSON through
// jsonText; entry names are refused outright when they hold any of these characters (proto/messages.ts).

/**
 * What is never printed raw: C0 and C1 controls and DEL (Cc), format characters such as the bidi override U+202E
 * and the zero-width space U+200B (Cf), lone surrogates (Cs: text that was not well-formed UTF-16), and the line
 * and paragraph separators U+2028/U+2029, which some terminals and viewers break lines at.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "gu");
// UNSAFE less what JSON.stringify escapes itself: the C0 controls left in its output are its own line breaks.
const JSON_RAW = /[\x7f-\x9f\p{Cf}\u2028\u2029]/u;
const JSON_RAW_ALL = new RegExp(JSON_RAW.source, "gu");

const SHORT: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r" };

/** `\n`, `\x1b`, `\u202e`, `\u{e0001}`: what a character that must not be printed raw is shown as. */
function escapeChar(c: string): string {
  const cp = c.codePointAt(0)!;
  if (SHORT[c]) return SHORT[c];
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\u{${cp.toString(16)}}`;
}

/**
 * `text` with every control, format and separator character and every lone surrogate escaped visibly, so what
 * reaches the terminal is only printable text on one line. A backslash is left as it is (paths and quoted names
 * stay readable): `--json` is the exact form.
 */
/** escapeText line by line: a multi-line message (a stack, commander's usage) keeps its line breaks. */
export const escapeLines = (text: string): string => text.split("\n").map(escapeText).join("\n");

export function escapeText(text: string): string {
  return !isPrintableAscii(text) && UNSAFE.test(text) ? text.replace(UNSAFE_ALL, escapeChar) : text;
}

/**
 * Printable ASCII holds nothing to escape. Checked first because the regular expressions above need the Unicode
 * property tables: compiling one maps about 0.75 MiB of the runtime's ICU data into the process (a broker's empty
 * RSS, docs/benchmarks.md), and the text is almost always plain (log lines, paths, names).
 */
export function isPrintableAscii(text: string, newlines = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 || c > 0x7e) && !(newlines && c === 0x0a)) return false;
  }
  return true;
}

/** The first character escapeText would escape, as `U+202E`, or null when there is none. */
export function firstUnsafe(text: string): string | null {
  const c = UNSAFE.exec(text)?.[0];
  return c === undefined ? null : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * JSON.stringify, with the characters it leaves raw (DEL, C1 controls, format characters, U+2028/U+2029) written
 * as \u escapes: the same value for any parser, and nothing a terminal acts on. It already escapes C0 controls
 * and lone surrogates, and outside strings JSON holds only ASCII, so the rewrite touches nothing but strings.
 */
export function jsonText(value: unknown, indent?: number): string {
  const text = JSON.stringify(value, null, indent);
  return !isPrintableAscii(text, true) && JSON_RAW.test(text) ? text.replace(JSON_RAW_ALL, jsonEscape) : text;
}


function jsonEscape(c: string): string {
  let out = "";
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}
