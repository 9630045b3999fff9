// Telling a supervisor a process is ready (serve, recv, send, run): a newline on --ready-fd (s6 style), and
// READY=1 or other states on NOTIFY_SOCKET (systemd's sd_notify protocol: one datagram to the socket the variable
// names, `@` meaning abstract).
import { connectTo } from "./endpoint.ts";
import { close, sendmsg, write } from "../sys/index.ts";

export function writeReadyFd(fd: number): void {
  try {
    write(fd, new TextEncoder().encode("\n"));
  } finally {
    close(fd);
  }
}

/** Send `message` to $NOTIFY_SOCKET if set. Returns false when there is none. */
export function notifySupervisor(message: string, env: Record<string, string | undefined> = process.env): boolean {
  const addr = env.NOTIFY_SOCKET;
  if (!addr) return false;
  const fd = connectTo(addr, 1000, "dgram");
  try {
    sendmsg(fd, new TextEncoder().encode(message));
  } finally {
    close(fd);
  }
  return true;
}
