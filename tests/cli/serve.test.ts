import { expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listenUnix } from "../../src/peer/listen.ts";
import { openSpec } from "../../src/open/spec.ts";
import { bind, C, close, encodeUnix, recvmsg, socket, waitFd } from "../../src/sys/index.ts";
import { brokerPerTest, waitFor } from "../broker/harness.ts";
import { CLI, fdbroker, readyPipe, spawn, spawnReady, tempDir } from "../helpers.ts";

const start = brokerPerTest();

test("socket file is 0600 by default, --mode widens it; SIGTERM closes everything and removes it", async () => {
  const broker = await start(["--hold", "a=file:/etc/hosts"]);
  expect(statSync(broker.sock).mode & 0o777).toBe(0o600);
  const sock = broker.sock;
  const code = await broker.stop();
  expect(code).toBe(0);
  expect(existsSync(sock)).toBe(false);
  const wide = await start(["--mode", "0666"]);
  expect(statSync(wide.sock).mode & 0o777).toBe(0o666);
});

test("SIGINT drains too; the log says how many entries were closed", async () => {
  const broker = await start(["--hold", "a=file:/etc/hosts", "--hold", "b=file:/etc/hosts"]);
  broker.proc.kill("SIGINT");
  expect(await broker.proc.exited).toBe(0);
  expect(broker.log()).toContain("stop ok (closed 2 entries)");
  expect(existsSync(broker.sock)).toBe(false);
});

test("a live broker's socket is never clobbered; a stale one is replaced", async () => {
  const broker = await start();
  const second = await fdbroker(["serve", "-s", broker.sock]);
  expect(second.code).not.toBe(0);
  expect(second.stderr).toContain("another process is listening there");
  expect((await fdbroker(["status", "-s", broker.sock])).code).toBe(0);
  const dir = tempDir();
  const stale = join(dir.path, "stale.sock");
  close(listenUnix(stale));
  expect(existsSync(stale)).toBe(true);
  const p = spawnReady([...CLI, "serve", "-s", stale, "--ready-fd", "3"], { stdio: ["ignore", "ignore", "ignore"] }).proc;
  expect((await fdbroker(["status", "-s", stale])).code).toBe(0);
  p.kill("SIGTERM");
  expect(await p.exited).toBe(0);
  dir.cleanup();
});

test("bad --hold, --pool, --allow, --mode, --drain-timeout and limits are usage errors (exit 2, one line naming it) and leave no socket", async () => {
  const dir = tempDir();
  const sock = join(dir.path, "b.sock");
  const cases: [string[], RegExp][] = [
    [["--hold", "x=nope:1"], /nope/], [["--hold", "noequals"], /bad --hold "noequals"/],
    [["--allow", "uid:abc:get"], /bad --allow rule "uid:abc:get": expected uid:N:OPS\[:GLOB\]/],
    [["--allow", "uid:1:fly"], /bad operation "fly" in --allow uid:1:fly/], [["--allow", "uid:1:get,"], /bad operation ""/],
    [["--mode", "999"], /bad --mode 999/], [["--drain-timeout", "soon"], /bad --drain-timeout "soon"/],
    // Given only 0-2, the broker's 3 and 4 are the runtime's own (its event loop): open, but not to be held.
    [["--hold", "x=fd:3"], /fd:3: not an fd this process inherited/], [["--hold", "x=fd:4"], /fd:4: not an fd this process inherited/],
    // Checked before anything is held or taken over: a supervisor that cannot be told must not cost the entries.
    [["--ready-fd", "77"], /--ready-fd 77: not an open fd/],
    // As an entry held twice (the second pool was dropped at start, logged as "kept the pool taken over").
    [["--pool", "a=1:file:/dev/null", "--pool", "a=2:file:/dev/null"], /pool "a" is given twice/],
    // The budgets and caps of issue 8 (docs/security.md).
    [["--max-request-bytes", "lots"], /bad --max-request-bytes "lots": expected e.g. 512KiB, 8MiB/], [["--max-reply-bytes", "0"], /bad --max-reply-bytes "0"/],
    [["--max-names", "0"], /bad --max-names "0"/], [["--max-conns-per-uid", "-1"], /bad --max-conns-per-uid "-1"/],
    [["--max-conns", "10", "--reserved-conns", "10"], /--reserved-conns 10 leaves no connection for anyone else: it must be below --max-conns 10/],
  ];
  for (const [bad, message] of cases) {
    const r = await fdbroker(["serve", "-s", sock, ...bad]);
    expect([bad, r.code]).toEqual([bad, 2]);
    expect(r.stderr).toMatch(/^fdbroker: [^\n]+\n$/);
    expect(r.stderr).toMatch(message);
    expect(existsSync(sock)).toBe(false);
  }
  dir.cleanup();
});

