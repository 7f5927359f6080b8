// Test support: loopback ports that are free now (bound and closed; the
// code under test binds them next).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ads::test {

// Whether `port` can be bound on 127.0.0.1 now (0: any port); the port bound.
inline int try_bind_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  int got = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    got = ntohs(a.sin_port);
  }
  ::close(fd);
  return got;
}

inline int free_loopback_port() { return try_bind_loopback(0); }

// The first of `n` consecutive ports free on loopback now; 0 if none found
// in a bounded number of tries.
inline int free_loopback_range(int n) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int first = try_bind_loopback(0);
    if (first == 0 || first + n > 65535) continue;
    bool all = true;
    for (int p = first + 1; p < first + n && all; ++p) all = try_bind_loopback(p) == p;
    if (all) return first;
  }
  return 0;
}

}  // namespace ads::test
