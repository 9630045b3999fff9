// `fdbroker tap LISTEN --to UPSTREAM`: stand between a UNIX socket's clients and its server, pass every byte and
// fd on unchanged, and print a record of each message. Exit 0 after SIGINT or SIGTERM.
import { Command, Option } from "commander";
import { DEFAULT_LIMITS, runTap } from "../tap/index.ts";
import { parseCount, parseDuration, parseMode, parseSize } from "./broker-common.ts";
import { fail } from "./exit.ts";
import { lineSink } from "./tap-view.ts";

export function command(): Command {
  const d = DEFAULT_LIMITS;
  return new Command("tap")
    .description("relay a UNIX socket's clients to its server, showing every message and fd")
    .argument("[LISTEN]", "where clients connect: a path or @name")
    .option("--to <UPSTREAM>", "the server's socket: a path or @name")
    .option("--swap <PATH>", "tap a live server at PATH: its socket file moves aside until tap exits")
    .option("--json", "one JSON object per line")
    .option("--any-uid", "also relay clients of other uids (the server sees tap's)")
    .option("--bytes <N>", "payload bytes shown per message", (s) => parseCount(s, "--bytes", 0), d.previewBytes)
    .option("--mode <OCTAL>", "permissions of tap's socket file (default 0600; --swap copies the server's)", parseMode)
    .option("--max-conns <N>", "connections (datagram senders) relayed at once", (s) => parseCount(s, "--max-conns"), d.maxConns)
    .addOption(new Option("--buffer <SIZE>", "payload bytes read per message").argParser((s) => parseSize(s, "--buffer")).default(d.bufferBytes, "256KiB"))
    .option("--max-fds <N>", "fds accepted per message; more is MSG_CTRUNC", (s) => parseCount(s, "--max-fds"), d.maxFds)
    .addOption(new Option("--connect-timeout <TIME>", "wait for the server per client").argParser((s) => parseDuration(s, "--connect-timeout")).default(d.connectTimeoutMs, "5s"))
    .addHelpText("after", `
Stream, seqpacket and datagram sockets (the server's type is probed). Each
client gets its own connection to the server (each datagram sender its own
socket); bytes and fds pass through unchanged, with their message boundaries.
Each record: time, connection (#N), direction (c>s, s>c), bytes, a preview
(text or hex), every fd as inspect describes it; a connection's open record
names the client's pid, uid and command (SO_PEERCRED).
Examples:
  fdbroker tap /tmp/tap.sock --to /run/app.sock
  fdbroker tap --swap /run/s6-fdholderd/socket --json`)
    .action(async (listen: string | undefined, o) => {
      const stop = new AbortController();
      let outputClosed = false;
      const sink = lineSink(!!o.json, () => {
        outputClosed = true;
        stop.abort();
      });
      const onSignal = () => stop.abort();
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        await runTap({
          listen, upstream: o.to, swap: o.swap, mode: o.mode, anyUid: !!o.anyUid, sink, signal: stop.signal,
          limits: { maxConns: o.maxConns, bufferBytes: o.buffer, maxFds: Math.min(o.maxFds, 253), connectTimeoutMs: o.connectTimeout, previewBytes: o.bytes },
        });
      } catch (e) {
        sink.flush();
        fail(e);
      }
      // As a process killed by SIGPIPE would end, once everything is closed and put back.
      if (outputClosed) process.exitCode = 128 + 13;
    });
}
