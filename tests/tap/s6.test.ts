// s6-fdholder (Debian's s6, a program nobody here wrote) through `fdbroker tap`: s6-fdholder-store and
// s6-fdholder-retrieve talk to s6-fdholder-daemon through the tap and keep working, and the tap's records show the
// stored pipe going in (client to server) and coming back out (server to client), the same inode both ways.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeS6Rules } from "../../bench/broker-procs.ts";
import { closeAll, fstat, pipe } from "../../src/sys/index.ts";
import { lineReader, run, spawn, tempDir } from "../helpers.ts";
import { startTap, stopAll } from "./harness.ts";

setDefaultTimeout(60_000);
const present = Bun.which("s6-fdholder-daemon") !== null && Bun.which("s6-fdholder-retrieve") !== null;
if (!present) console.warn("skipped: s6 is not installed (Debian package s6)");

let dir: ReturnType<typeof tempDir> | null = null;
let daemon: ReturnType<typeof spawn> | null = null;
afterEach(async () => {
  await stopAll();
  if (daemon) {
    daemon.kill("SIGTERM");
    await daemon.exited;
  }
  dir?.cleanup();
});

test.skipIf(!present)("s6-fdholder-store and -retrieve through tap keep working; the tap shows the stored pipe both ways", async () => {
  dir = tempDir("fdbroker-tap-s6-");
  const sock = join(dir.path, "s6.sock");
  // As tests/interop/s6-fdholder.test.ts starts it: ready (a newline on fd 1) once listening.
  daemon = spawn(["s6-fdholder-daemon", "-1", "-i", writeS6Rules(dir.path), sock]);
  expect(await lineReader(daemon.stdout as ReadableStream<Uint8Array>).line()).toBe("");
  expect(existsSync(sock)).toBe(true);
  const tapSock = join(dir.path, "tap.sock");
  const tap = await startTap([tapSock, "--to", sock]);

  const open = pipe();
  try {
    const ino = fstat(open[0]).ino;
    const stored = await run(["s6-fdholder-store", tapSock, "unix:/run/app/in"], { stdin: open[0] });
    expect(stored).toMatchObject({ code: 0, stderr: "" });
    // retrieve puts the fd at its program's stdin: the program names what it got.
    const got = await run(["s6-fdholder-retrieve", tapSock, "unix:/run/app/in", "readlink", "/proc/self/fd/0"]);
    expect(got).toEqual({ code: 0, stdout: `pipe:[${ino}]\n`, stderr: "" });

    const isPipe = (r: Record<string, any>, dir: string) => r.event === "message" && r.dir === dir && r.fds.some((f: any) => f.kind === "pipe" && f.inode === ino);
    const inbound = await tap.waitRecord((r) => isPipe(r, "c>s"));
    const outbound = await tap.waitRecord((r) => isPipe(r, "s>c"));
    expect(inbound.client.command).toBe("s6-fdholder-sto");
    expect(outbound.client.command).toBe("s6-fdholder-ret");
    expect(inbound.conn).not.toBe(outbound.conn);
  } finally {
    closeAll(open);
  }
  expect(await tap.stop()).toEqual({ code: 0, stderr: "" });
});
