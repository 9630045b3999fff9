// `fdbroker inspect` names the other end of a socket (issue 12): the process and fd holding a UNIX socket's peer
// (sock_diag, then /proc), queue lengths, fds in flight, TCP state and netlink protocols, against real Python
// processes; and `--holders FD` / `--inode N`, which tell a shared open file description (kcmp) from the same file.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { C, closeAll, encodeInet, socket, socketpair, write, bind, listen, sockName, connect } from "../../src/sys/index.ts";
import { fdbroker, fdSnapshot, lineReader, newFdsSince, spawn, tempDir } from "../helpers.ts";

setDefaultTimeout(60000);
// The system's own interpreter starts in a fraction of a version manager's shim's time.
const PY = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

let before: string[];
beforeEach(() => {
  before = fdSnapshot();
});
afterEach(async () => {
  expect(await newFdsSince(before)).toEqual([]);
});

/** A Python process running `script` that reports on stdout and runs until its stdin closes (forked children too). */
function python(script: string, ...args: string[]) {
  const proc = spawn([PY, "-c", script, ...args], { stdin: "pipe" });
  const lines = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  return {
    pid: proc.pid,
    line: async () => (await lines.line()).split(" ").map(Number),
    async end() {
      (proc.stdin as import("bun").FileSink).end();
      await proc.exited;
    },
  };
}

interface Sock {
  family: string;
  type: string;
  protocol?: string;
  state: string | null;
  recvQ: number | null;
  sendQ: number | null;
  fdsInFlight: number | null;
  peerInode: number | null;
  peers: { pid: number; fd: number; command: string }[] | null;
}
interface Desc {
  fd: number;
  inode: number;
  socket: Sock | null;
  details: Record<string, unknown>;
}

async function inspect(args: string[], opts = {}): Promise<Desc[]> {
  const r = await fdbroker(["inspect", ...args, "--json"], opts);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return JSON.parse(r.stdout);
}
const byFd = (ds: Desc[], fd: number) => ds.find((d) => d.fd === fd)!;

test("inspect --pid of one end of a socketpair shared with a forked child names the child; Recv-Q counts unread bytes", async () => {
  const py = python(`
import os, socket, sys
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    a.close()
    sys.stdin.read()
    os._exit(0)
kept = b.fileno()
b.close()
a.sendall(b"12345")
print(a.fileno(), pid, kept, flush=True)
sys.stdin.read()
os.waitpid(pid, 0)`);
  try {
    const [fd, child, childFd] = (await py.line()) as [number, number, number];
    const mine = byFd(await inspect(["--pid", String(py.pid)]), fd).socket!;
    expect(mine).toMatchObject({ family: "unix", type: "stream", recvQ: 0, fdsInFlight: 0, peers: [{ pid: child, fd: childFd, command: "python3" }] });
    expect(mine.sendQ).toBeGreaterThan(0); // the 5 bytes, in buffer memory, until the child reads them
    const theirs = byFd(await inspect(["--pid", String(child), String(childFd)]), childFd).socket!;
    expect(theirs).toMatchObject({ recvQ: 5, peerInode: byFd(await inspect(["--pid", String(py.pid), String(fd)]), fd).inode });
    const table = await fdbroker(["inspect", "--pid", String(py.pid), String(fd)]);
    expect(table.stdout).toMatch(/^FD\s+KIND\s+ACCESS\s+OFFSET\s+INODE\s+RECV-Q\s+SEND-Q\s+INFLIGHT\s+STATE\s+WHAT\s+PEER\n/);
    expect(table.stdout.split("\n")[1]).toMatch(new RegExp(`^${fd}\\s+socket\\s+rw.*\\s0\\s+\\d+\\s+0\\s+-\\s+unix stream \\(unnamed\\)\\s+-> ${child}/${childFd} python3$`));
  } finally {
    await py.end();
  }
});

