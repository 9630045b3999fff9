// The man page, fdbroker.1, generated from the same definitions as --help and shell completion (src/cli/reference.ts,
// environment.ts, exit.ts). `npm run build` and `npm pack` write it to dist/fdbroker.1, which package.json's `man` names.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { ENVIRONMENT } from "../src/cli/environment.ts";
import { EXIT_HELP } from "../src/cli/exit.ts";
import { GLOBALS_HELP } from "../src/cli/globals.ts";
import { commandReference } from "../src/cli/reference.ts";
import { VERSION } from "../src/version.ts";

const ROOT = resolve(import.meta.dir, "..");

/** Text as roff reads it: backslashes doubled, and a line starting with . or ' not taken for a request. */
function roff(text: string): string {
  return text.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(/^([.'])/gm, "\\&$1");
}

/** Preformatted lines (examples, tables), kept as they are. */
const verbatim = (text: string) => `.nf\n${roff(text)}\n.fi`;

export async function manPage(): Promise<string> {
  const cmds = await commandReference();
  const out: string[] = [
    `.TH FDBROKER 1 "" "fdbroker ${VERSION}" "User Commands"`,
    ".SH NAME",
    "fdbroker \\- pass open file descriptors between processes over UNIX sockets (SCM_RIGHTS)",
    ".SH SYNOPSIS",
    ...cmds.map((c) => `.B ${roff(c.usage)}\n.br`),
    ".SH DESCRIPTION",
    roff("fdbroker sends, receives, holds and describes open file descriptors: peer to peer (recv, send, inspect), through a long-running broker that holds named fds (serve, put, get, rm, ls, status), and into child processes with systemd's socket-activation protocol (exec, run)."),
    ".SH COMMANDS",
  ];
  for (const c of cmds) {
    out.push(`.SS ${roff(c.name)}`, `.B ${roff(c.usage)}`, ".PP", roff(c.description));
    for (const o of c.options) out.push(".TP", `.B ${roff(o.flags)}`, roff(o.description));
    if (c.notes) out.push(".PP", verbatim(c.notes));
  }
  out.push(".SH OPTIONS FOR EVERY COMMAND", verbatim(GLOBALS_HELP));
  out.push(".SH ENVIRONMENT");
  for (const e of ENVIRONMENT) out.push(".TP", `.B ${e.name}`, roff(e.meaning));
  out.push(".SH EXIT STATUS", verbatim(EXIT_HELP.replace(/^Exit status:\n/, "")));
  out.push(".SH SEE ALSO", "README.md, docs/protocol.md, docs/recipes.md and docs/security.md in the package; sd_listen_fds(3), unix(7), cmsg(3)");
  return `${out.join("\n")}\n`;
}

/** Write the man page; returns its path. */
export async function writeManPage(path = resolve(ROOT, "dist/fdbroker.1")): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, await manPage());
  return path;
}

if (import.meta.main) console.log(`wrote ${relative(process.cwd(), await writeManPage())}`);
