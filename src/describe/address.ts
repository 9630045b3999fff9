// A socket address as scripts want it in JSON, beside the text people read: its parts, so nothing has to split
// `[::1]:80` on the last colon or tell `@name` from a path by its first character.
import type { SockAddr } from "../sys/index.ts";
import type { SocketAddress } from "./types.ts";

export function addressParts(a: SockAddr): SocketAddress | null {
  switch (a.family) {
    case "unix":
      if (a.path === "") return null; // unnamed: a socketpair end, or a client that never bound
      return a.path.startsWith("@") ? { abstract: a.path.slice(1) } : { path: a.path };
    case "inet":
    case "inet6":
      return { host: a.host, port: a.port };
    default:
      return null;
  }
}
