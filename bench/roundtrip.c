/* C reference for bench/roundtrip.ts: send + recv + close of fds over an AF_UNIX stream socketpair, the way a
 * careful C program does it (one SCM_RIGHTS message per batch, MSG_CMSG_CLOEXEC, every received fd closed).
 * Usage: roundtrip BATCH ITERATIONS ROUNDS   -> one line per round: ns per fd. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 253

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void send_batch(int sock, const int *fds, int n) {
  char byte = 0;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  union { char buf[CMSG_SPACE(sizeof(int) * MAX_BATCH)]; struct cmsghdr align; } ctrl;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) { perror("sendmsg"); exit(1); }
}

static void recv_batch(int sock, int n) {
  char byte;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  union { char buf[CMSG_SPACE(sizeof(int) * MAX_BATCH)]; struct cmsghdr align; } ctrl;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1 || (msg.msg_flags & MSG_CTRUNC)) { perror("recvmsg"); exit(1); }
  int got = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *in = (int *)CMSG_DATA(c);
    for (int i = 0; i < count; i++) close(in[i]);
    got += count;
  }
  if (got != n) { fprintf(stderr, "received %d fds, expected %d\n", got, n); exit(1); }
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s BATCH ITERATIONS ROUNDS\n", argv[0]); return 2; }
  int batch = atoi(argv[1]), iterations = atoi(argv[2]), rounds = atoi(argv[3]);
  if (batch < 1 || batch > MAX_BATCH || iterations < 1 || rounds < 1) { fprintf(stderr, "bad arguments\n"); return 2; }
  int sv[2], fds[MAX_BATCH], p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(p, O_CLOEXEC)) { perror("setup"); return 1; }
  for (int i = 0; i < batch; i++) fds[i] = p[0];
  for (int i = 0; i < iterations / 10; i++) { send_batch(sv[0], fds, batch); recv_batch(sv[1], batch); }
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (int i = 0; i < iterations; i++) { send_batch(sv[0], fds, batch); recv_batch(sv[1], batch); }
    printf("%.1f\n", (now_ns() - t0) / ((double)iterations * batch));
  }
  return 0;
}
