// Parsing what `exec` and `run` are told to pass, and opening it all-or-nothing.
import { expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { openSession, put } from "../../src/client/index.ts";
import { RefusedError, UsageError } from "../../src/errors.ts";
import { adoptListenFds, takeListenFds } from "../../src/launch/listen-fds.ts";
import { collectInto, openSources, parseFdSource, parseGetSource, parseListenSource, type Source } from "../../src/launch/sources.ts";
import { closeAll, getFdFlags, C } from "../../src/sys/index.ts";
import { startBroker } from "../broker/harness.ts";
import { fdCount, tempDir, waitFor } from "../helpers.ts";

test("[NAME=]SPEC: a name is what precedes '=' before any ':'", () => {
  expect(parseListenSource("web=tcp:0.0.0.0:80")).toMatchObject({ kind: "listen", name: "web", text: "tcp:0.0.0.0:80" });
  expect(parseListenSource("tcp:127.0.0.1:0")).toMatchObject({ kind: "listen", name: undefined });
  expect(parseListenSource("file:/tmp/a=b?mode=a")).toMatchObject({ name: undefined, spec: { kind: "file", path: "/tmp/a=b", mode: "a" } });
  expect(parseListenSource("log=file:/tmp/x?mode=a")).toMatchObject({ name: "log", spec: { kind: "file", path: "/tmp/x" } });
  expect(parseFdSource("in=0")).toEqual({ kind: "fd", name: "in", fd: 0 });
  expect(parseFdSource("7")).toEqual({ kind: "fd", name: undefined, fd: 7 });
  expect(parseGetSource("web")).toEqual({ kind: "get", name: "web" });
});

test("bad sources are usage errors", () => {
  for (const bad of [() => parseListenSource("tcp:x"), () => parseListenSource("bad name=tcp:1.2.3.4:5"), () => parseFdSource("x"),
    () => parseFdSource("a=-1"), () => parseGetSource(""), () => parseListenSource(`${"n".repeat(256)}=tcp:1.2.3.4:5`)])
    expect(bad).toThrow(UsageError);
});

test("collectInto keeps command-line order across option kinds", () => {
  const list: Source[] = [];
  const add = collectInto(list);
  add(parseGetSource)("a");
  add(parseListenSource)("tcp:127.0.0.1:0");
  add(parseFdSource)("1");
  expect(list.map((s) => s.kind)).toEqual(["get", "listen", "fd"]);
});

test("openSources: CLOEXEC fds in order, runs of --get fetched together; a failure closes what was opened", async () => {
  const broker = await startBroker();
  const dir = tempDir();
  const before = fdCount();
  try {
    const session = openSession({ socket: broker.sock });
    try {
      for (const name of ["a", "b", "c"]) {
        const fd = openSync("/dev/null", "r");
        put(session, name, fd);
        closeSync(fd);
      }
    } finally {
      session.close();
    }
    const fds = openSources([parseGetSource("a"), parseGetSource("b"), parseListenSource(`u=unix:${join(dir.path, "s")}`), parseGetSource("c")], { socket: broker.sock });
    // One get request per run of --get, as the broker logged them.
    await waitFor("the gets in the broker's log", () => (broker.log().match(/ get .*\bok\b/g) ?? []).length === 2);
    expect(broker.log()).toMatch(/ get "a" "b" uid=\d+ pid=\d+ ok/);
    expect(broker.log()).toMatch(/ get "c" uid=\d+ pid=\d+ ok/);
    expect(fds.map((f) => f.name)).toEqual(["a", "b", "u", "c"]);
    expect(getFdFlags(fds[2]!.fd) & C.FD_CLOEXEC).toBe(C.FD_CLOEXEC);
    closeAll(fds.map((f) => f.fd));
    const mid = fdCount();
    expect(() => openSources([parseListenSource(`unix:${join(dir.path, "t")}`), parseListenSource(`file:${dir.path}/no/such?mode=r`)])).toThrow();
    expect(() => openSources([parseListenSource(`unix:${join(dir.path, "w")}`), parseGetSource("x")], { socket: broker.sock })).toThrow(RefusedError);
    expect(fdCount()).toBe(mid);
    // Checked while the broker runs: stopping it closes this process's end of its log.
    expect(fdCount()).toBe(before);
  } finally {
    dir.cleanup();
    await broker.stop();
  }
});

test("adoptListenFds: LISTEN_* leave the environment whether or not the fds are ours", () => {
  const env: Record<string, string | undefined> = { LISTEN_FDS: "2", LISTEN_PID: "1", LISTEN_FDNAMES: "a:b", KEEP: "x" };
  expect(adoptListenFds(new Set([0, 1, 2, 3, 4]), env, 2)).toEqual([]);
  expect(env).toEqual({ KEEP: "x" });
});

test("takeListenFds: not for another pid, and only fds we really inherited", () => {
  const inherited = new Set([0, 1, 2, 3, 4]);
  const take = (env: Record<string, string>) => () => takeListenFds({ ...env }, 7, inherited);
  expect(take({ LISTEN_FDS: "2", LISTEN_PID: "7", LISTEN_FDNAMES: "a:" })()).toEqual({ fds: [3, 4], names: ["a", "unknown"] });
  expect(take({ LISTEN_FDS: "1", LISTEN_PID: "8" })()).toEqual({ fds: [], names: [] });
  // No LISTEN_PID: taken (a parent like Bun.spawn cannot know the pid), but still only what was inherited.
  expect(take({ LISTEN_FDS: "1" })()).toEqual({ fds: [3], names: ["unknown"] });
  // Bun's own epoll and eventfd sit at 5 and 6 here: a LISTEN_FDS claiming them is refused, not obeyed.
  expect(take({ LISTEN_FDS: "3", LISTEN_PID: "7" })).toThrow("LISTEN_FDS is 3, but fd 5 was not inherited");
  for (const bad of ["-1", "1.5", "x", "", "1000000"]) expect(take({ LISTEN_FDS: bad, LISTEN_PID: "7" })).toThrow(UsageError);
  expect(take({ LISTEN_FDS: "2", LISTEN_PID: "7", LISTEN_FDNAMES: "a" })).toThrow("LISTEN_FDNAMES names 1 fds but LISTEN_FDS is 2");
});
