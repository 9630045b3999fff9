// User and group names beside uids and gids, for people. Read from /etc/passwd and /etc/group (no NSS: a user
// known only to LDAP or systemd-homed shows as its number), each file once per process, on first use. Output for
// scripts keeps the numbers, which are what the kernel reports and checks.
import { readFileSync } from "node:fs";

type NameTable = ReadonlyMap<number, string>;

/** `name:password:id:...` lines; the first name listed for an id wins, as getpwuid(3) returns it. */
export function parseNameTable(text: string): NameTable {
  const names = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (!name || !id || !/^\d+$/.test(id) || name.startsWith("+") || name.startsWith("-")) continue;
    if (!names.has(Number(id))) names.set(Number(id), name);
  }
  return names;
}

const cache = new Map<string, NameTable>();

function tableOf(path: string): NameTable {
  let t = cache.get(path);
  if (!t) {
    try {
      t = parseNameTable(readFileSync(path, "utf8"));
    } catch {
      t = new Map(); // no such file (a scratch container): every id shows as its number
    }
    cache.set(path, t);
  }
  return t;
}

export const userName = (uid: number): string | undefined => tableOf("/etc/passwd").get(uid);
export const groupName = (gid: number): string | undefined => tableOf("/etc/group").get(gid);

/** `uid 0 (root)`; `uid 4242` when no user has that id. */
export const uidText = (uid: number): string => withName(`uid ${uid}`, userName(uid));
/** `gid 0 (root)`; `gid 4242` when no group has that id. */
export const gidText = (gid: number): string => withName(`gid ${gid}`, groupName(gid));
/** `0 (root)` for a table's UID column. */
export const uidCell = (uid: number): string => withName(String(uid), userName(uid));

/** `{user, group}` for JSON beside the numbers, each only when known (and the id given). */
export function accountNames(uid: number | undefined, gid: number | undefined): { user?: string; group?: string } {
  const user = uid === undefined ? undefined : userName(uid);
  const group = gid === undefined ? undefined : groupName(gid);
  return { ...(user !== undefined ? { user } : {}), ...(group !== undefined ? { group } : {}) };
}

const withName = (id: string, name: string | undefined) => (name === undefined ? id : `${id} (${name})`);
