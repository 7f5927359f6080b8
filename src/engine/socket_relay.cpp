#include "engine/socket_relay.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "core/text.h"

namespace ads {

namespace {

// A TCP connection to address:port, or -1 (10 s at most).
int connect_tcp(const std::string& address, int port) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) return -1;
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int rc = fd < 0 ? -1 : ::connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (fd < 0) return -1;
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, 10000) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) rc = 0;
  }
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<SocketRelay>> SocketRelay::start(const std::string& socket_path, const std::string& address,
                                                        int port) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof a.sun_path)
    return Error::make("internal", "the relay's socket path is too long: " + socket_path);
  std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::make("internal", "cannot make a unix socket: " + errno_text(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    std::string why = errno_text(errno);
    ::close(fd);
    return Error::make("internal", "cannot listen on " + socket_path + ": " + why);
  }
  return std::unique_ptr<SocketRelay>(new SocketRelay(fd, address, port));
}

SocketRelay::SocketRelay(int listen_fd, std::string address, int port)
    : listen_fd_(listen_fd), address_(std::move(address)), port_(port) {
  acceptor_ = std::thread([this] { accept_loop(); });
}

SocketRelay::~SocketRelay() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& c : connections_)
    if (c.thread.joinable()) c.thread.join();
  ::close(listen_fd_);
}

void SocketRelay::join_finished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done->load()) {
      if (it->thread.joinable()) it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void SocketRelay::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) != 1) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {  // out of descriptors, or the client gave up: not a busy loop
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::lock_guard<std::mutex> lk(mu_);
    join_finished();
    if (connections_.size() >= kMaxConnections) {
      ::close(client);
      continue;
    }
    int upstream = connect_tcp(address_, port_);
    if (upstream < 0) {
      ::close(client);
      continue;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    try {
      connections_.push_back({std::thread([this, client, upstream, done] {
                                pump(client, upstream);
                                *done = true;
                              }),
                              done});
    } catch (const std::system_error&) {  // no thread to be had: this connection is refused, the server goes on
      ::close(client);
      ::close(upstream);
    }
  }
}

bool SocketRelay::write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    if (stop_) return false;
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd pw{fd, POLLOUT, 0};
      ::poll(&pw, 1, 200);
      continue;
    }
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void SocketRelay::pump(int client, int upstream) {
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  const int fd_of[2] = {client, upstream};
  char buf[65536];
  while (!stop_ && (fds[0].fd >= 0 || fds[1].fd >= 0)) {
    if (::poll(fds, 2, 200) <= 0) continue;
    bool broken = false;
    for (int i = 0; i < 2 && !broken; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::recv(fd_of[i], buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        // this side is done sending: so is the relay towards the other, and
        // poll no longer watches it (a closed socket would report HUP for ever)
        fds[i].fd = -1;
        ::shutdown(fd_of[1 - i], SHUT_WR);
        if (n < 0) broken = true;
        continue;
      }
      if (!write_all(fd_of[1 - i], buf, static_cast<size_t>(n))) broken = true;
    }
    if (broken) break;
  }
  ::close(client);
  ::close(upstream);
}

}  // namespace ads
