// The supervisor's transitions, one event at a time, through a fake env (fake-env.ts): no real time, no real
// children. tests/run/ runs the same machine for real.
import { expect, test } from "bun:test";
import { fakeSupervisor } from "./fake-env.ts";

const MAINPID = process.pid;

/** Started, first child ready, then a reload's child #2 started. */
function reloading(config: Parameters<typeof fakeSupervisor>[0] = {}) {
  const f = fakeSupervisor(config);
  f.send({ type: "start" });
  f.ready(1);
  f.send({ type: "reload" });
  return f;
}

test("start: the first child serves once ready, and run tells its manager READY=1 with its own pid", () => {
  const f = fakeSupervisor();
  f.send({ type: "start" });
  expect(f.log).toEqual(["started pid 1001 (#1)"]);
  expect(f.s.current?.phase).toBe("readying");
  f.ready(1);
  expect(f.log[1]).toBe("pid 1001 is ready");
  expect(f.told).toEqual([`READY=1\nMAINPID=${MAINPID}\nSTATUS=pid 1001 serving`]);
  expect(f.child(1).watching).toBe(false);
  expect(f.s.current?.phase).toBe("serving");
  expect(f.pendingTimers()).toBe(0); // the ready-timeout is gone with readiness
});

test("reload: the old child gets the stop signal only once the new one is ready, then SIGKILL after the grace", () => {
  const f = reloading({ stopSignal: "SIGQUIT", graceMs: 3000 });
  expect(f.told.at(-1)).toBe("RELOADING=1");
  expect(f.child(1).kills).toEqual([]);
  f.advance(59000);
  expect(f.child(1).kills).toEqual([]);
  f.ready(2);
  expect(f.child(1).kills).toEqual(["SIGQUIT"]);
  expect(f.log.slice(-2)).toEqual(["pid 1002 is ready", "stopping old pid 1001 (SIGQUIT, 3000 ms grace)"]);
  expect(f.told.at(-1)).toBe("READY=1\nSTATUS=pid 1002 serving");
  expect(f.s.current?.pid).toBe(1002);
  f.advance(2999);
  expect(f.child(1).kills).toEqual(["SIGQUIT"]);
  f.advance(1);
  expect(f.child(1).kills).toEqual(["SIGQUIT", "SIGKILL"]);
  expect(f.log.at(-1)).toBe("pid 1001 still running after 3000 ms: SIGKILL");
  f.exit(1, { code: null, signal: "SIGKILL" });
  expect(f.log.at(-1)).toBe("pid 1001 killed by SIGKILL (retired)");
});

test("a retired child that exits within its grace gets no SIGKILL", () => {
  const f = reloading();
  f.ready(2);
  f.exit(1);
  f.advance(60000);
  expect(f.child(1).kills).toEqual(["SIGTERM"]);
  expect(f.pendingTimers()).toBe(0);
});

test("--settle: the old child keeps serving until the new one has stayed up that long", () => {
  const f = reloading({ settleMs: 5000 });
  f.ready(2);
  expect(f.log.at(-1)).toBe("pid 1002 is ready; settling for 5000 ms before pid 1001 is stopped");
  expect(f.s.current?.pid).toBe(1001);
  f.advance(4999);
  expect(f.child(1).kills).toEqual([]);
  expect(f.told.at(-1)).toBe("RELOADING=1");
  f.advance(1);
  expect(f.child(1).kills).toEqual(["SIGTERM"]);
  expect(f.log.slice(-2)).toEqual(["pid 1002 stayed up 5000 ms", "stopping old pid 1001 (SIGTERM, 10000 ms grace)"]);
  expect(f.told.at(-1)).toBe("READY=1\nSTATUS=pid 1002 serving");
});

test("--settle: a new child that dies within it abandons the reload; the old one is never signalled", () => {
  const f = reloading({ settleMs: 5000 });
  f.ready(2);
  f.advance(1000);
  f.exit(2, { code: 3 });
  expect(f.log.at(-1)).toBe("reload failed: pid 1002 exited with code 3 within the 5000 ms --settle; keeping pid 1001");
  expect(f.told.at(-1)).toBe("READY=1\nSTATUS=reload failed (pid 1002 exited with code 3 within the 5000 ms --settle); keeping pid 1001");
  expect(f.s.current?.pid).toBe(1001);
  expect(f.s.incoming).toBeNull();
  f.advance(60000);
  expect(f.child(1).kills).toEqual([]);
  expect(f.s.failures).toBe(0); // a failed reload is not a crash of the serving child
});

test("--settle: if the old child dies meanwhile, the ready new one serves at once", () => {
  const f = reloading({ settleMs: 5000 });
  f.ready(2);
  f.exit(1, { code: 1 });
  expect(f.log.at(-1)).toBe("pid 1001 exited with code 1 unexpectedly; pid 1002 is starting");
  expect(f.s.current?.pid).toBe(1002);
  expect(f.s.current?.phase).toBe("serving");
  expect(f.told.at(-1)).toBe("READY=1\nSTATUS=pid 1002 serving");
  expect(f.s.restartTimer).toBeNull();
  f.advance(60000);
  expect(f.child(2).kills).toEqual([]);
});

