/* What the C bench clients (broker-client.c, lease-client.c) share: the frame header's size, the ok reply's kind,
 * a monotonic clock and fatal errors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HEADER 12
#define REPLY_OK 0x80

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
