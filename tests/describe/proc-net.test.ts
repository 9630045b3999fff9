// Parsing /proc/PID/net tables: addresses the kernel prints as host-order hex words.
import { expect, test } from "bun:test";
import { decodeHexAddress, parseInetTable, parseUnixTable } from "../../src/describe/proc-net.ts";

test.each([
  ["0100007F:1F90", "inet", "127.0.0.1:8080"],
  ["00000000:0000", "inet", "0.0.0.0:0"],
  ["00000000000000000000000001000000:0050", "inet6", "[::1]:80"],
  ["00000000000000000000000000000000:01BB", "inet6", "[::]:443"],
  ["0000000000000000FFFF00000100007F:0016", "inet6", "[::ffff:127.0.0.1]:22"],
  ["B80D0120000000000000000001000000:0001", "inet6", "[2001:db8::1]:1"],
] as const)("%s (%s) is %s", (hex, family, text) => {
  expect(decodeHexAddress(hex, family)).toBe(text);
});

test("tcp rows: listening by state 0A, peer when the remote address is set", () => {
  const t = parseInetTable(
    [
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0",
      "   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1",
    ],
    "inet", "stream",
  );
  expect(t.get(1111)).toEqual({ family: "inet", type: "stream", local: "127.0.0.1:8080", peer: null, listening: true });
  expect(t.get(2222)).toEqual({ family: "inet", type: "stream", local: "127.0.0.1:50000", peer: "127.0.0.1:8080", listening: false });
});

test("unix rows: type, listening flag, paths with spaces, abstract names, unnamed sockets", () => {
  const t = parseUnixTable([
    "0000000059787099: 00000002 00000000 00010000 0001 01  5001 /run/a  b.sock",
    "0000000059787099: 00000002 00000000 00000000 0005 03  5002 @abstract",
    "0000000059787099: 00000003 00000000 00000000 0002 03  5003",
  ]);
  expect(t.get(5001)).toEqual({ family: "unix", type: "stream", local: "/run/a  b.sock", peer: null, listening: true });
  expect(t.get(5002)).toMatchObject({ type: "seqpacket", local: "@abstract", listening: false });
  expect(t.get(5003)).toMatchObject({ type: "dgram", local: null });
});
