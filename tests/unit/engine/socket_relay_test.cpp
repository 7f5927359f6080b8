// The relay that is the Ansible controller sandbox's only way out: bytes both
// ways, a half-close passed on, at most kMaxConnections at once (the rest
// closed at once, a freed place taken again), and a prompt stop with
// connections still open.
#include "engine/socket_relay.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "support/ports.h"
#include "support/process.h"

namespace {

// A TCP echo server on loopback: each connection gets back what it sends,
// and is closed once the client has closed its side.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::listen(fd_, 64);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        workers_.emplace_back([c] {
          char b[4096];
          ssize_t n;
          while ((n = ::recv(c, b, sizeof b, 0)) > 0) ::send(c, b, static_cast<size_t>(n), MSG_NOSIGNAL);
          ::close(c);
        });
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    for (auto& w : workers_) w.detach();  // each ends when its client goes
    ::close(fd_);
  }
  int port = 0;

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Everything `fd` sends until its end (or a 10 s silence).
std::string read_to_end(int fd) {
  std::string out;
  char b[4096];
  ssize_t n;
  while ((n = ::recv(fd, b, sizeof b, 0)) > 0) out.append(b, static_cast<size_t>(n));
  return out;
}

TEST(SocketRelay, BytesGoBothWaysAndAHalfCloseIsPassedOn) {
  ads::test::TempDir tmp;
  EchoServer echo;
  auto relay = ads::SocketRelay::start((tmp.path / "r.sock").string(), "127.0.0.1", echo.port);
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  int c = connect_unix((tmp.path / "r.sock").string());
  ASSERT_GE(c, 0);
  std::string big(300000, 'x');  // more than one read and more than the socket buffers
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    ::send(c, big.data(), big.size(), MSG_NOSIGNAL);
    ::shutdown(c, SHUT_WR);  // the echo server sees the end, answers the rest and closes
  });
  std::string back = read_to_end(c);
  writer.join();
  ::close(c);
  EXPECT_EQ(back.size(), big.size());
  EXPECT_TRUE(back == big);
}

TEST(SocketRelay, AtMostEightConnectionsAtOnceAndAFreedPlaceIsTakenAgain) {
  ads::test::TempDir tmp;
  EchoServer echo;
  const std::string path = (tmp.path / "r.sock").string();
  auto relay = ads::SocketRelay::start(path, "127.0.0.1", echo.port);
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  std::vector<int> held;
  for (size_t i = 0; i < ads::SocketRelay::kMaxConnections; ++i) {
    int c = connect_unix(path);
    ASSERT_GE(c, 0);
    ASSERT_EQ(::send(c, "ping", 4, MSG_NOSIGNAL), 4);
    char b[4];
    ASSERT_EQ(::recv(c, b, 4, MSG_WAITALL), 4) << "connection " << i << " is not relayed";
    held.push_back(c);
  }
  int extra = connect_unix(path);  // the unix connect succeeds; the relay closes it
  ASSERT_GE(extra, 0);
  ::send(extra, "ping", 4, MSG_NOSIGNAL);
  EXPECT_EQ(read_to_end(extra), "");
  ::close(extra);
  // one place freed: the next connection is relayed (once the relay has seen the end)
  ::close(held.back());
  held.pop_back();
  bool relayed = false;
  for (int attempt = 0; attempt < 50 && !relayed; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int c = connect_unix(path);
    ASSERT_GE(c, 0);
    ::send(c, "pong", 4, MSG_NOSIGNAL);
    char b[4];
    relayed = ::recv(c, b, 4, MSG_WAITALL) == 4;
    ::close(c);
  }
  EXPECT_TRUE(relayed);
  for (int c : held) ::close(c);
}

TEST(SocketRelay, StoppingWithConnectionsOpenIsPromptAndAnUnreachableTargetClosesTheClient) {
  ads::test::TempDir tmp;
  EchoServer echo;
  const std::string path = (tmp.path / "r.sock").string();
  auto relay = ads::SocketRelay::start(path, "127.0.0.1", echo.port);
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  int c = connect_unix(path);
  ASSERT_GE(c, 0);
  ::send(c, "x", 1, MSG_NOSIGNAL);
  char b;
  ASSERT_EQ(::recv(c, &b, 1, 0), 1);
  auto t0 = std::chrono::steady_clock::now();
  relay->reset();  // the connection is still open on both sides
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(read_to_end(c), "");
  ::close(c);

  // nothing listens on the target: the client is closed, nothing hangs
  auto dead = ads::SocketRelay::start((tmp.path / "d.sock").string(), "127.0.0.1", ads::test::free_loopback_port());
  ASSERT_TRUE(dead.ok());
  int d = connect_unix((tmp.path / "d.sock").string());
  ASSERT_GE(d, 0);
  EXPECT_EQ(read_to_end(d), "");
  ::close(d);
  // and a path too long for a unix socket is an error, not a cut name
  auto longpath = ads::SocketRelay::start(std::string(200, 'a'), "127.0.0.1", 1);
  ASSERT_FALSE(longpath.ok());
}

}  // namespace
