// --get NAME for `exec` and `run`: entries come from the broker in one round trip, named as the broker names them.
import { get, openSession, type SessionOptions } from "../client/index.ts";
import type { Getter } from "./sources.ts";

export function brokerGetter(opts: SessionOptions = {}): Getter {
  return async (names) => {
    const session = openSession(opts);
    try {
      return get(session, names).map((r) => ({ fd: r.fd, name: r.entry.name }));
    } finally {
      session.close();
    }
  };
}