test("--adopt-listen-fds holds socket-activation fds under LISTEN_FDNAMES; READY=1 goes to NOTIFY_SOCKET", async () => {
  const dir = tempDir();
  const sock = join(dir.path, "b.sock");
  const notifyPath = join(dir.path, "notify.sock");
  const notify = socket(C.AF_UNIX, "dgram");
  bind(notify, encodeUnix(notifyPath), notifyPath);
  const tcp = openSpec("tcp:127.0.0.1:0");
  const file = openSpec(`file:${join(dir.path, "f")}?mode=w`);
  const ready = readyPipe();
  const p = spawn([...CLI, "serve", "-s", sock, "--adopt-listen-fds", "--ready-fd", "5"], {
    stdio: ["ignore", "ignore", "ignore", tcp, file, ready.writeEnd],
    env: { ...process.env, LISTEN_FDS: "2", LISTEN_FDNAMES: "web:out", NOTIFY_SOCKET: notifyPath },
  });
  ready.closeWriteEnd();
  close(tcp);
  close(file);
  ready.wait();
  ready.close();
  expect(waitFd(notify, C.POLLIN, 20000)).not.toBe(0);
  expect(new TextDecoder().decode(recvmsg(notify, 256, 0)!.data)).toBe("READY=1");
  close(notify);
  const ls = JSON.parse((await fdbroker(["ls", "--json", "-s", sock])).stdout);
  expect(ls.map((e: { name: string; kind: string }) => [e.name, e.kind])).toEqual([["out", "file"], ["web", "socket"]]);
  p.kill("SIGTERM");
  expect(await p.exited).toBe(0);
  dir.cleanup();
});

test("--log json writes one JSON object per operation", async () => {
  const broker = await start(["--log", "json", "--hold", "a=file:/etc/hosts"]);
  await fdbroker(["get", "a", "-s", broker.sock]);
  await fdbroker(["get", "missing", "-s", broker.sock]);
  await waitFor("log lines", () => broker.log().includes("missing"));
  const lines = broker.log().trim().split("\n").map((l) => JSON.parse(l));
  expect(lines.find((l) => l.op === "get" && l.result === "ok")).toMatchObject({ names: ["a"], uid: process.getuid!() });
  expect(lines.find((l) => l.op === "get" && l.result === "ENOENT")).toMatchObject({ names: ["missing"] });
});

test("an entry name file path with spaces and unicode round-trips", async () => {
  const broker = await start();
  const path = join(broker.dir, "a file ü.txt");
  writeFileSync(path, "x");
  expect((await fdbroker(["put", "name with spaces ü", "-s", broker.sock], { stdin: Bun.file(path) })).code).toBe(0);
  expect((await fdbroker(["get", "name with spaces ü", "--cat", "-s", broker.sock])).stdout).toBe("x");
});

test("SIGTERM the moment --ready-fd says ready still shuts down cleanly (exit 0, socket removed)", async () => {
  const dir = tempDir();
  try {
    for (let i = 0; i < 10; i++) {
      const sock = join(dir.path, `b${i}.sock`);
      const { proc } = spawnReady([...CLI, "serve", "-s", sock, "--ready-fd", "3"], { stdio: ["ignore", "ignore", "ignore"] }, 30000);
      proc.kill("SIGTERM");
      const code = await proc.exited;
      expect({ round: i, code, socketLeft: existsSync(sock) }).toEqual({ round: i, code: 0, socketLeft: false });
    }
  } finally {
    dir.cleanup();
  }
}, 120000);
