// sockaddr encoding and decoding: pure functions over bytes (AF_UNIX with path or abstract name, AF_INET,
// AF_INET6). Abstract-namespace names are written `@name`, as ss(8) and systemd print them.
import { abi, C } from "./abi.ts";

export type SockAddr =
  | { family: "unix"; path: string } // "" for an unnamed socket, "@name" for the abstract namespace
  | { family: "inet"; host: string; port: number }
  | { family: "inet6"; host: string; port: number }
  | { family: "other"; af: number };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeUnix(path: string): Uint8Array {
  const un = abi.sockaddrUn;
  const abstract = path.startsWith("@");
  const name = enc.encode(abstract ? path.slice(1) : path);
  if (path === "" || (!abstract && name.length === 0)) throw new RangeError("empty socket address");
  // A path needs room for its NUL terminator; an abstract name is counted by length, after its leading NUL.
  const room = un.pathMax - 1;
  if (name.length > room) throw new RangeError(`socket address longer than ${room} bytes: ${path}`);
  if (!abstract && name.includes(0)) throw new RangeError(`socket path contains a NUL byte: ${JSON.stringify(path)}`);
  const len = un.pathOffset + (abstract ? 1 + name.length : name.length + 1);
  const out = new Uint8Array(len);
  new DataView(out.buffer).setUint16(0, C.AF_UNIX, true);
  out.set(name, un.pathOffset + (abstract ? 1 : 0));
  return out;
}

function parseIPv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : -1));
  return out.every((n) => n >= 0 && n <= 255) ? out : null;
}

function parseIPv6(s: string): number[] | null {
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = v4;
    s = `${s.slice(0, lastColon + 1)}0`; // placeholder group, dropped below
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (tail.length) (rest.length ? rest : head).pop();
  const want = tail.length ? 6 : 8;
  const fill = want - head.length - rest.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...rest];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  return [...bytes, ...tail];
}

/** Encode an IP literal (or "localhost", or "" for any) and port. Hostnames are not resolved. */
export function encodeInet(host: string, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port: ${port}`);
  const h = host === "localhost" ? "127.0.0.1" : host === "" || host === "*" ? "0.0.0.0" : host;
  const v4 = parseIPv4(h);
  if (v4) {
    const out = new Uint8Array(abi.sockaddrIn.size);
    const v = new DataView(out.buffer);
    v.setUint16(0, C.AF_INET, true);
    v.setUint16(2, port, false);
    out.set(v4, 4);
    return out;
  }
  const v6 = parseIPv6(h.replace(/^\[|\]$/g, ""));
  if (v6) {
    const out = new Uint8Array(abi.sockaddrIn6.size);
    const v = new DataView(out.buffer);
    v.setUint16(0, C.AF_INET6, true);
    v.setUint16(2, port, false);
    out.set(v6, 8);
    return out;
  }
  throw new RangeError(`not an IP address: ${host} (use a numeric address, localhost, or * for any)`);
}

function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  // RFC 5952: compress the longest run of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function decodeSockAddr(buf: Uint8Array, len: number): SockAddr {
  if (len < 2) return { family: "unix", path: "" };
  const v = new DataView(buf.buffer, buf.byteOffset, len);
  const af = v.getUint16(0, true);
  if (af === C.AF_UNIX) {
    const off = abi.sockaddrUn.pathOffset;
    if (len <= off) return { family: "unix", path: "" };
    if (buf[off] === 0) return { family: "unix", path: `@${dec.decode(buf.subarray(off + 1, len))}` };
    let end = off;
    while (end < len && buf[end] !== 0) end++;
    return { family: "unix", path: dec.decode(buf.subarray(off, end)) };
  }
  if (af === C.AF_INET && len >= 8) return { family: "inet", host: buf.subarray(4, 8).join("."), port: v.getUint16(2, false) };
  if (af === C.AF_INET6 && len >= 24) return { family: "inet6", host: formatIPv6(buf.subarray(8, 24)), port: v.getUint16(2, false) };
  return { family: "other", af };
}

export function formatSockAddr(a: SockAddr): string {
  switch (a.family) {
    case "unix": return a.path === "" ? "(unnamed)" : a.path;
    case "inet": return `${a.host}:${a.port}`;
    case "inet6": return `[${a.host}]:${a.port}`;
    default: return `(family ${a.af})`;
  }
}
