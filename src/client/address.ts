// Where the broker listens when -s/--socket is not given: $FDBROKER_SOCKET; for root /run/fdbroker.sock
// ($RUNTIME_DIRECTORY/fdbroker.sock under systemd); for others $XDG_RUNTIME_DIR/fdbroker.sock, else
// /tmp/fdbroker-UID/fdbroker.sock. Never a name in a world-writable directory that another user could take first
// (issue 8): the /tmp fallback is a private directory, as tmux and ssh-agent use, checked on every use.
// No node:fs here: `get NAME -- CMD` runs this on its start-up path (see src/sys/exec.ts).
import { UsageError } from "../errors.ts";
import { euid } from "../peer/trust.ts";
import { C, isSysError, lstat, mkdir } from "../sys/index.ts";

interface DefaultAddress {
  socket: string;
  /** The private directory `socket` sits in, or null when the address is not in one. */
  privateDir: string | null;
}

type Env = Record<string, string | undefined>;
// Joined by hand: node:path would cost start-up time for one slash.
const inDir = (dir: string) => `${dir.replace(/\/+$/, "")}/fdbroker.sock`;

/** The default address for `uid` in `env`, without looking at the filesystem. */
export function defaultAddress(env: Env = process.env, uid = euid()): DefaultAddress {
  if (env.FDBROKER_SOCKET) return { socket: env.FDBROKER_SOCKET, privateDir: null };
  if (uid === 0) {
    // XDG_RUNTIME_DIR is ignored for root: `sudo -E` carries the invoking user's, a directory that user owns.
    // systemd sets RUNTIME_DIRECTORY to the service's RuntimeDirectory= (':'-separated when there are several).
    const runtime = env.RUNTIME_DIRECTORY?.split(":")[0];
    return { socket: runtime ? inDir(runtime) : "/run/fdbroker.sock", privateDir: null };
  }
  if (env.XDG_RUNTIME_DIR) return { socket: inDir(env.XDG_RUNTIME_DIR), privateDir: null };
  const dir = `/tmp/fdbroker-${uid}`;
  return { socket: inDir(dir), privateDir: dir };
}

/**
 * The default socket. When it lives in the private /tmp directory, that directory is checked first (and, with
 * `create`, which serve passes, made 0700 if missing); an unsafe one is a UsageError naming what is wrong.
 */
export function defaultSocket(env: Env = process.env, uid = euid(), opts: { create?: boolean } = {}): string {
  const d = defaultAddress(env, uid);
  if (d.privateDir !== null) {
    if (opts.create) mkdir(d.privateDir, 0o700);
    checkPrivateDir(d.privateDir, uid);
  }
  return d.socket;
}

/**
 * Refuse a directory another user could have prepared or can change: anything but a real directory (lstat: a
 * symlink is refused, not followed) owned by `uid` with no group or other permission bits. Checking once is enough
 * because /tmp is sticky: once the directory is ours, nobody else can rename or remove it. A missing directory
 * passes: no broker can be listening in it, and connecting says so (ENOENT).
 */
export function checkPrivateDir(dir: string, uid: number): void {
  let st;
  try {
    st = lstat(dir);
  } catch (e) {
    if (isSysError(e, "ENOENT")) return;
    throw e;
  }
  const type = st.mode & C.S_IFMT;
  const why =
    type === C.S_IFLNK ? "is a symlink"
    : type !== C.S_IFDIR ? "is not a directory"
    : st.uid !== uid ? `is owned by uid ${st.uid}, not ${uid}`
    : st.mode & 0o077 ? `has mode 0${(st.mode & 0o777).toString(8)}, not 0700`
    : null;
  if (why) throw new UsageError(`${dir}/ ${why}: not safe for the default broker socket (remove it, or give -s or $FDBROKER_SOCKET)`);
}
