// Where the broker listens when -s/--socket is not given: $FDBROKER_SOCKET, else $XDG_RUNTIME_DIR/fdbroker.sock,
// else /tmp/fdbroker-UID.sock (per user, so two users on one machine do not meet by accident).
import { join } from "node:path";

export function defaultSocket(env: Record<string, string | undefined> = process.env, uid = process.getuid?.() ?? 0): string {
  if (env.FDBROKER_SOCKET) return env.FDBROKER_SOCKET;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, "fdbroker.sock");
  return `/tmp/fdbroker-${uid}.sock`;
}
