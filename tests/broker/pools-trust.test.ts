// Pools against other uids (issue 10's hostile pass, issue 8's rules): who may lease, who may add members that
// other lessees receive, and the broker's own cap on how long a lease lasts. Real brokers; the other uid is 65534
// through setpriv.
import { expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { lease, openSession, pools, put, status } from "../../src/client/index.ts";
import { close, closeAll, pipe } from "../../src/sys/index.ts";
import { asNobody, canSwitchUid, PY, SKIP_REASON } from "../hostile.ts";
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

/** uid 65534 adding N members in one connection (Python, the wire protocol): prints the reply codes' counts. */
const POOL_PUT_FLOOD = `
import collections, json, os, socket, struct, sys
HEADER = struct.Struct(">BBHII")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
fd = os.open("/dev/null", os.O_RDONLY)
counts = collections.Counter()
for i in range(int(sys.argv[2])):
    body = json.dumps({"name": "p%d" % (i % 7), "ttlMs": None, "replace": False, "pool": True}).encode()
    socket.send_fds(s, [HEADER.pack(1, 1, 1, len(body), i + 1) + body], [fd])
    head = b""
    while len(head) < HEADER.size:
        head += s.recv(HEADER.size - len(head))
    _, kind, _, length, _ = HEADER.unpack(head)
    reply = b""
    while len(reply) < length:
        reply += s.recv(length - len(reply))
    counts["ok" if kind == 0x80 else json.loads(reply).get("code")] += 1
print(json.dumps(counts), flush=True)
`;

// The old code counted only entries against --max-fds: a uid granted pool-put added members without end (300 of
// 300 here), each an fd the broker holds, up to its RLIMIT_NOFILE, after which nobody could connect.
test.skipIf(!canSwitchUid)("a pool-put flood is bounded by --max-fds: entries and members share it, the rest EMFILE", async () => {
  const b = await start(["--max-fds", "50", "--mode", "0666", "--allow", "uid:65534:pool-put:p*"]);
  chmodSync(b.dir, 0o755);
  const before = b.fds();
  {
    using s = openSession({ socket: b.sock });
    const ends = pipe();
    try {
      put(s, "entry", ends[0]);
    } finally {
      closeAll(ends);
    }
  }
  const r = await run(asNobody([PY, "-c", POOL_PUT_FLOOD, b.sock, "300"]));
  expect(r.stderr).toBe("");
  expect(JSON.parse(r.stdout)).toEqual({ ok: 49, EMFILE: 251 });
  expect(b.fds()).toBeLessThanOrEqual(before + 50);
  // Root's own put meets the same bound.
  using s = openSession({ socket: b.sock });
  const ends = pipe();
  try {
    expect(() => put(s, "one-more", ends[0])).toThrow(/--max-fds/);
  } finally {
    closeAll(ends);
  }
});
