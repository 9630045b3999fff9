// --get NAME for `exec` and `run`: entries come from the broker in one round trip, named as the broker names them.
import { get, openSession } from "../client/index.ts";
import type { Getter } from "./sources.ts";

export function brokerGetter(socket?: string, timeoutMs?: number): Getter {
  return async (names) => {
    const session = openSession({ socket, timeoutMs });
    try {
      return get(session, names).map((r) => ({ fd: r.fd, name: r.entry.name }));
    } finally {
      session.close();
    }
  };
}
