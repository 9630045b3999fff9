// Replies too big for one frame are split into parts: at most 253 fds each (SCM_MAX_FD), and bodies well under
// the frame size limit. Each part announces its own fd count.
import { MAX_FDS_PER_FRAME } from "./frame.ts";

/** Split `fds` into parts of at most `max` (default 253); always at least one part, possibly empty. */
export function chunkFds<T>(fds: readonly T[], max = MAX_FDS_PER_FRAME): T[][] {
  if (max < 1 || max > MAX_FDS_PER_FRAME) throw new RangeError(`chunk size must be 1..${MAX_FDS_PER_FRAME}`);
  const parts: T[][] = [];
  for (let i = 0; i < fds.length; i += max) parts.push(fds.slice(i, i + max));
  return parts.length > 0 ? parts : [[]];
}

/** Body bytes per reply part: half the default frame limit, leaving room for the part's own fields. */
export const PART_BYTES = 512 * 1024;

/**
 * Split `items` into parts of at most `maxCount` items and about `maxBytes` of `sizeOf` each (an item larger
 * than `maxBytes` gets a part of its own). Always at least one part, possibly empty.
 */
export function chunkBySize<T>(items: readonly T[], maxCount: number, sizeOf: (item: T) => number, maxBytes = PART_BYTES): T[][] {
  const parts: T[][] = [[]];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    const last = parts[parts.length - 1]!;
    if (last.length > 0 && (last.length >= maxCount || bytes + size > maxBytes)) {
      parts.push([item]);
      bytes = size;
    } else {
      last.push(item);
      bytes += size;
    }
  }
  return parts;
}
