/* A reference relay for bench/tap.ts: the least a user-space relay does for one stream connection, client to
 * server only, blocking read() and write() of 256 KiB. Usage: relay LISTEN UPSTREAM (serves one connection). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strncpy(a->sun_path, path, sizeof a->sun_path - 1);
  return sizeof *a;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  struct sockaddr_un a;
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (bind(l, (struct sockaddr *)&a, unix_addr(&a, argv[1])) || listen(l, 8)) return perror("listen"), 1;
  printf("listening\n");
  fflush(stdout);
  int c = accept(l, 0, 0);
  int u = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(u, (struct sockaddr *)&a, unix_addr(&a, argv[2]))) return perror("connect"), 1;
  static char buf[256 * 1024];
  for (ssize_t n; (n = read(c, buf, sizeof buf)) > 0;)
    for (ssize_t off = 0, w; off < n; off += w)
      if ((w = write(u, buf + off, n - off)) < 0) return perror("write"), 1;
  close(u);
  unlink(argv[1]);
  return 0;
}
