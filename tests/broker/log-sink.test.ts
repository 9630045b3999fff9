// The broker's log queue: lines wait up to 20 ms, or until a write's worth has gathered, so a busy broker writes
// its log in a few large writes rather than one per request; a flush with a wait (at exit) writes everything.
import { expect, test } from "bun:test";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLogSink, enqueueLine, flushLogSink } from "../../src/broker/log-sink.ts";
import { close, closeAll, pipe, read } from "../../src/sys/index.ts";
import { tempDir, waitFor } from "../helpers.ts";

test("to a regular file: short lines wait for company up to 20 ms, a write's worth goes at once, a flush with a wait takes all", async () => {
  const dir = tempDir();
  const path = join(dir.path, "log");
  const fd = openSync(path, "w");
  try {
    const sink = createLogSink(fd);
    enqueueLine(sink, "one");
    enqueueLine(sink, "two");
    expect(flushLogSink(sink)).toBe(false);
    expect(readFileSync(path, "utf8")).toBe("");
    await waitFor("the lines written once 20 ms have passed", () => flushLogSink(sink), 5000);
    expect(readFileSync(path, "utf8")).toBe("one\ntwo\n");
    const long = "x".repeat(5000);
    enqueueLine(sink, long);
    expect(flushLogSink(sink)).toBe(true);
    expect(readFileSync(path, "utf8")).toBe(`one\ntwo\n${long}\n`);
    enqueueLine(sink, "last");
    expect(flushLogSink(sink, 100)).toBe(true);
    expect(readFileSync(path, "utf8").endsWith("\nlast\n")).toBe(true);
  } finally {
    close(fd);
    dir.cleanup();
  }
});

test("to a pipe nobody reads: writes stop when it is full, lines past the bound are counted and reported once read again", async () => {
  const [r, w] = pipe(true);
  try {
    const sink = createLogSink(w, 100_000);
    const line = "y".repeat(999);
    for (let i = 0; i < 200; i++) enqueueLine(sink, line);
    expect(sink.dropped).toBeGreaterThan(0);
    expect(flushLogSink(sink)).toBe(false);
    let got = "";
    await waitFor("everything queued written and read", () => {
      const chunk = read(r, 1 << 16);
      if (chunk) got += new TextDecoder().decode(chunk);
      return flushLogSink(sink) && !read(r, 1);
    }, 10000);
    enqueueLine(sink, "after");
    expect(flushLogSink(sink, 100)).toBe(true);
    for (let chunk = read(r, 1 << 16); chunk?.length; chunk = read(r, 1 << 16)) got += new TextDecoder().decode(chunk);
    expect(got).toContain("log lines dropped: stderr was not being read");
    expect(got.endsWith("after\n")).toBe(true);
  } finally {
    closeAll([r, w]);
  }
});

// Lines are encoded into a staging buffer (16 KiB) and queued a bufferful at a time; a line that does not fit
// starts the next one, and one longer than the whole buffer is queued by itself, all in order.
test("lines around and beyond the staging buffer's size come out whole and in order, non-ASCII included", () => {
  const dir = tempDir();
  const path = join(dir.path, "log");
  const fd = openSync(path, "w");
  try {
    const sink = createLogSink(fd);
    const lines: string[] = [];
    for (let i = 0; i < 400; i++) lines.push(`${i} ${"é".repeat(i % 50 === 7 ? 9000 : i % 50)} ${"z".repeat(i === 200 ? 40_000 : 10)}`);
    for (const l of lines) enqueueLine(sink, l);
    expect(flushLogSink(sink, 100)).toBe(true);
    expect(readFileSync(path, "utf8")).toBe(`${lines.join("\n")}\n`);
  } finally {
    close(fd);
    dir.cleanup();
  }
});
