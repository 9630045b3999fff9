// Issue 10: pools of fds lent by exclusive leases. Real brokers, real lessees (the CLI, sh), real sockets: a member
// is never lent twice at once, a lease ends with its session, its process (SIGKILL included) or its --ttl, waiters
// go in arrival order, and a socket member that comes back dirty is dropped and re-opened from its SPEC.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { lease, openSession, pools, putMember } from "../../src/client/index.ts";
import { listenUnix } from "../../src/peer/listen.ts";
import { accept, close, closeAll, fstat, isSysError, pipe, read, waitFd, write, C } from "../../src/sys/index.ts";
import { CLI, lineReader, spawn, tempDir, waitFor } from "../helpers.ts";
import { brokerPerTest } from "./harness.ts";

const start = brokerPerTest();

const inode = (fd: number) => fstat(fd).ino;
const poolOf = (sock: string, name: string) => {
  using s = openSession({ socket: sock });
  return pools(s).find((p) => p.name === name)!;
};

test("each lease gets a member no one else holds; with none idle, a lease that will not wait is refused (ETIMEDOUT) and one that waits gets the first released", async () => {
  const b = await start([]);
  const pipes = [pipe(), pipe()];
  const before = b.fds();
  {
    using s = openSession({ socket: b.sock });
    for (const [r] of pipes) putMember(s, "p", r);
  }
  closeAll(pipes.flat().slice(0));
  const s1 = openSession({ socket: b.sock });
  const s2 = openSession({ socket: b.sock });
  const s3 = openSession({ socket: b.sock, timeoutMs: 30_000 });
  try {
    const a = lease(s1, "p");
    const c = lease(s2, "p");
    expect(inode(a.fd)).not.toBe(inode(c.fd));
    expect(poolOf(b.sock, "p")).toMatchObject({ size: 2, idle: 0, waiters: 0 });
    let refused: unknown = null;
    try {
      lease(s3, "p", { waitMs: 0 });
    } catch (e) {
      refused = e;
    }
    expect(isSysError(refused, "ETIMEDOUT")).toBe(true);
    // A waiter in another process (this one's calls block): it is served once a member is released.
    const waiter = spawn([...CLI, "lease", "p", "-s", b.sock, "--wait", "20s", "--", "sh", "-c", "readlink /proc/self/fd/3"], { stdout: "pipe", stderr: "pipe" });
    await waitFor("the waiter queued", () => poolOf(b.sock, "p").waiters === 1);
    const wanted = `pipe:[${inode(a.fd)}]`;
    a.release();
    close(a.fd);
    expect((await new Response(waiter.stdout as ReadableStream).text()).trim()).toBe(wanted);
    expect(await waiter.exited).toBe(0);
    close(c.fd);
  } finally {
    for (const s of [s1, s2, s3]) s.close();
  }
  await waitFor("every lease back", () => poolOf(b.sock, "p").idle === 2);
  // Members stay held by the broker: two pipe ends more than before the puts (the listing sessions' sockets are
  // closed a moment after they hang up).
  await waitFor("the broker's fds back to its members", () => b.fds() === before + 2, 5000);
});

test("lease -- CMD holds its member exactly as long as CMD runs: a SIGKILLed lessee frees it within a second", async () => {
  const dir = tempDir();
  const b = await start(["--pool", `f=1:file:${join(dir.path, "member")}?mode=w`]);
  try {
    const child = spawn([...CLI, "lease", "f", "-s", b.sock, "--", "sh", "-c", "echo leased; exec sleep 60"], { stdout: "pipe" });
    await lineReader(child.stdout as ReadableStream<Uint8Array>).next(/^leased$/);
    expect(poolOf(b.sock, "f")).toMatchObject({ idle: 0, leased: [expect.objectContaining({ pid: child.pid })] });
    // The lessee's connection is gone (closed at exec): the lease is bound to its pid.
    const t0 = performance.now();
    child.kill("SIGKILL");
    await waitFor("the member idle again", () => poolOf(b.sock, "f").idle === 1, 5000);
    expect(performance.now() - t0).toBeLessThan(1000);
    // Without CMD, the lease ends with the command.
    const r = spawn([...CLI, "lease", "f", "-s", b.sock, "--json"], { stdout: "pipe" });
    expect(JSON.parse(await new Response(r.stdout as ReadableStream).text())[0].fds[0].kind).toBe("file");
    expect(await r.exited).toBe(0);
    await waitFor("the member idle again", () => poolOf(b.sock, "f").idle === 1, 5000);
  } finally {
    dir.cleanup();
  }
});

