// http::Server's websockets (http/websocket.h), the transport of `ads
// shell`: a route that answers 101 relays the websocket to a stream socket
// (here one end of a socket pair the test holds the other end of), over
// plain HTTP and TLS, with Beast's websocket client on the other side.
// Every wait is bounded; nothing asserts how fast anything happened.
#include "http/websocket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "http/tls_openssl.h"
#include "support/raw_client.h"

namespace {
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using ads::test::eventually;
using tcp = asio::ip::tcp;

// An fd closed with its owner.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// A server whose GET /ws relays each websocket to a new socket pair: the
// route keeps one end for the relay's life, the test takes the other
// (next_peer()).
class Relays {
 public:
  explicit Relays(ads::http::ServerOptions o = {}, size_t max_message = 64 * 1024, int idle_s = 60)
      : server_(std::move(o)) {
    server_.route("GET", "/ws", [this, max_message, idle_s](ads::http::Request& req) {
      if (!ads::http::is_websocket_request(req)) return ads::http::Response::error(426, "upgrade_required", "ws");
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return ads::http::Response::error(500, "internal", "socketpair");
      auto mine = std::make_shared<Fd>(sv[0]);
      {
        std::lock_guard<std::mutex> lk(mu_);
        peers_.push_back(std::make_shared<Fd>(sv[1]));
      }
      ads::http::Response r;
      r.status = 101;
      r.stream = [this, mine, max_message, idle_s](ads::http::StreamWriter& w) {
        auto* ws = dynamic_cast<ads::http::WebSocket*>(&w);
        if (!ws) return;
        ads::http::SocketRelay relay;
        relay.fd = mine->fd;
        relay.max_message_bytes = max_message;
        relay.idle_timeout_s = idle_s;
        relay.on_text = [this](const std::string& text, std::string* why) {
          std::lock_guard<std::mutex> lk(mu_);
          texts_.push_back(text);
          if (text == "refuse me") *why = "not a message this route takes";
          return text != "refuse me";
        };
        relay.closing_text = [] { return std::string(R"({"exit_code":7})"); };
        std::string how = ws->relay(relay);
        std::lock_guard<std::mutex> lk(mu_);
        endings_.push_back(how);
      };
      return r;
    });
    // a 101 to a request that asked for no websocket
    server_.route("GET", "/not-ws", [](ads::http::Request&) {
      ads::http::Response r;
      r.status = 101;
      r.stream = [](ads::http::StreamWriter&) {};
      return r;
    });
    EXPECT_TRUE(server_.start().ok());
  }
  ads::http::Server& server() { return server_; }
  uint16_t port() const { return server_.port(); }
  std::shared_ptr<Fd> next_peer() {
    std::shared_ptr<Fd> p;
    eventually(
        [&] {
          std::lock_guard<std::mutex> lk(mu_);
          if (peers_.empty()) return false;
          p = peers_.front();
          peers_.pop_front();
          return true;
        },
        10s);
    return p;
  }
  std::vector<std::string> texts() {
    std::lock_guard<std::mutex> lk(mu_);
    return texts_;
  }
  std::vector<std::string> endings() {
    std::lock_guard<std::mutex> lk(mu_);
    return endings_;
  }

 private:
  std::mutex mu_;
  std::deque<std::shared_ptr<Fd>> peers_;
  std::vector<std::string> texts_, endings_;
  ads::http::Server server_;
};

// Reads from fd until `n` bytes came, its end, or 10 s.
std::string read_some(int fd, size_t n) {
  std::string out;
  auto until = std::chrono::steady_clock::now() + 10s;
  while (out.size() < n && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}
// Whether fd reaches its end within 10 s; `bytes` gets what came before it.
bool reaches_end(int fd, std::string* bytes = nullptr) {
  auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got == 0) return true;
    if (got < 0) return false;
    if (bytes) bytes->append(buf, static_cast<size_t>(got));
  }
  return false;
}

// A websocket client; every operation is bounded by 10 s.
template <class Ws>
class Client {
 public:
  // One message: its text and whether it was text; nullopt: the websocket
  // ended (error() says how).
  struct Message {
    std::string data;
    bool text = false;
  };
  Client(asio::io_context& ioc, Ws& ws) : ioc_(ioc), ws_(ws) {}
  std::optional<Message> read() {
    beast::flat_buffer buf;
    bool done = false;
    ws_.async_read(buf, [&](beast::error_code e, size_t) {
      ec_ = e;
      done = true;
    });
    run();
    if (!done || ec_) return std::nullopt;
    return Message{beast::buffers_to_string(buf.data()), ws_.got_text()};
  }
  bool write(const std::string& data, bool text) {
    ws_.text(text);
    bool done = false;
    ws_.async_write(asio::buffer(data), [&](beast::error_code e, size_t) {
      ec_ = e;
      done = true;
    });
    run();
    return done && !ec_;
  }
  bool close() {
    bool done = false;
    ws_.async_close(websocket::close_code::normal, [&](beast::error_code e) {
      ec_ = e;
      done = true;
    });
    run();
    return done && !ec_;
  }
  beast::error_code error() const { return ec_; }
  websocket::close_reason reason() const { return ws_.reason(); }

