// sockaddr codec round trips: UNIX paths and abstract names, IPv4 and IPv6 literals.
import { expect, test } from "bun:test";
import { abi, C } from "../../src/sys/abi.ts";
import { decodeSockAddr, encodeInet, encodeUnix, formatSockAddr } from "../../src/sys/sockaddr.ts";

const unixCases = ["/tmp/a.sock", "rel/path.sock", "@name", "@with space", "@ü-ñ", `/${"x".repeat(abi.sockaddrUn.pathMax - 2)}`, `@${"y".repeat(abi.sockaddrUn.pathMax - 1)}`];

test.each(unixCases)("unix %s round-trips", (path) => {
  const bytes = encodeUnix(path);
  expect(new DataView(bytes.buffer).getUint16(0, true)).toBe(C.AF_UNIX);
  expect(decodeSockAddr(bytes, bytes.length)).toEqual({ family: "unix", path });
  expect(formatSockAddr(decodeSockAddr(bytes, bytes.length))).toBe(path);
});

test("unix addresses that cannot be encoded are refused", () => {
  expect(() => encodeUnix("")).toThrow(RangeError);
  expect(() => encodeUnix(`/${"x".repeat(abi.sockaddrUn.pathMax)}`)).toThrow(/longer than/);
  expect(() => encodeUnix(`@${"y".repeat(abi.sockaddrUn.pathMax)}`)).toThrow(/longer than/);
  expect(() => encodeUnix("/a\0b")).toThrow(/NUL/);
});

test("an unnamed socket's address (family only) decodes to an empty path", () => {
  const b = new Uint8Array([C.AF_UNIX, 0]);
  expect(decodeSockAddr(b, 2)).toEqual({ family: "unix", path: "" });
  expect(formatSockAddr({ family: "unix", path: "" })).toBe("(unnamed)");
});

const inetCases: [string, number, string][] = [
  ["127.0.0.1", 80, "127.0.0.1:80"],
  ["0.0.0.0", 0, "0.0.0.0:0"],
  ["255.255.255.255", 65535, "255.255.255.255:65535"],
  ["localhost", 8080, "127.0.0.1:8080"],
  ["*", 1, "0.0.0.0:1"],
  ["::1", 443, "[::1]:443"],
  ["[::1]", 443, "[::1]:443"],
  ["::", 1, "[::]:1"],
  ["2001:db8:0:0:1:0:0:1", 5, "[2001:db8::1:0:0:1]:5"],
  ["fe80::1:2", 6, "[fe80::1:2]:6"],
  ["1:2:3:4:5:6:7:8", 7, "[1:2:3:4:5:6:7:8]:7"],
  ["::ffff:10.1.2.3", 9, "[::ffff:10.1.2.3]:9"],
];

test.each(inetCases)("inet %s port %i -> %s", (host, port, text) => {
  const bytes = encodeInet(host, port);
  expect(bytes.length).toBe(text.startsWith("[") ? abi.sockaddrIn6.size : abi.sockaddrIn.size);
  const a = decodeSockAddr(bytes, bytes.length);
  expect(a.family).toBe(text.startsWith("[") ? "inet6" : "inet");
  expect(formatSockAddr(a)).toBe(text);
  if (a.family === "inet" || a.family === "inet6") expect(encodeInet(a.host, a.port)).toEqual(bytes);
});

test("bad IP literals and ports are refused, hostnames are not resolved", () => {
  for (const h of ["256.1.1.1", "1.2.3", "1::2::3", "example.com", "1:2:3:4:5:6:7:8:9", "12345::"]) expect(() => encodeInet(h, 1)).toThrow(RangeError);
  for (const p of [-1, 65536, 1.5]) expect(() => encodeInet("127.0.0.1", p)).toThrow(/bad port/);
});

test("an unknown family decodes as other", () => {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint16(0, C.AF_NETLINK, true);
  expect(decodeSockAddr(b, 16)).toEqual({ family: "other", af: C.AF_NETLINK });
});