test("a wait that runs out exits 3 with one line naming the pool; a missing pool is refused", async () => {
  const b = await start(["--pool", "one=1:file:/dev/null"]);
  using s = openSession({ socket: b.sock });
  const held = lease(s, "one");
  try {
    const t0 = performance.now();
    const r = spawn([...CLI, "lease", "one", "-s", b.sock, "--wait", "300ms"], { stderr: "pipe" });
    const err = await new Response(r.stderr as ReadableStream).text();
    expect(await r.exited).toBe(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
    expect(err).toMatch(/^fdbroker: lease: ETIMEDOUT \(one\): no member of pool "one" came free in 300 ms/);
    expect(err.trim().split("\n")).toHaveLength(1);
    const none = spawn([...CLI, "lease", "nope", "-s", b.sock, "--wait", "0"], { stderr: "pipe" });
    expect(await new Response(none.stderr as ReadableStream).text()).toContain('no pool "nope"');
    expect(await none.exited).toBe(1);
  } finally {
    held.release();
    close(held.fd);
  }
});

test("waiters are served in arrival order", async () => {
  const b = await start(["--pool", "q=1:file:/dev/null"]);
  const dir = tempDir();
  const order = join(dir.path, "order");
  using s = openSession({ socket: b.sock });
  const held = lease(s, "q");
  const waiters = [];
  try {
    for (let i = 0; i < 4; i++) {
      waiters.push(spawn([...CLI, "lease", "q", "-s", b.sock, "--wait", "30s", "--", "sh", "-c", `echo ${i} >> ${order}`]));
      await waitFor(`waiter ${i} queued`, () => poolOf(b.sock, "q").waiters === i + 1);
    }
    held.release();
    for (const w of waiters) expect(await w.exited).toBe(0);
    expect(await Bun.file(order).text()).toBe("0\n1\n2\n3\n");
  } finally {
    close(held.fd);
    dir.cleanup();
  }
});

test("unix-connect members: one returned with unread input is dropped and re-opened; --ttl shuts a socket member down under its lessee", async () => {
  const dir = tempDir();
  const path = join(dir.path, "server.sock");
  const lfd = listenUnix(path);
  const accepted: number[] = [];
  const acceptOne = async () => {
    await waitFor("a connection from the broker", () => waitFd(lfd, C.POLLIN, 0) !== 0);
    const fd = accept(lfd, true)!;
    accepted.push(fd);
    return fd;
  };
  try {
    const b = await start(["--pool", `db=1:unix-connect:${path}`]);
    const server1 = await acceptOne();
    await waitFor("the member connected", () => poolOf(b.sock, "db").idle === 1);
    {
      using s = openSession({ socket: b.sock });
      const l = lease(s, "db");
      // The lessee asks and leaves without reading the reply: the connection's state is unknown now.
      write(server1, new TextEncoder().encode("+PONG\r\n"));
      await waitFor("the reply in the member's queue", () => waitFd(l.fd, C.POLLIN, 0) !== 0);
      l.release();
      close(l.fd);
    }
    // Dropped at return, and a new connection made in its place.
    const server2 = await acceptOne();
    await waitFor("the new member connected", () => poolOf(b.sock, "db").idle === 1);
    using s = openSession({ socket: b.sock });
    const l = lease(s, "db", { ttlMs: 300 });
    try {
      expect(waitFd(l.fd, C.POLLIN, 0)).toBe(0);
      // At --ttl the broker shuts the socket down: the lessee's copy reads end of file, the server sees it go.
      expect(waitFd(l.fd, C.POLLIN, 10_000) & C.POLLIN).toBeTruthy();
      expect(read(l.fd, 16)?.length).toBe(0);
      expect(waitFd(server2, C.POLLIN, 10_000) & C.POLLIN).toBeTruthy();
      await acceptOne();
      await waitFor("refilled after the revocation", () => poolOf(b.sock, "db").idle === 1);
    } finally {
      close(l.fd);
    }
    using st = openSession({ socket: b.sock });
    const { status } = await import("../../src/client/index.ts");
    expect((status(st) as unknown as { pools: Record<string, number> }).pools).toMatchObject({ granted: 2, revoked: 1, dropped: 2 });
  } finally {
    closeAll([lfd, ...accepted]);
    dir.cleanup();
  }
});

test("connect SPECs open a connected socket wherever SPECs go (put --open), and one nobody answers fails at once, naming it", async () => {
  const b = await start([]);
  const dir = tempDir();
  const path = join(dir.path, "server.sock");
  const lfd = listenUnix(path);
  try {
    const r = spawn([...CLI, "put", "c", "-s", b.sock, "--open", `unix-connect:${path}`, "--json"], { stdout: "pipe", stderr: "pipe" });
    const entry = JSON.parse(await new Response(r.stdout as ReadableStream).text());
    expect(await r.exited).toBe(0);
    expect(entry).toMatchObject({ name: "c", kind: "socket" });
    expect(entry.what).toContain("-> ");
    const none = spawn([...CLI, "put", "d", "-s", b.sock, "--open", `unix-connect:${join(dir.path, "nobody.sock")}`], { stderr: "pipe" });
    expect(await new Response(none.stderr as ReadableStream).text()).toMatch(/connect: ENOENT \(.*nobody\.sock\)/);
    expect(await none.exited).not.toBe(0);
    const bad = spawn([...CLI, "serve", "-s", join(dir.path, "x.sock"), "--pool", "p=2:tcp-connect:nohost"], { stderr: "pipe" });
    expect(await new Response(bad.stderr as ReadableStream).text()).toContain("tcp-connect:nohost");
    expect(await bad.exited).toBe(2);
  } finally {
    close(lfd);
    dir.cleanup();
  }
});
