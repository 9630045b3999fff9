// Clients verify the broker (issue 8, finding 1): a fake broker run by uid 65534 on an address root's clients use
// is refused right after connecting, before a byte or an fd goes to it, by every command that talks to a broker.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { openSession } from "../../src/client/index.ts";
import { RefusedError } from "../../src/errors.ts";
import { fdbroker, fdSnapshot, newFdsSince, tempDir } from "../helpers.ts";
import { canSwitchUid, hostile, SKIP_REASON } from "../hostile.ts";

setDefaultTimeout(120000);
let dir: ReturnType<typeof tempDir>;
let sock: string;
let before: string[];
beforeEach(() => {
  dir = tempDir();
  // uid 65534 must be able to create its socket here.
  chmodSync(dir.path, 0o1777);
  sock = join(dir.path, "broker.sock");
  before = fdSnapshot();
});
afterEach(async () => {
  dir.cleanup();
  expect(await newFdsSince(before)).toEqual([]);
});

const refusal = (addr: string) =>
  new RegExp(`^fdbroker: the broker at ${addr.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} runs as uid 65534 \\(pid \\d+\\), not root \\(--broker-uid 65534 to trust it\\)\\n$`);

test.skipIf(!canSwitchUid)(`every broker command refuses a broker of uid 65534 before sending it anything (exit 1) [${SKIP_REASON}]`, async () => {
  await using fake = await hostile("listen", sock);
  const marker = join(dir.path, "ran");
  const commands: string[][] = [
    ["put", "secret", "-s", sock],
    ["get", "web", "--stdin", "-s", sock, "--", "sh", "-c", `touch ${marker}`], // the fast path, without commander
    ["get", "web", "--json", "-s", sock],
    ["ls", "-s", sock],
    ["status", "-s", sock],
    ["rm", "web", "-s", sock],
    ["exec", "--get", "web", "-s", sock, "--", "sh", "-c", `touch ${marker}`],
    ["run", "--get", "web", "-s", sock, "--", "sh", "-c", `touch ${marker}`],
    ["serve", "--takeover", "-s", sock],
  ];
  for (const args of commands) {
    const r = await fdbroker(args, { stdin: Bun.file("/etc/hostname") });
    expect({ args, code: r.code, stderr: r.stderr }).toMatchObject({ args, code: 1, stderr: expect.stringMatching(refusal(sock)) });
    expect({ args, got: await fake.report() }).toEqual({ args, got: { bytes: 0, fds: 0 } });
  }
  expect(existsSync(marker)).toBe(false);
});

test.skipIf(!canSwitchUid)(`--broker-uid and FDBROKER_BROKER_UID trust that uid; the fake then gets the request [${SKIP_REASON}]`, async () => {
  const addr = `@fdbroker-test-fake-${process.pid}`;
  await using fake = await hostile("listen", addr);
  // The fake answers nothing and hangs up: the command fails, but only after sending its request.
  await fdbroker(["put", "x", "--broker-uid", "65534", "-s", addr], { stdin: Bun.file("/etc/hostname") });
  expect(await fake.report()).toMatchObject({ fds: 1 });
  await fdbroker(["get", "x", "--broker-uid", "65534", "-s", addr, "--", "true"]);
  expect((await fake.report()).bytes).toBeGreaterThan(0);
  await fdbroker(["ls", "-s", addr], { env: { ...process.env, FDBROKER_BROKER_UID: "65534" } });
  expect((await fake.report()).bytes).toBeGreaterThan(0);
  const bad = await fdbroker(["ls", "-s", addr], { env: { ...process.env, FDBROKER_BROKER_UID: "nobody" } });
  expect(bad).toMatchObject({ code: 2, stderr: 'fdbroker: bad FDBROKER_BROKER_UID "nobody": expected a uid (a number)\n' });
  expect((await fdbroker(["ls", "--broker-uid", "x", "-s", addr])).code).toBe(2);
});

test.skipIf(!canSwitchUid)(`openSession refuses the fake with a RefusedError and leaves no fd behind; brokerUid trusts it [${SKIP_REASON}]`, async () => {
  await using fake = await hostile("listen", sock);
  let caught: unknown;
  try {
    openSession({ socket: sock }).close();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(RefusedError);
  expect(caught).toMatchObject({ code: "EPERM", message: expect.stringContaining("runs as uid 65534") });
  expect(await fake.report()).toEqual({ bytes: 0, fds: 0 });
  openSession({ socket: sock, brokerUid: 65534 }).close();
  expect(await fake.report()).toEqual({ bytes: 0, fds: 0 });
});
