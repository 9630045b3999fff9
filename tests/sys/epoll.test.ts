// src/sys/epoll.ts against the kernel: registrations carry the caller's key (fd and generation), interest changes
// take effect, and a registration outlives a closed fd whose file lives on (why the broker removes before closing).
import { expect, test } from "bun:test";
import { C, close, closeAll, dupCloexec, epollAdd, epollCreate, epollModify, epollRemove, epollWait, socketpair, write } from "../../src/sys/index.ts";
import { fdCount } from "../helpers.ts";

const ready = (ep: number) => {
  const b = epollWait(ep, 0);
  return Array.from({ length: b.count }, (_, i) => ({ fd: b.fds[i]!, gen: b.gens[i]!, events: b.events[i]! }));
};

test("events come back with the key given; modify and remove change what is reported; nothing leaks", () => {
  const before = fdCount();
  const ep = epollCreate();
  const [a, b] = socketpair();
  try {
    epollAdd(ep, a, C.EPOLLIN, 7);
    expect(ready(ep)).toEqual([]);
    write(b, new Uint8Array([1]));
    expect(ready(ep)).toEqual([{ fd: a, gen: 7, events: C.EPOLLIN }]);
    // Level-triggered: still readable, still reported; registered for nothing, it is not.
    expect(ready(ep)).toEqual([{ fd: a, gen: 7, events: C.EPOLLIN }]);
    epollModify(ep, a, 0, 8);
    expect(ready(ep)).toEqual([]);
    epollModify(ep, a, C.EPOLLIN | C.EPOLLOUT, 0xffffffff);
    expect(ready(ep)).toEqual([{ fd: a, gen: 0xffffffff, events: C.EPOLLIN | C.EPOLLOUT }]);
    epollRemove(ep, a);
    expect(ready(ep)).toEqual([]);
    // Removing what is not registered, or an fd already closed, is no error.
    epollRemove(ep, a);
    epollRemove(ep, 1_000_000);
    // A hang-up is reported whatever the interest.
    epollAdd(ep, a, 0, 9);
    close(b);
    expect(ready(ep)[0]).toMatchObject({ fd: a, gen: 9 });
    expect(ready(ep)[0]!.events & C.EPOLLHUP).toBe(C.EPOLLHUP);
  } finally {
    closeAll([ep, a]);
    try {
      close(b);
    } catch {}
  }
  expect(fdCount()).toBe(before);
});

test("a registration lives as long as the open file, not the fd: closing without removing leaves events for a number now unused", () => {
  const ep = epollCreate();
  const [a, b] = socketpair();
  const copy = dupCloexec(a);
  try {
    epollAdd(ep, a, C.EPOLLIN, 3);
    close(a);
    write(b, new Uint8Array([1]));
    // The fd number is gone, the key is not: a caller must tell such an event from one for a new fd of that number.
    expect(ready(ep)).toEqual([{ fd: a, gen: 3, events: C.EPOLLIN }]);
  } finally {
    closeAll([ep, b, copy]);
  }
});
