// A broker whose stderr nobody reads keeps serving, holds its log queue to a bound, and says how many lines it
// dropped once the reader catches up.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { openSession, put, rm, status } from "../../src/client/index.ts";
import { close, pipe, read, setNonBlocking } from "../../src/sys/index.ts";
import { CLI, readyPipe, rssKiB, spawn, tempDir } from "../helpers.ts";

test("an unread log pipe bounds the broker's memory and never stalls it", async () => {
  const dir = tempDir();
  const sock = join(dir.path, "b.sock");
  const [logRead, logWrite] = pipe();
  setNonBlocking(logRead, true);
  const ready = readyPipe();
  const proc = spawn([...CLI, "serve", "-s", sock, "--ready-fd", "3"], { stdio: ["ignore", "ignore", logWrite, ready.writeEnd] });
  close(logWrite);
  ready.closeWriteEnd();
  const [held, heldWriteEnd] = pipe();
  try {
    ready.wait(30000);
    const s = openSession({ socket: sock, timeoutMs: 30000 });
    try {
      // Each put and rm logs a line of about 100 bytes: 40,000 lines is about 4 MB, four times the queue's bound
      // and sixty times the pipe's capacity.
      for (let i = 0; i < 20000; i++) {
        put(s, `entry-${i}`, held);
        rm(s, [`entry-${i}`]);
      }
      expect(status(s).entries).toBe(0);
      // Bun's own buffering would have kept all 4 MB; the queue keeps at most 1 MiB of it.
      expect(rssKiB(proc.pid)).toBeLessThan(200 * 1024);
      let text = "";
      const deadline = Date.now() + 30000;
      while (!text.includes("log lines dropped") && Date.now() < deadline) {
        for (let chunk = read(logRead, 65536); chunk && chunk.length > 0; chunk = read(logRead, 65536))
          text += new TextDecoder().decode(chunk);
        status(s); // one more line, after which the broker reports what it dropped
      }
      expect(text).toMatch(/\(\d+ log lines dropped: stderr was not being read\)/);
      const dropped = Number(/\((\d+) log lines dropped/.exec(text)![1]);
      expect(dropped).toBeGreaterThan(20000);
    } finally {
      s.close();
    }
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  } finally {
    close(held);
    close(heldWriteEnd);
    close(logRead);
    ready.close();
    dir.cleanup();
  }
}, 120000);
