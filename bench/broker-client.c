/* One C client process for bench/broker.ts: speaks the broker protocol (docs/protocol.md) directly, with one
 * persistent connection and one `get` in flight, closing every fd it receives. A client this cheap leaves the
 * broker as the thing being measured; bench/broker-client.ts is the same loop through the Bun client library.
 *
 *   broker-client SOCKET NAME SECONDS   prints "ready", waits for a line on stdin, gets for SECONDS,
 *                                       prints {"gets": N}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client-common.h"

/* Read one whole reply frame; close every fd that came with it. Returns its kind. */
static int read_reply(int fd, unsigned char *buf, size_t cap) {
  size_t have = 0;
  for (;;) {
    if (have >= HEADER && have >= HEADER + be32(buf + 4)) {
      if (have != HEADER + be32(buf + 4)) { fprintf(stderr, "unexpected bytes after the reply\n"); exit(1); }
      return buf[1];
    }
    char control[CMSG_SPACE(253 * sizeof(int))];
    struct iovec iov = { buf + have, cap - have };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) die("recvmsg");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int *fds = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) close(fds[i]);
      }
    have += n;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: broker-client SOCKET NAME SECONDS\n"); return 2; }
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");

  char body[512];
  int len = snprintf(body, sizeof body, "{\"names\":[\"%s\"],\"all\":false,\"remove\":false}", argv[2]);
  unsigned char req[HEADER + sizeof body] = { 1, 2, 0, 0, len >> 24, len >> 16, len >> 8, len, 0, 0, 0, 0 };
  memcpy(req + HEADER, body, len);
  static unsigned char reply[1 << 16];
  long gets = 0;
  double end = 0;
  for (int phase = 0; phase < 2; phase++) {
    /* Phase 0 warms up (and checks the name exists); phase 1 is measured. */
    if (phase == 1) {
      printf("ready\n");
      fflush(stdout);
      char line[16];
      if (read(0, line, sizeof line) <= 0) die("read stdin");
      end = now() + atof(argv[3]);
    }
    for (long i = 0; phase == 0 ? i < 500 : now() < end; i++) {
      req[8] = i >> 24, req[9] = i >> 16, req[10] = i >> 8, req[11] = i;
      if (send(fd, req, HEADER + len, MSG_NOSIGNAL) != HEADER + len) die("send");
      int kind = read_reply(fd, reply, sizeof reply);
      if (kind != REPLY_OK) { fprintf(stderr, "reply kind 0x%x: %.*s\n", kind, (int)be32(reply + 4), reply + HEADER); return 1; }
      if (phase == 1) gets++;
    }
  }
  printf("{\"gets\": %ld}\n", gets);
  return 0;
}
