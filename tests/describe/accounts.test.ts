// User and group names beside ids: parsing /etc/passwd-style tables, and the text shown for a known and an
// unknown id.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { accountNames, gidText, parseNameTable, uidCell, uidText } from "../../src/describe/accounts.ts";

test("name:x:id lines; the first name for an id wins; NIS and malformed lines are skipped", () => {
  const t = parseNameTable(["root:x:0:0:root:/root:/bin/sh", "toor:x:0:0::/:/bin/sh", "+::::::", "-bad:x:7:7", "broken", "noid:x::", "web:x:33:33::/:"].join("\n"));
  expect([...t]).toEqual([[0, "root"], [33, "web"]]);
});

test("known ids get their name beside the number; unknown ids print the number only", () => {
  const unknown = 2 ** 32 - 2; // no system has a user there (-2 as a u32)
  expect(uidText(0)).toBe("uid 0 (root)");
  expect(gidText(0)).toBe(`gid 0 (${parseNameTable(readFileSync("/etc/group", "utf8")).get(0)})`);
  expect(uidCell(0)).toBe("0 (root)");
  expect(uidText(unknown)).toBe(`uid ${unknown}`);
  expect(uidCell(unknown)).toBe(String(unknown));
  expect(accountNames(0, unknown)).toEqual({ user: "root" });
  expect(accountNames(undefined, undefined)).toEqual({});
});
