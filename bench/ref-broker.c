/* The reference broker bench/broker.ts measures fdbroker against: the least a broker can do, in C. One epoll loop
 * (level-triggered), one recv and one sendmsg of a held fd per `get`, frames as docs/protocol.md gives them. It
 * holds one fd (/etc/hosts, as the fdbroker it is compared with) and answers every get of any name with it; any
 * other request gets an error frame. No rules, budgets, logs or timeouts: a floor, not a competitor.
 *
 *   ref-broker SOCKET     writes one byte to fd 3 once listening; runs until killed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER 12
#define MAX_BODY (64 * 1024)
#define OP_GET 2
#define REPLY_OK 0x80
#define REPLY_ERROR 0x82

struct conn {
  int fd;
  size_t have;
  unsigned char buf[HEADER + 1024];
};

static int held;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void put_header(unsigned char *h, int kind, int fds, uint32_t len, const unsigned char *id) {
  h[0] = 1, h[1] = kind, h[2] = 0, h[3] = fds;
  h[4] = len >> 24, h[5] = len >> 16, h[6] = len >> 8, h[7] = len;
  memcpy(h + 8, id, 4);
}

/* One reply frame in one sendmsg, with the held fd if `fds`. False if the client cannot take it now. */
static int reply(int fd, int kind, const char *body, int fds, const unsigned char *id) {
  unsigned char frame[HEADER + 512];
  size_t len = strlen(body);
  put_header(frame, kind, fds, len, id);
  memcpy(frame + HEADER, body, len);
  struct iovec iov = { frame, HEADER + len };
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (fds) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &held, sizeof(int));
  }
  return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)(HEADER + len);
}

/* A reply body the size of fdbroker's to a get of one entry holding /etc/hosts. */
static const char *GET_BODY =
    "{\"entries\":[{\"name\":\"a\",\"kind\":\"file\",\"what\":\"/etc/hosts (r)\",\"owner\":{\"uid\":0,\"gid\":0,\"pid\":1},"
    "\"storedAt\":\"2026-01-01T00:00:00.000Z\",\"expiresAt\":null}]}";

/* Handle every whole frame in the buffer; false: hang up. */
static int serve(struct conn *c) {
  for (;;) {
    if (c->have < HEADER) return 1;
    uint32_t len = be32(c->buf + 4);
    if (c->buf[0] != 1 || len > sizeof c->buf - HEADER) return 0;
    if (c->have < HEADER + len) return 1;
    int ok = c->buf[1] == OP_GET ? reply(c->fd, REPLY_OK, GET_BODY, 1, c->buf + 8)
                                 : reply(c->fd, REPLY_ERROR, "{\"code\":\"EPROTO\",\"message\":\"only get\"}", 0, c->buf + 8);
    if (!ok) return 0;
    c->have -= HEADER + len;
    memmove(c->buf, c->buf + HEADER + len, c->have);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: ref-broker SOCKET\n"); return 2; }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  held = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
  if (held < 0) die("open /etc/hosts");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  unlink(argv[1]);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) die("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll");
  if (write(3, "r", 1) == 1) close(3);
  struct epoll_event ready[256];
  for (;;) {
    int n = epoll_wait(ep, ready, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn *c = ready[i].data.ptr;
      if (!c) {
        for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          struct conn *nc = calloc(1, sizeof *nc);
          if (!nc) die("calloc");
          nc->fd = fd;
          struct epoll_event cev = { .events = EPOLLIN, .data.ptr = nc };
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) die("epoll_ctl");
        }
        continue;
      }
      ssize_t got = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got > 0) {
        c->have += got;
        if (serve(c)) continue;
      }
      close(c->fd); /* removes it from the epoll set: nobody else holds the socket */
      free(c);
    }
  }
}
