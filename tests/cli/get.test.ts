import { expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Broker, brokerPerTest } from "../broker/harness.ts";
import { fdbroker, tempDir } from "../helpers.ts";
import { startReady } from "./peer-helpers.ts";

setDefaultTimeout(60000);
const start = brokerPerTest();

async function withFiles(names: string[]): Promise<Broker> {
  const broker = await start();
  for (const n of names) {
    const path = join(broker.dir, `${n}.txt`);
    writeFileSync(path, `contents of ${n}\n`);
    expect((await fdbroker(["put", n, "-s", broker.sock], { stdin: Bun.file(path) })).code).toBe(0);
  }
  return broker;
}

test("get without a command describes the fds, as a table or --json", async () => {
  const b = await withFiles(["a", "b"]);
  const table = await fdbroker(["get", "a", "b", "-s", b.sock]);
  expect(table.code).toBe(0);
  expect(table.stdout).toContain("a.txt");
  const json = JSON.parse((await fdbroker(["get", "b", "a", "--json", "-s", b.sock])).stdout);
  expect(json[0].fds.map((f: { name: string; path: string }) => [f.name, f.path])).toEqual([
    ["b", join(b.dir, "b.txt")],
    ["a", join(b.dir, "a.txt")],
  ]);
});

test("get --json and recv --json print one shape; a socket's address is also in parts", async () => {
  const b = await start();
  expect((await fdbroker(["put", "web", "--open", "tcp:127.0.0.1:0", "-s", b.sock])).code).toBe(0);
  const got = JSON.parse((await fdbroker(["get", "web", "--json", "-s", b.sock])).stdout);
  const dir = tempDir();
  try {
    const addr = join(dir.path, "r");
    const r = startReady(["recv", addr, "--json"]);
    expect((await fdbroker(["send", addr, "--open", "tcp:127.0.0.1:0", "--data", "x"])).code).toBe(0);
    const received = JSON.parse((await r.result()).stdout);
    const keys = (o: object) => Object.keys(o).sort();
    expect(keys(got[0])).toEqual(["bytes", "fds", "payload", "title"]);
    expect(keys(received[0])).toEqual(keys(got[0]));
    expect(keys(received[0].fds[0])).toEqual(keys(got[0].fds[0]));
    expect(got[0]).toMatchObject({ title: null, bytes: null, payload: null, fds: [{ id: 0, name: "web" }] });
    expect(received[0]).toMatchObject({ title: "message 1", bytes: 1, payload: { text: "x" }, fds: [{ id: 0, name: null }] });
    for (const s of [got[0].fds[0].socket, received[0].fds[0].socket]) {
      expect(s.localAddress).toEqual({ host: "127.0.0.1", port: Number(s.local.split(":")[1]) });
      expect(s.peerAddress).toBeNull();
    }
  } finally {
    dir.cleanup();
  }
});

test("get -- CMD: fds at 3, 4 with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, nothing else leaks", async () => {
  const b = await withFiles(["a", "b", "c", "d"]);
  const script = 'echo "$LISTEN_FDS $LISTEN_FDNAMES $([ "$LISTEN_PID" = $$ ] && echo pid-ok)"; cat <&3; cat <&4';
  const r = await fdbroker(["get", "a", "b", "-s", b.sock, "--", "sh", "-c", script]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("2 a:b pid-ok\ncontents of a\ncontents of b\n");
  // ls execs in place of fdbroker: it has 0-4 and the one fd it opens to read the directory itself.
  const fds = (await fdbroker(["get", "c", "d", "-s", b.sock, "--", "ls", "/proc/self/fd"])).stdout.trim().split(/\s+/).map(Number);
  expect(fds.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
  expect(fds.length).toBe(6);
});

test("an entry name LISTEN_FDNAMES cannot carry (an s6 id with ':', a space) is passed as unknown; the rest line up", async () => {
  const broker = await start();
  for (const n of ["unix:/run/app.sock", "two words", "b"])
    expect((await fdbroker(["put", n, "-s", broker.sock], { stdin: Bun.file("/etc/hostname") })).code).toBe(0);
  const r = await fdbroker(["get", "unix:/run/app.sock", "two words", "b", "-s", broker.sock, "--", "sh", "-c", 'echo "$LISTEN_FDS $LISTEN_FDNAMES"']);
  expect(r).toMatchObject({ code: 0, stdout: "3 unknown:unknown:b\n" });
});

test("--stdin puts the first fd at 0; --as picks numbers", async () => {
  // Separate entries: every copy of an fd shares one file offset, so a file read once is at its end for all.
  const b = await withFiles(["a", "b", "c"]);
  const r1 = await fdbroker(["get", "a", "-s", b.sock, "--stdin", "--", "cat"]);
  expect(r1.stdout).toBe("contents of a\n");
  const r2 = await fdbroker(["get", "b", "c", "-s", b.sock, "--as", "7", "--as", "5", "--", "sh", "-c", "cat <&5; cat <&7"]);
  expect(r2.stdout).toBe("contents of c\ncontents of b\n");
});

test("--all, --rm, missing entries (exit 1), usage errors (exit 2)", async () => {
  const b = await withFiles(["a", "b", "c"]);
  const all = JSON.parse((await fdbroker(["get", "--all", "--json", "-s", b.sock])).stdout);
  expect(all[0].fds.map((f: { name: string }) => f.name)).toEqual(["a", "b", "c"]);
  expect((await fdbroker(["get", "b", "--rm", "--cat", "-s", b.sock])).stdout).toBe("contents of b\n");
  const missing = await fdbroker(["get", "a", "b", "-s", b.sock]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('no entry "b"');
  expect((await fdbroker(["get", "-s", b.sock])).code).toBe(2);
  expect((await fdbroker(["get", "a", "--stdin", "-s", b.sock])).code).toBe(2);
  expect((await fdbroker(["get", "a", "-s", join(b.dir, "nobody.sock")])).code).toBe(3);
});

// `get ... -- CMD` in its plain forms skips commander (src/cli/get-fast.ts); other forms go through it. Both must
// behave as one command.
test("get -- CMD: plain and full forms agree on placement, --rm and errors", async () => {
  // Each file is read once: every copy of an fd shares one file offset.
  const b = await withFiles(["a", "b", "c", "d"]);
  const placed = await fdbroker(["get", "-s", b.sock, "b", "--as", "5", "--stdin", "a", "--", "sh", "-c", "cat; cat <&5"]);
  expect(placed).toMatchObject({ code: 0, stdout: "contents of b\ncontents of a\n" });
  const viaEquals = await fdbroker(["get", `--socket=${b.sock}`, "d", "--", "sh", "-c", "cat <&3"]);
  expect(viaEquals).toMatchObject({ code: 0, stdout: "contents of d\n" });
  expect((await fdbroker(["get", "-s", b.sock, "--rm", "c", "--", "true"])).code).toBe(0);
  const gone = await fdbroker(["get", "-s", b.sock, "c", "--", "true"]);
  expect(gone.code).toBe(1);
  expect(gone.stderr).toContain('no entry "c"');
  const clash = await fdbroker(["get", "-s", b.sock, "a", "b", "--as", "4", "--as", "4", "--", "true"]);
  expect(clash.code).toBe(2);
  expect(clash.stderr).toContain("two fds placed at the same number");
  const unknown = await fdbroker(["get", "-s", b.sock, "--bogus", "a", "--", "true"]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("--bogus");
  expect((await fdbroker(["get", "-s", b.sock, "--", "true"])).code).toBe(2);
  expect((await fdbroker(["get", "-s", join(b.dir, "nobody.sock"), "a", "--", "true"])).code).toBe(3);
});
