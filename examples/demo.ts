// `npm start`: a self-contained demo. An open file crosses from one process to another over a UNIX socket in a
// temporary directory, the receiver shows what it got, then runs a command that writes through that fd after the
// process that opened it has exited.
//
// Then the broker part (examples/demo-broker.ts) and the zero-downtime restart (examples/demo-restart.ts), each a
// `run(ctx: DemoContext)` given a temporary directory of its own.
//
// FDBROKER_BIN=dist/fdbroker npm start runs the demo through the compiled binary.
import { closeSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { run as runBroker } from "./demo-broker.ts";
import { run as runRestart } from "./demo-restart.ts";

export interface DemoContext {
  /** The command that runs fdbroker: `[bun, bin/fdbroker]`, or the compiled binary. */
  cli: readonly string[];
  /** A fresh temporary directory for this part, removed afterwards. */
  dir: string;
  /** Print a step heading. */
  step: (text: string) => void;
  /** Print lines indented under the current step. */
  show: (text: string) => void;
  /** Run fdbroker to completion; throws with its stderr unless it exits 0. */
  fdbroker: (args: string[], opts?: { stdin?: number }) => Promise<string>;
  /** Start a long-running fdbroker that takes `--ready-fd 3`; resolves once it says it is ready. */
  startReady: (args: string[]) => Promise<Bun.Subprocess<"ignore", "pipe", "pipe">>;
}

const ROOT = resolve(import.meta.dir, "..");
const cli = process.env.FDBROKER_BIN ? [resolve(process.env.FDBROKER_BIN)] : [process.execPath, join(ROOT, "bin/fdbroker")];
const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[22m` : s);

/** The helpers a part gets, for the temporary directory `dir` (also used by a part run on its own). */
export function context(dir: string): DemoContext {
  const step = (text: string) => console.log(`\n${bold(text)}`);
  const show = (text: string) => console.log(text.trimEnd().replace(/^/gm, "    "));
  async function fdbroker(args: string[], opts: { stdin?: number } = {}): Promise<string> {
    const p = Bun.spawn([...cli, ...args], { stdin: opts.stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
    return finish(p, `fdbroker ${args.join(" ")}`);
  }
  async function startReady(args: string[]) {
    // fd 3 is a pipe the child writes a newline to and closes once ready; its end of file is the signal.
    const p = Bun.spawn([...cli, ...args], { stdio: ["ignore", "pipe", "pipe", "pipe"] });
    const readyFd = p.stdio[3] as number;
    let said: string;
    try {
      said = await new Response(Bun.file(readyFd).stream()).text();
    } finally {
      closeSync(readyFd); // Bun leaves our end of an extra "pipe" open for as long as this process lives
    }
    if (said !== "\n") {
      p.kill();
      throw new Error(`fdbroker ${args.join(" ")} did not get ready: ${(await new Response(p.stderr).text()).trim()}`);
    }
    return p as Bun.Subprocess<"ignore", "pipe", "pipe">;
  }
  return { cli, dir, step, show, fdbroker, startReady };
}

/** Wait for `p` to end; what it printed, or an error with its stderr unless it exited 0. */
async function finish(p: Bun.Subprocess<Bun.SpawnOptions.Writable, "pipe", "pipe">, what: string): Promise<string> {
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${what} exited ${code}: ${err.trim()}`);
  return out;
}

/** The core part: send an fd to a receiver that describes it, then to one that execs a command with it. */
export async function run(ctx: DemoContext): Promise<void> {
  const sock = join(ctx.dir, "demo.sock");
  const file = join(ctx.dir, "demo.txt");
  writeFileSync(file, "first line, written by the demo\n");

  ctx.step(`1. A receiver listens on ${sock}`);
  ctx.show(`$ fdbroker recv ${sock}`);
  const describer = await ctx.startReady(["recv", sock, "--timeout", "20000", "--ready-fd", "3"]);

  ctx.step("2. A sender opens demo.txt for appending and sends the open fd (SCM_RIGHTS), with a payload");
  ctx.show(`$ fdbroker send ${sock} --open 'file:${file}?mode=a' --data 'hello from the sender'`);
  await ctx.fdbroker(["send", sock, "--open", `file:${file}?mode=a`, "--data", "hello from the sender"]);
  ctx.show(`the receiver (pid ${describer.pid}) got and described it:\n`);
  ctx.show(await finish(describer, "fdbroker recv"));

  ctx.step("3. Again, but the receiver execs a command with the fd at 3 (LISTEN_FDS=1, as systemd passes sockets)");
  const script = 'echo "second line, written by pid $$ through fd 3 (LISTEN_FDS=$LISTEN_FDS, LISTEN_PID=$LISTEN_PID)" >&3';
  ctx.show(`$ fdbroker recv ${sock} -- sh -c '${script}'`);
  const runner = await ctx.startReady(["recv", "--timeout", "20000", "--ready-fd", "3", sock, "--", "sh", "-c", script]);
  await ctx.fdbroker(["send", sock, "--open", `file:${file}?mode=a`]);
  await finish(runner, "fdbroker recv -- sh");
  ctx.show("demo.txt now holds (the second line went through the fd the sender opened, not one sh opened):\n");
  ctx.show(readFileSync(file, "utf8"));
}

async function main(): Promise<void> {
  console.log(bold("fdbroker demo: passing open file descriptors between processes over a UNIX socket"));
  const parts: [string, (ctx: DemoContext) => Promise<void>][] = [["core", run], ["broker", runBroker], ["restart", runRestart]];
  for (const [name, part] of parts) {
    const dir = mkdtempSync(join(tmpdir(), `fdbroker-demo-${name}-`));
    try {
      await part(context(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`\n${bold("done.")} More: fdbroker --help, and the README.`);
}

if (import.meta.main) {
  main().catch((e) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
