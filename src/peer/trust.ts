// Whom a client or peer deals with (issue 8): by default only a process running as our own uid or as root, as the
// kernel reports it for the connection (SO_PEERCRED: fixed at connect() or listen(), not something the other side
// can claim). Anyone else is refused unless the caller names that uid, or "any", as one more to trust.
import { RefusedError, UsageError } from "../errors.ts";
import { peerCred, type PeerCred } from "../sys/index.ts";

/** One more uid to deal with besides our own and root, or "any" for everyone. */
export type TrustedUid = number | "any";

export const euid = () => process.geteuid?.() ?? 0;

function isTrusted(uid: number, extra?: TrustedUid): boolean {
  return extra === "any" || uid === 0 || uid === euid() || uid === extra;
}

/** Who is dealt with, for messages: "root", "uid 1000 or root", "uid 1000, uid 33 or root". */
function trustedText(extra?: TrustedUid): string {
  const uids = [euid(), ...(typeof extra === "number" ? [extra] : [])].filter((u, i, all) => u !== 0 && all.indexOf(u) === i);
  return [...uids.map((u) => `uid ${u}`), "root"].join(", ").replace(/, (?=[^,]*$)/, " or ");
}

/**
 * The credentials of the process at the other end of `fd`, or a RefusedError (EPERM) naming its uid when it is not
 * one to deal with. `who` says what it is ("the broker at /run/fdbroker.sock"), `option` how to trust it;
 * `onPeer` hears who it was, and whether trusted, before any refusal.
 */
export function checkPeer(
  fd: number, who: string, extra: TrustedUid | undefined, option: string, onPeer?: (cred: PeerCred, trusted: boolean) => void,
): PeerCred {
  const cred = peerCred(fd);
  const trusted = isTrusted(cred.uid, extra);
  onPeer?.(cred, trusted);
  if (!trusted) throw new RefusedError("EPERM", refusal(cred, who, extra, option));
  return cred;
}

/** `the broker at ADDR runs as uid 65534 (pid 4242), not root (--broker-uid 65534 to trust it)` */
export function refusal(cred: PeerCred, who: string, extra: TrustedUid | undefined, option: string): string {
  return `${who} runs as uid ${cred.uid} (pid ${cred.pid}), ${notTrusted(cred, extra, option)}`;
}

/** `not root (--peer-uid 65534 to trust it)` */
export function notTrusted(cred: PeerCred, extra: TrustedUid | undefined, option: string): string {
  return `not ${trustedText(extra)} (${option} ${cred.uid} to trust it)`;
}

/** `--broker-uid 33`, `--peer-uid any`, FDBROKER_BROKER_UID: a uid, or "any" where `allowAny`. */
export function parseTrustedUid(text: string, what: string, allowAny = false): TrustedUid {
  if (allowAny && text === "any") return "any";
  if (/^\d+$/.test(text) && Number(text) < 2 ** 32) return Number(text);
  throw new UsageError(`bad ${what} ${JSON.stringify(text)}: expected a uid (a number)${allowAny ? ' or "any"' : ""}`);
}
