// Shell completion and the man page, both generated from the command definitions: every command and option the
// CLI accepts is offered, a real bash completes with the script, and man renders the page without a warning.
import { expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { manPage } from "../../scripts/man.ts";
import { ENVIRONMENT } from "../../src/cli/environment.ts";
import { commandReference } from "../../src/cli/reference.ts";
import { fdbroker, run, tempDir } from "../helpers.ts";

setDefaultTimeout(60000);

/** What bash's completion offers for the words typed so far (the last one being completed). */
async function bashComplete(script: string, words: string[]): Promise<string[]> {
  const probe = `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _fdbroker; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await run(["bash", "--norc", "-c", probe]);
  expect(r.stderr).toBe("");
  return r.stdout.split("\n").filter(Boolean);
}

test("bash completion offers every command, and every option of each command", async () => {
  const dir = tempDir();
  try {
    const gen = await fdbroker(["completion", "bash"]);
    expect(gen.code).toBe(0);
    const script = join(dir.path, "fdbroker.bash");
    writeFileSync(script, gen.stdout);
    const cmds = await commandReference();
    expect(await bashComplete(script, ["fdbroker", ""])).toEqual(expect.arrayContaining(cmds.map((c) => c.name)));
    expect(await bashComplete(script, ["fdbroker", "-s", "/x", "pu"])).toEqual(["put"]);
    for (const c of cmds.filter((c) => c.name !== "completion")) {
      const offered = await bashComplete(script, ["fdbroker", c.name, "-"]);
      const longs = c.options.map((o) => o.long).filter((l): l is string => l !== null);
      expect({ command: c.name, offered: offered.filter((o) => longs.includes(o)).sort() }).toEqual({ command: c.name, offered: longs.sort() });
    }
    expect(await bashComplete(script, ["fdbroker", "ls", "--color", ""])).toEqual(["auto", "always", "never"]);
    expect(await bashComplete(script, ["fdbroker", "completion", ""])).toEqual(["bash", "zsh", "fish"]);
    // After --, CMD's words: commands, not fdbroker's options.
    expect(await bashComplete(script, ["fdbroker", "get", "web", "--", "--"])).not.toContain("--rm");
    expect(await bashComplete(script, ["fdbroker", "exec", "--", "bas"])).toContain("bash");
  } finally {
    dir.cleanup();
  }
});

test("zsh and fish scripts name every command and option; a shell that is installed accepts its script", async () => {
  const cmds = await commandReference();
  for (const shell of ["zsh", "fish"]) {
    const r = await fdbroker(["completion", shell]);
    expect(r.code).toBe(0);
    for (const c of cmds) {
      expect(r.stdout).toContain(c.name);
      for (const o of c.options) if (o.long && c.name !== "completion") expect({ shell, option: r.stdout.includes(shell === "fish" ? `-l ${o.long.slice(2)}` : o.long) }).toEqual({ shell, option: true });
    }
    const binary = Bun.which(shell);
    if (binary) expect((await run([binary, "-n"], { stdin: new Blob([r.stdout]) })).code).toBe(0);
  }
  expect((await fdbroker(["completion", "tcsh"])).code).toBe(2);
});

test("the man page lists every command, option, environment variable and exit code, and man renders it cleanly", async () => {
  const dir = tempDir();
  try {
    const page = join(dir.path, "fdbroker.1");
    writeFileSync(page, await manPage());
    const r = await run(["man", "--warnings", "-l", page], { env: { ...process.env, MANWIDTH: "80", MAN_KEEP_FORMATTING: "" } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const text = r.stdout.replace(/.\x08/g, "").replace(/\u2010\n\s*/g, "");
    for (const c of await commandReference()) {
      expect(text).toContain(`fdbroker ${c.name}`);
      for (const o of c.options) expect(text).toContain(o.flags);
    }
    for (const e of ENVIRONMENT) expect(text).toContain(e.name);
    for (const code of ["126", "127"]) expect(text).toContain(code);
  } finally {
    dir.cleanup();
  }
});
