// Python's socket.send_fds / recv_fds as the reference SCM_RIGHTS peer, on both sides of fdbroker.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { close, pipe, write } from "../../src/sys/index.ts";
import { fdbroker, lineReader, ROOT, run, spawn } from "../helpers.ts";
import { startReady, tempDirAndFdCheck } from "../cli/peer-helpers.ts";

setDefaultTimeout(120000);
const PEER = join(ROOT, "tests/interop/peer.py");
const REPORT = join(ROOT, "tests/fixtures/fd_report.py");

const ctx = tempDirAndFdCheck();

/** Start the Python receiver listening; resolve with a function awaiting its JSON report. */
async function startPythonRecv(addr: string, args: string[] = []) {
  const proc = spawn(["python3", PEER, "recv", addr, "--listen", ...args]);
  const out = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  expect(await out.line()).toBe("ready");
  return async () => {
    const [text, code] = await Promise.all([out.rest(), proc.exited]);
    expect(code).toBe(0);
    return JSON.parse(text);
  };
}

test("Python sender -> fdbroker recv: a file, a pipe and a TCP listener, described as they are", async () => {
  const addr = join(ctx.dir.path, "r.sock");
  const r = startReady(["recv", addr, "--json"]);
  const py = await run(["python3", PEER, "send", addr, "--data", "from python", "file:/etc/hostname", "pipe:hi", "tcp"]);
  expect(py.code).toBe(0);
  const sent = JSON.parse(py.stdout).sent;
  const { stdout, code, stderr } = await r.result();
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const [msg] = JSON.parse(stdout);
  expect(msg.payload).toEqual({ text: "from python" });
  expect(msg.fds.map((f: { kind: string }) => f.kind)).toEqual(["file", "pipe", "socket"]);
  expect(msg.fds[0]).toMatchObject({ id: 0, path: "/etc/hostname", access: "r", offset: 0, inode: sent[0].ino });
  expect(msg.fds[1]).toMatchObject({ id: 1, access: "r", inode: sent[1].ino });
  expect(msg.fds[2].socket).toEqual({
    family: "inet", type: "stream", local: `127.0.0.1:${sent[2].sockname[1]}`, peer: null,
    localAddress: { host: "127.0.0.1", port: sent[2].sockname[1] }, peerAddress: null, listening: true,
  });
  expect(existsSync(addr)).toBe(false); // recv removed the socket file it created
});

test("fdbroker send -> Python receiver: an inherited pipe, a file and a TCP listener opened by spec", async () => {
  const addr = join(ctx.dir.path, "p.sock");
  const report = await startPythonRecv(addr);
  const [pr, pw] = pipe();
  write(pw, new TextEncoder().encode("through the pipe"));
  close(pw);
  const sent = await fdbroker(["send", addr, "--fd", "3", "--open", "file:/etc/hostname", "--open", "tcp:127.0.0.1:0", "--data", "hello"], {
    stdio: ["ignore", "pipe", "pipe", pr],
  });
  close(pr);
  expect(sent.stderr).toBe("");
  expect(sent.code).toBe(0);
  const got = await report();
  expect(got.payload).toBe("hello");
  expect(got.truncated).toBe(false);
  expect(got.fds).toHaveLength(3);
  expect(got.fds[0].content).toBe("through the pipe");
  expect(got.fds[1].target).toBe("/etc/hostname");
  expect(got.fds[2]).toMatchObject({ listening: true });
  expect(got.fds[2].sockname[0]).toBe("127.0.0.1");
});

test("253 fds in one Python message arrive as one message", async () => {
  const addr = `@fdbroker-test-${process.pid}-253`;
  const r = startReady(["recv", addr, "--json"]);
  const py = await run(["python3", PEER, "send", addr, "null:253"]);
  expect(py.code).toBe(0);
  const { stdout, code } = await r.result();
  expect(code).toBe(0);
  const msgs = JSON.parse(stdout);
  expect(msgs).toHaveLength(1);
  expect(msgs[0].fds).toHaveLength(253);
  expect(msgs[0].fds.every((f: { path: string }) => f.path === "/dev/null")).toBe(true);
});

test("600 fds in one fdbroker send reach Python in messages of at most 253, and back the other way", async () => {
  const addr = join(ctx.dir.path, "600.sock");
  const report = await startPythonRecv(addr);
  const args = Array.from({ length: 600 }, () => ["--open", "file:/dev/null"]).flat();
  const sent = await fdbroker(["send", addr, ...args, "--data", "six hundred"]);
  expect(sent.stderr).toBe("");
  expect(sent.code).toBe(0);
  const got = await report();
  expect(got.fds).toHaveLength(600);
  expect(got.truncated).toBe(false);
  expect(got.payload.replace(/\0/g, "")).toBe("six hundred");

  const addr2 = join(ctx.dir.path, "600b.sock");
  const r = startReady(["recv", addr2, "--json"]);
  const py = await run(["python3", PEER, "send", addr2, "--chunk", "253", "null:600"]);
  expect(py.code).toBe(0);
  const { stdout, code } = await r.result();
  expect(code).toBe(0);
  const msgs = JSON.parse(stdout);
  expect(msgs.map((m: { fds: unknown[] }) => m.fds.length)).toEqual([253, 253, 94]);
});

test("a Python sender exceeding recv's limit: MSG_CTRUNC, everything closed, exit 4", async () => {
  const addr = join(ctx.dir.path, "trunc.sock");
  const r = startReady(["recv", addr, "--max-fds", "5"]);
  const py = await run(["python3", PEER, "send", addr, "null:20"]);
  expect(py.code).toBe(0);
  const { stdout, stderr, code } = await r.result();
  expect(code).toBe(4);
  expect(stdout).toBe("");
  expect(stderr).toMatch(/^fdbroker: recvmsg: ENOBUFS .*limit of 5 fds.*closed\n$/);
});

test("recv -- CMD: the child keeps fdbroker's pid, sees LISTEN_* and exactly 0, 1, 2 and the passed fds", async () => {
  const addr = join(ctx.dir.path, "exec.sock");
  const r = startReady(["recv", addr, "--names", "--", "python3", REPORT, "--check"]);
  const py = await run(["python3", PEER, "send", addr, "--data", "conf:data:web", "file:/etc/hostname", "pipe:x", "tcp"]);
  expect(py.code).toBe(0);
  const { stdout, stderr, code } = await r.result();
  const rep = JSON.parse(stdout);
  expect(rep.problems).toEqual([]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  expect(rep.pid).toBe(r.proc.pid);
  expect(rep.env).toEqual({ LISTEN_FDS: "3", LISTEN_PID: String(r.proc.pid), LISTEN_FDNAMES: "conf:data:web" });
  expect(Object.keys(rep.fds)).toEqual(["0", "1", "2", "3", "4", "5"]);
  expect(rep.fds["3"]).toBe("/etc/hostname");
  expect(rep.fds["4"]).toMatch(/^pipe:/);
  expect(rep.sockets["5"]).toMatchObject({ family: "AF_INET", listening: true });
});
