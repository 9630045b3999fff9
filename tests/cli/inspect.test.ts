// `fdbroker inspect`: exactly the fds fdbroker inherited (not the runtime's own), or another process's, also
// while that process opens and closes fds or exits under it (issue 8, finding 14).
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { closeAll, pipe } from "../../src/sys/index.ts";
import { CLI, fdbroker, fdSnapshot, finish, lineReader, newFdsSince, spawn, tempDir } from "../helpers.ts";

setDefaultTimeout(60000);
let before: string[];
beforeEach(() => {
  before = fdSnapshot();
});
afterEach(async () => {
  expect(await newFdsSince(before)).toEqual([]);
});

test("with no arguments: the inherited fds, and none of the runtime's event-loop fds", async () => {
  const file = openSync("/etc/hostname", "r");
  const [pr, pw] = pipe();
  try {
    const r = await fdbroker(["inspect", "--json"], { stdio: ["ignore", "pipe", "pipe", file, pr, pw] });
    expect(r.code).toBe(0);
    const ds = JSON.parse(r.stdout);
    expect(ds.map((d: { fd: number }) => d.fd)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ds.map((d: { kind: string }) => d.kind)).toEqual(["chardev", "socket", "socket", "file", "pipe", "pipe"]); // Bun.spawn pipes stdout and stderr through socketpairs
    expect(ds[3]).toMatchObject({ path: "/etc/hostname", access: "r" });
    expect(ds[5]).toMatchObject({ access: "w" });
  } finally {
    closeSync(file);
    closeAll([pr, pw]);
  }
});

test("named fds only, as a table; a closed one is a usage error", async () => {
  const file = openSync("/etc/hostname", "r");
  try {
    const r = await fdbroker(["inspect", "3"], { stdio: ["ignore", "pipe", "pipe", file] });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^FD\s+KIND\s+ACCESS\s+OFFSET\s+INODE\s+WHAT\n3\s+file\s+r( cloexec)?\s+0\s+\d+\s+\/etc\/hostname\n$/);
  } finally {
    closeSync(file);
  }
  const bad = await fdbroker(["inspect", "250"]);
  expect(bad).toMatchObject({ code: 2, stderr: "fdbroker: fd 250 is not open\n" });
  expect((await fdbroker(["inspect", "x"])).code).toBe(2);
});

test("--pid: another process's fds through /proc, sockets included", async () => {
  const py = spawn(["python3", "-c", `
import socket, sys, os
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
print(t.fileno(), t.getsockname()[1], flush=True)
sys.stdin.read()`], { stdin: "pipe" });
  const [fd, port] = (await lineReader(py.stdout as ReadableStream<Uint8Array>).line()).split(" ");
  const r = await fdbroker(["inspect", "--pid", String(py.pid), "--json"]);
  expect(r.code).toBe(0);
  const ds = JSON.parse(r.stdout);
  expect(ds.find((d: { fd: number }) => d.fd === Number(fd)).socket).toEqual({
    family: "inet", type: "stream", local: `127.0.0.1:${port}`, peer: null,
    localAddress: { host: "127.0.0.1", port: Number(port) }, peerAddress: null, listening: true,
    state: "LISTEN", recvQ: 0, sendQ: 0, fdsInFlight: null, peerInode: null, peers: null,
  });
  const one = await fdbroker(["inspect", "--pid", String(py.pid), fd!]);
  expect(one.stdout).toMatch(new RegExp(`^FD.*\\n${fd}\\s+socket\\s+rw( cloexec)?\\s+-\\s+\\d+\\s+0\\s+0\\s+-\\s+LISTEN\\s+inet stream listening 127\\.0\\.0\\.1:${port}\\n$`));
  (py.stdin as import("bun").FileSink).end();
  await py.exited;
  expect((await fdbroker(["inspect", "--pid", "99999999"])).stderr).toBe("fdbroker: no process 99999999\n");
  expect((await fdbroker(["inspect", "--pid", "0"])).code).toBe(2);
});

test("bad numbers, options and fds alike, are one usage error naming what was given (exit 2)", async () => {
  // One parser for every integer option: recv and send said it in commander's words, serve and put in ours.
  for (const [args, line] of [
    [["inspect", "--pid", "0"], 'bad --pid "0": expected an integer >= 1'],
    [["inspect", "x"], 'bad fd "x": expected an integer >= 0'],
    [["recv", "/nonexistent/s", "-n", "x"], 'bad --count "x": expected an integer >= 1'],
    [["send", "/nonexistent/s", "--fd", "-1"], 'bad --fd "-1": expected an integer >= 0'],
    [["put", "x", "--fd", "-1"], 'bad --fd "-1": expected an integer >= 0'],
  ] as const)
    expect(await fdbroker([...args])).toMatchObject({ code: 2, stderr: `fdbroker: ${line}\n` });
});

test("a stdout nobody reads (closed pipe) ends the command as SIGPIPE would: status 141, nothing on stderr", async () => {
  const [r, w] = pipe();
  closeAll([r]);
  try {
    const res = await fdbroker(["inspect", "--json"], { stdio: ["ignore", w, "pipe"] });
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 141, stderr: "" });
  } finally {
    closeAll([w]);
  }
});

