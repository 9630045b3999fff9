// The broker part of `npm start`: examples/demo.ts runs it with a fresh temporary directory and its helpers. A broker on a
// temporary socket holds a TCP listener and a pipe; clients list, retrieve, exec with and remove them; SIGTERM
// closes everything and removes the socket.
import { join } from "node:path";
import type { DemoContext } from "./demo.ts";

export async function run(ctx: DemoContext): Promise<void> {
  const sock = join(ctx.dir, "broker.sock");
  ctx.step("Broker 1. Start a broker holding a TCP listener from the start");
  ctx.show(`$ fdbroker serve -s ${sock} --hold web=tcp:127.0.0.1:0`);
  const broker = await ctx.startReady(["serve", "-s", sock, "--hold", "web=tcp:127.0.0.1:0", "--ready-fd", "3"]);
  try {
    ctx.step("Broker 2. Store the read end of a pipe for 10 minutes (what was written waits inside it)");
    ctx.show(`$ echo 'kept in a pipe the broker holds' | fdbroker put note --ttl 10m -s ${sock}`);
    const p = Bun.spawn(["sh", "-c", `echo 'kept in a pipe the broker holds' | "$@"`, "sh", ...ctx.cli, "put", "note", "--ttl", "10m", "-s", sock], { stderr: "pipe" });
    if ((await p.exited) !== 0) throw new Error(`put failed: ${await new Response(p.stderr).text()}`);

    ctx.step("Broker 3. List what it holds: what each fd is, who stored it, age, expiry");
    ctx.show(`$ fdbroker ls -s ${sock}`);
    ctx.show(await ctx.fdbroker(["ls", "-s", sock]));

    ctx.step("Broker 4. Retrieve both in one round trip and describe them");
    ctx.show(`$ fdbroker get web note -s ${sock}`);
    ctx.show(await ctx.fdbroker(["get", "web", "note", "-s", sock]));

    ctx.step("Broker 5. Run a command with the listener at fd 3 (LISTEN_FDS), then read the pipe and remove it");
    const script = 'echo "pid $$ got LISTEN_FDS=$LISTEN_FDS LISTEN_FDNAMES=$LISTEN_FDNAMES"';
    ctx.show(`$ fdbroker get web -s ${sock} -- sh -c '${script}'`);
    ctx.show(await ctx.fdbroker(["get", "web", "-s", sock, "--", "sh", "-c", script]));
    ctx.show(`$ fdbroker get note --cat --rm -s ${sock}`);
    ctx.show(await ctx.fdbroker(["get", "note", "--cat", "--rm", "-s", sock]));

    ctx.step("Broker 6. Hot upgrade: a new broker takes over the socket, the entries and the clients; the old one exits");
    ctx.show(`$ fdbroker serve -s ${sock} --takeover`);
    const next = await ctx.startReady(["serve", "-s", sock, "--takeover", "--ready-fd", "3"]);
    ctx.show(`old broker (pid ${broker.pid}) exited ${await broker.exited}; the new one is pid ${next.pid}:\n`);
    ctx.show(await ctx.fdbroker(["status", "-s", sock]));

    ctx.step("Broker 7. SIGTERM: every held fd closed, socket file removed");
    next.kill("SIGTERM");
    const [log, code] = await Promise.all([new Response(next.stderr).text(), next.exited]);
    ctx.show(`the new broker's log (exit ${code}):\n`);
    ctx.show(log);
  } finally {
    if (broker.exitCode === null) broker.kill("SIGTERM");
    const [log, code] = await Promise.all([new Response(broker.stderr).text(), broker.exited]);
    ctx.show(`the first broker's log (exit ${code}):\n`);
    ctx.show(log);
  }
}
