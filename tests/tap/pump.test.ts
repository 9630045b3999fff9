// receiveStream against a real socketpair: fds stay with the byte they were sent with, even when bytes sent before
// them are queued ahead (one plain recvmsg would return those bytes and the fds together).
import { expect, test } from "bun:test";
import { closeAll, fstat, pipe, sendmsg, socketpair } from "../../src/sys/index.ts";
import { closePump, newPump, receiveStream } from "../../src/tap/pump.ts";
import { DEFAULT_LIMITS } from "../../src/tap/types.ts";
import { fdCount, waitFor } from "../helpers.ts";

test("bytes queued before a send with fds come out alone; the fds come with their own send's bytes", async () => {
  const before = fdCount();
  const [a, b] = socketpair("stream", true);
  const [r, w] = pipe();
  const p = newPump(1, "c>s");
  try {
    sendmsg(a, new Uint8Array([2, 0, 0, 0]));
    sendmsg(a, new Uint8Array([9, 9, 9]), [r, w]);
    sendmsg(a, new Uint8Array([7]));
    const first = receiveStream(p, b, DEFAULT_LIMITS)!;
    expect([...first.data]).toEqual([2, 0, 0, 0]);
    expect(first.fds).toEqual([]);
    const second = receiveStream(p, b, DEFAULT_LIMITS)!;
    expect([...second.data]).toEqual([9, 9, 9, 7]);
    expect(second.fds.map((fd) => fstat(fd).ino)).toEqual([fstat(r).ino, fstat(w).ino]);
    closeAll(second.fds);
    expect(receiveStream(p, b, DEFAULT_LIMITS)).toBeNull();
  } finally {
    closePump(p);
    closeAll([a, b, r, w]);
  }
  // The copies a peek brings are closed on offload threads, a moment later: a leak times this wait out.
  await waitFor("the peeked copies closed off the loop", () => fdCount() === before);
});