test("cloexec on inherited fds is marked as the runtime's doing: cloexec* in the table, cloexecByRuntime in JSON", async () => {
  const file = openSync("/etc/hostname", "r");
  try {
    const stdio = ["ignore", "pipe", "pipe", file, file] as const;
    const ds = JSON.parse((await fdbroker(["inspect", "--json"], { stdio: [...stdio] })).stdout);
    // An fd marked close-on-exec is never inherited, so every inherited one that has the flag now got it here.
    for (const d of ds) expect({ fd: d.fd, byRuntime: d.cloexecByRuntime === true }).toEqual({ fd: d.fd, byRuntime: d.flags.includes("cloexec") });
    expect(ds.find((d: { fd: number }) => d.fd === 4)).toMatchObject({ cloexecByRuntime: true }); // Bun marks 4 and up
    const r = await fdbroker(["inspect", "3", "4"], { stdio: [...stdio] });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[1]).toMatch(/^3\s+file\s+r\s+0\s/);
    expect(lines[2]).toMatch(/^4\s+file\s+r cloexec\*\s+0\s/);
    expect(lines[3]).toStartWith("* close-on-exec set by the runtime (Bun) at start-up, not by the launcher");
    expect(lines).toHaveLength(4);
  } finally {
    closeSync(file);
  }
});

test("--pid on a process that keeps opening and closing fds: 20 runs, each exit 0, closed fds marked gone, no row mixing two files", async () => {
  const dir = tempDir();
  try {
    const [a, b] = [join(dir.path, "a"), join(dir.path, "b")];
    writeFileSync(a, "a");
    writeFileSync(b, "b");
    const ino = { [a]: statSync(a).ino, [b]: statSync(b).ino };
    const churn = spawn(["python3", "-c", `
import os, sys
a, b = sys.argv[1], sys.argv[2]
print(os.open(a, os.O_RDONLY), flush=True)
while True:
    fds = [os.open(a if i % 2 else b, os.O_RDONLY) for i in range(100)]
    r, w = os.pipe()
    for f in fds: os.close(f)
    os.close(r); os.close(w)`, a, b]);
    const kept = Number(await lineReader(churn.stdout as ReadableStream<Uint8Array>).line());
    let gone = 0;
    for (let run = 0; run < 20; run++) {
      const r = await fdbroker(["inspect", "--pid", String(churn.pid), "--json"]);
      expect({ run, code: r.code, stderr: r.stderr }).toEqual({ run, code: 0, stderr: "" });
      const ds: { fd: number; kind: string; path: string | null; inode: number | null }[] = JSON.parse(r.stdout);
      expect(ds.find((d) => d.fd === kept)).toMatchObject({ kind: "file", path: a, inode: ino[a] });
      for (const d of ds) {
        if (d.kind === "gone") gone++;
        // Closed and reopened between two reads, an fd must not come out as one file's path with the other's inode.
        else if (d.path === a || d.path === b) expect({ fd: d.fd, path: d.path, inode: d.inode }).toEqual({ fd: d.fd, path: d.path, inode: ino[d.path]! });
      }
    }
    const table = await fdbroker(["inspect", "--pid", String(churn.pid)]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^FD\s+KIND\s+ACCESS\s+OFFSET\s+INODE\s+RECV-Q\s+SEND-Q\s+INFLIGHT\s+STATE\s+WHAT\s+PEER\n/);
    console.log(`churning process: ${gone} fds seen gone in 20 runs`);
  } finally {
    dir.cleanup();
  }
});

test("--pid on a process that exits mid-way: exit 3 and one line, never a partial table with exit 0", async () => {
  // Where the kill lands in inspect's reading depends on the machine's load, so it moves until it lands mid-way:
  // later after an inspect that found no process yet (exit 2), earlier after one that read everything (exit 0).
  // Every outcome on the way is checked.
  const holder = `
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 5000)), hard))
fds = [os.open("/etc/hostname", os.O_RDONLY) for _ in range(4000)]
print(len(os.listdir("/proc/self/fd")) - 1, flush=True)
sys.stdin.read()`;
  let [early, late] = [0, 3000];
  const outcomes: number[] = [];
  while (!outcomes.includes(3) && outcomes.length < 30) {
    const target = spawn(["python3", "-c", holder], { stdin: "pipe" });
    const open = Number(await lineReader(target.stdout as ReadableStream<Uint8Array>).line());
    const delay = (early + late) / 2;
    const inspect = spawn([...CLI, "inspect", "--pid", String(target.pid), "--json"]);
    await Bun.sleep(delay);
    target.kill("SIGKILL");
    await target.exited;
    const r = await finish(inspect);
    outcomes.push(r.code);
    if (r.code === 2) {
      expect(r.stderr).toBe(`fdbroker: no process ${target.pid}\n`);
      early = delay;
    } else if (r.code === 0) {
      const ds = JSON.parse(r.stdout);
      expect({ described: ds.length, gone: ds.filter((d: { kind: string }) => d.kind === "gone").length }).toEqual({ described: open, gone: 0 });
      late = delay;
    } else {
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 3, stdout: "" });
      expect(r.stderr).toMatch(new RegExp(`^fdbroker: readlink: ESRCH \\(/proc/${target.pid}/fd\\): process ${target.pid} exited while its fds were being read \\(\\d+ of ${open} read\\)\\n$`));
    }
  }
  console.log(`exit codes while moving the kill: ${outcomes.join(" ")}`);
  expect(outcomes).toContain(3);
});
