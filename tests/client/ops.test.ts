// The client against a broker that misbehaves, played in this process: its reply is queued on the socket before
// the request goes out (the client blocks while it waits, so nothing could answer later).
import { afterEach, beforeEach, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { acceptOne, listenUnix } from "../../src/index.ts";
import { ls, openSession, put, rm, status } from "../../src/client/index.ts";
import { sendFds } from "../../src/peer/transfer.ts";
import { encodeFrame, REPLY } from "../../src/proto/index.ts";
import { closeAll } from "../../src/sys/index.ts";
import { fdCount, tempDir } from "../helpers.ts";

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.cleanup());

const replies: [string, Record<string, unknown>, (s: ReturnType<typeof openSession>, fd: number) => unknown][] = [
  ["put", { entry: { name: "a" } }, (s, fd) => put(s, "a", fd)],
  ["rm", { removed: 1 }, (s) => rm(s, ["a"])],
  ["ls", { entries: [] }, (s) => ls(s)],
  ["status", { pid: 1 }, (s) => status(s)],
];

test.each(replies)("fds that come with a %s reply are closed: nobody asked for them", (_op, body, run) => {
  const before = fdCount();
  const nul = openSync("/dev/null", "r");
  const lfd = listenUnix(join(dir.path, "b.sock"));
  const session = openSession({ socket: join(dir.path, "b.sock"), timeoutMs: 10000 });
  const broker = acceptOne(lfd, 10000);
  try {
    sendFds(broker, [nul, nul, nul], encodeFrame({ kind: REPLY.ok, id: 1, fds: 3, body }));
    const during = fdCount();
    run(session, nul);
    expect(fdCount()).toBe(during);
  } finally {
    session.close();
    closeAll([broker, lfd]);
    closeSync(nul);
  }
  expect(fdCount()).toBe(before);
});
