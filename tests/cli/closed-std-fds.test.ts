// Through the CLI (so not in the arm64 run of tests/describe, which cannot spawn the arm64 runtime from a shell).
// A closed fd 0, 1 or 2 is not inherited (issue 8, finding 11). Bun puts /dev/null in its place before any
// JavaScript runs; fdbroker must not send, store, pass or describe that as if the caller had handed it over.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, fdSnapshot, newFdsSince, run } from "../helpers.ts";

setDefaultTimeout(60000);
const start = brokerPerTest();
let before: string[];
beforeEach(() => {
  before = fdSnapshot();
});
afterEach(async () => {
  expect(await newFdsSince(before)).toEqual([]);
});

/** fdbroker ARGS run by a shell with `redirect` (`<&-` closes fd 0), exec'd so nothing sits in between. */
const withShell = (redirect: string, args: string[]) => run(["sh", "-c", `exec "$@" ${redirect}`, "sh", ...CLI, ...args]);

test("put, send --fd 0, send (default fd 0), exec --fd 0 and inspect 0 with fd 0 closed: exit 2, `fd 0 is not open`", async () => {
  const broker = await start();
  const cases = [
    ["put", "x", "-s", broker.sock],
    ["send", "@fdbroker-test-nobody-listens", "--fd", "0"],
    ["send", "@fdbroker-test-nobody-listens"],
    ["exec", "--fd", "0", "--", "true"],
    ["inspect", "0"],
  ];
  for (const args of cases) expect({ args, ...(await withShell("<&-", args)) }).toEqual({ args, code: 2, stdout: "", stderr: "fdbroker: fd 0 is not open\n" });
  expect(JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout)).toEqual([]);
  const out = await withShell(">&-", ["inspect", "1"]);
  expect(out).toMatchObject({ code: 2, stderr: "fdbroker: fd 1 is not open\n" });
});

test("inspect with fd 0 closed lists 1 and 2 only; a /dev/null the caller really passed is still inherited", async () => {
  const closed = await withShell("<&-", ["inspect", "--json"]);
  expect(closed.code).toBe(0);
  expect(JSON.parse(closed.stdout).map((d: { fd: number }) => d.fd)).toEqual([1, 2]);
  const broker = await start();
  expect((await withShell("</dev/null", ["put", "null", "-s", broker.sock])).code).toBe(0);
  const [entry] = JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout);
  expect(entry).toMatchObject({ name: "null", kind: "chardev", what: "/dev/null (r)" });
});