 private:
  void run() {
    ioc_.restart();
    ioc_.run_for(10s);
  }
  asio::io_context& ioc_;
  Ws& ws_;
  beast::error_code ec_;
};

using PlainWs = websocket::stream<beast::tcp_stream>;

// A plain websocket to /ws (or `target`) on `port`.
bool open(PlainWs& ws, asio::io_context& ioc, uint16_t port, const std::string& target = "/ws") {
  beast::error_code ec;
  beast::get_lowest_layer(ws).expires_after(10s);
  beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return false;
  ws.handshake("127.0.0.1", target, ec);
  beast::get_lowest_layer(ws).expires_never();  // each operation is bounded by Client instead
  return !ec;
}

// One client websocket open on a Relays server, and the route's end of its socket.
struct Opened {
  explicit Opened(Relays& r) : c(ioc, ws) {
    if (open(ws, ioc, r.port())) peer = r.next_peer();
  }
  asio::io_context ioc;
  PlainWs ws{ioc};
  Client<PlainWs> c;
  std::shared_ptr<Fd> peer;  // null: it did not open
};

TEST(WebSocket, BytesGoBothWaysTextGoesToTheRouteAndTheSocketsEndClosesItWithTheRoutesLastWord) {
  Relays r;
  Opened o(r);
  ASSERT_TRUE(o.peer);
  auto& c = o.c;
  auto& peer = o.peer;

  ASSERT_TRUE(c.write("typed\x01\xff", false));
  EXPECT_EQ(read_some(peer->fd, 7), std::string("typed\x01\xff"));
  ASSERT_EQ(::write(peer->fd, "printed", 7), 7);
  auto m = c.read();
  ASSERT_TRUE(m) << c.error().message();
  EXPECT_FALSE(m->text);
  EXPECT_EQ(m->data, "printed");
  ASSERT_TRUE(c.write(R"({"resize":{"cols":1,"rows":2}})", true));
  EXPECT_TRUE(eventually([&] { return r.texts().size() == 1; }, 10s));
  EXPECT_EQ(r.texts().at(0), R"({"resize":{"cols":1,"rows":2}})");

  // the socket's end: the route's last text, then a normal close
  ::shutdown(peer->fd, SHUT_WR);
  m = c.read();
  ASSERT_TRUE(m) << c.error().message();
  EXPECT_TRUE(m->text);
  EXPECT_EQ(m->data, R"({"exit_code":7})");
  EXPECT_FALSE(c.read());
  EXPECT_EQ(c.error(), websocket::error::closed) << c.error().message();
  EXPECT_EQ(c.reason().code, websocket::close_code::normal);
  EXPECT_TRUE(eventually([&] { return r.endings().size() == 1; }, 10s));
}

TEST(WebSocket, TheClientLeavingEndsTheRelayAndTheRouteLetsItsSocketGo) {
  Relays r;
  Opened o(r);
  ASSERT_TRUE(o.peer);
  auto& c = o.c;
  auto& peer = o.peer;
  ASSERT_TRUE(c.close());
  EXPECT_TRUE(reaches_end(peer->fd));  // the route's end is closed with its answer
  ASSERT_TRUE(eventually([&] { return r.endings().size() == 1; }, 10s));
  EXPECT_EQ(r.endings().at(0), "the client closed it");
}

TEST(WebSocket, ARefusedTextClosesItAsAPolicyErrorWithTheRoutesReason) {
  Relays r;
  Opened o(r);
  ASSERT_TRUE(o.peer);
  auto& c = o.c;
  auto& peer = o.peer;
  ASSERT_TRUE(c.write("refuse me", true));
  EXPECT_FALSE(c.read());
  EXPECT_EQ(c.error(), websocket::error::closed) << c.error().message();
  EXPECT_EQ(c.reason().code, websocket::close_code::policy_error);
  EXPECT_EQ(std::string(c.reason().reason.c_str()), "not a message this route takes");
  EXPECT_TRUE(reaches_end(peer->fd));
}

TEST(WebSocket, AMessageOverTheLimitClosesItAndNothingOfItReachesTheSocket) {
  Relays r({}, 16);
  Opened o(r);
  ASSERT_TRUE(o.peer);
  auto& c = o.c;
  auto& peer = o.peer;
  ASSERT_TRUE(c.write(std::string(100, 'x'), false));
  EXPECT_FALSE(c.read());
  EXPECT_EQ(c.reason().code, websocket::close_code::too_big) << c.error().message();
  std::string bytes;
  EXPECT_TRUE(reaches_end(peer->fd, &bytes));
  EXPECT_EQ(bytes, "");  // no byte of it before the end
  ASSERT_TRUE(eventually([&] { return r.endings().size() == 1; }, 10s));
  EXPECT_EQ(r.endings().at(0), "the client sent a message over the limit");
}

