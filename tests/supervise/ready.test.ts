// The pure part of readiness probes: what a probe's environment holds.
import { expect, test } from "bun:test";
import { probeEnv } from "../../src/supervise/ready.ts";

test("a probe gets run's environment without what is meant for children or run's manager, plus the child's pid", () => {
  const base = { PATH: "/bin", LISTEN_FDS: "2", LISTEN_PID: "1", LISTEN_FDNAMES: "a:b", NOTIFY_SOCKET: "/run/systemd/notify", GONE: undefined };
  expect(probeEnv(base, 4242)).toEqual({ PATH: "/bin", FDBROKER_CHILD_PID: "4242" });
});
