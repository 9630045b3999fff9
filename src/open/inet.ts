// TCP and UDP listeners as a SPEC describes them: socket options first (they only matter before bind), then bind,
// then listen for TCP. Blocking, as systemd hands them out: the server that gets one decides for itself.
import { UsageError } from "../errors.ts";
import { bind, C, close, encodeInet, isSysError, listen, setIntOpt, socket, SysError } from "../sys/index.ts";
import type { InetParams } from "./parse.ts";

export interface InetSpec extends InetParams {
  kind: "tcp" | "udp";
  /** "" for every address: IPv6 and IPv4 together where the machine has IPv6, else IPv4 alone. */
  host: string;
  port: number;
}

export function openInet(s: InetSpec): number {
  const label = s.host === "" ? `${s.kind}:${s.port}` : `${s.kind}:${s.host.includes(":") ? `[${s.host}]` : s.host}:${s.port}`;
  if (s.host !== "") return inetSocket(s, s.host, s.v6only, label);
  try {
    // Dual stack whatever net.ipv6.bindv6only says, as a bare port means in systemd's ListenStream=.
    return inetSocket(s, "::", false, label);
  } catch (e) {
    if (!isSysError(e, "EAFNOSUPPORT")) throw e;
    return inetSocket(s, "0.0.0.0", undefined, label);
  }
}

function inetSocket(s: InetSpec, host: string, v6only: boolean | undefined, label: string): number {
  let addr: Uint8Array;
  try {
    addr = encodeInet(host, s.port);
  } catch (e) {
    throw new UsageError(`${label}: ${(e as Error).message}`);
  }
  const v6 = addr.length > 16;
  const fd = socket(v6 ? C.AF_INET6 : C.AF_INET, s.kind === "tcp" ? "stream" : "dgram", false);
  try {
    const set = (level: number, name: number, on: boolean, what: string) => option(fd, level, name, on ? 1 : 0, what, label);
    set(C.SOL_SOCKET, C.SO_REUSEADDR, true, "SO_REUSEADDR");
    if (v6only !== undefined) set(C.IPPROTO_IPV6, C.IPV6_V6ONLY, v6only, "IPV6_V6ONLY");
    if (s.reuseport !== undefined) set(C.SOL_SOCKET, C.SO_REUSEPORT, s.reuseport, "SO_REUSEPORT");
    if (s.freebind !== undefined) {
      if (v6) set(C.IPPROTO_IPV6, C.IPV6_FREEBIND, s.freebind, "IPV6_FREEBIND");
      else set(C.IPPROTO_IP, C.IP_FREEBIND, s.freebind, "IP_FREEBIND");
    }
    bind(fd, addr, label);
    if (s.kind === "tcp") listen(fd, s.backlog ?? 4096, label);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

// setsockopt's own error names only the fd; which option a kernel refused (IPV6_FREEBIND before Linux 4.15, say)
// is what the user needs to read.
function option(fd: number, level: number, name: number, value: number, what: string, label: string): void {
  try {
    setIntOpt(fd, level, name, value);
  } catch (e) {
    throw isSysError(e) ? new SysError("setsockopt", e.errno, label, what) : e;
  }
}
