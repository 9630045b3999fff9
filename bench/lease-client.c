/* The lease client of bench/lease.ts: N connections to a broker, each waiting in line for a lease on POOL (a pool
 * of one member: every lease but one waits in the broker's FIFO queue). On each grant it closes the member's fd
 * and, in one send, releases the lease (quietly: no reply) and asks again, so the connection goes to the back of
 * the line. One process multiplexing N connections with epoll, speaking the protocol directly (docs/protocol.md):
 * cheap enough that the broker is what is measured.
 *
 *   lease-client SOCKET POOL N SECONDS   prints {"leases": L, "seconds": S, "fifo": true|false, "order": "..."}
 *
 * FIFO: once all N are in line, the grants must go round the connections in one fixed order, so every grant goes
 * to the connection that had the grant N grants earlier ("checked" counts the grants compared).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client-common.h"

#define OP_LEASE 8
#define OP_RELEASE 9

struct conn {
  int fd;
  unsigned char buf[4096];
  size_t have;
  uint32_t next_id;
};

/* Append one frame of `kind` with a JSON body to `out`; returns its length. */
static size_t frame(unsigned char *out, int kind, uint32_t id, const char *body) {
  size_t len = strlen(body);
  unsigned char h[HEADER] = { 1, kind, 0, 0, len >> 24, len >> 16, len >> 8, len, id >> 24, id >> 16, id >> 8, id };
  memcpy(out, h, HEADER);
  memcpy(out + HEADER, body, len);
  return HEADER + len;
}

static const char *pool;

/* Release `lease` (0: none yet) and ask for the next, in one send. */
static void ask(struct conn *c, long lease) {
  unsigned char out[1024];
  char body[512];
  size_t n = 0;
  if (lease > 0) {
    snprintf(body, sizeof body, "{\"lease\":%ld,\"quiet\":true}", lease);
    n += frame(out + n, OP_RELEASE, c->next_id++, body);
  }
  snprintf(body, sizeof body, "{\"name\":\"%s\",\"waitMs\":60000,\"ttlMs\":null,\"bindPid\":false}", pool);
  n += frame(out + n, OP_LEASE, c->next_id++, body);
  if (send(c->fd, out, n, MSG_NOSIGNAL) != (ssize_t)n) die("send");
}

/* Read what is there; for each whole reply, close its fd and return the lease id (0: nothing whole yet). */
static long take_reply(struct conn *c) {
  char control[CMSG_SPACE(4 * sizeof(int))];
  struct iovec iov = { c->buf + c->have, sizeof c->buf - c->have };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
  ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n <= 0) die("recvmsg (did the broker refuse the lease?)");
  for (struct cmsghdr *m = CMSG_FIRSTHDR(&msg); m; m = CMSG_NXTHDR(&msg, m))
    if (m->cmsg_level == SOL_SOCKET && m->cmsg_type == SCM_RIGHTS) {
      int *fds = (int *)CMSG_DATA(m);
      for (size_t i = 0; i < (m->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) close(fds[i]);
    }
  c->have += n;
  if (c->have < HEADER || c->have < HEADER + be32(c->buf + 4)) return 0;
  size_t len = HEADER + be32(c->buf + 4);
  if (c->buf[1] != REPLY_OK) {
    fprintf(stderr, "lease refused: %.*s\n", (int)(len - HEADER), c->buf + HEADER);
    exit(1);
  }
  char body[1024];
  snprintf(body, sizeof body, "%.*s", (int)(len - HEADER), c->buf + HEADER);
  const char *at = strstr(body, "\"lease\":");
  if (!at) { fprintf(stderr, "no lease id in %s\n", body); exit(1); }
  memmove(c->buf, c->buf + len, c->have - len);
  c->have -= len;
  return atol(at + 8);
}

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: lease-client SOCKET POOL N SECONDS\n"); return 2; }
  pool = argv[2];
  int count = atoi(argv[3]);
  double seconds = atof(argv[4]);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  struct conn *conns = calloc(count, sizeof *conns);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < count; i++) {
    conns[i].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conns[i].fd < 0 || connect(conns[i].fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    conns[i].next_id = 1;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl");
  }
  for (int i = 0; i < count; i++) ask(&conns[i], 0);
  int *order = malloc(sizeof(int) * 4 * count);
  long leases = 0, checked = 0;
  int fifo = 1;
  double start = now(), end = start + seconds;
  struct epoll_event evs[64];
  while (now() < end) {
    int n = epoll_wait(ep, evs, 64, 1000);
    if (n < 0) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      struct conn *c = &conns[evs[k].data.u32];
      long lease = take_reply(c);
      if (lease == 0) continue;
      /* Once every connection has had a grant, all are in line and the order must repeat every N grants (the
       * initial line-up may still have been arriving during the first N). */
      int slot = leases % (4 * count);
      if (leases >= 2 * count) {
        if (order[(leases - count) % (4 * count)] != (int)evs[k].data.u32) fifo = 0;
        checked++;
      }
      order[slot] = evs[k].data.u32;
      leases++;
      ask(c, lease);
    }
  }
  double took = now() - start;
  printf("{\"leases\": %ld, \"seconds\": %.3f, \"perSecond\": %.0f, \"fifo\": %s, \"checked\": %ld}\n", leases, took, leases / took, fifo ? "true" : "false", checked);
  return 0;
}
