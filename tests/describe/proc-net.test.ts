// Parsing /proc/PID/net tables: addresses the kernel prints as host-order hex words, and paths it prints raw.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describeProcFds } from "../../src/describe/index.ts";
import { decodeHexAddress, parseInetTable, parseNetlinkTable, parseUnixTable } from "../../src/describe/proc-net.ts";
import { lineReader, spawn, tempDir } from "../helpers.ts";

test.each([
  ["0100007F:1F90", "inet", "127.0.0.1:8080"],
  ["00000000:0000", "inet", "0.0.0.0:0"],
  ["00000000000000000000000001000000:0050", "inet6", "[::1]:80"],
  ["00000000000000000000000000000000:01BB", "inet6", "[::]:443"],
  ["0000000000000000FFFF00000100007F:0016", "inet6", "[::ffff:127.0.0.1]:22"],
  ["B80D0120000000000000000001000000:0001", "inet6", "[2001:db8::1]:1"],
] as const)("%s (%s) is %s", (hex, family, text) => {
  expect(decodeHexAddress(hex, family)).toBe(text);
});

test("tcp rows: listening by state 0A, peer when the remote address is set, state by name, queues as numbers", () => {
  const t = parseInetTable(
    [
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0",
      "   1: 0100007F:C350 0100007F:1F90 01 0000001F:00000A00 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1",
      "   2: 0100007F:C351 0100007F:1F90 06 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 20 4 30 10 -1",
    ],
    "inet", "stream",
  );
  expect(t.get(1111)).toEqual({
    family: "inet", type: "stream", local: "127.0.0.1:8080", peer: null,
    localAddress: { host: "127.0.0.1", port: 8080 }, peerAddress: null, listening: true,
    state: "LISTEN", recvQ: 2, sendQ: 0,
  });
  expect(t.get(2222)).toEqual({
    family: "inet", type: "stream", local: "127.0.0.1:50000", peer: "127.0.0.1:8080",
    localAddress: { host: "127.0.0.1", port: 50000 }, peerAddress: { host: "127.0.0.1", port: 8080 }, listening: false,
    state: "ESTABLISHED", recvQ: 2560, sendQ: 31,
  });
  expect(t.get(4444)).toMatchObject({ state: "TIME_WAIT" });
  // UDP rows carry TCP's state numbers too, meaningless there.
  const udp = parseInetTable(["   0: 0100007F:0035 00000000:0000 07 00000000:00000004 00:00000000 00000000 0 0 5555 2"], "inet", "dgram");
  expect(udp.get(5555)).toMatchObject({ type: "dgram", state: null, recvQ: 4, sendQ: 0 });
  const v6 = parseInetTable(["   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 3333"], "inet6", "stream");
  expect(v6.get(3333)).toMatchObject({ local: "[::1]:80", localAddress: { host: "::1", port: 80 } });
});

test("netlink rows: the protocol by name (route, sock_diag, audit, ...), its number when unnamed", () => {
  const t = parseNetlinkTable([
    "00000000548e2b84 0   0          00000000 0        0        0     2        0        4",
    "00000000bb623c2e 4   0          00000000 0        0        0     2        0        501",
    "00000000bb623c2f 9   0          00000000 0        0        0     2        0        502",
    "00000000bb623c30 15  0          00000001 0        0        0     2        0        503",
    "00000000bb623c31 31  0          00000000 0        0        0     2        0        504",
  ]);
  expect([4, 501, 502, 503, 504].map((i) => t.get(i)?.protocol)).toEqual(["route", "sock_diag", "audit", "kobject_uevent", "31"]);
  expect(t.get(4)).toMatchObject({ family: "netlink", listening: false, local: null });
});

test("unix rows: type, listening flag, paths with spaces, abstract names, unnamed sockets", () => {
  const t = parseUnixTable([
    "0000000059787099: 00000002 00000000 00010000 0001 01  5001 /run/a  b.sock",
    "0000000059787099: 00000002 00000000 00000000 0005 03  5002 @abstract",
    "0000000059787099: 00000003 00000000 00000000 0002 03  5003",
  ]);
  expect(t.get(5001)).toEqual({
    family: "unix", type: "stream", local: "/run/a  b.sock", peer: null,
    localAddress: { path: "/run/a  b.sock" }, peerAddress: null, listening: true,
  });
  expect(t.get(5002)).toMatchObject({ type: "seqpacket", local: "@abstract", localAddress: { abstract: "abstract" }, listening: false });
  expect(t.get(5003)).toMatchObject({ type: "dgram", local: null, localAddress: null });
});

test("an inode listed twice (a path with a newline faking a row) is reported unknown, not as the last row said", () => {
  const t = parseUnixTable([
    "0000000059787099: 00000002 00000000 00010000 0001 01  5001 /run/real.sock",
    "0000000059787099: 00000002 00000000 00010000 0001 01  6001 @x",
    "0000000000000000: 00000002 00000000 00010000 0001 01 5001 /fake",
    "0000000059787099: 00000002 00000000 00010000 0001 01  6002 @y",
    "0000000000000000: 00000002 00000000 00010000 0001 01 5001 /fake2",
  ]);
  expect(t.get(5001)).toEqual({ family: "unix", type: "other", local: null, peer: null, localAddress: null, peerAddress: null, listening: false });
  expect(t.get(6002)).toMatchObject({ local: "@y" });
});

test("another uid's abstract sockets named to fake rows of /proc/net/unix cannot rename a process's socket", async () => {
  // The system's python: one under root's home (pyenv) is out of uid 65534's reach.
  if (!Bun.which("setpriv") || !existsSync("/usr/bin/python3")) return console.warn("skipped: needs setpriv and /usr/bin/python3 to fake rows as uid 65534");
  const dir = tempDir();
  try {
    const real = join(dir.path, "real.sock");
    const victim = spawn(["python3", "-c", `
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()
print(s.fileno(), os.fstat(s.fileno()).st_ino, flush=True)
sys.stdin.read()`, real], { stdin: "pipe" });
    const [fd, ino] = (await lineReader(victim.stdout as ReadableStream<Uint8Array>).line()).split(" ").map(Number);
    // 50 of them, so that some come after the real row whatever order the kernel's hash table lists them in.
    const faker = spawn(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3", "-c", `
import socket, sys
held = []
for i in range(50):
    s = socket.socket(socket.AF_UNIX)
    s.bind(("\\0f%d\\n0000000000000000: 00000002 00000000 00010000 0001 01 %s /fake" % (i, sys.argv[1])).encode())
    s.listen(); held.append(s)
print("ready", flush=True)
sys.stdin.read()`, String(ino)], { stdin: "pipe" });
    expect(await lineReader(faker.stdout as ReadableStream<Uint8Array>).line()).toBe("ready");
    const local = describeProcFds(victim.pid, [fd!])[0]!.socket?.local;
    expect([real, null]).toContain(local ?? null);
    for (const p of [victim, faker]) {
      (p.stdin as import("bun").FileSink).end();
      await p.exited;
    }
  } finally {
    dir.cleanup();
  }
});
