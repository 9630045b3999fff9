// `npm run build`: compile the CLI into one self-contained executable, dist/fdbroker (Bun runtime included, so the
// target machine needs neither Bun nor node_modules).
//
// Why these flags: --bytecode --minify --format=esm cut start-up to about 12 ms, against 27-37 ms for
// `bun bin/fdbroker` (measured here), which matters for `fdbroker get -- CMD` in a service's start path.
// src/cli/commands.ts loads subcommands lazily with `import("./NAME.ts")`; the bundler follows those literal imports
// and puts every one inside the binary, so nothing is read from disk at run time (a missing one fails the build).
// --splitting makes each lazy import a chunk of its own inside the binary: without it the runtime loads the
// bytecode of every command at start, about 1.1 ms more for `get NAME -- CMD` (docs/benchmarks.md).
import { mkdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { COMMANDS } from "../src/cli/commands.ts";
import { writeManPage } from "./man.ts";

/** Every subcommand's name, from the table the CLI itself dispatches on. */
export const commandNames = (): string[] => Object.keys(COMMANDS);

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/cli/main.ts");

export interface BuildOptions {
  /** Where the executable goes (default dist/fdbroker). */
  outfile?: string;
  /** Print bun's own progress lines. */
  verbose?: boolean;
}

/** Compile the CLI; returns the path of the executable. Throws with bun's own messages when the build fails. */
export async function build(opts: BuildOptions = {}): Promise<string> {
  const outfile = resolve(ROOT, opts.outfile ?? "dist/fdbroker");
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await Bun.build({
    entrypoints: [MAIN],
    compile: {
      outfile,
      // A CLI must not change behaviour with the directory it runs in: no .env or bunfig.toml picked up from there.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    bytecode: true,
    splitting: true,
    minify: true,
    format: "esm",
    target: "bun",
    throw: false,
  });
  if (!result.success) throw new Error(`bun build failed:\n${result.logs.map(String).join("\n")}`);
  if (opts.verbose) for (const log of result.logs) process.stderr.write(`${log}\n`);
  // A binary that cannot even print its version is not a build; catch it here rather than in a user's shell.
  const check = Bun.spawnSync([outfile, "--version"], { stdout: "pipe", stderr: "pipe" });
  if (check.exitCode !== 0) throw new Error(`${outfile} --version failed (exit ${check.exitCode}): ${check.stderr.toString()}`);
  return outfile;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const outIdx = args.indexOf("--outfile");
  try {
    const out = await build({
      outfile: outIdx >= 0 ? args[outIdx + 1] : undefined,
      verbose: args.includes("--verbose"),
    });
    console.log(`built ${relative(process.cwd(), out) || out}`);
    // The man page goes beside the default build only: package.json's `man` names dist/fdbroker.1.
    if (outIdx < 0) console.log(`wrote ${relative(process.cwd(), await writeManPage())}`);
  } catch (e) {
    process.stderr.write(`build: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
