// Where the broker listens when -s/--socket is not given: $FDBROKER_SOCKET, else $XDG_RUNTIME_DIR/fdbroker.sock,
// else /tmp/fdbroker-UID.sock (per user, so two users on one machine do not meet by accident).
export function defaultSocket(env: Record<string, string | undefined> = process.env, uid = process.getuid?.() ?? 0): string {
  if (env.FDBROKER_SOCKET) return env.FDBROKER_SOCKET;
  // Joined by hand: node:path would cost `get NAME -- CMD` start-up time for one slash.
  if (env.XDG_RUNTIME_DIR) return `${env.XDG_RUNTIME_DIR.replace(/\/+$/, "")}/fdbroker.sock`;
  return `/tmp/fdbroker-${uid}.sock`;
}