test("no --settle for a first child: there is no old one to keep", () => {
  const f = fakeSupervisor({ settleMs: 5000 });
  f.send({ type: "start" });
  f.ready(1);
  expect(f.s.current?.phase).toBe("serving");
  expect(f.log.at(-1)).toBe("pid 1001 is ready");
});

test("a reload's child that exits before it is ready: the reload fails, the old child stays", () => {
  const f = reloading();
  f.exit(2, { code: 3 });
  expect(f.log.at(-1)).toBe("reload failed: pid 1002 ended before it was ready; keeping pid 1001");
  expect(f.told.at(-1)).toBe("READY=1\nSTATUS=reload failed (pid 1002 ended before it was ready); keeping pid 1001");
  expect(f.child(1).kills).toEqual([]);
});

test("a reload's child not ready in time is stopped and no longer watched; the old child stays", () => {
  const f = reloading({ readyTimeoutMs: 300, stopSignal: "SIGINT" });
  f.advance(300);
  expect(f.child(2).watching).toBe(false);
  expect(f.child(2).kills).toEqual(["SIGINT"]);
  expect(f.since(f.log.length - 2)).toEqual([
    "reload failed: pid 1002 not ready after 300 ms; keeping pid 1001",
    "stopping unready pid 1002 (SIGINT, 10000 ms grace)",
  ]);
  expect(f.told.at(-1)).toBe("READY=1\nSTATUS=reload failed; keeping pid 1001");
  f.ready(2); // too late: ignored
  expect(f.s.current?.pid).toBe(1001);
  expect(f.child(1).kills).toEqual([]);
});

test("a first child not ready in time is left running, and the log says so", () => {
  const f = fakeSupervisor({ readyTimeoutMs: 200 });
  f.send({ type: "start" });
  f.advance(200);
  expect(f.log.at(-1)).toBe("pid 1001 not ready after 200 ms; leaving it running");
  expect(f.child(1).kills).toEqual([]);
  expect(f.child(1).watching).toBe(false);
  expect(f.told).toEqual([]);
});

test("a reload signal during a reload is queued and runs once that reload is over", () => {
  const f = reloading();
  f.send({ type: "reload" });
  expect(f.spawned()).toBe(2);
  expect(f.s.reloadQueued).toBe(true);
  f.ready(2);
  expect(f.spawned()).toBe(3);
  expect(f.s.incoming?.pid).toBe(1003);
  f.ready(3);
  expect(f.child(2).kills).toEqual(["SIGTERM"]);
  expect(f.s.current?.pid).toBe(1003);
});

test("crashes: restarts with doubling delays up to the maximum, then run gives up with the child's status", () => {
  const f = fakeSupervisor({ backoff: { minMs: 10, maxMs: 25 }, maxRestarts: 3, stableMs: 60000 });
  f.send({ type: "start" });
  for (const [gen, delay] of [[1, 10], [2, 20], [3, 25]] as const) {
    f.exit(gen, { code: 7 });
    expect(f.log.at(-1)).toMatch(new RegExp(`^restarting in ${delay} ms \\(restart ${gen} of 3\\)$`));
    f.advance(delay - 1);
    expect(f.spawned()).toBe(gen);
    f.advance(1);
    expect(f.spawned()).toBe(gen + 1);
  }
  f.exit(4, { code: 7 });
  expect(f.log.at(-1)).toBe("giving up after 3 restarts in a row");
  expect(f.s.exitCode).toBe(7);
  expect(f.closed()).toBe(1);
});

test("a child that ran for --stable before crashing starts the count afresh", () => {
  const f = fakeSupervisor({ backoff: { minMs: 10, maxMs: 1000 }, stableMs: 5000 });
  f.send({ type: "start" });
  f.exit(1, { code: 1 });
  f.advance(10);
  f.exit(2, { code: 1 });
  expect(f.log.at(-1)).toBe("restarting in 20 ms (restart 2 of 10)");
  f.advance(20);
  f.advance(5000);
  f.exit(3, { code: 1 });
  expect(f.log.at(-1)).toBe("restarting in 10 ms (restart 1 of 10)");
});

test("a crash while a reload's child becomes ready: that child takes over once ready, with nobody to retire", () => {
  const f = reloading();
  f.exit(1, { code: null, signal: "SIGKILL" });
  expect(f.log.at(-1)).toBe("pid 1001 killed by SIGKILL unexpectedly; pid 1002 is starting");
  expect(f.s.restartTimer).toBeNull();
  f.ready(2);
  expect(f.s.current?.pid).toBe(1002);
  expect(f.log.filter((l) => l.startsWith("stopping"))).toEqual([]);
});

