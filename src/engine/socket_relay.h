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
  // At most this many connections at once (ssh with ControlPersist needs
  // one; a lab's ansible.cfg without it, one per task in turn); more are
  // closed at once: lab code in the sandbox cannot exhaust the server's
  // threads or descriptors through it.
  static constexpr size_t kMaxConnections = 8;
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
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void accept_loop();
  void pump(int client, int upstream);
  // Sends all of it unless the relay stops or the peer goes (no time limit:
  // ssh's keepalives and the run's timeout deal with a stalled machine).
  bool write_all(int fd, const char* p, size_t n);
  void join_finished();  // (mu_ held)

  int listen_fd_;
  std::string address_;
  int port_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Connection> connections_;
  std::thread acceptor_;
};

}  // namespace ads
