// The subcommands: one row each, loaded only when named (start-up cost matters for `get -- CMD`). The literal
// import() calls are what `bun build --compile` follows to put every command inside the binary; help, shell
// completion and the man page are all generated from the modules this table names.
import type { Command } from "commander";

type CommandModule = { command: () => Command };

export const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  recv: { summary: "receive fds on a socket; describe them or exec a command with them", load: () => import("./recv.ts") },
  send: { summary: "send fds (own, or freshly opened) to a socket", load: () => import("./send.ts") },
  inspect: { summary: "describe this process's or another process's fds", load: () => import("./inspect.ts") },
  serve: { summary: "run a broker that holds named fds", load: () => import("./serve.ts") },
  put: { summary: "store an fd in the broker", load: () => import("./put.ts") },
  get: { summary: "retrieve fds from the broker; describe, cat, or exec a command with them", load: () => import("./get.ts") },
  rm: { summary: "remove entries from the broker", load: () => import("./rm.ts") },
  ls: { summary: "list the broker's entries", load: () => import("./ls.ts") },
  status: { summary: "show the broker's state and limits", load: () => import("./status.ts") },
  lease: { summary: "check out one member of a pool exclusively; exec a command with it", load: () => import("./lease.ts") },
  grab: { summary: "copy fds out of a running process (pidfd_getfd): describe, cat, store or pass them on", load: () => import("./grab.ts") },
  tap: { summary: "relay a UNIX socket's clients to its server, showing every message and fd", load: () => import("./tap.ts") },
  exec: { summary: "open listeners, gather fds, exec a command with them (socket activation)", load: () => import("./exec.ts") },
  run: { summary: "supervise a command holding its listeners; zero-downtime reload", load: () => import("./run.ts") },
  completion: { summary: "print a shell completion script (bash, zsh, fish)", load: () => import("./completion.ts") },
};
