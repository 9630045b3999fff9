// What `serve` does once its options are known. Kept free of commander so the fast path (serve-fast.ts) and the
// full command (serve.ts) run the same code.
import { runLoop, startBroker } from "../broker/index.ts";
import { socketOf } from "./broker-common.ts";
import type { ServeOpts } from "./serve-options.ts";

export async function runServe(opts: ServeOpts): Promise<never> {
  // Handlers go in before startBroker writes --ready-fd: a supervisor may send SIGTERM the moment it reads
  // that, and without a handler Bun would die of the signal (143) instead of shutting down cleanly. A signal
  // during start-up is handled at the first turn of the loop, by when `state` exists.
  let state: ReturnType<typeof startBroker> | null = null;
  let stopRequested = false;
  const stop = () => {
    stopRequested = true;
    if (state) state.stopping = true;
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  state = startBroker({
    socket: socketOf(opts, true), mode: opts.mode, holds: opts.hold, pools: opts.pool, adoptListenFds: opts.adoptListenFds, rules: opts.allow,
    limits: {
      maxConns: opts.maxConns, maxConnsPerUid: opts.maxConnsPerUid, reservedConns: opts.reservedConns, maxFds: opts.maxFds, maxNames: opts.maxNames,
      maxRequestBytes: opts.maxRequestBytes, maxReplyBytes: opts.maxReplyBytes, maxQueuedFds: opts.maxQueuedFds,
      clientTimeoutMs: opts.clientTimeout, drainMs: opts.drainTimeout, describeTimeoutMs: opts.describeTimeout, closerThreads: opts.closerThreads,
      maxLeaseTtlMs: opts.maxLeaseTtl,
    },
    log: opts.log, readyFd: opts.readyFd,
    takeover: opts.takeover, brokerUid: opts.brokerUid,
  });
  state.stopping ||= stopRequested;
  await runLoop(state);
  process.exit(0);
}
