// Option plumbing shared by recv and send: number parsing, the readiness fd, and signals that end a wait.
import { InvalidArgumentError } from "commander";
import { writeReadyFd } from "../peer/ready.ts";
import { UsageError } from "../errors.ts";
import { isOpen } from "../sys/index.ts";

/** commander parser for a non-negative integer option. */
export function integer(min = 0) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return Number(v);
  };
}

/** `--ready-fd N`: checked up front, then written one newline and closed (as serve does) once ready for a peer. */
export function readyNotifier(fd: number | undefined): () => void {
  if (fd === undefined) return () => {};
  if (!isOpen(fd)) throw new UsageError(`--ready-fd ${fd}: not an open fd`);
  return () => writeReadyFd(fd);
}

const signalNumbers = { SIGINT: 2, SIGTERM: 15 } as const;

/**
 * An AbortSignal that SIGINT or SIGTERM aborts, and `exitIfInterrupted` to leave as a shell expects (128 + the
 * signal number) once the library has closed everything and removed its socket file.
 */
export function interruption() {
  const ctl = new AbortController();
  let caught: keyof typeof signalNumbers | null = null;
  for (const sig of Object.keys(signalNumbers) as (keyof typeof signalNumbers)[])
    process.on(sig, () => {
      caught = sig;
      ctl.abort(new Error(`interrupted by ${sig}`));
    });
  return {
    signal: ctl.signal,
    exitIfInterrupted(): void {
      if (caught) process.exit(128 + signalNumbers[caught]);
    },
  };
}
