// Issue 15.4: the HTTP client takes a bounded answer from any server: a body
// past max_body_bytes (kept or streamed), a huge Content-Length, endless
// headers and a server gone silent all end the call with a clear error.
// Real servers on loopback: the project's own http::Server, or a raw socket
// for what it would never send.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <thread>

#include "core/text.h"
#include "http/client.h"
#include "http/server.h"

namespace {

// One connection on a raw socket: `serve` gets it once the request's head
// has been read, and should stop once a send fails (the client went away).
class RawServer {
 public:
  explicit RawServer(const std::function<void(int)>& serve) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << ads::errno_text(errno);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, serve] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{30, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      serve(c);
      ::close(c);
    });
  }
  ~RawServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

bool send_all(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// A server of the project whose routes stream for as long as the client reads.
class Flood {
 public:
  Flood() : server_(options()) {
    server_.route("GET", "/forever", [](ads::http::Request&) {
      ads::http::Response r;
      r.content_type = "application/octet-stream";
      r.stream = [](ads::http::StreamWriter& w) {
        std::string chunk(64 * 1024, 'x');
        while (w.write(chunk)) {
        }
      };
      return r;
    });
    EXPECT_TRUE(server_.start().ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()) + "/forever"; }

 private:
  static ads::http::ServerOptions options() {
    ads::http::ServerOptions o;
    o.host = "127.0.0.1";
    return o;
  }
  ads::http::Server server_;
};

TEST(HttpClientLimits, AnEndlessBodyStopsAtTheLimit) {
  Flood flood;
  ads::http::ClientRequest r;
  r.url = flood.url();
  r.max_body_bytes = 1u << 20;
  auto res = ads::http::request(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, "too_large") << res.error().message;
  EXPECT_NE(res.error().message.find("1048576 bytes"), std::string::npos) << res.error().message;

  // streamed through on_data: the same limit on what is handed over
  size_t seen = 0;
  r.on_data = [&](const std::string& piece) {
    seen += piece.size();
    return true;
  };
  res = ads::http::request(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, "too_large");
  EXPECT_LE(seen, r.max_body_bytes);

  // no limit (a log followed to its end): the caller decides when to stop
  r.max_body_bytes = 0;
  seen = 0;
  r.on_data = [&](const std::string& piece) {
    seen += piece.size();
    return seen < (4u << 20);
  };
  res = ads::http::request(r);
  EXPECT_TRUE(res.ok()) << res.error().message;
  EXPECT_GE(seen, 4u << 20);

  // the default limit applies when the caller sets none
  ads::http::ClientRequest d;
  d.url = flood.url();
  EXPECT_EQ(d.max_body_bytes, 64u << 20);
}

TEST(HttpClientLimits, AHugeContentLengthIsRefusedAtOnce) {
  RawServer s([](int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\nabc");
    char b[16];
    (void)!::recv(fd, b, sizeof b, 0);  // until the client closes (or 30 s)
  });
  ads::http::ClientRequest r;
  r.url = s.url();
  r.max_body_bytes = 1u << 20;
  auto res = ads::http::request(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, "too_large") << res.error().message;
}

TEST(HttpClientLimits, EndlessHeadersAreCutOff) {
  RawServer s([](int fd) {
    if (!send_all(fd, "HTTP/1.1 200 OK\r\n")) return;
    for (int i = 0; i < 1000000; ++i)
      if (!send_all(fd, "X-Filler-" + std::to_string(i) + ": " + std::string(80, 'h') + "\r\n")) return;
  });
  ads::http::ClientRequest r;
  r.url = s.url();
  auto res = ads::http::request(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, "too_large") << res.error().message;
  EXPECT_NE(res.error().message.find("headers"), std::string::npos) << res.error().message;
}

TEST(HttpClientLimits, AServerGoneSilentEndsTheCallAfterTheIdleTime) {
  RawServer s([](int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n");
    char b[16];
    (void)!::recv(fd, b, sizeof b, 0);  // then nothing, until the client closes (or 30 s)
  });
  ads::http::ClientRequest r;
  r.url = s.url();
  r.timeout_ms = 120000;  // the whole call could take long; the silence may not
  r.idle_timeout_ms = 1500;
  std::string got;
  r.on_data = [&](const std::string& p) {
    got += p;
    return true;
  };
  auto res = ads::http::request(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, "timeout") << res.error().message;
  EXPECT_NE(res.error().message.find("went silent: nothing arrived for 1.5 s"), std::string::npos)
      << res.error().message;
  EXPECT_EQ(got, "hello\n");
}

}  // namespace
