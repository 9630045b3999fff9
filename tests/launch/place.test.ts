// Exact fd placement through execWithFds, checked by a real child (Python) that reports every open fd and the
// file behind it: collisions, swaps, cycles through 0, and a few hundred fds at once.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cloexecRange, closeAll, fcntl, getFdFlags, isOpen, pipe, C } from "../../src/sys/index.ts";
import { BUN, ROOT, run, tempDir } from "../helpers.ts";

const PLACE = join(ROOT, "tests/fixtures/place.ts");
const CLOEXEC = join(ROOT, "tests/fixtures/cloexec.ts");
const REPORT = join(ROOT, "tests/fixtures/fd_report.py");
let dir: ReturnType<typeof tempDir>;
setDefaultTimeout(60000);

beforeAll(() => {
  dir = tempDir();
  for (let i = 0; i < 400; i++) writeFileSync(join(dir.path, `f${i}`), "");
});
afterAll(() => dir.cleanup());

const file = (i: number) => join(dir.path, `f${i}`);

/** Place file i (opened at `at`) at `to` for each entry; returns the child's fd table. */
async function place(plan: { file: number; at: number; to: number }[]): Promise<Record<string, string>> {
  const json = JSON.stringify(plan.map((p) => ({ path: file(p.file), at: p.at, to: p.to })));
  const r = await run([BUN, PLACE, json, "python3", REPORT]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).fds;
}

const std = (fds: Record<string, string>) => Object.keys(fds).filter((k) => Number(k) <= 2);

test("swap 3 and 4", async () => {
  const fds = await place([
    { file: 0, at: 3, to: 4 },
    { file: 1, at: 4, to: 3 },
  ]);
  expect(fds["3"]).toBe(file(1));
  expect(fds["4"]).toBe(file(0));
  expect(Object.keys(fds).map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
});

test("5 goes to 0 while 0 goes to 5", async () => {
  const fds = await place([
    { file: 0, at: 5, to: 0 },
    { file: 1, at: 0, to: 5 },
  ]);
  expect(fds["0"]).toBe(file(0));
  expect(fds["5"]).toBe(file(1));
  expect(Object.keys(fds).map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 5]);
});

test("a three-cycle and a target colliding with an unrelated source", async () => {
  const fds = await place([
    { file: 0, at: 3, to: 4 },
    { file: 1, at: 4, to: 5 },
    { file: 2, at: 5, to: 3 },
    { file: 3, at: 7, to: 6 },
    { file: 4, at: 6, to: 9 },
  ]);
  expect(fds).toMatchObject({ "3": file(2), "4": file(0), "5": file(1), "6": file(3), "9": file(4) });
  expect(Object.keys(fds).length).toBe(8);
});

test("an fd already at its target stays; a source placed elsewhere is closed at its old number", async () => {
  const fds = await place([
    { file: 0, at: 3, to: 3 },
    { file: 1, at: 8, to: 4 },
  ]);
  expect(fds).toMatchObject({ "3": file(0), "4": file(1) });
  expect(fds["8"]).toBeUndefined();
  expect(std(fds)).toEqual(["0", "1", "2"]);
});

test("one source placed at two targets", async () => {
  const json = JSON.stringify([{ path: file(0), at: 3, to: 3 }, { path: file(0), at: 3, to: 6 }]);
  const r = await run([BUN, PLACE, json, "python3", REPORT]);
  expect(JSON.parse(r.stdout).fds).toMatchObject({ "3": file(0), "6": file(0) });
});

test("300 fds reversed: every one lands at its target and nothing else survives", async () => {
  const n = 300;
  const plan = Array.from({ length: n }, (_, i) => ({ file: i, at: 3 + i, to: 3 + (n - 1 - i) }));
  const fds = await place(plan);
  expect(Object.keys(fds).length).toBe(3 + n);
  for (const p of plan) expect(fds[String(p.to)]).toBe(file(p.file));
});

test("two fds at one target is refused before anything moves", async () => {
  const json = JSON.stringify([{ path: file(0), at: 3, to: 4 }, { path: file(1), at: 5, to: 4 }]);
  const r = await run([BUN, PLACE, json, "python3", REPORT]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("two fds placed at 4");
});

// The constant matters: CLOSE_RANGE_UNSHARE (2) or no flag at all would close the fds instead of marking them.
test("close_range with CLOSE_RANGE_CLOEXEC marks open fds and closes none", () => {
  const [r, w] = pipe();
  const plain = [fcntl(r, C.F_DUPFD, 700), fcntl(w, C.F_DUPFD, 700)];
  try {
    expect(plain.map((fd) => getFdFlags(fd) & C.FD_CLOEXEC)).toEqual([0, 0]);
    cloexecRange(plain[0]!, plain[1]!);
    expect(plain.map(isOpen)).toEqual([true, true]);
    expect(plain.map((fd) => getFdFlags(fd) & C.FD_CLOEXEC)).toEqual([C.FD_CLOEXEC, C.FD_CLOEXEC]);
  } finally {
    closeAll([r, w, ...plain]);
  }
});

for (const mode of ["range", "listed"]) {
  test(`only kept fds survive exec: stray fds below, between and far above them are CLOEXEC (${mode})`, async () => {
    const keep = [4, 7, 300];
    const stray = [3, 5, 6, 8, 299, 301, 1000];
    // Also kept, and changing nothing: repeats out of order, and numbers no fd has (as uint32: 0xffffffff, 3, 5).
    const noFd = [300, 4, 7, -1, 3.5, 2 ** 32 + 5, 0xffffffff];
    const r = await run([BUN, CLOEXEC, mode, ...[keep, stray, noFd].map((l) => JSON.stringify(l)), "python3", REPORT]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const fds = JSON.parse(r.stdout).fds as Record<string, string>;
    expect(Object.keys(fds).map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, ...keep]);
    for (const fd of keep) expect(fds[String(fd)]).toBe("/dev/null");
  });
}
