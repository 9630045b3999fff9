// Help as a user reads it: `fdbroker help [CMD]` (which --help lists) is `fdbroker [CMD] --help`, every command's
// help ends with the exit codes, and defaults read as they would be typed, within 80 columns and with every
// placeholder in upper case.
import { expect, setDefaultTimeout, test } from "bun:test";
import { commandNames } from "../../scripts/build.ts";
import { CLI, fdbroker, run } from "../helpers.ts";

setDefaultTimeout(60000);
const names = commandNames();

test("fdbroker help is fdbroker --help, and lists help itself", async () => {
  const [help, dashed] = await Promise.all([fdbroker(["help"]), fdbroker(["--help"])]);
  expect(help).toMatchObject({ code: 0, stderr: "" });
  expect(help.stdout).toBe(dashed.stdout);
  expect(help.stdout).toContain("help [command]");
  expect((await fdbroker(["help", "nosuch"])).code).toBe(2);
});

test.each(names)("fdbroker help %s is its --help, ending with the exit codes", async (name) => {
  const [help, dashed] = await Promise.all([fdbroker(["help", name]), fdbroker([name, "--help"])]);
  expect(help).toMatchObject({ code: 0, stderr: "" });
  expect(help.stdout).toBe(dashed.stdout);
  expect(help.stdout).toStartWith(`Usage: fdbroker ${name} `);
  expect(help.stdout.trimEnd()).toEndWith("127  CMD (after --) not found");
  expect(help.stdout.match(/Exit status:/g)).toHaveLength(1);
  // A repeatable option's empty list is not a default anyone would type.
  expect(help.stdout).not.toContain("(default: [])");
});

test("serve's defaults read as they would be typed: a bare number of seconds would be wrong", async () => {
  const help = (await fdbroker(["serve", "--help"])).stdout.replace(/\s+/g, " ");
  expect(help).toContain("permissions of the socket file (default: 0600)");
  expect(help).toMatch(/--client-timeout <DURATION> .*\(default: 60s\)/);
  expect(help).toMatch(/--drain-timeout <DURATION> .*\(default: 2s\)/);
});

/**
 * Placeholders (`<ADDR>`, `[FD...]`, `<UID|any>`: literal choices after `|` may be lower case) in the usage line and
 * the option flags whose name is not in upper case; commander's own `[options]` and `[command]` aside.
 */
function lowerPlaceholders(help: string): string[] {
  const own = new Set(["[options]", "[command]"]);
  const lines = help.split("\n");
  // An option line is its flags, two or more spaces, then the description.
  const where = [...lines.filter((l) => l.startsWith("Usage:")), ...lines.filter((l) => /^  -/.test(l)).map((l) => l.trim().split(/\s{2,}/)[0]!)];
  return [...where.join("\n").matchAll(/<[^<>\s]+>|\[[^\[\]\s]+\]/g)]
    .map((m) => m[0])
    .filter((p) => !own.has(p) && /[a-z]/.test(p.slice(1).split("|")[0]!));
}

test.each(["", ...names])("fdbroker %s --help: lines within 80 columns, placeholders in upper case", async (name) => {
  const help = await fdbroker([...(name ? [name] : []), "--help"]);
  expect(help.code).toBe(0);
  const lines = help.stdout.split("\n");
  expect(lines.filter((l) => l.length > 80)).toEqual([]);
  // Arguments are listed by name in the help's Arguments section: the same case there.
  const listed = help.stdout.split(/\nArguments:\n/)[1]?.split("\n\n")[0] ?? "";
  const argNames = listed.split("\n").map((l) => l.trim().split(/\s+/)[0]!).filter((w) => w !== "" && /^[A-Za-z]/.test(w));
  expect({ name, lower: [...lowerPlaceholders(help.stdout), ...argNames.filter((a) => a !== a.toUpperCase())] }).toEqual({ name, lower: [] });
});

// commander follows a terminal's width: on a wide one it would spread the option descriptions past 80 columns.
test.skipIf(!Bun.which("script") || !Bun.which("stty"))("on a 200-column terminal, help still keeps within 80 columns [needs script and stty]", async () => {
  const cmd = [...CLI, "recv", "--help"].map((a) => `'${a}'`).join(" ");
  const r = await run(["script", "-qec", `stty cols 200; ${cmd}`, "/dev/null"]);
  const lines = r.stdout.replace(/\r/g, "").split("\n");
  expect(lines.some((l) => l.startsWith("Usage: fdbroker recv"))).toBe(true);
  expect(lines.filter((l) => l.length > 80)).toEqual([]);
});

test("fdbroker --help lists every command with the arguments its own usage line shows", async () => {
  const top = (await fdbroker(["--help"])).stdout;
  for (const name of names) {
    const usage = (await fdbroker([name, "--help"])).stdout.split("\n")[0]!;
    const args = usage.replace(`Usage: fdbroker ${name} [options]`, "").trim();
    expect({ name, listed: top.includes(`  ${`${name} ${args}`.trim()}  `) }).toEqual({ name, listed: true });
  }
});