test("a connected UNIX stream across two processes: each end names the other's pid and fd; a listener's queue and backlog", async () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, "s.sock");
    const server = python(`
import socket, sys
l = socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen(7)
print(l.fileno(), flush=True)
c, _ = l.accept()
print(c.fileno(), flush=True)
sys.stdin.read()`, path);
    let client: ReturnType<typeof python> | undefined;
    try {
      // The client starts once the server listens: connecting earlier would fail.
      const [listener] = await server.line();
      client = python(`
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
t = socket.socket(socket.AF_UNIX); t.connect(sys.argv[1])
print(s.fileno(), t.fileno(), flush=True)
sys.stdin.read()`, path);
      const [s, t] = await client.line();
      const [accepted] = await server.line();
      const clientSide = await inspect(["--pid", String(client.pid)]);
      // The first connection was accepted; the second waits in the listen queue, and its other end gets an inode
      // (and a holder) only when accepted.
      expect(byFd(clientSide, s!).socket!.peers).toEqual([{ pid: server.pid, fd: accepted!, command: "python3" }]);
      expect(byFd(clientSide, t!).socket!).toMatchObject({ peerInode: null, peers: null });
      const serverSide = await inspect(["--pid", String(server.pid)]);
      expect(byFd(serverSide, accepted!).socket!.peers).toEqual([{ pid: client.pid, fd: s!, command: "python3" }]);
      expect(byFd(serverSide, listener!).socket!).toMatchObject({ recvQ: 1, sendQ: 7, peerInode: null, peers: null });
      const table = await fdbroker(["inspect", "--pid", String(client.pid), String(s), String(t)]);
      expect(table.stdout.split("\n").slice(1)).toEqual([
        expect.stringMatching(new RegExp(`^${s}\\s.*unix stream \\(unnamed\\)\\s+-> ${server.pid}/${accepted} python3$`)),
        expect.stringMatching(new RegExp(`^${t}\\s.*unix stream \\(unnamed\\)$`)),
        "",
      ]);
    } finally {
      await client?.end();
      await server.end();
    }
  } finally {
    dir.cleanup();
  }
});

test("fds in flight: scm_fds is a number in JSON (fdsInFlight too) and in the INFLIGHT column; a peer in flight", async () => {
  // c's other end, d, is sent to b and closed: in flight, held by no process, so c's peer shows as its inode.
  const py = python(`
import socket, sys
a, b = socket.socketpair()
c, d = socket.socketpair()
socket.send_fds(a, [b"x"], [0, 1, d.fileno()])
d.close()
print(b.fileno(), c.fileno(), flush=True)
sys.stdin.read()`);
  try {
    const [fd, c] = await py.line();
    const ds = await inspect(["--pid", String(py.pid)]);
    const d = byFd(ds, fd!);
    expect(d.details.scm_fds).toBe(3);
    expect(d.socket).toMatchObject({ fdsInFlight: 3, recvQ: 1 });
    expect(byFd(ds, c!).socket).toMatchObject({ peers: [] });
    expect(byFd(ds, c!).socket!.peerInode).toBeGreaterThan(0);
    const table = await fdbroker(["inspect", "--pid", String(py.pid), String(fd), String(c)]);
    const lines = table.stdout.split("\n");
    expect(lines[1]).toMatch(/\s1\s+\d+\s+3\s+-\s+unix stream/);
    expect(lines[2]).toEndWith(`-> socket:[${byFd(ds, c!).socket!.peerInode}]`);
  } finally {
    await py.end();
  }
});

test("TCP state and queues: LISTEN, ESTABLISHED, unread bytes; for another process and for fdbroker's own fds", async () => {
  const py = python(`
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(3)
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
c.sendall(b"abc")
print(l.fileno(), c.fileno(), a.fileno(), flush=True)
sys.stdin.read()`);
  try {
    const [l, c, a] = await py.line();
    const ds = await inspect(["--pid", String(py.pid)]);
    expect(byFd(ds, l!).socket).toMatchObject({ state: "LISTEN", recvQ: 0 });
    expect(byFd(ds, c!).socket).toMatchObject({ state: "ESTABLISHED" });
    expect(byFd(ds, a!).socket).toMatchObject({ state: "ESTABLISHED", recvQ: 3, peers: null });
    const table = await fdbroker(["inspect", "--pid", String(py.pid), String(a)]);
    expect(table.stdout.split("\n")[1]).toMatch(/\s3\s+0\s+-\s+ESTABLISHED\s+inet stream 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/);
  } finally {
    await py.end();
  }
  // fdbroker's own inherited fds: a listener with a connection waiting, and a socketpair end whose peer is here.
  const lfd = socket(C.AF_INET, "stream");
  const cfd = socket(C.AF_INET, "stream");
  const [p0, p1] = socketpair();
  try {
    bind(lfd, encodeInet("127.0.0.1", 0), "test");
    listen(lfd, 5);
    const at = sockName(lfd) as { port: number };
    connect(cfd, encodeInet("127.0.0.1", at.port), "test", 5000);
    write(p1, new Uint8Array([1, 2]));
    const own = await inspect([], { stdio: ["ignore", "pipe", "pipe", lfd, cfd, p0] });
    expect(byFd(own, 3).socket).toMatchObject({ state: "LISTEN", recvQ: 1 });
    expect(byFd(own, 4).socket).toMatchObject({ state: "ESTABLISHED" });
    expect(byFd(own, 5).socket).toMatchObject({ recvQ: 2, peers: [{ pid: process.pid, fd: p1 }] });
  } finally {
    closeAll([lfd, cfd, p0, p1]);
  }
});

