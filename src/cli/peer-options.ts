// Option plumbing shared by recv and send: the readiness fd, which peers to deal with and what
// to say about them, and signals that end a wait.
import { readFileSync } from "node:fs";
import { Option } from "commander";
import { writeReadyFd } from "../peer/ready.ts";
import { notTrusted, parseTrustedUid, type TrustedUid } from "../peer/trust.ts";
import { UsageError } from "../errors.ts";
import { isOpen, type PeerCred } from "../sys/index.ts";
import { escapeText } from "../text.ts";

/** `--ready-fd N`: checked up front, then written one newline and closed (as serve does) once ready for a peer. */
export function readyNotifier(fd: number | undefined): () => void {
  if (fd === undefined) return () => {};
  if (!isOpen(fd)) throw new UsageError(`--ready-fd ${fd}: not an open fd`);
  return () => writeReadyFd(fd);
}

export const peerUidOption = () =>
  new Option("--peer-uid <UID|any>", "also deal with a peer running as this uid, or any (default: only your own uid or root)")
    .argParser((s) => parseTrustedUid(s, "--peer-uid", true));

/**
 * The command name of a process, as /proc has it: "?" when the pid is gone or in another pid namespace (it reads 0).
 * Read after the fact, so a pid reused in between would show another's: it is for people, never a check.
 */
function commandOf(pid: number): string {
  try {
    return escapeText(readFileSync(`/proc/${pid}/comm`, "utf8").replace(/\n$/, ""));
  } catch {
    return "?";
  }
}

/**
 * What recv and send say about each peer on stderr: with -v, who it is (pid, uid, command); always, when a
 * listener turns one away (a connecting side's refusal is its error message instead).
 */
export function peerReporter(verbose: boolean, listening: boolean, peerUid: TrustedUid | undefined) {
  return (p: PeerCred, trusted: boolean): void => {
    const who = `pid ${p.pid}, uid ${p.uid}, command ${commandOf(p.pid)}`;
    if (trusted && verbose) process.stderr.write(`fdbroker: peer ${who}\n`);
    else if (!trusted && listening) process.stderr.write(`fdbroker: closed a connection from ${who}: ${notTrusted(p, peerUid, "--peer-uid")}; still waiting\n`);
  };
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
