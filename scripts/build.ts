// `npm run build`: compile the CLI into one self-contained executable, dist/fdbroker (Bun runtime included, so the
// target machine needs neither Bun nor node_modules).
//
// Why these flags: --bytecode --minify --format=esm cut start-up to about 12 ms, against 27-37 ms for
// `bun bin/fdbroker` (measured here), which matters for `fdbroker get -- CMD` in a service's start path.
// src/cli/main.ts loads subcommands lazily with `import("./NAME.ts")`; the bundler follows those literal imports
// and puts every one inside the binary, so nothing is read from disk at run time. A literal import of a missing
// file is a bundler error, so this script checks the command table first and names what is missing.
// Worker scripts are not reachable by import: any src/**/*.worker.ts is passed as an extra entrypoint so
// `new Worker(new URL("./x.worker.ts", import.meta.url))` resolves inside the compiled binary too.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/cli/main.ts");

export interface BuildOptions {
  /** Where the executable goes (default dist/fdbroker). */
  outfile?: string;
  /** Build even if some subcommand modules do not exist yet; those commands then fail at run time. */
  allowMissing?: boolean;
  /** Print bun's own progress lines. */
  verbose?: boolean;
}

function modulesMatching(pattern: RegExp): string[] {
  const source = readFileSync(MAIN, "utf8");
  return [...source.matchAll(pattern)].map((m) => relative(ROOT, join(dirname(MAIN), m[1]!)));
}

/** The subcommand modules of src/cli/main.ts's command table (`load: () => import("./NAME.ts")`), repo-relative. */
export function commandModules(): string[] {
  return modulesMatching(/load:\s*\(\)\s*=>\s*import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g);
}

/** Every module src/cli/main.ts imports lazily by a literal path: commands and fast paths alike. */
function lazyModules(): string[] {
  return modulesMatching(/import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g);
}

function workerEntrypoints(): string[] {
  return [...new Bun.Glob("src/**/*.worker.ts").scanSync({ cwd: ROOT })].map((p) => join(ROOT, p));
}

// Stands in for a subcommand module that does not exist yet (--allow-missing, during development only).
function missingModules(paths: readonly string[]): Bun.BunPlugin {
  const names = new Set(paths.map((p) => join(ROOT, p)));
  return {
    name: "missing-subcommands",
    setup(b) {
      b.onResolve({ filter: /^\.{1,2}\/[\w/-]+\.ts$/ }, (args) => {
        const path = join(dirname(args.importer), args.path);
        return names.has(path) ? { path, namespace: "missing" } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: "missing" }, (args) => ({
        loader: "ts",
        contents: `export function command() { throw new Error(${JSON.stringify(`${relative(ROOT, args.path)} was not built into this binary`)}); }`,
      }));
    },
  };
}

/** Compile the CLI; returns the path of the executable. Throws with bun's own messages when the build fails. */
export async function build(opts: BuildOptions = {}): Promise<string> {
  const outfile = resolve(ROOT, opts.outfile ?? "dist/fdbroker");
  const missing = lazyModules().filter((p) => !existsSync(join(ROOT, p)));
  if (missing.length > 0) {
    if (!opts.allowMissing) throw new Error(`subcommand modules missing: ${missing.join(", ")} (--allow-missing builds without them)`);
    process.stderr.write(`build: WARNING: building without ${missing.join(", ")}: those commands will fail\n`);
  }
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await Bun.build({
    entrypoints: [MAIN, ...workerEntrypoints()],
    compile: {
      outfile,
      // A CLI must not change behaviour with the directory it runs in: no .env or bunfig.toml picked up from there.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    bytecode: true,
    minify: true,
    format: "esm",
    target: "bun",
    plugins: missing.length > 0 ? [missingModules(missing)] : [],
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
      allowMissing: args.includes("--allow-missing"),
      verbose: args.includes("--verbose"),
    });
    console.log(`built ${relative(process.cwd(), out) || out}`);
  } catch (e) {
    process.stderr.write(`build: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
