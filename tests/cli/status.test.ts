import { expect, test } from "bun:test";
import { brokerPerTest } from "../broker/harness.ts";
import { fdbroker } from "../helpers.ts";

const start = brokerPerTest();

test("status reports pid, version, uptime, entries, connections and limits", async () => {
  const broker = await start(["--hold", "a=file:/etc/hosts", "--max-conns", "50", "--max-fds", "300", "--client-timeout", "90s", "--drain-timeout", "5s"]);
  const s = JSON.parse((await fdbroker(["status", "--json", "-s", broker.sock])).stdout);
  expect(s).toMatchObject({ pid: broker.proc.pid, socket: broker.sock, entries: 1, connections: 1, uid: 0, gid: 0, user: "root", group: "root" });
  expect(s.limits).toMatchObject({ maxConns: 50, maxFds: 300, clientTimeoutMs: 90_000, drainMs: 5000 });
  expect(s.limits.nofile.soft).toBeGreaterThanOrEqual(300 + 50);
  expect(typeof s.version).toBe("string");
  const text = await fdbroker(["status", "-s", broker.sock]);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain(`pid:            ${broker.proc.pid}`);
  expect(text.stdout).toContain("user:           uid 0 (root), gid 0 (root)");
  expect(text.stdout).toContain("entries:        1 of 300");
  expect(text.stdout).toContain("drain timeout:  5s");
});

test("status with no broker: exit 3; with FDBROKER_SOCKET it needs no -s", async () => {
  expect((await fdbroker(["status", "-s", "@fdbroker-test-nobody-here"])).code).toBe(3);
  const broker = await start();
  const r = await fdbroker(["status", "--json"], { env: { ...process.env, FDBROKER_SOCKET: broker.sock } });
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout).pid).toBe(broker.proc.pid);
});
