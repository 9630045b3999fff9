// Every recipe in docs/recipes.md, run for real. The systemd units are read from the document itself, so the
// text cannot drift from what is tested.
import { expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBroker, startTakeover, waitFor } from "../broker/harness.ts";
import { CLI, ROOT, run, spawn, spawnReady, tempDir } from "../helpers.ts";
import { PY } from "../hostile.ts";
import { clientLoop, HTTP_SERVER, httpPid, reload, REPORT, startRun } from "./harness.ts";

setDefaultTimeout(120000);
const root = process.getuid?.() === 0;
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
// A python3 that uid 65534 may run (the caller's PATH may lead to one under root's home).


/** Run `attempt(port)` on low ports until one is not taken (exit 4 with EADDRINUSE means try the next). */
async function onFreeLowPort<T extends { code: number; stderr: string }>(attempt: (port: number) => Promise<T>): Promise<[number, T]> {
  for (let i = 0; i < 20; i++) {
    const port = 600 + Math.floor(Math.random() * 400);
    const r = await attempt(port);
    if (!r.stderr.includes("EADDRINUSE")) return [port, r];
  }
  throw new Error("no free port below 1024");
}

test.skipIf(!root)("privilege separation: exec opens a low port and a root-only file, setpriv drops to uid 65534", async () => {
  const dir = tempDir(); // mode 0700, owned by root: uid 65534 cannot even look inside
  const log = join(dir.path, "web.log");
  try {
    const [port, r] = await onFreeLowPort((p) =>
      run([...CLI, "exec", "--listen", `web=tcp:127.0.0.1:${p}`, "--listen", `log=file:${log}?mode=a`, "--", ...NOBODY,
        PY, REPORT, "--check"]));
    const rep = JSON.parse(r.stdout);
    expect(rep.problems).toEqual([]);
    expect(rep.uid).toBe(65534);
    expect(rep.env.LISTEN_FDNAMES).toBe("web:log");
    expect(rep.sockets["3"]).toMatchObject({ family: "AF_INET", listening: true, address: ["127.0.0.1", port] });
    expect(rep.fds["4"]).toBe(log);
    // The unprivileged process writes through the fd it was given, and cannot open the file itself.
    const w = await run([...CLI, "exec", "--listen", `log=file:${log}?mode=a`, "--", ...NOBODY, "sh", "-c",
      `echo "written by $(id -u)" >&3; echo "opened by $(id -u)" >> ${log}`]);
    expect(w.code).not.toBe(0);
    expect(readFileSync(log, "utf8")).toBe("written by 65534\n");
  } finally {
    dir.cleanup();
  }
});

test.skipIf(!root)("privilege separation: a root broker hands a low port to uid 65534", async () => {
  let broker: Awaited<ReturnType<typeof startBroker>> | null = null;
  const [port] = await onFreeLowPort(async (p) => {
    try {
      broker = await startBroker(["--mode", "0666", "--hold", `web=tcp:127.0.0.1:${p}`, "--allow", "uid:65534:get:web"]);
      return { code: 0, stderr: "" };
    } catch (e) {
      return { code: 4, stderr: (e as Error).message };
    }
  });
  const b = broker!;
  try {
    chmodSync(b.dir, 0o755);
    const r = await run([...NOBODY, ...CLI, "get", "-s", b.sock, "web", "--", PY, REPORT, "--check"]);
    const rep = JSON.parse(r.stdout);
    expect(rep.problems).toEqual([]);
    expect(rep.uid).toBe(65534);
    expect(rep.env.LISTEN_FDNAMES).toBe("web");
    expect(rep.sockets["3"]).toMatchObject({ family: "AF_INET", listening: true, address: ["127.0.0.1", port] });
  } finally {
    expect(await b.stop()).toBe(0);
  }
});

test("shared log fd: workers started by get log -- append through the broker's one open file", async () => {
  const dir = tempDir();
  const log = join(dir.path, "app.log");
  const broker = await startBroker(["--hold", `log=file:${log}?mode=a`]);
  try {
    const loop = 'i=0; while [ $i -lt 200 ]; do echo "worker $$ line $i" >&3; i=$((i+1)); done';
    const workers = await Promise.all([
      ...Array.from({ length: 5 }, () => run([...CLI, "get", "-s", broker.sock, "log", "--", "sh", "-c", loop])),
      run([...CLI, "get", "-s", broker.sock, "log", "--as", "1", "--", "sh", "-c", 'echo "stdout of $$"']),
    ]);
    for (const w of workers) expect(w.code).toBe(0);
    const lines = readFileSync(log, "utf8").trimEnd().split("\n");
    expect(lines.length).toBe(1001);
    const byPid = new Map<string, number[]>();
    for (const l of lines.filter((x) => x.startsWith("worker"))) {
      const [, pid, n] = /^worker (\d+) line (\d+)$/.exec(l)!;
      byPid.set(pid!, [...(byPid.get(pid!) ?? []), Number(n)]);
    }
    expect(byPid.size).toBe(5);
    for (const seq of byPid.values()) expect(seq).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(lines.filter((l) => /^stdout of \d+$/.test(l)).length).toBe(1);
  } finally {
    expect(await broker.stop()).toBe(0);
    dir.cleanup();
  }
});

