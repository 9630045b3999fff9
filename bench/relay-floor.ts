// The floor for a relay written in Bun, for bench/tap.ts: `bench/relay.c`'s splice mode (what fdbroker tap does per
// message: epoll_wait, FIONREAD, a 32-byte peek, splice in, splice out) through src/sys, with nothing else: no
// records, no other connections, no fd handling. Usage: bun bench/relay-floor.ts LISTEN UPSTREAM (one connection).
import { parseUnixAddress } from "../src/peer/address.ts";
import { listenUnix } from "../src/peer/listen.ts";
import { accept, C, connect, epollAdd, epollCreate, epollWait, pipe, poll, queuedBytes, recvmsg, setIntOpt, setPipeSize, socket, splice } from "../src/sys/index.ts";

const [listenPath, upstreamPath] = process.argv.slice(2) as [string, string];
const listener = listenUnix(parseUnixAddress(listenPath), { type: "stream", backlog: 8 });
console.log("listening");
let client: number | null = null;
while (client === null) {
  poll([{ fd: listener, events: C.POLLIN }], -1);
  client = accept(listener);
}
const upstream = parseUnixAddress(upstreamPath);
const server = socket(C.AF_UNIX, "stream");
connect(server, upstream.bytes, upstream.label, 5000);
setIntOpt(server, C.SOL_SOCKET, C.SO_SNDBUF, 1 << 20);
const [pipeOut, pipeIn] = pipe(true);
setPipeSize(pipeIn, 1 << 20);
const ep = epollCreate();
epollAdd(ep, client, C.EPOLLIN);
relay: for (;;) {
  epollWait(ep, Infinity);
  for (;;) {
    const queued = queuedBytes(client);
    const peeked = recvmsg(client, 32, 253, C.MSG_PEEK | C.MSG_DONTWAIT, false);
    if (peeked === null) break;
    if (peeked.data.length === 0) break relay;
    for (let n = splice(client, pipeIn, queued); n > 0;) {
      const w = splice(pipeOut, server, n);
      if (w < 0) poll([{ fd: server, events: C.POLLOUT }], -1);
      else n -= w;
    }
  }
}
process.exit(0);
