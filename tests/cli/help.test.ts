// Help as a user reads it: `fdbroker help [CMD]` (which --help lists) is `fdbroker [CMD] --help`, every command's
// help ends with the exit codes, and defaults read as they would be typed.
import { expect, setDefaultTimeout, test } from "bun:test";
import { commandNames } from "../../scripts/build.ts";
import { fdbroker } from "../helpers.ts";

setDefaultTimeout(60000);
const names = commandNames();

test("fdbroker help is fdbroker --help, and lists help itself", async () => {
  const [help, dashed] = await Promise.all([fdbroker(["help"]), fdbroker(["--help"])]);
  expect(help).toMatchObject({ code: 0, stderr: "" });
  expect(help.stdout).toBe(dashed.stdout);
  expect(help.stdout).toContain("help [command]");
  expect((await fdbroker(["help", "nosuch"])).code).toBe(2);
});

test.each(names)("fdbroker help %s is its --help, ending with the exit codes", async (name) => {
  const [help, dashed] = await Promise.all([fdbroker(["help", name]), fdbroker([name, "--help"])]);
  expect(help).toMatchObject({ code: 0, stderr: "" });
  expect(help.stdout).toBe(dashed.stdout);
  expect(help.stdout).toStartWith(`Usage: fdbroker ${name} `);
  expect(help.stdout.trimEnd()).toEndWith("127  CMD (after --) not found");
  expect(help.stdout.match(/Exit status:/g)).toHaveLength(1);
  // A repeatable option's empty list is not a default anyone would type.
  expect(help.stdout).not.toContain("(default: [])");
});

test("serve's defaults read as they would be typed: a bare number of seconds would be wrong", async () => {
  const help = (await fdbroker(["serve", "--help"])).stdout.replace(/\s+/g, " ");
  expect(help).toContain("permissions of the socket file (default: 0600)");
  expect(help).toMatch(/--client-timeout <DURATION> .*\(default: 60s\)/);
  expect(help).toMatch(/--drain-timeout <DURATION> .*\(default: 2s\)/);
});
