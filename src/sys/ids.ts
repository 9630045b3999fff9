// User and group names to ids, as chown(1) resolves them: getpwnam/getgrnam, so NSS sources count too.
import { read } from "bun:ffi";
import { abi } from "./abi.ts";
import { libc } from "./libc.ts";
import { cString } from "./mem.ts";

// Both return a pointer into libc's static storage, valid until the next call on this thread: the id is read at once.

/** The uid of user `name`, or null when there is none. */
export function uidOf(name: string): number | null {
  const pw = libc.getpwnam(cString(name));
  return pw === null ? null : read.u32(pw, abi.passwd.uid);
}

/** The gid of group `name`, or null when there is none. */
export function gidOf(name: string): number | null {
  const gr = libc.getgrnam(cString(name));
  return gr === null ? null : read.u32(gr, abi.group.gid);
}
