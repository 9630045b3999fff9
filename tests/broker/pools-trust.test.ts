// Pools against other uids (issue 10's hostile pass, issue 8's rules): who may lease, who may add members that
// other lessees receive, and the broker's own cap on how long a lease lasts. Real brokers; the other uid is 65534
// through setpriv.
import { expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { lease, openSession, pools, status } from "../../src/client/index.ts";
import { close } from "../../src/sys/index.ts";
import { asNobody, canSwitchUid, SKIP_REASON } from "../hostile.ts";
import { CLI, run, waitFor } from "../helpers.ts";
import { brokerPerTest } from "./harness.ts";

const start = brokerPerTest();
const poolOf = (sock: string, name: string) => {
  using s = openSession({ socket: sock });
  return pools(s).find((p) => p.name === name)!;
};

if (!canSwitchUid) test.skip(`pools against another uid: ${SKIP_REASON}`, () => {});

test.skipIf(!canSwitchUid)("lease by another uid: granted by --allow lease, refused (exit 1, one line) without it; nothing leaked either way", async () => {
  for (const [allow, ok] of [["uid:65534:lease:p", true], ["uid:65534:get,ls", false]] as const) {
    const b = await start(["--pool", "p=2:file:/dev/null", "--mode", "0666", "--allow", allow]);
    chmodSync(b.dir, 0o755);
    await waitFor("the members open", () => poolOf(b.sock, "p").idle === 2);
    const before = b.fds();
    const r = await run(asNobody([...CLI, "lease", "p", "-s", b.sock, "--wait", "0", "--json"]));
    if (ok) {
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)[0].fds[0].kind).toBe("chardev");
    } else {
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('fdbroker: uid 65534 may not lease "p" [EACCES]\n');
    }
    await waitFor("every member idle again", () => poolOf(b.sock, "p").idle === 2);
    await waitFor("the broker's fds back where they were", () => b.fds() <= before, 5000);
  }
});

// The old code let `put` (which `all` grants) add a member to any pool: the next lessee got the injected fd.
test.skipIf(!canSwitchUid)("put --pool needs pool-put by name: uid 65534 with --allow all may not add a member, with pool-put it may", async () => {
  for (const [allow, ok] of [["uid:65534:all", false], ["uid:65534:pool-put:p", true]] as const) {
    const b = await start(["--pool", "p=1:file:/dev/null", "--mode", "0666", "--allow", allow]);
    chmodSync(b.dir, 0o755);
    await waitFor("the member open", () => poolOf(b.sock, "p").idle === 1);
    const before = b.fds();
    const r = await run(asNobody([...CLI, "put", "p", "--pool", "-s", b.sock]), { stdin: Bun.file("/etc/hostname") });
    if (ok) {
      expect(r.code).toBe(0);
      expect(poolOf(b.sock, "p").size).toBe(2);
    } else {
      expect(r.stderr).toBe('fdbroker: uid 65534 may not pool-put "p" [EACCES]\n');
      expect(r.code).toBe(1);
      expect(poolOf(b.sock, "p").size).toBe(1);
      await waitFor("the broker's fds back where they were", () => b.fds() <= before, 5000);
    }
  }
});

test("--max-lease-ttl caps every lease: one asking for none or longer is revoked at the cap", async () => {
  const b = await start(["--pool", "p=2:file:/dev/null", "--max-lease-ttl", "400ms"]);
  await waitFor("the members open", () => poolOf(b.sock, "p").idle === 2);
  using s = openSession({ socket: b.sock });
  const t0 = Date.now();
  const none = lease(s, "p");
  const long = lease(s, "p", { ttlMs: 3600_000 });
  try {
    for (const l of [none, long]) {
      expect(l.expires).not.toBeNull();
      expect(l.expires!).toBeGreaterThanOrEqual(t0 + 400);
      expect(l.expires!).toBeLessThan(Date.now() + 400 + 50);
    }
    await waitFor("both leases revoked", () => (status(s) as unknown as { pools: { revoked: number } }).pools.revoked === 2, 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  } finally {
    close(none.fd);
    close(long.fd);
  }
});
