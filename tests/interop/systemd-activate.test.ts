// Adoption from the real /usr/bin/systemd-socket-activate. It listens, waits for the first connection, then
// execs its command with the listener at fd 3 (LISTEN_FDS=1, LISTEN_PID = that pid) and only TERM, PATH and
// HOME from the environment. Each test connects once to trigger the exec and keeps that connection: it stays
// queued on the listener and must be answered by whatever ends up serving.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { CLI, fdbroker, lineReader, type RunResult, spawn, tempDir, waitFor } from "../helpers.ts";
import { HTTP_SERVER, httpPid, reload, REPORT, startRun } from "../run/harness.ts";

setDefaultTimeout(90000);
const ACTIVATE = "/usr/bin/systemd-socket-activate";
const present = existsSync(ACTIVATE);

/** systemd-socket-activate says "Listening on ADDR as 3." once it has called listen(): connecting is safe then. */
async function listening(proc: ReturnType<typeof spawn>): Promise<void> {
  await lineReader(proc.stderr as ReadableStream<Uint8Array>).next(/^Listening on /);
}

/** Connect and send an HTTP request; resolves with the answering pid once the (later) server answers. */
function pendingRequest(path: string): { sock: Socket; answer: Promise<string> } {
  const sock = connect(path);
  sock.write("GET / HTTP/1.0\r\n\r\n");
  let data = "";
  sock.on("data", (d) => (data += d.toString()));
  const answer = new Promise<string>((resolve, reject) => {
    sock.on("close", () => resolve(data));
    sock.on("error", reject);
  });
  return { sock, answer };
}

test.skipIf(!present)("systemd-socket-activate -> fdbroker exec: its fd comes first, the child sees exactly 0-2 and 3, 4", async () => {
  const dir = tempDir();
  try {
    const sd = join(dir.path, "sd.sock");
    const proc = spawn([ACTIVATE, "-l", sd, "--fdname=sd", ...CLI, "exec", "--listen", `mine=unix:${dir.path}/mine.sock`,
      "--", "python3", REPORT, "--check"]);
    await listening(proc);
    const trigger = connect(sd).on("error", () => {}); // reset once the child exits without accepting it
    const [out, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited]);
    trigger.destroy();
    const rep = JSON.parse(out);
    expect(rep.problems).toEqual([]);
    expect(code).toBe(0);
    expect(rep.pid).toBe(proc.pid); // systemd-socket-activate execs fdbroker, which execs the child: one pid
    expect(rep.env).toEqual({ LISTEN_FDS: "2", LISTEN_PID: String(proc.pid), LISTEN_FDNAMES: "sd:mine" });
    expect(rep.sockets["3"]).toMatchObject({ family: "AF_UNIX", listening: true, address: sd });
    expect(rep.sockets["4"]).toMatchObject({ family: "AF_UNIX", listening: true, address: `${dir.path}/mine.sock` });
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!present)("systemd-socket-activate -> fdbroker exec -> HTTP server answers the triggering connection", async () => {
  const dir = tempDir();
  try {
    const sd = join(dir.path, "web.sock");
    const proc = spawn([ACTIVATE, "-l", sd, ...CLI, "exec", "--", "python3", HTTP_SERVER]);
    await listening(proc);
    const first = pendingRequest(sd);
    expect(await first.answer).toEndWith(`\r\n\r\n${proc.pid}\n`);
    expect(await httpPid(sd)).toBe(proc.pid);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!present)("systemd-socket-activate -> fdbroker run: the inherited listener survives reloads", async () => {
  const dir = tempDir();
  try {
    const sd = join(dir.path, "web.sock");
    const run = startRun(["--ready", "notify", "--", "python3", HTTP_SERVER], {}, [ACTIVATE, "-l", sd, "--fdname=web"]);
    await run.waitFor(/^Listening on /);
    const first = pendingRequest(sd);
    const pid1 = Number((await run.waitFor(/pid (\d+) is ready/))[1]);
    expect(await first.answer).toEndWith(`\r\n\r\n${pid1}\n`);
    const pid2 = await reload(run, pid1);
    expect(await httpPid(sd)).toBe(pid2);
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!present)("systemd-socket-activate -> fdbroker serve --adopt-listen-fds: get web -- CMD serves from it", async () => {
  const dir = tempDir();
  try {
    const sd = join(dir.path, "web.sock");
    const brokerSock = join(dir.path, "broker.sock");
    const broker = spawn([ACTIVATE, "-l", sd, "--fdname=web", ...CLI, "serve", "-s", brokerSock, "--adopt-listen-fds"]);
    await listening(broker);
    const first = pendingRequest(sd);
    // Until the broker answers: its socket file appears at bind(), a moment before listen().
    let ls!: RunResult;
    await waitFor("the broker to answer ls", async () => (ls = await fdbroker(["ls", "--json", "-s", brokerSock])).code === 0);
    expect(JSON.parse(ls.stdout).map((e: { name: string }) => e.name)).toEqual(["web"]);
    const server = spawn([...CLI, "get", "-s", brokerSock, "web", "--", "python3", HTTP_SERVER]);
    expect(await first.answer).toEndWith(`\r\n\r\n${server.pid}\n`);
    expect(await httpPid(sd)).toBe(server.pid);
    server.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    broker.kill("SIGTERM");
    expect(await broker.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});
