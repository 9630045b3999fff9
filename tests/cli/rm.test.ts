import { expect, test } from "bun:test";
import { brokerPerTest, waitFor } from "../broker/harness.ts";
import { fdbroker } from "../helpers.ts";

const start = brokerPerTest();

test("rm removes entries and closes the broker's copies; all or nothing", async () => {
  const broker = await start(["--hold", "a=file:/etc/hosts", "--hold", "b=file:/etc/hosts", "--hold", "c=file:/etc/hosts"]);
  const before = broker.fds();
  const partial = await fdbroker(["rm", "a", "zzz", "-s", broker.sock]);
  expect(partial.code).toBe(1);
  expect(partial.stderr).toContain("ENOENT");
  // The broker closes each finished client's connection when it next sees the hang-up: wait for that, not for a time.
  await waitFor("the refused rm's connection to close", () => broker.fds() === before);
  expect((await fdbroker(["rm", "a", "b", "-s", broker.sock])).code).toBe(0);
  await waitFor("the two entries' fds to close", () => broker.fds() === before - 2);
  const names = JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout).map((e: { name: string }) => e.name);
  expect(names).toEqual(["c"]);
  expect((await fdbroker(["rm", "-s", broker.sock])).code).toBe(2);
  await waitFor("the rm in the log", () => /rm "a" "b" uid=\d+ pid=\d+ ok/.test(broker.log()));
});
