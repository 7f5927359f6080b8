// A TCP client on loopback that does exactly what a test tells it (slow
// clients, partial requests, connections held open), from a chosen source
// address: the whole of 127.0.0.0/8 is loopback on Linux, so one test plays
// many client addresses. Every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace ads::test {

class RawClient {
 public:
  using Clock = std::chrono::steady_clock;

  RawClient(uint16_t port, const std::string& source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0 &&
                 ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(const std::string& bytes) {
    return fd_ >= 0 && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  // True when the server has sent something (or closed) within `wait`.
  bool readable(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    return fd_ >= 0 && ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
  }

  // Sends `bytes` one at a time, `every` apart, until all are sent, the
  // server answers or closes (*answered), or `at_most` has passed. Returns
  // how many were sent.
  size_t trickle(const std::string& bytes, std::chrono::milliseconds every, std::chrono::milliseconds at_most,
                 bool* answered = nullptr) {
    auto until = Clock::now() + at_most;
    size_t sent = 0;
    bool heard = false;
    while (sent < bytes.size() && Clock::now() < until) {
      if ((heard = readable(std::chrono::milliseconds(0)))) break;
      if (!send(bytes.substr(sent, 1))) break;
      ++sent;
      if ((heard = readable(every))) break;
    }
    if (answered) *answered = heard;
    return sent;
  }

  // Everything the server sends until it closes the connection or `wait`
  // passes; *closed says which.
  std::string read_all(std::chrono::milliseconds wait, bool* closed = nullptr) {
    std::string out;
    auto until = Clock::now() + wait;
    bool eof = false;
    while (!eof && fd_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0 || !readable(left)) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) eof = true;
      else out.append(buf, static_cast<size_t>(n));
    }
    if (closed) *closed = eof;
    return out;
  }

  // One whole HTTP/1.1 response read as far as its Content-Length says (for
  // kept-alive connections); "" if none came within `wait`.
  std::string read_response(std::chrono::milliseconds wait) {
    std::string out;
    auto until = Clock::now() + wait;
    while (fd_ >= 0) {
      auto end = out.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto cl = out.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
        if (out.size() >= end + 4 + len) return out;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0 || !readable(left)) return out;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Waits (at most `wait`) until `cond()` holds; returns whether it did. For
// conditions the test does not control the timing of (a server's counters),
// never as a timing assertion.
template <class Cond>
bool eventually(Cond cond, std::chrono::milliseconds wait = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + wait;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace ads::test
