// The one-line summary of where an fd points: the WHAT column of recv, send, inspect and get, and the `what` the
// broker stores for each entry (ls). One wording everywhere, so a script or a reader matches one form.
import type { FdDescription } from "./types.ts";

/**
 * `inet stream listening 127.0.0.1:80`, `/etc/hosts`, `anon_inode:[eventfd] eventfd-count=0`. With `access`, a
 * file's open mode follows its path (`/etc/hosts (r)`), for a listing that has no column of its own for it.
 */
export function summarizeFd(d: FdDescription, { access = false } = {}): string {
  if (d.socket) {
    const s = d.socket;
    // A netlink socket's protocol says what it talks to (`netlink route`); its type (raw or dgram) says nothing.
    const parts = [`${s.family} ${s.protocol ?? s.type}`];
    if (s.listening) parts.push("listening");
    // A netlink socket's address is a port id, which names nothing a reader could look up.
    if (s.family !== "netlink") parts.push(s.local ?? "(unnamed)");
    if (s.peer) parts.push(`-> ${s.peer}`);
    return parts.join(" ");
  }
  if (d.path !== null) return `${d.path}${d.deleted ? " (deleted)" : ""}${access ? ` (${d.access})` : ""}`;
  const extra = Object.entries(d.details).map(([k, v]) => `${k}=${v}`);
  return [d.target, ...extra].join(" ");
}
