// Interoperability with s6-fdholder (Debian's s6): a real s6-fdholder-daemon started here, fds moved both ways
// through its own command-line clients, each checked as the same kernel object by writing through one copy and
// reading through another. s6-fdholder-retrieve puts the fd at stdin and execs its program (which `fdbroker put`
// stores by default); s6-fdholder-store stores its stdin (which `fdbroker get --stdin -- CMD` provides).
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { C, close, closeAll, pipe, read, waitFd, write } from "../../src/sys/index.ts";
import { writeS6Rules } from "../../bench/broker-procs.ts";
import { startBroker, waitFor, type Broker } from "../broker/harness.ts";
import { CLI, fdCount, fdbroker, fdSnapshot, lineReader, newFdsSince, ROOT, run, spawn, tempDir } from "../helpers.ts";

setDefaultTimeout(120_000);
const present = Bun.which("s6-fdholder-daemon") !== null && Bun.which("s6-fdholder-retrieve") !== null;

interface S6 {
  sock: string;
  pid: number;
  /** Its fd count with no client connected and nothing stored. */
  baseFds: number;
  stop(): Promise<void>;
}

/** s6-fdholder-daemon with a rules directory letting our uid store, retrieve and list any id; ready on -1. */
async function startS6(dir: string): Promise<S6> {
  const rules = writeS6Rules(dir);
  const sock = join(dir, "s6.sock");
  const proc = spawn(["s6-fdholder-daemon", "-1", "-i", rules, sock]);
  const out = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  // A newline once listening; EOF (also "") if it died, which the socket's absence tells apart.
  expect(await out.line()).toBe("");
  expect(existsSync(sock)).toBe(true);
  // It closes the notification fd (its stdout) just after writing; counts must not see it.
  await waitFor("s6-fdholderd to close its notification fd", () => !existsSync(`/proc/${proc.pid}/fd/1`));
  return {
    sock,
    pid: proc.pid,
    baseFds: fdCount(proc.pid),
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

async function s6List(s6: S6): Promise<string[]> {
  const r = await run(["s6-fdholder-list", s6.sock]);
  expect(r.code).toBe(0);
  return r.stdout.split("\n").filter(Boolean).sort();
}

/**
 * Another process's fd count, once it has settled at `want`: a daemon closes a finished client's connection in
 * its own time after the client exits. Fails with the count it last saw.
 */
async function expectFds(who: string, count: () => number, want: number): Promise<void> {
  try {
    await waitFor(`${who}'s fd count to reach ${want}`, () => count() === want);
  } catch {}
  expect(count()).toBe(want);
}

/** Read what a pipe holds once something arrives (bounded, so a wrong fd fails instead of hanging), as text. */
function drain(fd: number): string {
  if (waitFd(fd, C.POLLIN, 20_000) === 0) return "";
  const got = read(fd, 4096);
  return got ? new TextDecoder().decode(got) : "";
}

/** The one-line migration loop from docs/recipes.md, "Migrating from s6-fdholder", so the page cannot drift. */
function recipeLoop(): string {
  const doc = readFileSync(join(ROOT, "docs/recipes.md"), "utf8");
  const section = doc.slice(doc.indexOf("## Migrating from s6-fdholder"));
  const line = section.split("\n").find((l) => l.startsWith("s6-fdholder-list "));
  if (!line) throw new Error("docs/recipes.md has no s6-fdholder-list loop under 'Migrating from s6-fdholder'");
  return line;
}

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let s6: S6;
let ownFds: string[];
/** The broker's fd count with no client connected and no entry. */
let brokerBase: number;

beforeEach(async () => {
  if (!present) return;
  ownFds = fdSnapshot();
  dir = tempDir("fdbroker-s6-");
  broker = await startBroker();
  brokerBase = broker.fds();
  s6 = await startS6(dir.path);
});

afterEach(async () => {
  if (!present) return;
  await s6.stop();
  await broker.stop();
  dir.cleanup();
  expect(await newFdsSince(ownFds)).toEqual([]);
});

test.skipIf(!present)("s6-fdholder-retrieve ID fdbroker put NAME: the broker holds the pipe s6 held", async () => {
  const open = pipe();
  const [r, w] = open;
  try {
    const stored = await run(["s6-fdholder-store", s6.sock, "unix:/run/app/in"], { stdin: r });
    expect(stored).toMatchObject({ code: 0, stderr: "" });
    await expectFds("s6-fdholderd", () => fdCount(s6.pid), s6.baseFds + 1);

    const moved = await run(["s6-fdholder-retrieve", s6.sock, "unix:/run/app/in", ...CLI, "put", "app-in", "-s", broker.sock, "--json"]);
    expect(moved.stderr).toBe("");
    expect(moved.code).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({ name: "app-in", kind: "pipe" });
    await expectFds("the broker", () => broker.fds(), brokerBase + 1);
    await expectFds("s6-fdholderd", () => fdCount(s6.pid), s6.baseFds + 1); // retrieve hands out a copy; s6 keeps its own

    // The same pipe: what we write now comes out of the broker's copy; with our write end closed and nobody
    // else holding one, get --cat reads to EOF.
    write(w, new TextEncoder().encode("written after the move\n"));
    close(open.pop()!);
    const cat = await fdbroker(["get", "app-in", "--cat", "-s", broker.sock]);
    expect(cat).toEqual({ code: 0, stdout: "written after the move\n", stderr: "" });
  } finally {
    closeAll(open);
  }
});

test.skipIf(!present)("fdbroker get NAME --stdin -- s6-fdholder-store: s6 holds the pipe the broker held", async () => {
  const open = pipe();
  const [r, w] = open;
  try {
    expect(await fdbroker(["put", "app-out", "-s", broker.sock], { stdin: w })).toMatchObject({ code: 0, stderr: "" });
    close(open.pop()!);
    await expectFds("the broker", () => broker.fds(), brokerBase + 1);

    const moved = await fdbroker(["get", "app-out", "--rm", "-s", broker.sock, "--stdin", "--", "s6-fdholder-store", s6.sock, "unix:/run/app/out"]);
    expect(moved).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await s6List(s6)).toEqual(["unix:/run/app/out"]);
    await expectFds("s6-fdholderd", () => fdCount(s6.pid), s6.baseFds + 1);
    await expectFds("the broker", () => broker.fds(), brokerBase); // --rm: the broker let its copy go

    // Write through the copy s6 hands back (retrieve puts it at stdin), read from our end of the pipe.
    const wrote = await run(["s6-fdholder-retrieve", s6.sock, "unix:/run/app/out", "sh", "-c", "echo through s6 >&0"]);
    expect(wrote).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(drain(r)).toBe("through s6\n");
  } finally {
    closeAll(open);
  }
});

test.skipIf(!present)("migrating every s6 entry into the broker with the recipe's loop keeps ids and fd kinds", async () => {
  const [r, w] = pipe();
  const listener = join(dir.path, "svc.sock");
  try {
    // A pipe's write end, a regular file and a listening UNIX socket, under ids as s6 users name them.
    expect((await run(["s6-fdholder-store", s6.sock, "pipe:logs"], { stdin: w })).code).toBe(0);
    expect((await run(["s6-fdholder-store", s6.sock, "file:/etc/hosts"], { stdin: Bun.file("/etc/hosts") })).code).toBe(0);
    const sockHolder = await run(["python3", "-c", `import socket,subprocess,sys
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
sys.exit(subprocess.run(["s6-fdholder-store", sys.argv[2], "unix:" + sys.argv[1]], stdin=s.fileno()).returncode)`, listener, s6.sock]);
    expect(sockHolder).toMatchObject({ code: 0, stderr: "" });
    const ids = await s6List(s6);
    expect(ids).toEqual(["file:/etc/hosts", "pipe:logs", `unix:${listener}`]);
    await expectFds("s6-fdholderd", () => fdCount(s6.pid), s6.baseFds + 3);

    // The loop exactly as docs/recipes.md gives it, with `fdbroker` on PATH running the CLI under test.
    const bin = join(dir.path, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "fdbroker"), `#!/bin/sh\nexec ${CLI.map((a) => `'${a}'`).join(" ")} "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, S6: s6.sock, FDBROKER_SOCKET: broker.sock };
    const migrated = await run(["sh", "-c", recipeLoop()], { env });
    expect(migrated).toEqual({ code: 0, stdout: "", stderr: "" });
    await expectFds("the broker", () => broker.fds(), brokerBase + 3);

    const ls = await fdbroker(["ls", "--json", "-s", broker.sock]);
    expect(ls.code).toBe(0);
    const entries = JSON.parse(ls.stdout) as { name: string; kind: string; what?: string }[];
    expect(entries.map((e) => [e.name, e.kind])).toEqual([["file:/etc/hosts", "file"], ["pipe:logs", "pipe"], [`unix:${listener}`, "socket"]]);

    // The migrated write end still writes into our pipe.
    expect((await fdbroker(["get", "pipe:logs", "-s", broker.sock, "--as", "1", "--", "echo", "migrated"])).code).toBe(0);
    expect(drain(r)).toBe("migrated\n");
  } finally {
    closeAll([r, w]);
  }
});
