// Socket addresses as users write them: a filesystem path, `@name` for the abstract namespace, or `unix:PATH`.
import { UsageError } from "../errors.ts";
import { encodeUnix } from "../sys/index.ts";

export interface UnixAddress {
  /** As the user wrote it, minus any `unix:` prefix; used in messages. */
  label: string;
  /** The filesystem path, or null for an abstract name. */
  path: string | null;
  bytes: Uint8Array;
}

/** Throws UsageError for an address no sockaddr_un can hold (empty, too long, a NUL in a path). */
export function parseUnixAddress(text: string): UnixAddress {
  const label = text.startsWith("unix:") ? text.slice(5) : text;
  if (label === "" || label === "@") throw new UsageError(`empty socket address: ${JSON.stringify(text)}`);
  try {
    return { label, path: label.startsWith("@") ? null : label, bytes: encodeUnix(label) };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