test("netlink sockets by protocol: netlink route, netlink generic (was `other other`)", async () => {
  const py = python(`
import socket, sys
r = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
g = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 16)
# /proc/net/netlink lists a netlink socket once it is bound (sending binds it too).
r.bind((0, 0)); g.bind((0, 0))
print(r.fileno(), g.fileno(), flush=True)
sys.stdin.read()`);
  try {
    const [r, g] = await py.line();
    const ds = await inspect(["--pid", String(py.pid)]);
    expect(byFd(ds, r!).socket).toMatchObject({ family: "netlink", protocol: "route" });
    expect(byFd(ds, g!).socket).toMatchObject({ family: "netlink", protocol: "generic" });
    const table = await fdbroker(["inspect", "--pid", String(py.pid), String(r), String(g)]);
    expect(table.stdout).toMatch(/\snetlink route\n.*\snetlink generic\n$/);
  } finally {
    await py.end();
  }
});

test("--holders FD: a forked child shares the description, a process that opened the same file is marked same-file; --inode N lists all", async () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, "shared");
    writeFileSync(path, "data");
    const ino = statSync(path).ino;
    const parent = python(`
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
pid = os.fork()
if pid == 0:
    sys.stdin.read()
    os._exit(0)
print(fd, pid, flush=True)
sys.stdin.read()
os.waitpid(pid, 0)`, path);
    const other = python(`
import os, sys
print(os.open(sys.argv[1], os.O_RDONLY), flush=True)
sys.stdin.read()`, path);
    try {
      const [fd, child] = await parent.line();
      const [otherFd] = await other.line();
      const r = await fdbroker(["inspect", "--pid", String(parent.pid), "--holders", String(fd), "--json"]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const report = JSON.parse(r.stdout);
      expect(report).toMatchObject({ inode: ino, reference: { pid: parent.pid, fd }, complete: true });
      // The fd asked about comes first, then the others by pid.
      const rows = report.holders.map((h: { pid: number; fd: number; description: number }) => [h.pid, h.fd, h.description]);
      expect(rows[0]).toEqual([parent.pid, fd, 1]);
      expect(rows.slice(1).sort()).toEqual([[child, fd, 1], [other.pid, otherFd, 2]].sort());
      const table = await fdbroker(["inspect", "--pid", String(parent.pid), "--holders", String(fd)]);
      const lines = table.stdout.trimEnd().split("\n");
      expect(lines[0]).toBe(`fd ${fd} of pid ${parent.pid}: ${path} (inode ${ino})`);
      expect(lines[1]).toMatch(/^PID\s+FD\s+COMMAND\s+SHARES\s+WHAT$/);
      const cells = lines.slice(2).map((l) => l.split(/\s{2,}/).slice(0, 4));
      expect(cells[0]).toEqual([String(parent.pid), String(fd), "python3", "(this fd)"]);
      expect(cells.slice(1).sort()).toEqual([
        [String(child), String(fd), "python3", "description"],
        [String(other.pid), String(otherFd), "python3", "file only"],
      ].sort());
      // By inode, descriptions are numbered in pid order: the parent's and child's one, the other process's another.
      const byInode = JSON.parse((await fdbroker(["inspect", "--inode", String(ino), "--json"])).stdout);
      const described = new Map(byInode.holders.map((h: { pid: number; description: number }) => [h.pid, h.description]));
      expect(described.size).toBe(3);
      expect(described.get(parent.pid)).toBe(described.get(child));
      expect(described.get(other.pid)).not.toBe(described.get(child));
      // An inode nobody holds: said on stderr, as ls says "no entries", rather than an empty table.
      const none = await fdbroker(["inspect", "--inode", "999999999999"]);
      expect(none).toMatchObject({ code: 0, stdout: "", stderr: "no process this user may read holds inode 999999999999\n" });
      // Usage errors: an fd the process does not have, a process not running, --holders with FD arguments.
      expect(await fdbroker(["inspect", "--pid", String(parent.pid), "--holders", "250"])).toMatchObject({ code: 2, stderr: `fdbroker: fd 250 is not open in process ${parent.pid}\n` });
      // A pid that is not running is said so, as inspect --pid says it.
      const gone = Bun.spawnSync(["true"]).pid;
      expect(await fdbroker(["inspect", "--pid", String(gone), "--holders", "3"])).toMatchObject({ code: 2, stderr: `fdbroker: no process ${gone}\n` });
      expect(await fdbroker(["inspect", "--holders", "250"])).toMatchObject({ code: 2, stderr: "fdbroker: fd 250 is not open\n" });
      expect((await fdbroker(["inspect", "3", "--holders", "3"])).code).toBe(2);
    } finally {
      await other.end();
      await parent.end();
    }
  } finally {
    dir.cleanup();
  }
});

