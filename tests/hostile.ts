// Peers of another uid for the trust tests: tests/fixtures/hostile.py run as uid 65534 through setpriv.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { lineReader, ROOT, spawn, untrack } from "./helpers.ts";

export const NOBODY = 65534;
/** setpriv needs root to change uid; tests that need it are skipped (saying so) elsewhere. */
export const canSwitchUid = process.getuid?.() === 0 && Bun.which("setpriv") !== null;
export const SKIP_REASON = "needs root and setpriv to run a peer as uid 65534";

/** `cmd` run as `uid`, with that gid and no other groups (without `cmd`: the prefix alone). */
export const asUid = (uid: number, cmd: readonly string[] = []) => ["setpriv", "--reuid", String(uid), "--regid", String(uid), "--clear-groups", ...cmd];
export const asNobody = (cmd: readonly string[] = []) => asUid(NOBODY, cmd);
/** A python3 that uid 65534 may run (the caller's PATH may lead to a pyenv shim under root's home). */
export const PY = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const SCRIPT = join(ROOT, "tests/fixtures/hostile.py");

export interface Report {
  bytes: number;
  fds: number;
}

/**
 * hostile.py as uid 65534 (or `uid`): `listen` is ready once this resolves; `report()` is the next connection's
 * (listen) or the one connection's (connect) {bytes, fds}. `stop()` kills it and waits, so a test's fd check after
 * it does not see the pipes to a process still running; `await using` does that at the end of a block.
 */
export async function hostile(mode: "listen" | "connect", addr: string, opts: { uid?: number; comm?: string } = {}) {
  const proc = spawn(asUid(opts.uid ?? NOBODY, [PY, SCRIPT, mode, addr, ...(opts.comm ? ["--comm", opts.comm] : [])]), { stderr: "inherit" });
  const lines = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  /** Kill it and wait; returns the reports it printed that nobody asked for yet. */
  const stop = async (): Promise<Report[]> => {
    proc.kill("SIGKILL");
    await proc.exited;
    untrack(proc.pid);
    return (await lines.rest()).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  };
  if (mode === "listen") await lines.next(/^ready$/);
  return {
    proc,
    report: async (): Promise<Report> => JSON.parse((await lines.next(/^\{.*\}$/))[0]),
    stop,
    [Symbol.asyncDispose]: async () => void (await stop()),
  };
}
