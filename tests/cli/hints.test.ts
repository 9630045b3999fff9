// Common failures get the exit code the table gives for their meaning and a hint with the next step, in one form:
// `fdbroker: SYSCALL: ERRNO (PATH) (what it means; what to do)`.
import { expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, lineReader, run, spawn, tempDir } from "../helpers.ts";
import { asNobody, canSwitchUid } from "../hostile.ts";

setDefaultTimeout(60000);
const startBroker = brokerPerTest();

test("bad names are usage errors before anything is reached; a wrong -s says what is there instead of a socket", async () => {
  const dir = tempDir();
  try {
    const nobody = join(dir.path, "nothing.sock");
    for (const args of [["put", ""], ["rm", "a\u202eb"], ["get", ""]]) {
      const r = await fdbroker([...args, "-s", nobody], { stdin: Bun.file("/dev/null") });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toStartWith("fdbroker: bad entry name");
    }
    writeFileSync(join(dir.path, "file"), "");
    mkdirSync(join(dir.path, "dir"));
    const cases: [string, RegExp][] = [
      [join(dir.path, "file"), /\(.*file is a file, not a socket; is the address right\?\)\n$/],
      [join(dir.path, "dir"), /\(.*dir is a directory, not a socket; is the address right\?\)\n$/],
      [nobody, /\(no socket at that path; is the broker, peer or server running, and the address right\?\)\n$/],
      ["@fdbroker-test-nothing-listens-here", /ECONNREFUSED .*\(nothing listens on that abstract name\)\n$/],
    ];
    for (const [sock, hint] of cases) {
      const r = await fdbroker(["ls", "-s", sock]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(hint);
      expect(r.stderr.split("\n").length).toBe(2);
    }
    const open = await fdbroker(["send", nobody, "--open", `file:${join(dir.path, "missing")}`]);
    expect(open.code).toBe(4);
    expect(open.stderr).toMatch(/ENOENT .*\(no such file; mode=w or mode=a creates it\)\n$/);
    const script = join(dir.path, "no-shebang");
    writeFileSync(script, "echo hi\n");
    chmodSync(script, 0o755);
    const exec = await fdbroker(["exec", "--", script]);
    expect(exec.code).toBe(126);
    expect(exec.stderr).toMatch(/execve: ENOEXEC .*\(not a program this system can run: a script needs a #! line\)\n$/);
    // A file without x permission is there, and says so (it said "no executable there").
    const plain = join(dir.path, "not-executable");
    writeFileSync(plain, "#!/bin/sh\n");
    chmodSync(plain, 0o644);
    const notX = await fdbroker(["exec", "--", plain]);
    expect(notX.code).toBe(126);
    expect(notX.stderr).toMatch(/^fdbroker: execve: EACCES \(.*not-executable\): not executable: no x permission for this user, or on a noexec mount\n$/);
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!canSwitchUid)("connect EACCES on a broker's socket is unreachable (exit 3) and says how to widen it", async () => {
  const b = await startBroker([], { dirMode: 0o755 });
  const r = await run(asNobody([...CLI, "ls", "-s", b.sock, "--broker-uid", "0"]));
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/connect: EACCES .*\(this user may not open that socket; its owner can widen its mode \(a broker's: serve --mode 0660, with --allow rules\)\)\n$/);
});

test("bind EADDRINUSE names the pid holding the address, from /proc: a TCP port (also against a wildcard bind) and a socket file", async () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, "held.sock");
    const py = spawn(["python3", "-c", `
import socket, sys
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
u = socket.socket(socket.AF_UNIX); u.bind(sys.argv[1]); u.listen()
print(t.getsockname()[1], flush=True)
sys.stdin.read()`, path], { stdin: "pipe" });
    const port = Number(await lineReader(py.stdout as ReadableStream<Uint8Array>).line());
    const held = `(held by pid ${py.pid} python3; stop it, or choose another address)\n`;
    for (const host of ["127.0.0.1", "0.0.0.0"]) {
      const r = await fdbroker(["send", "@fdbroker-test-nobody", "--open", `tcp:${host}:${port}`]);
      expect(r.code).toBe(4);
      expect(r.stderr).toBe(`fdbroker: bind: EADDRINUSE (tcp:${host}:${port}) ${held}`);
    }
    const r = await fdbroker(["recv", path]);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(`fdbroker: bind: EADDRINUSE (${path}): another process is listening there ${held}`);
    (py.stdin as import("bun").FileSink).end();
    await py.exited;
  } finally {
    dir.cleanup();
  }
});

test("get --cat of a listening socket or a directory: exit 2, one line naming the entry (not an fd of ours) and what to do instead", async () => {
  const b = await startBroker(["--hold", "web=tcp:127.0.0.1:0", "--hold", "dir=file:/tmp"]);
  const web = await fdbroker(["get", "web", "--cat", "-s", b.sock]);
  expect(web.code).toBe(2);
  expect(web.stderr).toBe('fdbroker: --cat reads files, pipes and connected sockets; entry "web" is a listening socket (hand it to a server: fdbroker get NAME -- CMD)\n');
  const dir = await fdbroker(["get", "dir", "--cat", "-s", b.sock]);
  expect(dir.code).toBe(2);
  expect(dir.stderr).toContain('entry "dir" is a directory');
});
