import { expect, test } from "bun:test";
import { brokerPerTest, waitFor } from "./harness.ts";
import { fdbroker } from "../helpers.ts";

const start = brokerPerTest();

test("an entry with a TTL is closed by a timer: the broker's own fd count drops with no client asking", async () => {
  const broker = await start();
  const base = broker.fds();
  for (const [name, ttl] of [["short", "300ms"], ["short2", "400ms"], ["long", "1h"]])
    expect((await fdbroker(["put", name!, "--ttl", ttl!, "-s", broker.sock], { stdin: Bun.file("/etc/hosts") })).code).toBe(0);
  // The put clients' connections close asynchronously; the count settles at base + 1 once both short entries expire.
  await waitFor("expiry of the short entries", () => broker.fds() === base + 1);
  // Log lines are written from the loop's queue a moment after the event: wait for them too.
  await waitFor("the expiries in the log", () => broker.log().includes('expire "short" ok') && broker.log().includes('expire "short2" ok'));
  const names = JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout).map((e: { name: string }) => e.name);
  expect(names).toEqual(["long"]);
});
