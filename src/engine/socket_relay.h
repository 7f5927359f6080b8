// Relays every connection made to a unix socket to one TCP address: the
// Ansible controller's sandbox has no network of its own (bwrap
// --unshare-net), and its ssh reaches the lab's machine through this, with
// `nc -U SOCKET` as its ProxyCommand. Nothing else is reachable from there.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace ads {

class SocketRelay {
 public:
  // Listens on `socket_path` (made here; at most 107 bytes) and connects each
  // client to address:port (an IPv4 or IPv6 literal), within 10 s.
  static Result<std::unique_ptr<SocketRelay>> start(const std::string& socket_path, const std::string& address,
                                                    int port);
  // Stops accepting and ends every connection.
  ~SocketRelay();
  SocketRelay(const SocketRelay&) = delete;
  SocketRelay& operator=(const SocketRelay&) = delete;

 private:
  SocketRelay(int listen_fd, std::string address, int port);
  void accept_loop();
  void pump(int client, int upstream);

  int listen_fd_;
  std::string address_;
  int port_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::thread> connections_;
  std::thread acceptor_;
};

}  // namespace ads
