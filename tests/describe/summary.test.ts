// summarizeFd: the one line recv, send, inspect and get show as WHAT, and the broker stores for ls.
import { afterEach, expect, test } from "bun:test";
import { openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeFd, summarizeFd } from "../../src/describe/index.ts";
import { connect, listenUnix } from "../../src/index.ts";
import { closeAll, pipe } from "../../src/sys/index.ts";
import { fdCount, tempDir } from "../helpers.ts";

const held: number[] = [];
const hold = (fd: number) => (held.push(fd), fd);
const before = fdCount();
afterEach(() => {
  closeAll(held.splice(0));
  expect(fdCount()).toBe(before);
});

test("a file by its path, with its open mode only where asked; sockets by address and peer; others by target", () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, "f");
    writeFileSync(path, "x");
    const f = describeFd(hold(openSync(path, "r")));
    expect(summarizeFd(f)).toBe(path);
    expect(summarizeFd(f, { access: true })).toBe(`${path} (r)`);
    const sock = join(dir.path, "s");
    expect(summarizeFd(describeFd(hold(listenUnix(sock))))).toBe(`unix stream listening ${sock}`);
    expect(summarizeFd(describeFd(hold(connect(sock))), { access: true })).toBe(`unix stream (unnamed) -> ${sock}`);
    const [r, w] = pipe();
    hold(r);
    hold(w);
    expect(summarizeFd(describeFd(r), { access: true })).toMatch(/^pipe:\[\d+\]$/);
  } finally {
    dir.cleanup();
  }
});
