// The ABI table checked against C itself: for each libc and arch a compiler is installed for (glibc x86-64 with
// cc, musl x86-64 with musl-gcc, glibc arm64 with aarch64-linux-gnu-gcc run under qemu-user), a generated
// program prints every size, offset and constant the table claims. CI installs all three.
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { abiFor } from "../../src/sys/abi.ts";
import { run, tempDir } from "../helpers.ts";
import { claimsOf, probeSource } from "./abi-probe.ts";

interface Target {
  name: string;
  arch: string;
  cc: string;
  /** How to run what it built. */
  runner: string[];
  /** Where <linux/*.h> and <asm/*.h> are, when the compiler does not look there itself. */
  kernelHeaders?: string;
}

const qemu = Bun.which("qemu-aarch64-static") ?? Bun.which("qemu-aarch64");
const targets: Target[] = [
  { name: "glibc x86-64", arch: "x64", cc: "cc", runner: [] },
  // musl-gcc searches only musl's own headers; the kernel's uapi headers (netlink, sock_diag) are libc-independent.
  { name: "musl x86-64", arch: "x64", cc: "musl-gcc", runner: [], kernelHeaders: "/usr/include/x86_64-linux-gnu" },
  { name: "glibc arm64", arch: "arm64", cc: "aarch64-linux-gnu-gcc", runner: qemu ? [qemu, "-L", "/usr/aarch64-linux-gnu"] : [] },
];

for (const t of targets) {
  const available = Bun.which(t.cc) !== null && (t.arch === process.arch || (qemu !== null && existsSync("/usr/aarch64-linux-gnu/lib/libc.so.6")));
  if (!available && process.env.CI) test(`${t.name}: compiler present in CI`, () => expect(`${t.cc} missing`).toBe(`${t.cc} present`));
  test.skipIf(!available)(`${t.name}: every size, offset and constant in the ABI table matches C`, async () => {
    const abi = abiFor("linux", t.arch);
    const dir = tempDir();
    try {
      const src = join(dir.path, "probe.c");
      const exe = join(dir.path, "probe");
      writeFileSync(src, probeSource(abi));
      const include: string[] = [];
      if (t.kernelHeaders) {
        // Only linux/, asm/ and asm-generic/: the rest of glibc's tree must not shadow musl's headers.
        const dir2 = join(dir.path, "kernel");
        mkdirSync(dir2);
        symlinkSync("/usr/include/linux", join(dir2, "linux"));
        symlinkSync("/usr/include/asm-generic", join(dir2, "asm-generic"));
        symlinkSync(join(t.kernelHeaders, "asm"), join(dir2, "asm"));
        include.push("-idirafter", dir2);
      }
      const built = await run([t.cc, "-O0", ...include, "-o", exe, src]);
      expect(built.stderr).toBe("");
      expect(built.code).toBe(0);
      const out = await run([...t.runner, exe]);
      expect(out.code).toBe(0);
      const actual = new Map(out.stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
      const mismatches: string[] = [];
      for (const [key, claimed] of claimsOf(abi)) {
        const real = actual.get(key);
        if (real !== String(claimed)) mismatches.push(`${key}: table ${claimed}, C ${real}`);
      }
      expect(mismatches).toEqual([]);
    } finally {
      dir.cleanup();
    }
  }, 60000);
}
