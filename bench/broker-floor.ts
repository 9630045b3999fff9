// The floor for a broker written in Bun, for bench/broker.ts's scale part: bench/ref-broker.c through src/sys and
// nothing else (one epoll loop; per get one recvmsg and one sendmsg of a held fd with a prepared reply frame; no
// rules, budgets, log or parsing). What fdbroker spends beyond it is its own work; what it spends beyond the C
// reference is the runtime's. Usage: bun bench/broker-floor.ts SOCKET (writes a byte to fd 3 once listening).
import { openSync } from "node:fs";
import { parseUnixAddress } from "../src/peer/address.ts";
import { listenUnix } from "../src/peer/listen.ts";
import { accept, C, close, epollAdd, epollCreate, epollWait, recvmsg, sendmsg, write } from "../src/sys/index.ts";

const HEADER = 12;
const OP_GET = 2;
const held = [openSync("/etc/hosts", "r")];
const listener = listenUnix(parseUnixAddress(process.argv[2]!), { type: "stream", backlog: 4096 });
const ep = epollCreate();
epollAdd(ep, listener, C.EPOLLIN);

/** A reply frame with `body`, its request id patched in per request. */
function frame(kind: number, fds: number, body: string): Uint8Array {
  const bytes = new TextEncoder().encode(body);
  const f = new Uint8Array(HEADER + bytes.length);
  f.set([1, kind, 0, fds]);
  new DataView(f.buffer).setUint32(4, bytes.length);
  f.set(bytes, HEADER);
  return f;
}
// The reference's own reply bodies.
const ok = frame(0x80, 1, '{"entries":[{"name":"a","kind":"file","what":"/etc/hosts (r)","owner":{"uid":0,"gid":0,"pid":1},"storedAt":"2026-01-01T00:00:00.000Z","expiresAt":null}]}');
const refused = frame(0x82, 0, '{"code":"EPROTO","message":"only get"}');

write(3, new Uint8Array([1]));
close(3);
for (;;) {
  const ready = epollWait(ep, Infinity);
  for (let i = 0; i < ready.count; i++) {
    const fd = ready.fds[i]!;
    if (fd === listener) {
      for (let c = accept(listener); c !== null; c = accept(listener)) epollAdd(ep, c, C.EPOLLIN, 1);
      continue;
    }
    // The reference's clients send one whole request at a time and wait for its reply.
    const m = recvmsg(fd, 4096, 0, C.MSG_DONTWAIT, false);
    if (m === null) continue;
    if (m.data.length < HEADER) {
      close(fd);
      continue;
    }
    const reply = m.data[1] === OP_GET ? ok : refused;
    reply.set(m.data.subarray(8, HEADER), 8);
    sendmsg(fd, reply, reply === ok ? held : [], C.MSG_DONTWAIT);
  }
}
