// SPECs (src/open/spec.ts): what each form parses to, and what opening it gives, over real files and sockets.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describeFd } from "../../src/describe/index.ts";
import { UsageError } from "../../src/errors.ts";
import { openSpec, parseSpec } from "../../src/open/spec.ts";
import { C, closeAll, getFdFlags } from "../../src/sys/index.ts";
import { fdCount, tempDir } from "../helpers.ts";

let dir: ReturnType<typeof tempDir>;
let before: number;
const held: number[] = [];
const hold = (fd: number) => (held.push(fd), fd);
beforeEach(() => {
  dir = tempDir();
  before = fdCount();
});
afterEach(() => {
  closeAll(held.splice(0));
  dir.cleanup();
  expect(fdCount()).toBe(before);
});

test("each form parses to its kind; a query after the last '?' sets the mode", () => {
  expect(parseSpec("file:/tmp/x")).toEqual({ kind: "file", path: "/tmp/x", mode: "r" });
  expect(parseSpec("file:/tmp/a=b?c?mode=a")).toEqual({ kind: "file", path: "/tmp/a=b?c", mode: "a" });
  expect(parseSpec("tcp:127.0.0.1:80")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 80 });
  expect(parseSpec("udp:[::1]:0")).toEqual({ kind: "udp", host: "::1", port: 0 });
  // No mode given: the socket file is made 0600 when opened (src/open/unix.ts).
  expect(parseSpec("unix:/run/a.sock")).toEqual({ kind: "unix", path: "/run/a.sock" });
  expect(parseSpec("unix:/run/b.sock?mode=0660")).toEqual({ kind: "unix", path: "/run/b.sock", mode: 0o660 });
  expect(parseSpec("fd:7")).toEqual({ kind: "fd", fd: 7 });
});

test("a bad spec is a usage error naming it", () => {
  for (const bad of ["", "bogus:1", "/etc/hosts", "file:", "file:/x?mode=z", "tcp:x", "tcp:1.2.3.4:70000", "unix:/x?mode=999", "fd:x", "fd:"])
    expect(() => parseSpec(bad)).toThrow(UsageError);
  expect(() => parseSpec("file:/x?mode=z")).toThrow("bad mode in file:/x?mode=z");
});

test("opened: a file in its mode, listeners blocking and listening, fd:N a copy; every fd close-on-exec", () => {
  const path = join(dir.path, "f");
  writeFileSync(path, "one\n");
  const file = hold(openSpec(`file:${path}?mode=a`));
  writeSync(file, "two\n");
  expect(readFileSync(path, "utf8")).toBe("one\ntwo\n");
  const tcp = hold(openSpec("tcp:127.0.0.1:0"));
  expect(describeFd(tcp).socket).toMatchObject({ family: "inet", type: "stream", listening: true });
  const sock = join(dir.path, "s");
  const unix = hold(openSpec(`unix:${sock}?mode=0660`));
  expect(describeFd(unix).socket).toMatchObject({ family: "unix", local: sock, listening: true });
  expect(statSync(sock).mode & 0o777).toBe(0o660);
  const copy = hold(openSpec(`fd:${file}`));
  expect(describeFd(copy).inode).toBe(describeFd(file).inode);
  for (const fd of [file, tcp, unix, copy]) expect(getFdFlags(fd) & C.FD_CLOEXEC).toBe(C.FD_CLOEXEC);
  for (const fd of [tcp, unix]) expect(describeFd(fd).flags).not.toContain("nonblock");
});

test("what cannot be opened throws and leaves no fd behind", () => {
  expect(() => openSpec(`file:${dir.path}/no/such`)).toThrow(/ENOENT/);
  expect(() => openSpec(`unix:${dir.path}/no/such/s`)).toThrow();
  expect(() => openSpec("fd:999")).toThrow(UsageError);
  expect(() => openSpec("fd:1", new Set([0]))).toThrow(/not an fd this process inherited/);
});
