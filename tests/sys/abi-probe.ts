// Generates a C program that prints, for the libc it is compiled against, every struct size, field offset and
// constant the ABI table (src/sys/abi.ts) claims, in the same `key value` form as `claimsOf` gives for the table.
import { E, type Abi } from "../../src/sys/abi.ts";

// Kernel facts with no userspace macro of that name, or whose libc macro means something else: libc's O_ACCMODE
// also covers O_PATH, and glibc's O_LARGEFILE is 0 on 64-bit targets, while the table holds the kernel's values
// that /proc/PID/fdinfo flags are read with (O_LARGEFILE is checked against the kernel in abi.test.ts).
// CLOSE_RANGE_CLOEXEC is missing from musl's headers; tests/launch/place.test.ts checks it against the kernel.
const NOT_IN_HEADERS = new Set(["SCM_MAX_FD", "NSIG", "O_ACCMODE", "O_LARGEFILE", "CLOSE_RANGE_CLOEXEC"]);

const layouts: [string, string, [string, string][]][] = [
  ["msghdr", "struct msghdr", [["name", "msg_name"], ["namelen", "msg_namelen"], ["iov", "msg_iov"], ["iovlen", "msg_iovlen"], ["control", "msg_control"], ["controllen", "msg_controllen"], ["flags", "msg_flags"]]],
  ["iovec", "struct iovec", [["base", "iov_base"], ["len", "iov_len"]]],
  ["cmsghdr", "struct cmsghdr", [["len", "cmsg_len"], ["level", "cmsg_level"], ["type", "cmsg_type"]]],
  ["ucred", "struct ucred", [["pid", "pid"], ["uid", "uid"], ["gid", "gid"]]],
  ["pollfd", "struct pollfd", [["fd", "fd"], ["events", "events"], ["revents", "revents"]]],
  ["epollEvent", "struct epoll_event", [["events", "events"], ["data", "data"]]],
  ["rlimit", "struct rlimit", [["cur", "rlim_cur"], ["max", "rlim_max"]]],
  ["sigaction", "struct sigaction", [["handler", "sa_handler"]]],
  ["stat", "struct stat", [["dev", "st_dev"], ["ino", "st_ino"], ["mode", "st_mode"], ["nlink", "st_nlink"], ["uid", "st_uid"], ["gid", "st_gid"], ["rdev", "st_rdev"], ["size_", "st_size"]]],
  ["passwd", "struct passwd", [["uid", "pw_uid"]]],
  ["group", "struct group", [["gid", "gr_gid"]]],
  ["nlmsghdr", "struct nlmsghdr", [["len", "nlmsg_len"], ["type", "nlmsg_type"], ["flags", "nlmsg_flags"], ["seq", "nlmsg_seq"], ["pid", "nlmsg_pid"]]],
  ["nlmsgerr", "struct nlmsgerr", [["error", "error"]]],
  ["rtattr", "struct rtattr", [["len", "rta_len"], ["type", "rta_type"]]],
  ["unixDiagReq", "struct unix_diag_req", [["family", "sdiag_family"], ["protocol", "sdiag_protocol"], ["states", "udiag_states"], ["ino", "udiag_ino"], ["show", "udiag_show"], ["cookie", "udiag_cookie"]]],
  ["unixDiagMsg", "struct unix_diag_msg", [["family", "udiag_family"], ["type", "udiag_type"], ["state", "udiag_state"], ["ino", "udiag_ino"], ["cookie", "udiag_cookie"]]],
  ["unixDiagRqlen", "struct unix_diag_rqlen", [["rqueue", "udiag_rqueue"], ["wqueue", "udiag_wqueue"]]],
];

// Constants the headers declare as enum members, which #ifdef cannot see: printed unguarded (a missing one fails
// to compile, which the test reports as well).
const ENUMS = /^(TCP_[A-Z_0-9]+|UNIX_DIAG_[A-Z]+|KCMP_FILE)$/;

/** What the table says, as `key value` lines. */
export function claimsOf(abi: Abi): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, , fields] of layouts) {
    const t = abi[key as "msghdr"] as unknown as Record<string, number>;
    out.set(`${key}.size`, t.size!);
    for (const [f] of fields) out.set(`${key}.${f}`, t[f]!);
  }
  out.set("stat.nlinkSize", abi.stat.nlinkSize);
  out.set("cmsghdr.align", abi.cmsghdr.align);
  out.set("sockaddrUn.size", abi.sockaddrUn.size);
  out.set("sockaddrUn.pathOffset", abi.sockaddrUn.pathOffset);
  out.set("sockaddrUn.pathMax", abi.sockaddrUn.pathMax);
  out.set("sockaddrIn.size", abi.sockaddrIn.size);
  out.set("sockaddrIn6.size", abi.sockaddrIn6.size);
  for (const [name, value] of Object.entries(abi.c)) if (!NOT_IN_HEADERS.has(name)) out.set(`c.${name}`, value);
  for (const [name, n] of Object.entries(E)) out.set(`errno.${name}`, n);
  return out;
}

export function probeSource(abi: Abi): string {
  const lines = [
    "#define _GNU_SOURCE",
    "#include <pwd.h>", "#include <grp.h>",
    "#include <stdio.h>", "#include <stddef.h>", "#include <errno.h>", "#include <fcntl.h>", "#include <poll.h>",
    "#include <signal.h>", "#include <sys/socket.h>", "#include <sys/un.h>", "#include <sys/uio.h>",
    "#include <sys/stat.h>", "#include <sys/resource.h>", "#include <netinet/in.h>", "#include <unistd.h>",
    "#include <sys/syscall.h>", "#include <sys/epoll.h>",
    "#include <netinet/tcp.h>", "#include <linux/netlink.h>", "#include <linux/rtnetlink.h>",
    "#include <linux/sock_diag.h>", "#include <linux/unix_diag.h>", "#include <linux/kcmp.h>",
    "#include <sys/ioctl.h>",
    "int main(void) {",
  ];
  const p = (key: string, expr: string) => lines.push(`  printf("%s %ld\\n", "${key}", (long)(${expr}));`);
  for (const [key, type, fields] of layouts) {
    p(`${key}.size`, `sizeof(${type})`);
    for (const [f, c] of fields) p(`${key}.${f}`, `offsetof(${type}, ${c})`);
  }
  p("stat.nlinkSize", "sizeof(((struct stat *)0)->st_nlink)");
  p("cmsghdr.align", "CMSG_ALIGN(1)");
  p("sockaddrUn.size", "sizeof(struct sockaddr_un)");
  p("sockaddrUn.pathOffset", "offsetof(struct sockaddr_un, sun_path)");
  p("sockaddrUn.pathMax", "sizeof(((struct sockaddr_un *)0)->sun_path)");
  p("sockaddrIn.size", "sizeof(struct sockaddr_in)");
  p("sockaddrIn6.size", "sizeof(struct sockaddr_in6)");
  const macro = (key: string, name: string) =>
    lines.push(`#ifdef ${name}`, `  printf("%s %ld\\n", "${key}", (long)(${name}));`, "#else", `  printf("%s missing\\n", "${key}");`, "#endif");
  for (const name of Object.keys(abi.c)) if (!NOT_IN_HEADERS.has(name)) (ENUMS.test(name) ? p : macro)(`c.${name}`, name);
  for (const name of Object.keys(E)) macro(`errno.${name}`, name);
  lines.push("  return 0;", "}");
  return lines.join("\n");
}
