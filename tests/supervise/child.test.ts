// The small pure parts of `run` (src/supervise/child.ts and notify.ts): signal names, exit statuses, the child's
// environment, notify messages.
import { expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { childEnv, describeExit, parseSignal, statusCode } from "../../src/supervise/child.ts";
import { parseNotify } from "../../src/supervise/notify.ts";

test("signals as users write them", () => {
  for (const s of ["HUP", "SIGHUP", "hup", "1"]) expect(parseSignal(s)).toBe("SIGHUP");
  expect(parseSignal("usr2")).toBe("SIGUSR2");
  for (const bad of ["KILL", "9", "STOP", "NOPE", "SIG", "999"]) expect(() => parseSignal(bad)).toThrow(UsageError);
});

test("exit statuses follow the shell: code, or 128 + signal number", () => {
  expect(statusCode({ code: 3, signal: null })).toBe(3);
  expect(statusCode({ code: null, signal: "SIGTERM" })).toBe(143);
  expect(statusCode({ code: null, signal: "SIGKILL" })).toBe(137);
  expect(describeExit({ code: null, signal: "SIGINT" })).toBe("killed by SIGINT");
});

test("the child's environment: ours minus LISTEN_* and NOTIFY_SOCKET, plus its own", () => {
  const base = { PATH: "/bin", LISTEN_FDS: "9", LISTEN_PID: "1", LISTEN_FDNAMES: "x", NOTIFY_SOCKET: "/run/systemd/notify" };
  expect(childEnv(base, [{ fd: 7, name: "web" }, { fd: 8 }], "/tmp/n")).toEqual({
    PATH: "/bin", LISTEN_FDS: "2", LISTEN_FDNAMES: "web:unknown", NOTIFY_SOCKET: "/tmp/n",
  });
  expect(childEnv(base, [])).toEqual({ PATH: "/bin" });
});

test("notify messages: newline-separated KEY=VALUE, junk lines ignored", () => {
  const m = parseNotify("READY=1\nSTATUS=serving 10 = many\nnonsense\n=x");
  expect([...m]).toEqual([["READY", "1"], ["STATUS", "serving 10 = many"]]);
});
