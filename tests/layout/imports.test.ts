// The layers are visible in the tree and run one way (STYLE.md): only src/sys/ touches bun:ffi, only src/cli/
// knows commander and picocolors, and no layer imports one above it. A file that breaks a rule fails here by name.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../helpers.ts";

const SRC = join(ROOT, "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : []);
}

/** Every module a file imports or re-exports, static or dynamic, as written. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|[\n;])\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g)) found.push(m[1]!);
  for (const m of text.matchAll(/(?:import|require)\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]!);
  for (const m of text.matchAll(/(?:^|[\n;])\s*import\s+["']([^"']+)["']/g)) found.push(m[1]!);
  return found;
}

const files = sources(SRC).map((f) => ({ rel: relative(SRC, f), imports: importsOf(f) }));

function offenders(allowed: (rel: string) => boolean, modules: readonly string[]): string[] {
  return files.filter((f) => !allowed(f.rel) && f.imports.some((i) => modules.includes(i))).map((f) => f.rel);
}

test("the import scanner sees the imports it is meant to police", () => {
  // Without this a scanner that finds nothing would pass every rule below.
  expect(files.find((f) => f.rel === "sys/libc.ts")!.imports).toContain("bun:ffi");
  expect(files.find((f) => f.rel === "cli/main.ts")!.imports).toContain("commander");
});

test("only src/sys/ imports bun:ffi", () => {
  expect(offenders((rel) => rel.startsWith("sys/"), ["bun:ffi"])).toEqual([]);
});

test("only src/cli/ imports commander or picocolors", () => {
  expect(offenders((rel) => rel.startsWith("cli/"), ["commander", "@commander-js/extra-typings", "picocolors"])).toEqual([]);
});

/** Modules at src/ itself that import nothing of the tree: any layer may use them. */
const leaves = files.filter((f) => !f.rel.includes("/") && f.rel !== "index.ts" && !f.imports.some((i) => i.startsWith("."))).map((f) => f.rel);

test("src/sys/ and src/proto/ import nothing from the layers above them", () => {
  expect(leaves).toContain("errors.ts");
  const upward = files.filter((f) => {
    const layer = f.rel.split("/")[0]!;
    if (layer !== "sys" && layer !== "proto") return false;
    const below = layer === "sys" ? ["sys"] : ["sys", "proto"];
    return f.imports.some((i) => i.startsWith("../") && !below.some((l) => i.startsWith(`../${l}/`)) && !leaves.includes(i.slice(3)));
  });
  expect(upward.map((f) => `${f.rel}: ${f.imports.filter((i) => i.startsWith("..")).join(", ")}`)).toEqual([]);
});
