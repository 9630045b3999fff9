// Every environment variable fdbroker reads (and the one it sets for probes), in one list: the top-level --help, README and the man page show it,
// and tests/cli/globals.test.ts fails when the code reads a variable this list does not name.
export const ENVIRONMENT: readonly { name: string; meaning: string }[] = [
  { name: "FDBROKER_SOCKET", meaning: "the broker address when -s is not given" },
  { name: "FDBROKER_BROKER_UID", meaning: "trust a broker running as this uid (as --broker-uid)" },
  { name: "XDG_RUNTIME_DIR", meaning: "the default broker socket is $XDG_RUNTIME_DIR/fdbroker.sock (not for root)" },
  { name: "RUNTIME_DIRECTORY", meaning: "root's default broker socket under systemd: $RUNTIME_DIRECTORY/fdbroker.sock" },
  { name: "LISTEN_FDS", meaning: "fds passed by a service manager (sd_listen_fds); exec, run and serve --adopt-listen-fds take them" },
  { name: "LISTEN_PID", meaning: "the pid LISTEN_FDS is meant for" },
  { name: "LISTEN_FDNAMES", meaning: "names of the LISTEN_FDS fds, :-separated" },
  { name: "NOTIFY_SOCKET", meaning: "serve and run report READY=1 (and run RELOADING=1, STOPPING=1) there" },
  { name: "PATH", meaning: "where CMD is looked up" },
  { name: "FDBROKER_CHILD_PID", meaning: "set, not read: run gives a --ready exec: probe the pid of the child it probes" },
  { name: "NO_COLOR", meaning: "no colour (unless --color always)" },
  { name: "FORCE_COLOR", meaning: "colour even when stdout is not a terminal (unless NO_COLOR, or --color never)" },
  { name: "TERM", meaning: "dumb: no colour" },
  { name: "FDBROKER_LIBC", meaning: "path of the C library to load, when it is not found by its usual names" },
  { name: "FDBROKER_DEBUG", meaning: "print a stack trace with every error" },
];

/** The list as help prints it: names in a column, meanings wrapped to stay within 80 columns. */
export function environmentHelp(columns = 80): string {
  const width = Math.max(...ENVIRONMENT.map((e) => e.name.length));
  const indent = " ".repeat(width + 4);
  const rows = ENVIRONMENT.map((e) => {
    const lines: string[] = [];
    let line = `  ${e.name.padEnd(width)} `;
    for (const word of e.meaning.split(" ")) {
      if (line.length + 1 + word.length > columns && line.trim() !== e.name) {
        lines.push(line);
        line = indent.slice(1);
      }
      line += ` ${word}`;
    }
    return [...lines, line].join("\n");
  });
  return `Environment:\n${rows.join("\n")}`;
}