test("another network namespace: sock_diag does not find the socket, so its peer is unknown (null), not an error", async () => {
  if (!Bun.which("unshare")) return console.log("skipped: unshare missing");
  const py = python(`
import socket, sys
a, b = socket.socketpair()
print(a.fileno(), flush=True)
sys.stdin.read()`);
  try {
    const [fd] = await py.line();
    const r = await Bun.$`unshare -n ${{ raw: process.execPath }} ${join(import.meta.dir, "../../bin/fdbroker")} inspect --pid ${py.pid} ${fd} --json`.nothrow().quiet();
    if (r.exitCode !== 0 && /unshare/.test(r.stderr.toString())) return console.log(`skipped: ${r.stderr.toString().trim()}`);
    expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(r.stdout.toString())[0].socket).toMatchObject({ family: "unix", peerInode: null, peers: null, recvQ: null });
  } finally {
    await py.end();
  }
});

test("a peer's command name is escaped in the table and exact in JSON (any process can name itself a control sequence)", async () => {
  const name = "a\x1b]0;x\x07\nb";
  const py = python(`
import os, socket, sys
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    a.close()
    open("/proc/self/comm", "w").write(sys.argv[1])
    print(os.getpid(), flush=True)
    sys.stdin.read()
    os._exit(0)
b.close()
print(a.fileno(), flush=True)
sys.stdin.read()
os.waitpid(pid, 0)`, name);
  try {
    const first = (await py.line())[0]!;
    const second = (await py.line())[0]!;
    // Parent and child print in either order: the parent's line is the small fd number.
    const [fd, child] = first < second ? [first, second] : [second, first];
    const ds = await inspect(["--pid", String(py.pid), String(fd)]);
    expect(ds[0]!.socket!.peers).toEqual([{ pid: child, fd: expect.any(Number), command: name }]);
    const table = await fdbroker(["inspect", "--pid", String(py.pid), String(fd)]);
    expect(table.stdout.split("\n")).toHaveLength(3);
    expect(table.stdout).toContain(`-> ${child}/`);
    expect(table.stdout).toContain(" a\\x1b]0;x\\x07\\nb\n");
    expect(table.stdout).not.toContain("\x1b");
  } finally {
    await py.end();
  }
});

test("as another uid, a root process holding the other end stays hidden: the peer inode is shown, the process not", async () => {
  const setpriv = Bun.which("setpriv");
  if (!setpriv || process.getuid?.() !== 0) return console.log("skipped: needs root and setpriv");
  // Root keeps one end; a forked child that became uid 65534 keeps the other.
  const py = python(`
import os, socket, sys
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    a.close()
    os.setgid(65534); os.setuid(65534)
    # Changing uid makes a process undumpable (its /proc/PID/fd root's); PR_SET_DUMPABLE gives it back.
    import ctypes; ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
    print(os.getpid(), b.fileno(), flush=True)
    sys.stdin.read()
    os._exit(0)
b.close()
sys.stdin.read()
os.waitpid(pid, 0)`);
  try {
    const [child, fd] = await py.line();
    const r = await Bun.$`${setpriv} --reuid 65534 --regid 65534 --clear-groups ${process.execPath} ${join(import.meta.dir, "../../bin/fdbroker")} inspect --pid ${child} ${fd} --json`.nothrow().quiet();
    expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    const s = JSON.parse(r.stdout.toString())[0].socket;
    expect(s.peerInode).toBeGreaterThan(0);
    expect(s.peers).toEqual([]); // root's /proc/PID/fd is not this uid's to read
    const asRoot = byFd(await inspect(["--pid", String(child), String(fd)]), fd!).socket!;
    expect(asRoot.peers).toEqual([{ pid: py.pid, fd: expect.any(Number), command: "python3" }]);
  } finally {
    await py.end();
  }
});

test("no sock_diag (qemu-user refuses that netlink protocol): the table as before, peers unknown, one line on stderr, exit 0", async () => {
  const qemu = Bun.which("qemu-x86_64-static") ?? Bun.which("qemu-x86_64");
  if (!qemu || process.arch !== "x64") return console.log("skipped: needs qemu-x86_64 on x86-64");
  const py = python(`
import socket, sys
a, b = socket.socketpair()
print(a.fileno(), flush=True)
sys.stdin.read()`);
  try {
    const [fd] = await py.line();
    const bin = join(import.meta.dir, "../../bin/fdbroker");
    const r = await Bun.$`${qemu} ${process.execPath} ${bin} inspect --pid ${py.pid} ${fd} --json`.nothrow().quiet();
    expect(r.exitCode).toBe(0);
    expect(r.stderr.toString()).toBe("fdbroker: no UNIX socket peers: socket: EPROTONOSUPPORT (AF_NETLINK NETLINK_SOCK_DIAG)\n");
    expect(JSON.parse(r.stdout.toString())[0].socket).toMatchObject({ family: "unix", peerInode: null, peers: null, fdsInFlight: 0 });
  } finally {
    await py.end();
  }
});