// A program that reads none of its input holds the client's next message,
// so that nothing reads the client's pongs either: the relay closes it after
// the idle time instead of waiting for ever.
TEST(WebSocket, ASocketThatTakesNoInputIsClosedAfterTheIdleTime) {
  Relays r({}, 64 * 1024, 2);
  Opened o(r);  // its peer never reads
  ASSERT_TRUE(o.peer);
  auto& c = o.c;
  const std::string chunk(60 * 1024, 'p');
  // more than the socket pair holds; the writes that do not fit wait (each
  // is bounded by 10 s; the loop ends at the first that fails)
  for (int i = 0; i < 200 && c.write(chunk, false); ++i) {
  }
  ASSERT_TRUE(eventually([&] { return r.endings().size() == 1; }, 30s));
  EXPECT_EQ(r.endings().at(0).rfind("the session took no input for", 0), 0u) << r.endings().at(0);
}

// A client that does not answer the close holds nothing for long.
TEST(WebSocket, AClientThatNeverAnswersTheCloseIsLetGo) {
  Relays r;
  Opened o(r);
  ASSERT_TRUE(o.peer);
  ::shutdown(o.peer->fd, SHUT_WR);  // the session ends; the client reads nothing from here on
  ASSERT_TRUE(eventually([&] { return r.endings().size() == 1; }, 30s));
  EXPECT_EQ(r.endings().at(0), "the session ended");
}

TEST(WebSocket, A101ToARequestThatAskedForNoWebsocketIsA426) {
  Relays r;
  ads::http::ClientRequest q;
  q.url = "http://127.0.0.1:" + std::to_string(r.port()) + "/not-ws";
  q.timeout_ms = 10000;
  auto res = ads::http::request(q);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 426);
  EXPECT_EQ(nlohmann::json::parse(res->body, nullptr, false)["error"].value("code", ""), "upgrade_required")
      << res->body;
  // the same address with a websocket asked for: the handshake is answered
  asio::io_context ioc;
  PlainWs ws(ioc);
  EXPECT_TRUE(open(ws, ioc, r.port(), "/ws"));
}

TEST(WebSocket, StoppingTheServerEndsAnOpenWebsocket) {
  auto r = std::make_unique<Relays>();
  asio::io_context ioc;
  PlainWs ws(ioc);
  ASSERT_TRUE(open(ws, ioc, r->port()));
  Client<PlainWs> c(ioc, ws);
  auto peer = r->next_peer();
  r->server().stop();
  EXPECT_TRUE(reaches_end(peer->fd));
  EXPECT_FALSE(c.read());
  EXPECT_EQ(r->endings().size(), 1u);
}

TEST(WebSocket, OverTlsBytesGoBothWays) {
  auto id = ads::http::tls::make_self_signed({"127.0.0.1"});
  ASSERT_TRUE(id.ok());
  ads::http::ServerOptions o;
  o.tls_cert_pem = id->cert_pem;
  o.tls_backend = ads::http::openssl_tls;
  o.tls_key_pem = id->key_pem;
  Relays r(o);
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.add_certificate_authority(asio::buffer(id->cert_pem));
  ctx.set_verify_mode(asio::ssl::verify_peer);
  using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
  TlsWs ws(ioc, ctx);
  beast::error_code ec;
  beast::get_lowest_layer(ws).expires_after(10s);
  beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), r.port()), ec);
  ASSERT_FALSE(ec) << ec.message();
  ws.next_layer().handshake(asio::ssl::stream_base::client, ec);
  ASSERT_FALSE(ec) << ec.message();
  ws.handshake("127.0.0.1", "/ws", ec);
  ASSERT_FALSE(ec) << ec.message();
  beast::get_lowest_layer(ws).expires_never();
  Client<TlsWs> c(ioc, ws);
  auto peer = r.next_peer();
  ASSERT_TRUE(peer);
  // both ways at once: the socket speaks while a message is on its way in
  ASSERT_EQ(::write(peer->fd, "out", 3), 3);
  ASSERT_TRUE(c.write("in", false));
  EXPECT_EQ(read_some(peer->fd, 2), "in");
  auto m = c.read();
  ASSERT_TRUE(m) << c.error().message();
  EXPECT_EQ(m->data, "out");
  ::shutdown(peer->fd, SHUT_WR);
  m = c.read();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, R"({"exit_code":7})");
  EXPECT_FALSE(c.read());
  EXPECT_EQ(c.reason().code, websocket::close_code::normal);
}

}  // namespace
