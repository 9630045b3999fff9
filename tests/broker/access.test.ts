import { describe, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { isAllowed, parseRule } from "../../src/broker/index.ts";
import { brokerPerTest, waitFor } from "./harness.ts";
import { CLI, fdbroker, run } from "../helpers.ts";

describe("rules", () => {
  const peer = (uid: number, gid = uid) => ({ uid, gid, pid: 1, groups: [] as number[] });
  test("parse and match: uid and gid, operations, globs", () => {
    const rules = [parseRule("uid:1000:get,ls:web.*"), parseRule("gid:50:all"), parseRule("uid:7:put")];
    expect(isAllowed(rules, 999, peer(1000), "get", "web.main")).toBe(true);
    expect(isAllowed(rules, 999, peer(1000), "get", "webxmain")).toBe(false);
    expect(isAllowed(rules, 999, peer(1000), "rm", "web.main")).toBe(false);
    expect(isAllowed(rules, 999, peer(1234, 50), "rm", "anything")).toBe(true);
    expect(isAllowed(rules, 999, peer(7), "put", "x")).toBe(true);
    expect(isAllowed(rules, 999, peer(999), "rm", "x")).toBe(true);
    expect(isAllowed(rules, 999, peer(0), "takeover", "x")).toBe(true);
    expect(isAllowed([], 999, peer(5), "ls", "x")).toBe(false);
    expect(isAllowed([parseRule("uid:5:ls:a?c")], 999, peer(5), "ls", "abc")).toBe(true);
    // Supplementary groups (SO_PEERGROUPS at accept) count for gid rules.
    expect(isAllowed(rules, 999, { uid: 1234, gid: 1234, pid: 1, groups: [7, 50] }, "rm", "anything")).toBe(true);
  });
  test("takeover is granted only by name: all and * do not include it", () => {
    for (const all of ["uid:5:all", "uid:5:*", "gid:5:all"]) {
      expect(parseRule(all).ops.has("takeover")).toBe(false);
      expect(isAllowed([parseRule(all)], 999, peer(5), "takeover", "")).toBe(false);
    }
    expect(isAllowed([parseRule("uid:5:all,takeover")], 999, peer(5), "takeover", "")).toBe(true);
    expect(isAllowed([parseRule("uid:5:takeover")], 999, peer(5), "get", "x")).toBe(false);
  });
  test("bad rules are usage errors", () => {
    for (const bad of ["user:1:get", "uid:x:get", "uid:1:fly", "uid:1", "uid:1::x"]) expect(() => parseRule(bad)).toThrow(/--allow/);
  });
});

const start = brokerPerTest();

// setpriv needs root to change uid; where the suite runs unprivileged this end-to-end case is skipped.
const asNobody = (args: string[]) => run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", ...CLI, ...args]);
const root = process.getuid?.() === 0;
/** A command's JSON output, or an error that says what it printed instead. */
function parsed(r: { code: number; stdout: string; stderr: string }) {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`exit ${r.code}, not JSON: ${JSON.stringify(r.stdout)} ${JSON.stringify(r.stderr)}`);
  }
}

// A uid no rule names is refused at accept (before anything is read); a named one is refused per operation.
test.skipIf(!root)("uid 65534 is refused at connect by default (exit 1, logged), then allowed by --allow; nothing held is affected", async () => {
  for (const allow of [[], ["--allow", "uid:65534:get,ls:web.*", "--allow", "gid:65534:put,ls:drop.*"]]) {
    const broker = await start(["--mode", "0666", "--hold", "web.main=file:/etc/hosts", "--hold", "secret=file:/etc/hostname", ...allow]);
    chmodSync(broker.dir, 0o755);
    const before = broker.fds();
    const get = await asNobody(["get", "web.main", "--cat", "-s", broker.sock]);
    const ls = await asNobody(["ls", "--json", "-s", broker.sock]);
    const secret = await asNobody(["get", "secret", "-s", broker.sock]);
    const rm = await asNobody(["rm", "web.main", "-s", broker.sock]);
    const status = await asNobody(["status", "-s", broker.sock]);
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain("EACCES");
    expect(rm.code).toBe(1);
    expect(status.code).toBe(1);
    if (allow.length === 0) {
      for (const r of [get, ls, secret, rm, status]) {
        expect(r.code).toBe(1);
        expect(r.stderr).toBe("fdbroker: uid 65534 may not use this broker (no --allow rule names it or its groups) [EACCES]\n");
      }
      await waitFor("the refusals in the log", () => (broker.log().match(/ connect uid=65534 pid=\d+ EACCES /g) ?? []).length === 5);
      expect(broker.log()).not.toMatch(/ (get|ls|rm|status) .*uid=65534/);
    } else {
      expect(get.code).toBe(0);
      expect(get.stdout.length).toBeGreaterThan(0);
      expect(status.stderr).toContain("uid 65534 may not ask for status");
      // What root stored: its name, kind and expiry, but not what it is, who stored it or when.
      expect(parsed(ls)).toEqual([{ name: "web.main", kind: "file", expires: null }]);
      const put = await run(["sh", "-c", `echo hi | setpriv --reuid 65534 --regid 65534 --clear-groups "$@"`, "sh", ...CLI, "put", "drop.x", "-s", broker.sock]);
      expect(put.code).toBe(0);
      expect(parsed(await fdbroker(["ls", "--json", "-s", broker.sock])).find((e: { name: string }) => e.name === "drop.x").uid).toBe(65534);
      // The storer's own uid sees everything about its own entry.
      const mine = parsed(await asNobody(["ls", "--json", "-s", broker.sock]));
      expect(mine.map((e: { name: string }) => e.name)).toEqual(["drop.x", "web.main"]);
      expect(mine[0]).toMatchObject({ name: "drop.x", kind: "pipe", uid: 65534, gid: 65534 });
      expect(mine[0].what).toMatch(/^pipe:/);
      expect(mine[1].what).toBeUndefined();
      await fdbroker(["rm", "drop.x", "-s", broker.sock]);
    }
    await waitFor("the finished clients' connections to close", () => broker.fds() === before);
    expect(parsed(await fdbroker(["ls", "--json", "-s", broker.sock])).length).toBe(2);
    await broker.stop();
  }
});
