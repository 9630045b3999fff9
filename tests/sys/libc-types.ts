// Compiled by `npm run typecheck` (tests/build/typecheck.test.ts), never run: each line below must be a type
// error. Were the libc bindings typed loosely again (`any`), the directives would be unused and tsc would fail.
import { libc } from "../../src/sys/libc.ts";

export function misuses(): void {
  // @ts-expect-error close takes an fd
  libc.close();
  // @ts-expect-error socket takes domain, type and protocol
  libc.socket(1, 1);
  // @ts-expect-error a buffer is a pointer or typed array, not a string
  libc.read(0, "buffer", 8);
  // @ts-expect-error fstat returns an int, not a pointer
  const p: string = libc.fstat(0, null);
  void p;
}
