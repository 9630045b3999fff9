import { expect, test } from "bun:test";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, lineReader, run, spawn } from "../helpers.ts";

const start = brokerPerTest();

test("ls shows name, kind, what, owner uid and pid, age and expiry; --json too", async () => {
  const broker = await start(["--hold", "hosts=file:/etc/hosts", "--hold", "web=tcp:127.0.0.1:0"]);
  const put = await run(["sh", "-c", `echo $$; exec "$@"`, "sh", ...CLI, "put", "tmp", "--ttl", "10m", "-s", broker.sock], { stdin: Bun.file("/etc/hostname") });
  expect(put.code).toBe(0);
  const putPid = Number(put.stdout.trim());
  const entries = JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout);
  expect(entries.map((e: { name: string; kind: string }) => [e.name, e.kind])).toEqual([["hosts", "file"], ["tmp", "file"], ["web", "socket"]]);
  const [hosts, tmp, web] = entries;
  expect(hosts).toMatchObject({ what: "/etc/hosts (r)", uid: 0, gid: 0, user: "root", group: "root", pid: broker.proc.pid, expires: null });
  expect(tmp).toMatchObject({ pid: putPid, what: "/etc/hostname (r)" });
  expect(tmp.expires - tmp.created).toBe(600_000);
  expect(web.what).toMatch(/^inet stream listening 127\.0\.0\.1:\d+$/);
  const text = await fdbroker(["ls", "-s", broker.sock]);
  expect(text.code).toBe(0);
  const lines = text.stdout.trim().split("\n");
  expect(lines[0]).toMatch(/^NAME\s+KIND\s+WHAT\s+UID\s+PID\s+AGE\s+EXPIRES$/);
  // The uid with its user name beside it, as /etc/passwd has it.
  expect(lines[2]).toMatch(/^tmp\s+file\s+\/etc\/hostname \(r\)\s+0 \(root\)\s+\d+\s+\d+m?s\s+in (9m 5\ds|10m)$/);
});

test("ls of an empty broker says so on stderr and prints [] with --json", async () => {
  const broker = await start();
  const r = await fdbroker(["ls", "-s", broker.sock]);
  expect(r).toMatchObject({ code: 0, stdout: "", stderr: "no entries\n" });
  expect(JSON.parse((await fdbroker(["ls", "--json", "-s", broker.sock])).stdout)).toEqual([]);
});

test("ls --names prints one name per line and nothing else, as s6-fdholder-list does", async () => {
  const broker = await start(["--hold", "web=tcp:127.0.0.1:0", "--hold", "hosts=file:/etc/hosts"]);
  expect(await fdbroker(["ls", "--names", "-s", broker.sock])).toMatchObject({ code: 0, stdout: "hosts\nweb\n", stderr: "" });
  const empty = await start();
  expect(await fdbroker(["ls", "--names", "-s", empty.sock])).toMatchObject({ code: 0, stdout: "" });
});

test("ls --pools: size, idle, opening, waiters, and each lease as pid, uid (with its user name) and age", async () => {
  const broker = await start(["--pool", "gpu=2:file:/dev/null"]);
  // Holds its member until its stdin closes.
  const lessee = spawn([...CLI, "lease", "gpu", "-s", broker.sock, "--", "sh", "-c", "echo leased; read x || true"], { stdin: "pipe", stdout: "pipe" });
  try {
    await lineReader(lessee.stdout as ReadableStream<Uint8Array>).next(/^leased$/);
    const r = await fdbroker(["ls", "--pools", "-s", broker.sock]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^POOL\s+SIZE\s+IDLE\s+OPENING\s+WAITERS\s+LEASED \(LESSEE, AGE\)$/);
    expect(lines[1]).toMatch(new RegExp(`^gpu\\s+2\\s+1\\s+0\\s+0\\s+pid ${lessee.pid} uid 0 \\(root\\) \\d+m?s$`));
  } finally {
    (lessee.stdin as { end(): void }).end();
    await lessee.exited;
  }
});
