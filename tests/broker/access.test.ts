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
  });
  test("bad rules are usage errors", () => {
    for (const bad of ["user:1:get", "uid:x:get", "uid:1:fly", "uid:1", "uid:1::x"]) expect(() => parseRule(bad)).toThrow(/--allow/);
  });
});

const start = brokerPerTest();

// setpriv needs root to change uid; where the suite runs unprivileged this end-to-end case is skipped.
const asNobody = (args: string[]) => run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", ...CLI, ...args]);
const root = process.getuid?.() === 0;

test.skipIf(!root)("uid 65534 is denied by default (exit 1, logged), then allowed by --allow; nothing held is affected", async () => {
  for (const allow of [[], ["--allow", "uid:65534:get,ls:web.*", "--allow", "gid:65534:put:drop.*"]]) {
    const broker = await start(["--mode", "0666", "--hold", "web.main=file:/etc/hosts", "--hold", "secret=file:/etc/hostname", ...allow]);
    chmodSync(broker.dir, 0o755);
    const before = broker.fds();
    const get = await asNobody(["get", "web.main", "--cat", "-s", broker.sock]);
    const ls = await asNobody(["ls", "--json", "-s", broker.sock]);
    const secret = await asNobody(["get", "secret", "-s", broker.sock]);
    const rm = await asNobody(["rm", "web.main", "-s", broker.sock]);
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain("EACCES");
    expect(rm.code).toBe(1);
    if (allow.length === 0) {
      expect(get.code).toBe(1);
      expect(get.stderr).toContain("uid 65534 may not get");
      expect(JSON.parse(ls.stdout)).toEqual([]);
      await waitFor("the refusal in the log", () => /get "web.main" uid=65534 pid=\d+ EACCES/.test(broker.log()));
    } else {
      expect(get.code).toBe(0);
      expect(get.stdout.length).toBeGreaterThan(0);
      expect(JSON.parse(ls.stdout).map((e: { name: string }) => e.name)).toEqual(["web.main"]);
      const put = await run(["sh", "-c", `echo hi | setpriv --reuid 65534 --regid 65534 --clear-groups "$@"`, "sh", ...CLI, "put", "drop.x", "-s", broker.sock]);
      expect(put.code).toBe(0);
      expect(JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout).find((e: { name: string }) => e.name === "drop.x").uid).toBe(65534);
      await fdbroker(["rm", "drop.x", "-s", broker.sock]);
    }
    await waitFor("the finished clients' connections to close", () => broker.fds() === before);
    expect(JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout).length).toBe(2);
    await broker.stop();
  }
});
