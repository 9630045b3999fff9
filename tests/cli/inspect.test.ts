// `fdbroker inspect`: exactly the fds fdbroker inherited (not the runtime's own), or another process's.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { closeAll, pipe } from "../../src/sys/index.ts";
import { fdbroker, fdSnapshot, lineReader, newFdsSince, spawn } from "../helpers.ts";

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
  expect(ds.find((d: { fd: number }) => d.fd === Number(fd)).socket).toEqual({ family: "inet", type: "stream", local: `127.0.0.1:${port}`, peer: null, listening: true });
  const one = await fdbroker(["inspect", "--pid", String(py.pid), fd!]);
  expect(one.stdout).toMatch(new RegExp(`^FD.*\\n${fd}\\s+socket\\s+rw( cloexec)?\\s+-\\s+\\d+\\s+inet stream listening 127\\.0\\.0\\.1:${port}\\n$`));
  (py.stdin as import("bun").FileSink).end();
  await py.exited;
  expect((await fdbroker(["inspect", "--pid", "99999999"])).stderr).toBe("fdbroker: no process 99999999\n");
  expect((await fdbroker(["inspect", "--pid", "0"])).code).toBe(2);
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
