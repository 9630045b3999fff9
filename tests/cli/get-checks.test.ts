// `get --rm ... -- CMD` removes entries from the broker: input that cannot work must fail before the broker is
// asked, or the entries are gone with nothing to show for it. Both the plain (fast) and the full form are run.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { brokerPerTest } from "../broker/harness.ts";
import { fdbroker } from "../helpers.ts";

const start = brokerPerTest();

test("a placement clash or a missing command fails before --rm takes anything", async () => {
  const broker = await start();
  const path = join(broker.dir, "a.txt");
  writeFileSync(path, "contents of a\n");
  expect((await fdbroker(["put", "a", "-s", broker.sock], { stdin: Bun.file(path) })).code).toBe(0);
  const s = broker.sock;
  const cases: [string[], number, string][] = [
    [["get", "-s", s, "--rm", "a", "--as", "4", "--as", "4", "--", "true"], 2, "two fds placed at the same number"],
    [["get", "-s", s, "--rm", "a", "--stdin", "--as", "0", "--", "true"], 2, "two fds placed at the same number"],
    [["get", "-s", s, "--rm", "a", "--", "/nonexistent/cmd"], 127, "execve: ENOENT"],
    [["get", "-s", s, "--rm", "a", "--json", "--", "no-such-command-here"], 127, "not found on PATH"],
  ];
  for (const [args, code, message] of cases) {
    const r = await fdbroker(args);
    expect({ args, code: r.code }).toEqual({ args, code });
    expect(r.stderr).toContain(message);
  }
  const still = await fdbroker(["get", "-s", s, "--rm", "a", "--", "sh", "-c", "cat <&3"]);
  expect(still).toMatchObject({ code: 0, stdout: "contents of a\n" });
});