test("a reload while waiting to restart after a crash restarts at once, with a fresh count", () => {
  const f = fakeSupervisor({ backoff: { minMs: 1000, maxMs: 1000 } });
  f.send({ type: "start" });
  f.exit(1, { code: 1 });
  expect(f.s.failures).toBe(1);
  f.send({ type: "reload" });
  expect(f.spawned()).toBe(2);
  expect(f.s.current?.pid).toBe(1002);
  expect(f.s.failures).toBe(0);
  expect(f.s.restartTimer).toBeNull();
  expect(f.told).not.toContain("RELOADING=1");
});

test("SIGTERM: every child gets the stop signal and the grace; run ends with the serving child's status", () => {
  const f = reloading({ stopSignal: "SIGQUIT", graceMs: 500 });
  f.send({ type: "stop", signal: "SIGTERM" });
  expect(f.told.at(-1)).toBe("STOPPING=1");
  expect(f.log.at(-1)).toBe("SIGTERM: passing it to pid 1001, 1002 as SIGQUIT");
  expect([f.child(1).kills, f.child(2).kills]).toEqual([["SIGQUIT"], ["SIGQUIT"]]);
  f.ready(2); // stopping: readiness no longer matters
  expect(f.s.current?.pid).toBe(1001);
  f.send({ type: "reload" });
  expect(f.spawned()).toBe(2);
  f.exit(1, { code: 0 });
  f.advance(500);
  expect(f.child(2).kills).toEqual(["SIGQUIT", "SIGKILL"]);
  expect(f.s.exitCode).toBeNull();
  f.exit(2, { code: null, signal: "SIGKILL" });
  expect(f.s.exitCode).toBe(0); // the serving child's status, not the reload's child's
  expect(f.closed()).toBe(1);
});

test("SIGINT is passed on as it is; a second signal is passed again; no child at all ends the run at once", () => {
  const f = fakeSupervisor({ stopSignal: "SIGQUIT" });
  f.send({ type: "start" });
  f.send({ type: "stop", signal: "SIGINT" });
  expect(f.log.at(-1)).toBe("SIGINT: passing it to pid 1001");
  f.send({ type: "stop", signal: "SIGTERM" });
  expect(f.child(1).kills).toEqual(["SIGINT", "SIGQUIT"]);
  f.exit(1, { code: null, signal: "SIGINT" });
  expect(f.s.exitCode).toBe(130);

  const idle = fakeSupervisor({ backoff: { minMs: 1000, maxMs: 1000 } });
  idle.send({ type: "start" });
  idle.exit(1, { code: 4 });
  idle.send({ type: "stop", signal: "SIGTERM" });
  expect(idle.log.at(-1)).toBe("SIGTERM: passing it to no child");
  expect(idle.s.exitCode).toBe(4);
  idle.advance(1000); // the restart timer was cleared
  expect(idle.spawned()).toBe(1);
});

test("a retiring child keeps its own grace when run is stopped meanwhile", () => {
  const f = reloading({ graceMs: 1000 });
  f.ready(2);
  f.advance(600);
  f.send({ type: "stop", signal: "SIGTERM" });
  f.advance(400);
  expect(f.child(1).kills).toEqual(["SIGTERM", "SIGTERM", "SIGKILL"]);
  expect(f.child(2).kills).toEqual(["SIGTERM"]);
});

test("children that cannot be started: the first ends the run (127), a reload keeps the old one, a restart is retried", () => {
  const first = fakeSupervisor();
  first.failSpawns(new Error("fork: EAGAIN"));
  first.send({ type: "start" });
  expect(first.log).toEqual(["cannot start a child: fork: EAGAIN"]);
  expect(first.s.exitCode).toBe(127);

  const f = fakeSupervisor({ backoff: { minMs: 10, maxMs: 20 }, maxRestarts: 2 });
  f.send({ type: "start" });
  f.ready(1);
  f.failSpawns(new Error("ENOENT"));
  f.send({ type: "reload" });
  expect(f.log.at(-1)).toBe("reload failed: cannot start a child (ENOENT); keeping pid 1001");
  expect(f.s.incoming).toBeNull();
  f.exit(1, { code: null, signal: "SIGKILL" });
  f.advance(10);
  f.advance(20);
  expect(f.log.filter((l) => l === "cannot start a child: ENOENT").length).toBe(2);
  expect(f.log.at(-1)).toBe("giving up after 2 restarts in a row");
  expect(f.s.exitCode).toBe(137);
});

test("once the run is over, later events change nothing", () => {
  const f = fakeSupervisor();
  f.send({ type: "start" });
  f.send({ type: "stop", signal: "SIGTERM" });
  f.exit(1);
  const lines = f.log.length;
  f.send({ type: "reload" });
  f.send({ type: "stop", signal: "SIGTERM" });
  expect(f.log.length).toBe(lines);
  expect(f.spawned()).toBe(1);
  expect(f.closed()).toBe(1);
});
