// Options any command takes wherever they stand (--color, and -s before the command's name), and the list of
// environment variables that --help and README print against what the code really reads.
import { expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ENVIRONMENT } from "../../src/cli/environment.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { fdbroker, ROOT } from "../helpers.ts";

setDefaultTimeout(60000);
const startBroker = brokerPerTest();
const ESC = "\x1b[";
const { NO_COLOR, FORCE_COLOR, ...plainEnv } = process.env as Record<string, string>;

test("-s and --socket work before the command's name as after it", async () => {
  const b = await startBroker();
  for (const args of [["-s", b.sock, "ls", "--json"], [`--socket=${b.sock}`, "ls", "--json"], ["ls", "--json", "-s", b.sock]]) {
    const r = await fdbroker(args);
    expect({ args, code: r.code, stdout: r.stdout.trim() }).toEqual({ args, code: 0, stdout: "[]" });
  }
  // A command without a broker has no -s: put before its name, it is still an error, not silently dropped.
  expect((await fdbroker(["-s", b.sock, "inspect", "0"])).code).toBe(2);
});

test("--color always/never and FORCE_COLOR/NO_COLOR decide colour; JSON never has any", async () => {
  const describe = (args: string[], env: Record<string, string> = {}) =>
    fdbroker(["inspect", "0", ...args], { stdin: Bun.file("/dev/null"), env: { ...plainEnv, ...env } });
  expect((await describe([])).stdout).not.toContain(ESC);
  expect((await describe(["--color", "always"])).stdout).toContain(ESC);
  expect((await fdbroker(["--color=always", "inspect", "0"], { stdin: Bun.file("/dev/null") })).stdout).toContain(ESC);
  expect((await describe([], { FORCE_COLOR: "1" })).stdout).toContain(ESC);
  expect((await describe(["--color=never"], { FORCE_COLOR: "1" })).stdout).not.toContain(ESC);
  expect((await describe([], { FORCE_COLOR: "1", NO_COLOR: "1" })).stdout).not.toContain(ESC);
  expect((await describe(["--json", "--color", "always"])).stdout).not.toContain(ESC);
  // After `--`, --color belongs to CMD.
  const bad = await fdbroker(["inspect", "0", "--color", "sometimes"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toBe('fdbroker: bad --color "sometimes": auto, always or never\n');
});

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : []);
}

test("every environment variable the code reads is listed in --help and README", async () => {
  const read = new Set<string>();
  for (const f of sources(join(ROOT, "src")))
    for (const m of readFileSync(f, "utf8").matchAll(/\benv\.([A-Z][A-Z0-9_]+)\b|\benv\[["']([A-Z][A-Z0-9_]+)["']\]/g)) read.add(m[1] ?? m[2]!);
  expect(read.size).toBeGreaterThan(5);
  const listed = ENVIRONMENT.map((e) => e.name);
  expect([...read].filter((v) => !listed.includes(v))).toEqual([]);
  const help = (await fdbroker(["--help"])).stdout;
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  for (const name of listed) {
    expect({ name, inHelp: help.includes(`  ${name} `) }).toEqual({ name, inHelp: true });
    expect({ name, inReadme: readme.includes(`\`${name}\``) }).toEqual({ name, inReadme: true });
  }
});

test("one duration syntax: a bare number is milliseconds for --ttl as for --timeout; units work everywhere", async () => {
  const b = await startBroker();
  for (const [ttl, ms] of [["1500", 1500], ["1500ms", 1500], ["2s", 2000], ["1m", 60_000]] as const) {
    const r = await fdbroker(["put", `t${ttl}`, "--ttl", ttl, "--json", "-s", b.sock], { stdin: Bun.file("/dev/null") });
    expect(r.code).toBe(0);
    const e = JSON.parse(r.stdout);
    expect({ ttl, ms: e.expires - e.created }).toEqual({ ttl, ms });
  }
  // recv and send take the same syntax (5s here; a bare 5 would be 5 ms and time out at once).
  const r = await fdbroker(["recv", "--connect", "-t", "1s", join(b.dir, "nobody.sock")]);
  expect(r.code).toBe(3);
  for (const bad of ["-1", "5 s", "1x", "0"]) expect((await fdbroker(["put", "x", "--ttl", bad, "-s", b.sock])).code).toBe(2);
});
