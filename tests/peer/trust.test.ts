// recv and send deal only with a peer of their own uid or root unless told otherwise (issue 8, finding 2): an
// abstract name has no permissions, so anyone can connect to `recv @name` or `send --listen @name` first, or
// listen on the name a connecting side is given. Hostile peers are tests/fixtures/hostile.py as uid 65534.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gidText, uidText } from "../../src/describe/accounts.ts";
import { receiveFrom, sendTo } from "../../src/peer/session.ts";
import type { PeerCred } from "../../src/sys/index.ts";
import { startReady } from "../cli/peer-helpers.ts";
import { CLI, fdbroker, fdSnapshot, finish, newFdsSince, ROOT, spawnReady, tempDir, waitFor } from "../helpers.ts";
import { asNobody, canSwitchUid, hostile, SKIP_REASON } from "../hostile.ts";

setDefaultTimeout(60000);
let dir: ReturnType<typeof tempDir>;
let before: string[];
let n = 0;
let addr: string;
let secret: string;
beforeEach(() => {
  dir = tempDir();
  before = fdSnapshot();
  addr = `@fdbroker-test-trust-${process.pid}-${++n}`;
  secret = join(dir.path, "secret");
  writeFileSync(secret, "from root\n", { mode: 0o600 });
});
afterEach(async () => {
  dir.cleanup();
  expect(await newFdsSince(before)).toEqual([]);
});

const skip = !canSwitchUid;
const notRoot = (uid = 65534) => `not root (--peer-uid ${uid} to trust it)`;
// With the names this machine's /etc/passwd and /etc/group give them ("uid 65534 (nobody), gid 65534 (nogroup)").
const nobody = `${uidText(65534)}, ${gidText(65534)}`;

test.skipIf(skip)(`recv @name -- CMD: a uid-65534 peer connecting first is closed unheard; root's send then gets through [${SKIP_REASON}]`, async () => {
  const recv = startReady(["recv", addr, "-n", "1", "-v", "--", "sh", "-c", "cat <&3"]);
  const evil = await hostile("connect", addr);
  expect(await evil.report()).toEqual({ bytes: 0, fds: 0 });
  expect((await fdbroker(["send", addr, "--open", `file:${secret}`])).code).toBe(0);
  const r = await recv.result();
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("from root\n");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines[0]).toBe(`fdbroker: listening on ${addr}; waiting with no time limit for a peer`);
  expect(lines[1]).toBe(`fdbroker: closed a connection from pid ${evil.proc.pid}, ${nobody}, command python3: ${notRoot()}; still waiting`);
  expect(lines[2]).toMatch(/^fdbroker: peer pid \d+, uid 0 \(root\), gid 0 \(root\), command \S+$/);
  expect(lines.length).toBe(3);
  await evil.stop();
});

test.skipIf(skip)(`send --listen @name: a uid-65534 peer connecting first gets nothing; root's recv --connect gets the file [${SKIP_REASON}]`, async () => {
  const send = startReady(["send", addr, "--listen", "--open", `file:${secret}`]);
  const evil = await hostile("connect", addr);
  expect(await evil.report()).toEqual({ bytes: 0, fds: 0 });
  const got = await fdbroker(["recv", addr, "--connect", "--json"]);
  expect(got.code).toBe(0);
  expect(JSON.parse(got.stdout)[0].fds[0]).toMatchObject({ path: secret });
  const s = await send.result();
  expect(s.code).toBe(0);
  expect(s.stderr).toContain(`fdbroker: closed a connection from pid ${evil.proc.pid}, uid 65534`);
  await evil.stop();
});

test.skipIf(skip)(`connecting to a uid-65534 listener: send and recv --connect refuse it before sending (exit 1) [${SKIP_REASON}]`, async () => {
  await using evil = await hostile("listen", addr);
  const send = await fdbroker(["send", addr, "--open", `file:${secret}`]);
  const line = new RegExp(`^fdbroker: the peer at ${addr} runs as uid 65534 \\(pid ${evil.proc.pid}\\), ${notRoot().replace(/[()]/g, "\\$&")}\\n$`);
  expect(send).toMatchObject({ code: 1, stderr: expect.stringMatching(line) });
  expect(await evil.report()).toEqual({ bytes: 0, fds: 0 });
  const recv = await fdbroker(["recv", addr, "--connect"]);
  expect(recv).toMatchObject({ code: 1, stderr: expect.stringMatching(line) });
  expect(await evil.report()).toEqual({ bytes: 0, fds: 0 });
});