test("debugging with recv: a Python sender's pipe and file are described", async () => {
  const dir = tempDir();
  const sock = join(dir.path, "debug.sock");
  try {
    const { proc: recv } = spawnReady([...CLI, "recv", sock, "--json", "--timeout", "30000", "--ready-fd", "3"], {}, 30000);
    const sender = `import os, socket
r, w = os.pipe()
f = open("/etc/hostname")
s = socket.socket(socket.AF_UNIX)
s.connect(${JSON.stringify(sock)})
socket.send_fds(s, [b"what the program sends"], [r, f.fileno()])`;
    const sent = await run(["python3", "-c", sender]);
    expect(sent.code).toBe(0);
    const [out, code] = await Promise.all([new Response(recv.stdout as ReadableStream).text(), recv.exited]);
    expect(code).toBe(0);
    const [msg] = JSON.parse(out);
    expect(msg.payload.text).toBe("what the program sends");
    expect(msg.fds.map((f: { kind: string; path: string | null }) => [f.kind, f.path])).toEqual([["pipe", null], ["file", "/etc/hostname"]]);
  } finally {
    dir.cleanup();
  }
});

test("broker upgrade with --takeover: the held listener and its servers carry on, zero failed requests", async () => {
  const dir = tempDir();
  const web = join(dir.path, "web.sock");
  const old = await startBroker(["--hold", `web=unix:${web}`]);
  try {
    const serve = (n: number) => spawn([...CLI, "get", "-s", old.sock, "web", "--", "python3", HTTP_SERVER], {
      stdout: Bun.file(join(dir.path, `server${n}.out`)),
    });
    const servedBy = (n: number) => () => /^ready \d+/.test(existsSync(join(dir.path, `server${n}.out`)) ? readFileSync(join(dir.path, `server${n}.out`), "utf8") : "");
    const first = serve(1);
    await waitFor("server 1", servedBy(1));
    const client = clientLoop(web, 2);
    await client.until(() => client.total() >= 100);

    // The upgrade: a new broker (a new fdbroker binary, in real life) takes over at the same address.
    const next = startTakeover(old.sock, "pipe");
    expect(await old.proc.exited).toBe(0);

    // After it, the new broker hands out the same listener: a fresh server replaces the first one.
    const mark = client.total();
    const second = serve(2);
    await waitFor("server 2", servedBy(2));
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    await client.until(() => client.total() >= mark + 200 && (client.byPid.get(second.pid) ?? 0) >= 50);
    await client.stop();
    expect(client.failures).toEqual([]);
    expect([...client.byPid.keys()].sort()).toEqual([first.pid, second.pid].sort());
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    next.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  } finally {
    await old.stop();
    dir.cleanup();
  }
});

/** The ```ini block that follows the line naming `file` in docs/recipes.md. */
function unitFromDoc(file: string): string {
  const doc = readFileSync(join(ROOT, "docs/recipes.md"), "utf8");
  const m = new RegExp("`/etc/systemd/system/" + file.replace(".", "\\.") + "`:\\n\\n```ini\\n([\\s\\S]*?)```").exec(doc);
  if (!m) throw new Error(`no ${file} unit in docs/recipes.md`);
  return m[1]!;
}

const present = existsSync("/usr/bin/systemd-socket-activate") && existsSync("/usr/bin/systemd-analyze");

test.skipIf(!present)("systemd units in this file pass systemd-analyze verify, and their ExecStart serves under systemd-socket-activate", async () => {
  const dir = tempDir();
  try {
    const socketUnit = unitFromDoc("web.socket");
    const serviceUnit = unitFromDoc("web.service").replace("/usr/local/bin/fdbroker", CLI.join(" ")).replace(/^User=.*\n/m, "");
    writeFileSync(join(dir.path, "web.socket"), socketUnit);
    writeFileSync(join(dir.path, "web.service"), serviceUnit);
    const verify = await run(["systemd-analyze", "verify", join(dir.path, "web.socket"), join(dir.path, "web.service")]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);

    // What systemd would do with them, by hand: the socket unit's listener (a UNIX path instead of port 8080),
    // its FileDescriptorName, then ExecStart with a real server in place of /srv/web/server.
    const name = /^FileDescriptorName=(.*)$/m.exec(socketUnit)![1]!;
    const exec = /^ExecStart=(.*)$/m.exec(serviceUnit)![1]!.split(" ");
    expect(exec.slice(0, CLI.length + 1)).toEqual([...CLI, "run"]);
    const args = exec.slice(CLI.length + 1, exec.indexOf("--"));
    const sock = join(dir.path, "web.sock");
    const sup = startRun([...args, "--", "python3", HTTP_SERVER], {}, ["/usr/bin/systemd-socket-activate", "-l", sock, `--fdname=${name}`]);
    await sup.waitFor(/^Listening on /); // systemd-socket-activate's word that it called listen()
    const first = httpPid(sock); // triggers systemd-socket-activate's exec, then waits in the queue
    const pid1 = Number((await sup.waitFor(/pid (\d+) is ready/))[1]);
    expect(await first).toBe(pid1);
    const pid2 = await reload(sup, pid1); // ExecReload
    expect(await httpPid(sock)).toBe(pid2);
    sup.proc.kill("SIGTERM");
    expect(await sup.proc.exited).toBe(0);
  } finally {
    dir.cleanup();
  }
});
