// `--env NAME=TEMPLATE` on exec, run, get -- and recv --: the template language, and a real child printing its
// environment next to what /proc/self/fd says it holds.
import { expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { collectEnv, expandEnv, parseEnvTemplate } from "../../src/launch/env-template.ts";
import { UsageError } from "../../src/errors.ts";
import { brokerPerTest } from "../broker/harness.ts";
import { CLI, fdbroker, finish, spawn, spawnReady, tempDir } from "../helpers.ts";
import { startRun } from "../run/harness.ts";

setDefaultTimeout(60000);
const startBroker = brokerPerTest();

// Prints the variables named on its command line and the fds it holds that are sockets or files (not the
// directory fd listing them opens).
const SHOW = `
import json, os, sys
fds = {}
for f in os.listdir("/proc/self/fd"):
    try:
        fds[int(f)] = os.readlink("/proc/self/fd/" + f)
    except OSError:
        pass
print(json.dumps({"env": {k: os.environ.get(k) for k in sys.argv[1:]},
                  "fds": sorted(n for n, t in fds.items() if n > 2 and not t.startswith("/proc/"))}))`;
const show = (...names: string[]) => ["python3", "-c", SHOW, ...names];

test("templates: {fds}, {fds/SEP}, {fdsSEP}, {fd:NAME}, {count} and doubled braces", () => {
  const fds = [{ number: 3, name: "web" }, { number: 4 }, { number: 7, name: "admin" }];
  const expand = (text: string) => expandEnv([parseEnvTemplate(text)], fds);
  expect(expand("NGINX={fds;}")).toEqual({ NGINX: "3;4;7;" });
  expect(expand("A={fds}")).toEqual({ A: "3 4 7" });
  expect(expand("A={fds/,}")).toEqual({ A: "3,4,7" });
  expect(expand("A={fds/, }")).toEqual({ A: "3, 4, 7" });
  expect(expand("A=--fd={fd:admin} --web={fd:web} ({count}) {{fds}}")).toEqual({ A: "--fd=7 --web=3 (3) {fds}" });
  expect(expand("A=")).toEqual({ A: "" });
  expect(expandEnv([parseEnvTemplate("NGINX={fds;}")], [{ number: 3 }])).toEqual({ NGINX: "3;" });
  expect(expandEnv([parseEnvTemplate("N={count}:{fds;}")], [])).toEqual({ N: "0:" });
});

test("bad templates, names and references are usage errors naming the option", () => {
  const bad: [string, string][] = [
    ["X={nope}", "bad --env X={nope}: unknown placeholder {nope} (fds, fds/SEP, fdsSEP, fd:NAME or count)"],
    ["X={fds/}", "unknown placeholder {fds/}"],
    ["X={fd:}", "unknown placeholder {fd:}"],
    ["X={fds", "bad --env X={fds: { at 1 is not closed"],
    ["X={a{fds}", "{ at 1 is not closed"],
    ["X=fds}", "bad --env X=fds}: a lone } at 4 ({{ and }} are literal braces)"],
    ["1X={fds}", "bad --env 1X={fds}: expected NAME=TEMPLATE"],
    ["{fds}", "expected NAME=TEMPLATE"],
    ["LISTEN_FDS={count}", "bad --env LISTEN_FDS={count}: LISTEN_FDS is set by fdbroker or the service manager"],
  ];
  for (const [text, message] of bad) expect(() => parseEnvTemplate(text)).toThrow(message);
  expect(() => collectEnv("A={fds}", collectEnv("A={count}"))).toThrow("--env A given twice");
  const fds = [{ number: 3, name: "web" }, { number: 4, name: "web" }, { number: 5 }];
  expect(() => expandEnv([parseEnvTemplate("W={fd:api}")], fds)).toThrow(UsageError);
  expect(() => expandEnv([parseEnvTemplate("W={fd:api}")], fds)).toThrow('--env W={fd:api}: no fds named "api" (the fds: web, web, (unnamed))');
  expect(() => expandEnv([parseEnvTemplate("W={fd:web}")], fds)).toThrow('--env W={fd:web}: 2 fds named "web"');
});

test("exec: NGINX comes out as 3; for one listener and 3;4; for two, naming fds the child really holds", async () => {
  const dir = tempDir();
  try {
    const one = await fdbroker(["exec", "--listen", "web=tcp:127.0.0.1:0", "--env", "NGINX={fds;}", "--", ...show("NGINX")]);
    expect(one).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(one.stdout)).toEqual({ env: { NGINX: "3;" }, fds: [3] });
    const two = await fdbroker(["exec", "--listen", "web=tcp:127.0.0.1:0", "--listen", `admin=unix:${dir.path}/admin`,
      "--env", "NGINX={fds;}", "--env", "ADMIN={fd:admin}", "--env", "N={count}", "--", ...show("NGINX", "ADMIN", "N")]);
    expect(two).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(two.stdout)).toEqual({ env: { NGINX: "3;4;", ADMIN: "4", N: "2" }, fds: [3, 4] });
    const missing = await fdbroker(["exec", "--listen", "web=tcp:127.0.0.1:0", "--env", "A={fd:api}", "--", "true"]);
    expect(missing).toEqual({ code: 2, stdout: "", stderr: 'fdbroker: --env A={fd:api}: no fds named "api" (the fds: web)\n' });
  } finally {
    dir.cleanup();
  }
});

