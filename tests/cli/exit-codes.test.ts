// Exit statuses as shells use them, for every command that execs a CMD (recv --, get --, exec, run), and the exit
// table that README and every --help print: one truth, checked against what the CLI itself defines.
import { expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandNames } from "../../scripts/build.ts";
import { EXIT, EXIT_HELP } from "../../src/cli/exit.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { fdbroker, ROOT, tempDir } from "../helpers.ts";
import { startReady } from "./peer-helpers.ts";

setDefaultTimeout(60000);
const startBroker = brokerPerTest();

/** A CMD that is not there, one that is there but not executable (mode 0644), and a directory. */
function badCommands(dir: string): { cmd: string; code: number }[] {
  const plain = join(dir, "not-executable");
  writeFileSync(plain, "#!/bin/sh\necho never\n");
  chmodSync(plain, 0o644);
  mkdirSync(join(dir, "a-directory"));
  return [
    { cmd: join(dir, "nothing-here"), code: 127 },
    { cmd: "fdbroker-no-such-command", code: 127 },
    { cmd: plain, code: 126 },
    { cmd: join(dir, "a-directory"), code: 126 },
  ];
}

test("exec and run: 127 for a CMD that does not exist, 126 for one that cannot be executed", async () => {
  const dir = tempDir();
  try {
    for (const { cmd, code } of badCommands(dir.path)) {
      for (const sub of [["exec"], ["run", "--ready", "delay:10"]]) {
        const r = await fdbroker([...sub, "--", cmd]);
        expect({ sub: sub[0], cmd, code: r.code }).toEqual({ sub: sub[0], cmd, code });
        expect(r.stderr).toStartWith("fdbroker: execve: ");
      }
    }
  } finally {
    dir.cleanup();
  }
});

test("get -- CMD and recv -- CMD: 127 and 126 as well", async () => {
  const b = await startBroker();
  writeFileSync(join(b.dir, "f"), "x");
  expect((await fdbroker(["put", "f", "-s", b.sock], { stdin: Bun.file(join(b.dir, "f")) })).code).toBe(0);
  for (const { cmd, code } of badCommands(b.dir)) {
    expect((await fdbroker(["get", "f", "-s", b.sock, "--", cmd])).code).toBe(code);
    const sock = join(b.dir, "drop.sock");
    const recv = startReady(["recv", sock, "--", cmd]);
    expect((await fdbroker(["send", sock, "--open", `file:${join(b.dir, "f")}`])).code).toBe(0);
    expect((await recv.result()).code).toBe(code);
  }
});

test("no command at all is a usage error: the usage goes to stderr, exit 2", async () => {
  const r = await fdbroker([]);
  expect(r.code).toBe(EXIT.usage);
  expect(r.stdout).toBe("");
  expect(r.stderr).toContain("Usage: fdbroker");
});

/** The code -> meaning rows of a printed exit table. */
function rows(text: string, pattern: RegExp): [number, string][] {
  return [...text.matchAll(pattern)].map((m) => [Number(m[1]), m[2]!.trim()]);
}

test("README's exit table and every command's --help list exactly the codes the CLI defines", async () => {
  const defined = Object.values(EXIT).sort((a, b) => a - b);
  const helpRows = rows(EXIT_HELP, /^ {2}(\d+) +(.+)$/gm);
  expect(helpRows.map(([c]) => c)).toEqual(defined);
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Exit status"), readme.indexOf("## Development"));
  expect(rows(section, /^\| (\d+) \| (.+) \|$/gm).map(([c]) => c)).toEqual(defined);
  const names = commandNames();
  for (const name of ["", ...names]) {
    const help = (await fdbroker(name ? [name, "--help"] : ["--help"])).stdout;
    const printed = rows(help.slice(help.indexOf("Exit status:")), /^ {2}(\d+) +(.+)$/gm);
    expect({ name, printed }).toEqual({ name, printed: helpRows });
  }
});
