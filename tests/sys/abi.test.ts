import { expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { abi, abiFor, C, cmsgSpace, errnoName, UnsupportedTargetError } from "../../src/sys/abi.ts";

test("Linux LP64 struct sizes", () => {
  expect(abi.msghdr.size).toBe(56);
  expect(abi.iovec.size).toBe(16);
  expect(abi.cmsghdr.size).toBe(16);
  expect(abi.ucred.size).toBe(12);
  expect(abi.pollfd.size).toBe(8);
  expect(abi.sockaddrUn.size).toBe(110);
  expect(abiFor("linux", "x64").stat.size).toBe(144);
  expect(abiFor("linux", "arm64").stat.size).toBe(128);
});

test("CMSG_SPACE matches <sys/socket.h>", () => {
  expect(cmsgSpace(4)).toBe(24);
  expect(cmsgSpace(8)).toBe(24);
  expect(cmsgSpace(12)).toBe(32);
  expect(cmsgSpace(C.SCM_MAX_FD * 4)).toBe(16 + 1016);
});

test("an unknown target is a named error, not a guess", () => {
  expect(() => abiFor("darwin", "arm64")).toThrow(UnsupportedTargetError);
  expect(() => abiFor("linux", "riscv64")).toThrow(/unsupported platform linux-riscv64/);
});

test("errno names", () => {
  expect(errnoName(111)).toBe("ECONNREFUSED");
  expect(errnoName(24)).toBe("EMFILE");
  expect(errnoName(9999)).toBe("E9999");
});

// Under qemu-user (tests/platform/arm64.test.ts sets FDBROKER_UNDER_QEMU) fdinfo comes from the host kernel and
// shows the host's flag bits, so the guest's table cannot be checked against it there.
test.skipIf(process.env.FDBROKER_UNDER_QEMU === "1")("O_LARGEFILE is the bit the kernel sets on every 64-bit open, as fdinfo shows it", () => {
  const fd = openSync(import.meta.path, "r");
  try {
    const flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8);
    expect(flags & C.O_LARGEFILE).toBe(C.O_LARGEFILE);
    expect(flags & C.O_ACCMODE).toBe(C.O_RDONLY);
  } finally {
    closeSync(fd);
  }
});
