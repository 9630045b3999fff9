/* Reference relays for bench/tap.ts, one stream connection, client to server only, no records:
 *   relay LISTEN UPSTREAM rw      blocking read() and write() of 256 KiB: the least any user-space relay does;
 *   relay LISTEN UPSTREAM splice  what fdbroker tap does per message, in C: epoll_wait, FIONREAD, a 32-byte
 *                                 MSG_PEEK (fds? preview), splice into a pipe, splice on to the server.
 * Prints "listening" once bound; serves one connection. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strncpy(a->sun_path, path, sizeof a->sun_path - 1);
  return sizeof *a;
}

static int relay_rw(int c, int u) {
  static char buf[256 * 1024];
  for (ssize_t n; (n = read(c, buf, sizeof buf)) > 0;)
    for (ssize_t off = 0, w; off < n; off += w)
      if ((w = write(u, buf + off, n - off)) < 0) return perror("write"), 1;
  return 0;
}

static int relay_splice(int c, int u) {
  int p[2], ep = epoll_create1(0), size = 1 << 20;
  if (pipe2(p, O_NONBLOCK) || ep < 0) return perror("pipe2"), 1;
  fcntl(p[1], F_SETPIPE_SZ, size);
  setsockopt(u, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  fcntl(c, F_SETFL, O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  char peek[32], control[256];
  for (;;) {
    epoll_wait(ep, &ev, 1, -1);
    for (;;) {
      int queued = 0;
      ioctl(c, FIONREAD, &queued);
      struct iovec iov = {peek, sizeof peek};
      struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
      ssize_t r = recvmsg(c, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (r == 0) return 0;
      if (r < 0) break;
      for (ssize_t n = splice(c, 0, p[1], 0, queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK), w; n > 0; n -= w)
        if ((w = splice(p[0], 0, u, 0, n, SPLICE_F_MOVE)) < 0) return perror("splice"), 1;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  struct sockaddr_un a;
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (bind(l, (struct sockaddr *)&a, unix_addr(&a, argv[1])) || listen(l, 8)) return perror("listen"), 1;
  printf("listening\n");
  fflush(stdout);
  int c = accept(l, 0, 0);
  int u = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(u, (struct sockaddr *)&a, unix_addr(&a, argv[2]))) return perror("connect"), 1;
  int rc = strcmp(argv[3], "splice") ? relay_rw(c, u) : relay_splice(c, u);
  close(u);
  unlink(argv[1]);
  return rc;
}
