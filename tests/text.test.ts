// escapeText and jsonText: what reaches a terminal from outside, and entry names that must print as themselves.
import { expect, test } from "bun:test";
import { checkName, ProtocolError, requireName } from "../src/proto/index.ts";
import { UsageError } from "../src/errors.ts";
import { escapeText, firstUnsafe, jsonText } from "../src/text.ts";

/** Every code point (and lone surrogate) that must never reach a terminal raw. */
function unsafeSamples(): string[] {
  const out: string[] = [];
  for (let c = 0; c < 0x20; c++) out.push(String.fromCharCode(c));
  for (let c = 0x7f; c <= 0x9f; c++) out.push(String.fromCharCode(c));
  out.push("\u00ad", "\u061c", "\u200b", "\u200e", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff", "\u{e0001}", "\u2028", "\u2029", "\ud800", "\udfff");
  return out;
}

test("escapeText: every control, format and separator character and lone surrogate comes out as printable ASCII", () => {
  for (const c of unsafeSamples()) {
    const shown = escapeText(`a${c}b`);
    expect(shown).toMatch(/^a\\(x[0-9a-f]{2}|u[0-9a-f]{4}|u\{[0-9a-f]+\}|n|t|r)b$/);
  }
  expect(escapeText("x\x1b]0;pwned\x07\n0  file  fake-row")).toBe("x\\x1b]0;pwned\\x07\\n0  file  fake-row");
  expect(escapeText("\u009b2J\u202eabc\ud83d")).toBe("\\x9b2J\\u202eabc\\ud83d");
  expect(escapeText("\t\r\x7f\u{e0041}")).toBe("\\t\\r\\x7f\\u{e0041}");
});

test("escapeText leaves printable text alone: accents, emoji, other scripts, spaces, backslashes", () => {
  for (const s of ["/etc/hosts", "café ü", "日本語", "😀 \ud83d\ude00", "a\\x1b", "@abstract", "[::1]:80", "ω ∑ ‰"]) expect(escapeText(s)).toBe(s);
});

test("jsonText: the same value for a parser, and no raw C1, DEL, format or separator character", () => {
  const value = { path: "x\x1b]0;t\x07\n\u009b\u202e\u200b\x7f\u2028\ud800\u{e0001}😀", n: [1, null, "ok"] };
  const text = jsonText(value, 2);
  expect(JSON.parse(text)).toEqual(value);
  expect(text).not.toMatch(/[\x7f-\x9f\p{Cf}\u2028\u2029\p{Cs}]/u);
  // Outside strings nothing changes: the indentation's own newlines stay.
  expect(text.split("\n").length).toBe(JSON.stringify(value, null, 2).split("\n").length);
  expect(text).toContain("😀");
});

test("firstUnsafe names the first offending character as U+XXXX", () => {
  expect(firstUnsafe("web")).toBeNull();
  expect(firstUnsafe("a\u202eb\u0000")).toBe("U+202E");
  expect(firstUnsafe("\u{e0001}")).toBe("U+E0001");
});

test("entry names: C0, DEL, C1, format characters and lone surrogates are refused, with what was wrong", () => {
  for (const c of unsafeSamples()) {
    expect(() => checkName(`a${c}b`)).toThrow(ProtocolError);
    expect(() => requireName(`a${c}b`)).toThrow(UsageError);
  }
  expect(() => checkName("a\u009bb")).toThrow("entry name holds U+009B, a control or format character");
  expect(() => checkName("a\ud800")).toThrow("entry name is not well-formed UTF-8 (it holds a lone surrogate)");
  expect(() => requireName("a\u202eb")).toThrow('bad entry name "a\u202eb": entry name holds U+202E, a control or format character');
  for (const ok of ["web", "unix:/run/app.sock", "café", "日志", "😀", "a b", "x".repeat(255)]) expect(checkName(ok)).toBe(ok);
  expect(() => checkName("é".repeat(128))).toThrow("longer than 255 bytes");
});
