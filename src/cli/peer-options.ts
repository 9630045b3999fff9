// Option plumbing shared by recv and send: the readiness fd, which peers to deal with and what
// to say about them, and signals that end a wait.
import { Option } from "commander";
import { writeReadyFd } from "../peer/ready.ts";
import { notTrusted, parseTrustedUid, type TrustedUid } from "../peer/trust.ts";
import { UsageError } from "../errors.ts";
import { isOpen, type PeerCred } from "../sys/index.ts";
import { gidText, uidText } from "../describe/accounts.ts";
import { commandOf } from "../describe/holders.ts";
import type { ConnectWait } from "../peer/wait.ts";
import { formatDuration } from "./broker-common.ts";
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
 * What recv and send say about each peer on stderr: with -v, who it is (pid, uid, command); always, when a
 * listener turns one away (a connecting side's refusal is its error message instead).
 */
export function peerReporter(verbose: boolean, listening: boolean, peerUid: TrustedUid | undefined) {
  return (p: PeerCred, trusted: boolean): void => {
    const who = `pid ${p.pid}, ${escapeText(uidText(p.uid))}, ${escapeText(gidText(p.gid))}, command ${commandOf(p.pid)}`;
    if (trusted && verbose) process.stderr.write(`fdbroker: peer ${who}\n`);
    else if (!trusted && listening) process.stderr.write(`fdbroker: closed a connection from ${who}: ${notTrusted(p, peerUid, "--peer-uid")}; still waiting\n`);
  };
}

const WAITING_FOR: Record<ConnectWait, string> = {
  socket: "a socket to appear at",
  listener: "a listener at",
  room: "room in the listen queue of",
};

/**
 * With -v, what recv and send wait for, said once for each thing: connecting, the socket to appear or someone to
 * listen on it (with the errno that says so); listening, a peer. A script's log then tells a slow peer from a
 * wrong address.
 */
export function waitReporter(verbose: boolean, addr: string, timeoutMs: number | undefined) {
  const limit = timeoutMs === undefined || timeoutMs === Infinity ? "with no time limit" : `up to ${formatDuration(timeoutMs)}`;
  const say = (text: string) => {
    if (verbose) process.stderr.write(`fdbroker: ${escapeText(text)}\n`);
  };
  return {
    onWait: (what: ConnectWait, code: string) => say(`waiting ${limit} for ${WAITING_FOR[what]} ${addr} (connect: ${code})`),
    onListening: () => say(`listening on ${addr}; waiting ${limit} for a peer`),
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
