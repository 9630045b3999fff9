// SPECs parsed, and opened in this process: every kind and parameter read back from the kernel (getsockopt, fstat),
// what a bad one says, and that a failure leaves no fd and no file behind.
import { expect, test } from "bun:test";
import { existsSync, lstatSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { openSpec, parseSpec } from "../../src/open/spec.ts";
import { C, close, closeAll, fstat, getFdFlags, getIntOpt, getStatusFlags, sockName } from "../../src/sys/index.ts";
import { fdCount, tempDir } from "../helpers.ts";

const NOBODY = 65534;

test("parseSpec: each kind with its parameters; those not given stay absent, for the opener's defaults", () => {
  const cases: [string, object][] = [
    ["tcp:8080", { kind: "tcp", host: "", port: 8080 }],
    ["udp:53", { kind: "udp", host: "", port: 53 }],
    ["tcp:[::]:80?v6only=1&backlog=128", { kind: "tcp", host: "::", port: 80, v6only: true, backlog: 128 }],
    ["tcp:0.0.0.0:80?reuseport&freebind=0", { kind: "tcp", host: "0.0.0.0", port: 80, reuseport: true, freebind: false }],
    ["udp:[::1]:53?v6only=no&reuseport=yes", { kind: "udp", host: "::1", port: 53, v6only: false, reuseport: true }],
    ["unix:/run/a.sock", { kind: "unix", path: "/run/a.sock" }],
    ["unix:/run/a.sock?mode=0660&owner=0&group=nogroup&backlog=5", { kind: "unix", path: "/run/a.sock", mode: 0o660, owner: 0, group: NOBODY, backlog: 5 }],
    ["unix-dgram:/dev/log?mode=666", { kind: "unix-dgram", path: "/dev/log", mode: 0o666 }],
    ["unix-seqpacket:@x?backlog=1", { kind: "unix-seqpacket", path: "@x", backlog: 1 }],
    ["fifo:/run/f?owner=nobody&group=1", { kind: "fifo", path: "/run/f", owner: NOBODY, group: 1 }],
    ["file:/a?b?mode=w", { kind: "file", path: "/a?b", mode: "w" }],
    ["file:/a?b?", { kind: "file", path: "/a?b", mode: "r" }],
    ["fd:3", { kind: "fd", fd: 3 }],
  ];
  for (const [text, want] of cases) expect([text, parseSpec(text)] as unknown[]).toEqual([text, want]);
});

test("unknown, repeated or malformed parameters are usage errors naming the parameter and the SPEC", () => {
  const bad: [string, string][] = [
    ["tcp:80?backlog=x", 'bad backlog in tcp:80?backlog=x: "x" (a whole number up to 2147483647)'],
    ["tcp:80?backlog=2147483648", 'bad backlog in tcp:80?backlog=2147483648: "2147483648"'],
    ["tcp:80?nodelay=1", 'unknown parameter "nodelay" in tcp:80?nodelay=1 (tcp takes backlog, v6only, reuseport, freebind)'],
    ["udp:53?backlog=5", 'unknown parameter "backlog" in udp:53?backlog=5 (udp takes v6only, reuseport, freebind)'],
    ["unix-dgram:/x?backlog=5", 'unknown parameter "backlog" in unix-dgram:/x?backlog=5 (unix-dgram takes mode, owner, group)'],
    ["tcp:0.0.0.0:80?v6only=1", "v6only does not apply to tcp:0.0.0.0:80?v6only=1: only an IPv6 address ([::]:PORT) has it"],
    ["tcp:80?v6only=0", "v6only does not apply to tcp:80?v6only=0"],
    ["tcp:[::]:80?reuseport=maybe", 'bad reuseport in tcp:[::]:80?reuseport=maybe: "maybe" (1 or 0)'],
    ["tcp:80?backlog=1&backlog=2", "backlog given twice in tcp:80?backlog=1&backlog=2"],
    ["unix:/x?mode=0999", 'bad mode in unix:/x?mode=0999: "0999" (octal, like 0660)'],
    ["unix:/x?owner=no-such-user-here", 'bad owner in unix:/x?owner=no-such-user-here: "no-such-user-here" (no user of that name)'],
    ["fifo:/x?group=", 'bad group in fifo:/x?group=: "" (no group of that name)'],
    ["unix:/x?owner=%00", "bad owner in unix:/x?owner=%00"],
    ["unix:@x?mode=0600", "mode does not apply to unix:@x?mode=0600: an abstract address has no file to own or protect"],
    ["fifo:?mode=0600", "no path in fifo:?mode=0600"],
    ["fd:3?x=1", 'unknown parameter "x" in fd:3?x=1 (fd takes none)'],
    ["file:/a?b", 'unknown parameter "b" in file:/a?b (file takes mode)'],
    ["tcp:1.2.3.4:80:90", "bad address in tcp:1.2.3.4:80:90"],
    ["sctp:80", "bad spec: sctp:80"],
  ];
  for (const [text, message] of bad) {
    expect(() => parseSpec(text)).toThrow(UsageError);
    expect(() => parseSpec(text)).toThrow(message);
  }
});

test("UNIX kinds: socket type, listening or bound, blocking, mode 0600 unless told, owner and group set", () => {
  const dir = tempDir();
  const before = fdCount();
  try {
    const open = (spec: string) => {
      const fd = openSpec(spec);
      const path = spec.slice(spec.indexOf(":") + 1).split("?")[0]!;
      const st = lstatSync(path);
      const out = {
        type: getIntOpt(fd, C.SOL_SOCKET, C.SO_TYPE), listening: getIntOpt(fd, C.SOL_SOCKET, C.SO_ACCEPTCONN),
        nonBlocking: getStatusFlags(fd) & C.O_NONBLOCK, cloexec: getFdFlags(fd) & C.FD_CLOEXEC,
        mode: st.mode & 0o7777, socketFile: st.isSocket(), owner: [st.uid, st.gid],
      };
      close(fd);
      return out;
    };
    const p = (name: string) => join(dir.path, name);
    expect(open(`unix:${p("s")}`)).toEqual({ type: C.SOCK_STREAM, listening: 1, nonBlocking: 0, cloexec: C.FD_CLOEXEC, mode: 0o600, socketFile: true, owner: [0, 0] });
    expect(open(`unix-seqpacket:${p("q")}?mode=0660&group=nogroup`)).toMatchObject({ type: C.SOCK_SEQPACKET, listening: 1, nonBlocking: 0, mode: 0o660, owner: [0, NOBODY] });
    expect(open(`unix-dgram:${p("d")}?owner=nobody&mode=0620`)).toMatchObject({ type: C.SOCK_DGRAM, listening: 0, nonBlocking: 0, mode: 0o620, owner: [NOBODY, 0] });
    // A stale socket file (nobody answers) is replaced, as for every listener fdbroker makes.
    expect(open(`unix-dgram:${p("d")}`)).toMatchObject({ type: C.SOCK_DGRAM, mode: 0o600, owner: [0, 0] });
  } finally {
    dir.cleanup();
  }
  expect(fdCount()).toBe(before);
});

test("inet options read back with getsockopt; v6only lets [::]:P and 0.0.0.0:P both bind; a bare port is dual stack", () => {
  const before = fdCount();
  const fds: number[] = [];
  try {
    const open = (spec: string) => fds[fds.push(openSpec(spec)) - 1]!;
    const v6 = open("tcp:[::]:0?v6only=1&backlog=16");
    const port = (sockName(v6) as { port: number }).port;
    const v4 = open(`tcp:0.0.0.0:${port}`);
    expect(getIntOpt(v6, C.IPPROTO_IPV6, C.IPV6_V6ONLY)).toBe(1);
    expect(sockName(v4)).toEqual({ family: "inet", host: "0.0.0.0", port });
    const bare = open("tcp:0");
    expect(sockName(bare)).toMatchObject({ family: "inet6", host: "::" });
    expect(getIntOpt(bare, C.IPPROTO_IPV6, C.IPV6_V6ONLY)).toBe(0);
    // Without v6only the dual-stack bare port holds the IPv4 side too.
    expect(() => openSpec(`tcp:0.0.0.0:${(sockName(bare) as { port: number }).port}`)).toThrow("EADDRINUSE");
    const shared = open("tcp:127.0.0.1:0?reuseport");
    const sharedPort = (sockName(shared) as { port: number }).port;
    const second = open(`tcp:127.0.0.1:${sharedPort}?reuseport=1`);
    expect([getIntOpt(shared, C.SOL_SOCKET, C.SO_REUSEPORT), getIntOpt(second, C.SOL_SOCKET, C.SO_REUSEPORT)]).toEqual([1, 1]);
    expect(() => openSpec(`tcp:127.0.0.1:${sharedPort}`)).toThrow("EADDRINUSE");
    // 192.0.2.0/24 and 2001:db8::/32 are documentation ranges no interface here has.
    expect(() => openSpec("udp:192.0.2.10:0")).toThrow("EADDRNOTAVAIL");
    const free4 = open("udp:192.0.2.10:0?freebind");
    expect(getIntOpt(free4, C.IPPROTO_IP, C.IP_FREEBIND)).toBe(1);
    expect(sockName(free4)).toMatchObject({ family: "inet", host: "192.0.2.10" });
    const free6 = open("tcp:[2001:db8::10]:0?freebind&v6only=1");
    expect(getIntOpt(free6, C.IPPROTO_IPV6, C.IPV6_FREEBIND)).toBe(1);
    expect(sockName(free6)).toMatchObject({ family: "inet6", host: "2001:db8::10" });
  } finally {
    closeAll(fds);
  }
  expect(fdCount()).toBe(before);
});

test("fifo: made with its mode, opened read-write and non-blocking; one already there is reused; no other file is", () => {
  const dir = tempDir();
  const before = fdCount();
  try {
    const path = join(dir.path, "f");
    const fd = openSpec(`fifo:${path}`);
    expect([fstat(fd).mode & C.S_IFMT, lstatSync(path).mode & 0o7777]).toEqual([C.S_IFIFO, 0o600]);
    expect(getStatusFlags(fd) & (C.O_ACCMODE | C.O_NONBLOCK)).toBe(C.O_RDWR | C.O_NONBLOCK);
    expect(getFdFlags(fd) & C.FD_CLOEXEC).toBe(C.FD_CLOEXEC);
    // The same FIFO again: its mode stays unless the SPEC names one.
    const again = openSpec(`fifo:${path}`);
    expect(fstat(again).ino).toBe(fstat(fd).ino);
    closeAll([fd, again]);
    close(openSpec(`fifo:${path}?mode=0640&group=nogroup`));
    expect([lstatSync(path).mode & 0o7777, lstatSync(path).gid]).toEqual([0o640, NOBODY]);
    const plain = join(dir.path, "plain");
    writeFileSync(plain, "x");
    expect(() => openSpec(`fifo:${plain}`)).toThrow("mkfifo: EEXIST");
    expect(() => openSpec(`fifo:${plain}`)).toThrow("a file that is not a FIFO is in the way");
    expect(() => openSpec(`fifo:${join(dir.path, "no/such/dir")}`)).toThrow("mkfifo: ENOENT");
    expect(existsSync(plain)).toBe(true);
  } finally {
    dir.cleanup();
  }
  expect(fdCount()).toBe(before);
});
