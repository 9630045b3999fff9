// Errors above the syscall layer. Kernel failures are SysError (src/sys/errors.ts); these are the others a
// caller may need to tell apart: bad input, and a peer or broker that answered "no".

/** The input was wrong: a bad option, spec or address. Exit code 2 in the CLI. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The peer or broker understood the request and refused it. `code` is an errno name (EACCES, ENOENT, ...). */
export class RefusedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "RefusedError";
    this.code = code;
  }
}
