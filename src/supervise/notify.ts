// The NOTIFY_SOCKET end of sd_notify(3): a datagram socket a child sends "READY=1" (and STATUS=..., STOPPING=1)
// to. Each child gets its own socket, so a message's socket says who sent it without SO_PASSCRED.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { notifySupervisor } from "../peer/ready.ts";
import { boundSocket, C, close, encodeUnix, recvmsg } from "../sys/index.ts";

export interface NotifySocket {
  path: string;
  /** Every message queued now, parsed into KEY=VALUE pairs; never blocks. */
  drain(): Map<string, string>[];
  close(): void;
}

/** A private directory (mode 0700, so only our uid's processes can send) for the run's notify sockets. */
export function notifyDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "fdbroker-run-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function parseNotify(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

export function openNotifySocket(dir: string, name: string): NotifySocket {
  const path = join(dir, name);
  const fd = boundSocket(C.AF_UNIX, "dgram", encodeUnix(path), path, true);
  const decoder = new TextDecoder();
  let open = true;
  return {
    path,
    drain() {
      const out: Map<string, string>[] = [];
      // Bounded per call, so a child flooding the socket cannot starve the rest of the supervisor.
      for (let i = 0; open && i < 64; i++) {
        // No fds accepted (FDSTORE is not supported): the kernel discards any that are sent.
        const m = recvmsg(fd, 4096, 0);
        if (m === null) break;
        out.push(parseNotify(decoder.decode(m.data)));
      }
      return out;
    },
    close() {
      if (!open) return;
      open = false;
      close(fd);
      rmSync(path, { force: true });
    },
  };
}

/**
 * sd_notify for `run` itself, when it runs under systemd (Type=notify): READY=1 once the first child is ready,
 * RELOADING=1 / READY=1 around a reload, STOPPING=1 at shutdown. Errors are ignored, as sd_notify's callers do:
 * a manager that went away must not take the service down.
 */
export function parentNotifier(path: string | undefined): (message: string) => void {
  if (!path) return () => {};
  return (message) => {
    try {
      notifySupervisor(message, { NOTIFY_SOCKET: path });
    } catch {
      // Nobody is listening any more: nothing to tell.
    }
  };
}
