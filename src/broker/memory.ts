// Keeping the daemon's memory near what it holds. JSC collects when its heap grows, which lets a burst of
// requests (each a few short-lived strings, buffers and JSON objects) lift RSS well above the live data and keep
// it there for seconds: 10,000 puts took a broker from 39 to 65 MiB, of which about 8 MiB was garbage
// (docs/benchmarks.md). A cheap collection every so many busy turns, and one full collection once the broker
// has gone quiet after work, keep it near its live size.

/** Busy loop turns between eager (young-generation) collections. */
const TURNS_PER_EAGER_GC = 100;
/**
 * And at least this long between them: one costs the loop about 0.5 ms whatever it finds, and under load 100 turns
 * pass in a few ms (every 100 gets, it was about 5 us of each get's 40; docs/benchmarks.md).
 */
const MS_BETWEEN_EAGER_GC = 20;
/** Quiet time after work before one full collection. */
const QUIET_MS_BEFORE_FULL_GC = 1000;

export interface MemoryTending {
  busyTurns: number;
  lastBusy: number;
  lastEager: number;
  /** Work happened since the last full collection. */
  dirty: boolean;
}

export const newMemoryTending = (): MemoryTending => ({ busyTurns: 0, lastBusy: 0, lastEager: 0, dirty: false });

/** Call once per loop turn; `busy` when the turn handled any event. */
export function tendMemory(m: MemoryTending, busy: boolean, now: number, collect: (full: boolean) => void): void {
  if (busy) {
    m.lastBusy = now;
    m.dirty = true;
    if (++m.busyTurns >= TURNS_PER_EAGER_GC && now - m.lastEager >= MS_BETWEEN_EAGER_GC) {
      m.busyTurns = 0;
      m.lastEager = now;
      collect(false);
    }
  } else if (m.dirty && now - m.lastBusy >= QUIET_MS_BEFORE_FULL_GC) {
    m.dirty = false;
    collect(true);
  }
}
