import { expect, test } from "bun:test";
import { CLI, fdbroker, run } from "../helpers.ts";
import { brokerPerTest } from "../broker/harness.ts";

const start = brokerPerTest();

test("put from a pipe, then get --cat prints what was written", async () => {
  const broker = await start();
  const put = await run(["sh", "-c", `printf 'hello through the broker\\n' | "$@"`, "sh", ...CLI, "put", "greeting", "-s", broker.sock]);
  expect(put).toMatchObject({ code: 0, stderr: "" });
  const got = await fdbroker(["get", "greeting", "--cat", "-s", broker.sock]);
  expect(got).toMatchObject({ code: 0, stdout: "hello through the broker\n" });
});

test("an existing name is refused (exit 1) unless --replace", async () => {
  const broker = await start();
  expect((await fdbroker(["put", "x", "-s", broker.sock], { stdin: Bun.file("/etc/hostname") })).code).toBe(0);
  const again = await fdbroker(["put", "x", "-s", broker.sock], { stdin: Bun.file("/etc/hostname") });
  expect(again.code).toBe(1);
  expect(again.stderr).toContain("EEXIST");
  expect((await fdbroker(["put", "x", "--replace", "--json", "-s", broker.sock], { stdin: Bun.file("/etc/passwd") })).code).toBe(0);
  const ls = JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout);
  expect(ls.map((e: { name: string; what: string }) => [e.name, e.what])).toEqual([["x", "/etc/passwd (r)"]]);
});

test("--fd N stores that fd; a closed fd and a bad ttl are usage errors (exit 2)", async () => {
  const broker = await start();
  const ok = await run(["sh", "-c", `exec 7</etc/hosts; "$@"`, "sh", ...CLI, "put", "h", "--fd", "7", "--ttl", "1h", "--json", "-s", broker.sock]);
  expect(ok.code).toBe(0);
  const entry = JSON.parse(ok.stdout);
  expect(entry).toMatchObject({ name: "h", kind: "file", uid: process.getuid!() });
  expect(entry.expires - entry.created).toBe(3600_000);
  expect((await fdbroker(["put", "y", "--fd", "99", "-s", broker.sock])).code).toBe(2);
  // Given only 0-2, put's 3 and 4 are the runtime's own (its event loop): open, but nobody's to store.
  for (const fd of ["3", "4"]) {
    const own = await fdbroker(["put", "y", "--fd", fd, "-s", broker.sock]);
    expect(own).toMatchObject({ code: 2, stderr: `fdbroker: --fd ${fd}: not an fd this process inherited\n` });
  }
  expect(JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout).map((e: { name: string }) => e.name)).toEqual(["h"]);
  expect((await fdbroker(["put", "y", "--ttl", "soon", "-s", broker.sock])).code).toBe(2);
});

test("no broker running: exit 3 with one line on stderr", async () => {
  const r = await fdbroker(["put", "x", "-s", "/nonexistent/broker.sock"], { stdin: Bun.file("/etc/hostname") });
  expect(r.code).toBe(3);
  expect(r.stderr.trim().split("\n").length).toBe(1);
});

test("--max-fds: a put beyond it is refused (exit 1, EMFILE); replacing an entry still works", async () => {
  const broker = await start(["--max-fds", "2"]);
  const put = (name: string, ...extra: string[]) => fdbroker(["put", name, ...extra, "-s", broker.sock], { stdin: Bun.file("/etc/hosts") });
  expect((await put("a")).code).toBe(0);
  expect((await put("b")).code).toBe(0);
  const over = await put("c");
  expect(over.code).toBe(1);
  expect(over.stderr).toContain("maximum of 2 fds (--max-fds) [EMFILE]");
  expect((await put("b", "--replace")).code).toBe(0);
  expect(JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout).length).toBe(2);
});

test("put --open stores a freshly opened SPEC (a file, a listener); --open with --fd is a usage error", async () => {
  const broker = await start();
  const web = await fdbroker(["put", "web", "--open", "tcp:127.0.0.1:0", "--json", "-s", broker.sock]);
  expect(web.code).toBe(0);
  expect(JSON.parse(web.stdout).what).toMatch(/^inet stream listening 127\.0\.0\.1:\d+$/);
  expect((await fdbroker(["put", "hosts", "--open", "file:/etc/hosts", "-s", broker.sock])).code).toBe(0);
  const got = await fdbroker(["get", "hosts", "--cat", "-s", broker.sock]);
  expect(got.stdout).toBe(await Bun.file("/etc/hosts").text());
  const both = await fdbroker(["put", "x", "--open", "file:/etc/hosts", "--fd", "0", "-s", broker.sock]);
  expect(both).toMatchObject({ code: 2, stderr: "fdbroker: give --fd or --open, not both\n" });
  const bad = await fdbroker(["put", "y", "--open", "nope:1", "-s", broker.sock]);
  expect(bad.code).toBe(2);
});
