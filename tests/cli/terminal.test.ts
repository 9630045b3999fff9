// Terminal injection (issue 8, finding 12). A file or socket whose path holds an escape sequence, a newline, C1
// controls and format characters is shown escaped by every human renderer (ls, get, inspect, recv, errors, the
// broker's log), one row per fd; --json keeps the exact text. Entry names that could not print as themselves
// (C1, format characters, lone surrogates) are refused by the CLI (exit 2) and by the broker (EPROTO).
import { expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { call, openSession } from "../../src/client/index.ts";
import { OP } from "../../src/proto/index.ts";
import { isSysError } from "../../src/sys/index.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { fdbroker, fdSnapshot, newFdsSince, tempDir, waitFor } from "../helpers.ts";
import { startReady } from "./peer-helpers.ts";

setDefaultTimeout(60000);
const start = brokerPerTest();

/** Retitles the terminal, ends the row and fakes another, then a C1 CSI, a bidi override and a zero-width space. */
const NASTY = "x\x1b]0;pwned\x07\n0  file  fake-row\u009b2J\u202eevil\u200b";
const SHOWN = "x\\x1b]0;pwned\\x07\\n0  file  fake-row\\x9b2J\\u202eevil\\u200b";

/** Nothing a terminal acts on: no C0 control but the newlines ending lines, no DEL, C1, format character or lone surrogate. */
function expectClean(text: string): void {
  const raw = [...text].filter((c) => /[\x00-\x09\x0b-\x1f\x7f-\x9f\p{Cf}\p{Cs}\u2028\u2029]/u.test(c));
  expect(raw.map((c) => `U+${c.codePointAt(0)!.toString(16).padStart(4, "0")}`)).toEqual([]);
}

function lines(text: string): string[] {
  return text.trimEnd().split("\n");
}

function nastyFiles() {
  const dir = tempDir();
  const file = join(dir.path, NASTY);
  writeFileSync(file, "secret\n");
  // Short enough for sun_path (108 bytes), so the socket can be bound at it.
  return { dir, file, sock: join(dir.path, `s${NASTY}`) };
}

test("ls, get and inspect (own fds and --pid) show escaped paths, one row per fd; --json keeps them exact", async () => {
  const { dir, file, sock } = nastyFiles();
  const fd = openSync(file, "r");
  const before = fdSnapshot();
  try {
    const broker = await start(["--hold", `f=file:${file}`, "--hold", `s=unix:${sock}`]);
    const s = ["-s", broker.sock];

    const ls = await fdbroker(["ls", ...s]);
    expect(ls.code).toBe(0);
    expectClean(ls.stdout);
    expect(lines(ls.stdout)).toHaveLength(3);
    expect(lines(ls.stdout)[1]).toStartWith(`f     file    ${dir.path}/${SHOWN} (r)`);
    expect(lines(ls.stdout)[2]).toContain(`unix stream listening ${dir.path}/s${SHOWN}`);
    const lsJson = await fdbroker(["ls", "--json", ...s]);
    expectClean(lsJson.stdout);
    expect(JSON.parse(lsJson.stdout).map((e: { what: string }) => e.what)).toEqual([`${file} (r)`, `unix stream listening ${sock}`]);

    const get = await fdbroker(["get", "f", "s", ...s]);
    expect(get.code).toBe(0);
    expectClean(get.stdout);
    expect(lines(get.stdout)).toHaveLength(3);
    expect(lines(get.stdout)[1]).toEndWith(`${dir.path}/${SHOWN}`);
    const getJson = JSON.parse((await fdbroker(["get", "f", "s", "--json", ...s])).stdout);
    expect(getJson[0].fds.map((d: { path: string | null; socket: { local: string } | null }) => d.path ?? d.socket?.local)).toEqual([file, sock]);

    const own = await fdbroker(["inspect", "3"], { stdio: ["ignore", "pipe", "pipe", fd] });
    expect(own.code).toBe(0);
    expectClean(own.stdout);
    expect(lines(own.stdout)).toHaveLength(2);
    expect(JSON.parse((await fdbroker(["inspect", "3", "--json"], { stdio: ["ignore", "pipe", "pipe", fd] })).stdout)[0].path).toBe(file);

    // The broker is idle: the same fds in both listings.
    const other = await fdbroker(["inspect", "--pid", String(broker.proc.pid)]);
    const otherJson = JSON.parse((await fdbroker(["inspect", "--pid", String(broker.proc.pid), "--json"])).stdout);
    expect(other.code).toBe(0);
    expectClean(other.stdout);
    expect(lines(other.stdout)).toHaveLength(1 + otherJson.length);
    expect(otherJson.some((d: { path: string | null }) => d.path === file)).toBe(true);
    expect(other.stdout).toContain(`${dir.path}/${SHOWN}\n`);
    expect(await broker.stop()).toBe(0);
  } finally {
    closeSync(fd);
    dir.cleanup();
  }
  expect(await newFdsSince(before)).toEqual([]);
});

test("recv shows an escaped payload and path, send -v too; one message line, one row", async () => {
  const { dir, file } = nastyFiles();
  try {
    const addr = join(dir.path, "peer");
    const r = startReady(["recv", addr]);
    // No C0 control in the payload, or it is shown as hex: C1 and format characters pass for text.
    const s = await fdbroker(["send", addr, "-v", "--open", `file:${file}`, "--data", "row\u009b2J\u202eevil\u200b"]);
    expect(s.code).toBe(0);
    expectClean(s.stdout);
    expect(lines(s.stdout)).toHaveLength(2);
    const got = await r.result();
    expect(got.code).toBe(0);
    expectClean(got.stdout);
    expect(lines(got.stdout)).toEqual([
      'message 1: payload "row\\x9b2J\\u202eevil\\u200b" (17 bytes), 1 fd',
      expect.stringMatching(/^#\s+KIND/),
      expect.stringContaining(`${dir.path}/${SHOWN}`),
    ]);
  } finally {
    dir.cleanup();
  }
});

test("error messages quoting a path stay one escaped line", async () => {
  const dir = tempDir();
  try {
    const missing = join(dir.path, `gone${NASTY}`);
    for (const args of [["send", join(dir.path, "nobody"), "--open", `file:${missing}`], ["serve", "-s", join(dir.path, "b.sock"), "--hold", `f=file:${missing}`]]) {
      const r = await fdbroker(args);
      expect(r.code).not.toBe(0);
      expectClean(r.stderr);
      expect(r.stderr).toContain(SHOWN);
      expect(lines(r.stderr)).toHaveLength(1);
    }
  } finally {
    dir.cleanup();
  }
});

test("names with C1, format characters or lone surrogates: the CLI refuses them (exit 2), so does the broker (EPROTO)", async () => {
  const broker = await start(["--hold", "ok=file:/etc/hostname"]);
  const s = ["-s", broker.sock];
  for (const name of ["a\u009b2Jb", "a\u202eb", "a\u200bb", "a\u0085b"]) {
    for (const args of [["put", name, ...s], ["get", name, ...s], ["get", "ok", name, ...s, "--", "true"], ["rm", name, ...s]]) {
      const r = await fdbroker(args, { stdin: Bun.file("/etc/hostname") });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expectClean(r.stderr);
      expect(r.stderr).toMatch(/^fdbroker: bad entry name ".*": entry name holds U\+[0-9A-F]{4}, a control or format character\n$/);
    }
    const serve = await fdbroker(["serve", "-s", `${broker.sock}.2`, "--hold", `${name}=file:/etc/hostname`]);
    expect(serve.code).toBe(2);
    expectClean(serve.stderr);
  }

  // A client that skips the library's check (as a hostile one would): the broker answers EPROTO and stores nothing.
  const fd = openSync("/etc/hostname", "r");
  const brokerFds = broker.fds();
  try {
    using session = openSession({ socket: broker.sock });
    for (const name of ["a\u009bb", "a\u202eb", "\ud800", "a\udc00b"]) {
      const tries: [number, Record<string, unknown>, number[]][] = [
        [OP.put, { name, ttlMs: null, replace: false }, [fd]], [OP.get, { names: [name] }, []], [OP.rm, { names: [name] }, []],
      ];
      for (const [op, body, fds] of tries) {
        let code = "none";
        try {
          call(session, op, body, fds);
        } catch (e) {
          code = (e as { code?: string }).code ?? String(e);
          if (isSysError(e)) throw e;
        }
        expect({ op, name, code }).toEqual({ op, name, code: "EPROTO" });
      }
    }
    expect(call(session, OP.ls, {}).body.entries).toEqual([expect.objectContaining({ name: "ok" })]);
  } finally {
    closeSync(fd);
  }
  await waitFor("the broker to close the session", () => broker.fds() === brokerFds);
  // The refused names are in the broker's log, escaped, one line per request (written within 20 ms, not at once).
  await waitFor("12 refusals logged", () => broker.log().match(/ EPROTO /g)?.length === 12, 5000);
  const log = broker.log();
  expectClean(log);
  expect(log).toContain('"a\\x9bb"');
  expect(log).toContain('"a\\u202eb"');
  expect(log.match(/ EPROTO /g)?.length).toBe(12);
});
