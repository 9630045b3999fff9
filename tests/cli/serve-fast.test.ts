// `serve` with plain arguments skips commander (src/cli/serve-fast.ts); other forms go through it. Both read the
// same option table (serve-options.ts), and must give the broker the same options: each plain command line here is
// parsed both ways and compared, and each other form must be left to commander.
import { expect, test } from "bun:test";
import { command } from "../../src/cli/serve.ts";
import { parsePlain } from "../../src/cli/serve-fast.ts";
import { SERVE_OPTIONS } from "../../src/cli/serve-options.ts";

function viaCommander(args: string[]): Record<string, unknown> {
  let got: Record<string, unknown> = {};
  const cmd = command().action((opts: Record<string, unknown>) => {
    got = opts;
  });
  cmd.parse(args, { from: "user" });
  return got;
}

const PLAIN: string[][] = [
  [],
  ["-s", "/run/x.sock"],
  ["--socket=@abstract", "--mode", "0666", "--log", "json"],
  ["--hold", "a=file:/etc/hosts", "--hold=b=file:/etc/hosts", "--pool", "db=2:file:/etc/hosts"],
  ["--allow", "uid:1000:get,ls:web.*", "--allow", "gid:100:all:*", "--adopt-listen-fds", "--takeover", "--broker-uid", "0"],
  ["--max-conns", "50", "--max-conns-per-uid", "5", "--reserved-conns", "0", "--max-fds", "20", "--max-names", "8", "--max-queued-fds", "9"],
  ["--max-request-bytes", "1MiB", "--max-reply-bytes=512K", "--client-timeout", "5s", "--drain-timeout", "1500", "--describe-timeout", "2m"],
  ["--max-lease-ttl", "1h", "--closer-threads", "2", "--ready-fd", "3", "--max-conns", "7", "--max-conns", "8"],
  // A required value is the next argument, whatever it looks like.
  ["-s", "-weird.sock"],
];

test("plain command lines: the fast path's options equal commander's", () => {
  for (const args of PLAIN) expect({ args, opts: parsePlain(SERVE_OPTIONS, args) }).toEqual({ args, opts: viaCommander(args) });
});

test("help, unknown options, arguments, missing or rejected values, joined short options: left to commander", () => {
  const others = [
    ["--help"], ["-h"], ["--bogus"], ["extra"], ["--"], ["-s"], ["-s/run/x.sock"], ["--takeover=yes"], ["--log", "xml"],
    ["--max-conns", "0"], ["--mode", "999"], ["--hold", "nameless"], ["--pool", "db=9999:file:/etc/hosts"], ["--allow", "nobody"], ["--client-timeout"],
  ];
  for (const args of others) expect({ args, opts: parsePlain(SERVE_OPTIONS, args) }).toEqual({ args, opts: null });
});
