// Arguments that are not UTF-8 are refused (exit 2) instead of reaching fdbroker with each bad byte replaced by
// U+FFFD, where an entry name, a path or a child's argument would silently become another. The bytes are made by
// the shell's printf: a Bun test can only pass arguments as strings.
import { expect, test } from "bun:test";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, run } from "../helpers.ts";

const start = brokerPerTest();

/** The CLI, quoted for sh -c: the arguments with raw bytes are made there, by printf. */
const cli = CLI.map((c) => `'${c}'`).join(" ");

test("a name that is not UTF-8 is refused, not stored as another name (exit 2, the bytes shown)", async () => {
  const broker = await start();
  const sh = `exec ${cli} put -s '${broker.sock}' "$(printf 'a\\205b')" </dev/null`;
  const r = await run(["sh", "-c", sh]);
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(`fdbroker: argument "a\\x85b" is not valid UTF-8: names, paths and a command's arguments must be, or they would change on the way\n`);
  // Nothing was stored; a name that really holds U+FFFD is a name like any other.
  expect((await fdbroker(["ls", "-s", broker.sock, "--json"])).stdout.trim()).toBe("[]");
  expect((await run(["sh", "-c", `${cli} put -s '${broker.sock}' 'a\u{FFFD}b' </dev/null`])).code).toBe(0);
});

test("a child's argument that is not UTF-8 is refused rather than changed on its way to the child", async () => {
  const sh = `exec ${cli} exec -- printf "$(printf '\\377')"`;
  const r = await run(["sh", "-c", sh]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`argument "\\xff" is not valid UTF-8`);
  expect(r.stdout).toBe("");
});