test("run: every child gets the variables, with the listeners' numbers", async () => {
  const dir = tempDir();
  try {
    const run = startRun(["--listen", `a=unix:${dir.path}/a`, "--listen", "b=tcp:127.0.0.1:0", "--env", "NGINX={fds;}", "--env", "B={fd:b}",
      "--backoff", "60000", "--", ...show("NGINX", "B")]);
    await run.waitFor(/restarting in 60000 ms/);
    run.proc.kill("SIGTERM");
    const [out, code] = await Promise.all([run.stdout(), run.proc.exited]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ env: { NGINX: "3;4;", B: "4" }, fds: [3, 4] });
  } finally {
    dir.cleanup();
  }
});

test("get --: numbers follow --as; a bad {fd:NAME} is refused before the broker is asked, so --rm loses nothing", async () => {
  const broker = await startBroker(["--hold", "web=tcp:127.0.0.1:0", "--hold", "log=file:/etc/hostname"]);
  const got = await fdbroker(["get", "web", "log", "--as", "7", "-s", broker.sock, "--env", "FDS={fds/,}", "--env", "LOG={fd:log}", "--", ...show("FDS", "LOG")]);
  expect(got).toMatchObject({ code: 0, stderr: "" });
  expect(JSON.parse(got.stdout)).toEqual({ env: { FDS: "7,3", LOG: "3" }, fds: [3, 7] });
  const refused = await fdbroker(["get", "web", "--rm", "-s", broker.sock, "--env", "X={fd:nope}", "--", "true"]);
  expect(refused).toEqual({ code: 2, stdout: "", stderr: 'fdbroker: --env X={fd:nope}: no fds named "nope" (the fds: web)\n' });
  const allRm = await fdbroker(["get", "--all", "--rm", "-s", broker.sock, "--env", "X={fd:web}", "--", "true"]);
  expect(allRm.code).toBe(2);
  expect((await fdbroker(["get", "web", "-s", broker.sock, "--env", "X={fds}"])).stderr).toBe("fdbroker: --env needs a command after --\n");
  expect((await fdbroker(["ls", "--names", "-s", broker.sock])).stdout.split("\n").sort()).toEqual(["", "log", "web"]);
});

test("recv --: {fd:NAME} takes the names --names gives; without --names it is refused before waiting for a peer", async () => {
  const dir = tempDir();
  try {
    const addr = join(dir.path, "drop.sock");
    const recv = spawnReady([...CLI, "recv", addr, "--names", "--ready-fd", "3", "--env", "WEB={fd:web}", "--env", "ALL={fds/:}", "--", ...show("WEB", "ALL")]).proc;
    const sent = await fdbroker(["send", addr, "--open", `unix:${dir.path}/a`, "--open", "tcp:127.0.0.1:0", "--data", "admin:web"]);
    expect(sent.code).toBe(0);
    const out = await finish(recv);
    expect(out).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(out.stdout)).toEqual({ env: { WEB: "4", ALL: "3:4" }, fds: [3, 4] });
    const unnamed = spawn([...CLI, "recv", addr, "--env", "WEB={fd:web}", "--", "true"]);
    expect(await finish(unnamed)).toEqual({ code: 2, stdout: "", stderr: "fdbroker: --env {fd:NAME} needs --names: without it the fds have no names\n" });
  } finally {
    dir.cleanup();
  }
});
