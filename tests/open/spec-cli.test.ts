// Every SPEC kind and parameter through the commands that take SPECs (exec --listen, send --open, put --open,
// serve --hold), seen by a real program that gets the fds (tests/fixtures/spec_probe.py), and by real clients.
import { expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { openSpec } from "../../src/open/spec.ts";
import { C, close, closeAll, connect, encodeInet, encodeUnix, sockName, socket, write } from "../../src/sys/index.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, lineReader, ROOT, run, spawn, spawnReady, tempDir } from "../helpers.ts";
import { asNobody, canSwitchUid, PY, SKIP_REASON } from "../hostile.ts";

setDefaultTimeout(60000);
const PROBE = join(ROOT, "tests/fixtures/spec_probe.py");
const NOBODY = 65534;
const startBroker = brokerPerTest();

/** A program started with fds from a SPEC: its first line describes them, then one line per action. */
function probing(proc: ReturnType<typeof spawn>) {
  const lines = lineReader(proc.stdout as ReadableStream<Uint8Array>);
  return {
    report: async (): Promise<Record<string, Record<string, unknown>>> => JSON.parse((await lines.next(/^\{.*\}$/))[0]),
    next: async (): Promise<Record<string, unknown>> => JSON.parse((await lines.next(/^\{.*\}$/))[0]),
  };
}

/** Connected client sockets, closed at the end of the test. */
function clients() {
  const fds: number[] = [];
  return {
    connect(family: number, type: "stream" | "dgram" | "seqpacket", addr: Uint8Array, label: string): number {
      const fd = socket(family, type);
      fds.push(fd);
      connect(fd, addr, label, 10000);
      return fd;
    },
    [Symbol.dispose]: () => closeAll(fds),
  };
}

test("exec: tcp:[::]:P?v6only=1 and tcp:0.0.0.0:P both bind, each answering its family; a bare tcp:PORT answers both", async () => {
  using c = clients();
  // A port free on both families: what a dual-stack socket was given, released again.
  const held = openSpec("tcp:0");
  const port = (sockName(held) as { port: number }).port;
  close(held);
  const proc = spawn([...CLI, "exec", "--listen", `v6=tcp:[::]:${port}?v6only=1`, "--listen", `v4=tcp:0.0.0.0:${port}`, "--listen", "any=tcp:0",
    "--", PY, PROBE, "accept:3", "accept:4", "accept:5", "accept:5"]);
  const probe = probing(proc);
  const fds = await probe.report();
  expect(fds["3"]).toMatchObject({ family: "AF_INET6", address: ["::", port], listening: true, v6only: 1, nonblocking: false });
  expect(fds["4"]).toMatchObject({ family: "AF_INET", address: ["0.0.0.0", port], listening: true });
  const any = (fds["5"]!.address as [string, number])[1];
  expect(fds["5"]).toMatchObject({ family: "AF_INET6", address: ["::", any], v6only: 0 });
  c.connect(C.AF_INET6, "stream", encodeInet("::1", port), "v6");
  c.connect(C.AF_INET, "stream", encodeInet("127.0.0.1", port), "v4");
  c.connect(C.AF_INET, "stream", encodeInet("127.0.0.1", any), "any v4");
  c.connect(C.AF_INET6, "stream", encodeInet("::1", any), "any v6");
  const peers = [await probe.next(), await probe.next(), await probe.next(), await probe.next()].map((a) => [a.fd, (a.peer as string[])[0]]);
  expect(peers.slice(0, 2)).toEqual([[3, "::1"], [4, "127.0.0.1"]]);
  expect(peers.slice(2).sort()).toEqual([[5, "::1"], [5, "::ffff:127.0.0.1"]]);
  expect(await proc.exited).toBe(0);
});

test("put --open: reuseport lets two listeners share a port, freebind binds addresses no interface has; get -- sees both", async () => {
  const broker = await startBroker();
  const put = async (name: string, spec: string) => {
    const r = await fdbroker(["put", name, "--open", spec, "--json", "-s", broker.sock]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    return JSON.parse(r.stdout).what as string;
  };
  const port = Number(/:(\d+)$/.exec(await put("a", "tcp:127.0.0.1:0?reuseport"))![1]);
  await put("b", `tcp:127.0.0.1:${port}?reuseport=1`);
  // 192.0.2.0/24 and 2001:db8::/32 are documentation ranges: no interface here has them.
  await put("c", "tcp:192.0.2.7:0?freebind");
  await put("d", "udp:[2001:db8::7]:0?freebind&v6only=1");
  const taken = await fdbroker(["put", "x", "--open", `tcp:127.0.0.1:${port}`, "-s", broker.sock]);
  expect(taken.code).toBe(4);
  expect(taken.stderr).toStartWith(`fdbroker: bind: EADDRINUSE (tcp:127.0.0.1:${port})`);
  const unbound = await fdbroker(["put", "x", "--open", "tcp:192.0.2.7:0", "-s", broker.sock]);
  expect(unbound.code).toBe(4);
  expect(unbound.stderr).toStartWith("fdbroker: bind: EADDRNOTAVAIL (tcp:192.0.2.7:0)");
  const got = await fdbroker(["get", "a", "b", "c", "d", "-s", broker.sock, "--", PY, PROBE]);
  expect(got.code).toBe(0);
  const fds = JSON.parse(got.stdout);
  expect([fds["3"], fds["4"]]).toMatchObject([{ address: ["127.0.0.1", port], reuseport: 1 }, { address: ["127.0.0.1", port], reuseport: 1 }]);
  expect(fds["5"]).toMatchObject({ family: "AF_INET", type: "stream", address: ["192.0.2.7", expect.any(Number)], freebind: 1, reuseport: 0 });
  expect(fds["6"]).toMatchObject({ family: "AF_INET6", type: "dgram", address: ["2001:db8::7", expect.any(Number)], freebind: 1, v6only: 1 });
});

test("send --open: unix-seqpacket listens and takes messages; backlog=2 queues 3 connections, the default 4096 many", async () => {
  const dir = tempDir();
  try {
    const addr = join(dir.path, "drop.sock");
    const seq = join(dir.path, "seq.sock");
    const recv = spawnReady([...CLI, "recv", addr, "--ready-fd", "3", "--", PY, PROBE, "connects:4", "connects:5", "recv:3"]).proc;
    const probe = probing(recv);
    const sent = await fdbroker(["send", addr, "--open", `unix-seqpacket:${seq}`, "--open", `unix:${dir.path}/small?backlog=2`,
      "--open", `unix:${dir.path}/big`]);
    expect(sent).toMatchObject({ code: 0, stderr: "" });
    const fds = await probe.report();
    expect(fds["3"]).toMatchObject({ family: "AF_UNIX", type: "seqpacket", listening: true, address: seq, nonblocking: false });
    expect(await probe.next()).toEqual({ fd: 4, queued: 3 });
    expect(await probe.next()).toEqual({ fd: 5, queued: 100 });
    using c = clients();
    const client = c.connect(C.AF_UNIX, "seqpacket", encodeUnix(seq), seq);
    write(client, new TextEncoder().encode("one record"));
    expect(await probe.next()).toEqual({ fd: 3, data: "one record" });
    expect(await recv.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});

test("exec --listen unix-dgram: bound, not listening, and the program reads what a client sends to the path", async () => {
  const dir = tempDir();
  try {
    const log = join(dir.path, "log");
    const proc = spawn([...CLI, "exec", "--listen", `log=unix-dgram:${log}?mode=0622`, "--", PY, PROBE, "recv:3"]);
    const probe = probing(proc);
    expect((await probe.report())["3"]).toMatchObject({ family: "AF_UNIX", type: "dgram", listening: false, address: log, nonblocking: false });
    expect(lstatSync(log).mode & 0o777).toBe(0o622);
    using c = clients();
    write(c.connect(C.AF_UNIX, "dgram", encodeUnix(log), log), new TextEncoder().encode("<13>hello syslog"));
    expect(await probe.next()).toEqual({ fd: 3, data: "<13>hello syslog" });
    expect(await proc.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});

test("serve --hold fifo: made with its mode; a writer never blocks, the reader never sees end of file", async () => {
  const dir = tempDir();
  try {
    const fifo = join(dir.path, "in");
    const broker = await startBroker(["--hold", `log=fifo:${fifo}?mode=0620&group=nogroup`]);
    const st = lstatSync(fifo);
    expect([st.isFIFO(), st.mode & 0o777, st.gid]).toEqual([true, 0o620, NOBODY]);
    // Opening a FIFO for writing waits for a reader: the broker's read-write fd is one, so this returns at once.
    expect(await run(["sh", "-c", `echo hello > ${fifo}`])).toMatchObject({ code: 0 });
    const got = await fdbroker(["get", "log", "-s", broker.sock, "--", PY, PROBE, "recv:3"]);
    expect(got.code).toBe(0);
    const [report, read] = got.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(report["3"]).toMatchObject({ kind: "fifo", access: C.O_RDWR, nonblocking: true });
    // The writer has gone: no POLLHUP and no end of file, only "nothing yet".
    expect(read).toEqual({ fd: 3, data: "hello\n", events: [], then: "EAGAIN" });
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!canSwitchUid)(`serve --hold unix: 0600 by default; owner and group let another uid connect (${SKIP_REASON})`, async () => {
  const dir = tempDir();
  try {
    chmodSync(dir.path, 0o755);
    const path = (n: string) => join(dir.path, n);
    await startBroker(["--hold", `a=unix:${path("a")}`, "--hold", `b=unix:${path("b")}?owner=nobody`,
      "--hold", `g=unix:${path("g")}?mode=0660&group=${NOBODY}`, "--hold", "@=unix:@fdbroker-spec-cli-abstract"]);
    const owner = (n: string) => [lstatSync(path(n)).mode & 0o777, lstatSync(path(n)).uid, lstatSync(path(n)).gid];
    expect([owner("a"), owner("b"), owner("g")]).toEqual([[0o600, 0, 0], [0o600, NOBODY, 0], [0o660, 0, NOBODY]]);
    const connect = async (n: string) =>
      (await run(asNobody([PY, "-c", "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])", path(n)]))).code;
    expect([await connect("a"), await connect("b"), await connect("g")]).toEqual([1, 0, 0]);
  } finally {
    dir.cleanup();
  }
});

test("a bad parameter is a usage error (exit 2, one line naming it and the SPEC) before anything is opened", async () => {
  const dir = tempDir();
  try {
    const first = join(dir.path, "first");
    const cases: [string[], string][] = [
      [["exec", "--listen", `unix:${first}`, "--listen", "tcp:80?bogus=1", "--", "true"],
        'unknown parameter "bogus" in tcp:80?bogus=1 (tcp takes backlog, v6only, reuseport, freebind)'],
      [["send", join(dir.path, "s"), "--open", `unix:${first}`, "--open", `unix:${dir.path}/x?mode=888`], `bad mode in unix:${dir.path}/x?mode=888: "888" (octal, like 0660)`],
      [["put", "x", "-s", join(dir.path, "b"), "--open", `fifo:${first}?owner=no-such-user-here`], `bad owner in fifo:${first}?owner=no-such-user-here: "no-such-user-here" (no user of that name)`],
      [["serve", "-s", join(dir.path, "b"), "--hold", `a=unix:${first}`, "--hold", "b=udp:53?backlog=1"], 'unknown parameter "backlog" in udp:53?backlog=1 (udp takes v6only, reuseport, freebind)'],
      [["run", "--listen", `unix:${first}`, "--listen", "tcp:0.0.0.0:80?v6only=1", "--", "true"], "v6only does not apply to tcp:0.0.0.0:80?v6only=1: only an IPv6 address ([::]:PORT) has it"],
    ];
    for (const [args, message] of cases) {
      expect([args[0], await fdbroker(args)]).toEqual([args[0], { code: 2, stdout: "", stderr: `fdbroker: ${message}\n` }]);
      expect([args[0], existsSync(first)]).toEqual([args[0], false]);
    }
  } finally {
    dir.cleanup();
  }
});
