// What both benchmarks (roundtrip.ts, broker.ts) use: their numeric options, medians, and the C programs they
// compile into bench/out/.
import { mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";

/** The positive number after `name` on the command line, or `fallback`. */
export function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!(v > 0)) throw new Error(`${name} needs a positive number`);
  return v;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Compile bench/NAME.c with cc -O2 into bench/out/NAME; returns its path. Built under a private name, then renamed:
 * another run (the test suite's) may be executing the old one.
 */
export function compileC(name: string): string {
  const out = join(import.meta.dir, "out");
  mkdirSync(out, { recursive: true });
  const exe = join(out, name);
  const tmp = `${exe}.${process.pid}`;
  const cc = Bun.spawnSync(["cc", "-O2", "-Wall", "-o", tmp, join(import.meta.dir, `${name}.c`)], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cc failed (is a C compiler installed?):\n${cc.stderr.toString()}`);
  renameSync(tmp, exe);
  return exe;
}
