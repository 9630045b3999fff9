// Replies with more fds than one frame may carry are split; each part announces its own count.
import { MAX_FDS_PER_FRAME } from "./frame.ts";

/** Split `fds` into parts of at most `max` (default 253); always at least one part, possibly empty. */
export function chunkFds<T>(fds: readonly T[], max = MAX_FDS_PER_FRAME): T[][] {
  if (max < 1 || max > MAX_FDS_PER_FRAME) throw new RangeError(`chunk size must be 1..${MAX_FDS_PER_FRAME}`);
  const parts: T[][] = [];
  for (let i = 0; i < fds.length; i += max) parts.push(fds.slice(i, i + max));
  return parts.length > 0 ? parts : [[]];
}