test.skipIf(skip)(`--peer-uid 65534 and --peer-uid any widen it; -v shows the peer's command with its control characters escaped [${SKIP_REASON}]`, async () => {
  const recv = startReady(["recv", addr, "--peer-uid", "65534", "-v", "--json"]);
  const evil = await hostile("connect", addr, { comm: "ev\x1b[2J\nil" });
  const r = await recv.result();
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)[0]).toMatchObject({ payload: { text: "evil" }, fds: [{ kind: "pipe" }] });
  expect(r.stderr).toBe(`fdbroker: listening on ${addr}; waiting with no time limit for a peer\nfdbroker: peer pid ${evil.proc.pid}, ${nobody}, command ev\\x1b[2J\\nil\n`);
  await evil.stop();

  await using fake = await hostile("listen", addr);
  expect((await fdbroker(["send", addr, "--peer-uid", "any", "--open", `file:${secret}`])).code).toBe(0);
  expect(await fake.report()).toEqual({ bytes: 1, fds: 1 });
  const bad = await fdbroker(["send", addr, "--peer-uid", "nobody"]);
  expect(bad).toMatchObject({ code: 2, stderr: 'fdbroker: bad --peer-uid "nobody": expected a uid (a number) or "any"\n' });
});

test.skipIf(skip)(`a refused peer does not restart --timeout: recv gives up at its limit (exit 3) [${SKIP_REASON}]`, async () => {
  const recv = startReady(["recv", addr, "-t", "2000"]);
  const evil = await hostile("connect", addr);
  expect(await evil.report()).toEqual({ bytes: 0, fds: 0 });
  const r = await recv.result();
  expect(r.code).toBe(3);
  expect(r.stderr).toEndWith(`fdbroker: accept4: ETIMEDOUT (${addr}): no peer connected in 2000 ms\n`);
  await evil.stop();
});

test.skipIf(skip)(`library: receiveFrom tells onPeer of each peer, refuses uid 65534 and takes ours [${SKIP_REASON}]`, async () => {
  const seen: [number, boolean][] = [];
  let evil: Awaited<ReturnType<typeof hostile>> | null = null;
  const got = receiveFrom(addr, {
    count: 1,
    onPeer: (p: PeerCred, trusted: boolean) => void seen.push([p.uid, trusted]),
    onReady: () => void hostile("connect", addr).then((h) => (evil = h)),
  });
  // Ours goes once the hostile peer has been turned away.
  await waitFor("the hostile peer to be turned away", () => seen.length > 0);
  const file = openSync(secret, "r");
  try {
    await sendTo(addr, [file], { connect: true });
  } finally {
    closeSync(file);
  }
  using reception = await got;
  expect(reception.fds.length).toBe(1);
  expect(seen).toEqual([[65534, false], [0, true]]);
  expect(await evil!.report()).toEqual({ bytes: 0, fds: 0 });
  await evil!.stop();
});

test.skipIf(skip)(`privilege separation: root sends a listener over @name to a uid-65534 recv with --peer-uid 65534; without it, send refuses [${SKIP_REASON}]`, async () => {
  // docs/recipes.md: `fdbroker recv @web-handoff --names -- ./server` as the server's uid, then root's send.
  const report = join(ROOT, "tests/fixtures/fd_report.py");
  const startServer = () => spawnReady(asNobody([...CLI, "recv", addr, "--ready-fd", "3", "--names", "--", "/usr/bin/python3", report, "--check"])).proc;
  // Without --peer-uid, root's send hangs up on the uid-65534 listener before sending: that server gets nothing.
  const refused = startServer();
  const plain = await fdbroker(["send", addr, "--open", "tcp:127.0.0.1:0", "--data", "web"]);
  expect(plain).toMatchObject({ code: 1, stderr: expect.stringContaining(`the peer at ${addr} runs as uid 65534`) });
  expect(Object.keys(JSON.parse((await finish(refused)).stdout).fds)).toEqual(["0", "1", "2"]);
  const server = startServer();
  expect((await fdbroker(["send", addr, "--peer-uid", "65534", "--open", "tcp:127.0.0.1:0", "--data", "web"])).code).toBe(0);
  const r = await finish(server);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ uid: 65534, env: { LISTEN_FDS: "1", LISTEN_FDNAMES: "web" }, sockets: { 3: { family: "AF_INET", listening: true } } });
});
