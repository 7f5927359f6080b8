// The HTTP server over each TLS backend (http/tls_stream.h): OpenSSL, what
// `ads serve` speaks, and mbed TLS, what the agent speaks. The same tests run
// on both, with libcurl (OpenSSL) as the client and raw sockets for the
// hostile cases: plain HTTP at the TLS port, garbage after a handshake byte,
// a handshake that stalls, bad certificates and keys. Waits are bounded; no
// assertion is about speed.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "http/tls_mbedtls.h"
#include "http/tls_openssl.h"
#include "http/tls_stream.h"
#include "support/process.h"
#include "support/raw_client.h"

namespace {
using namespace std::chrono_literals;
using ads::test::eventually;
using ads::test::RawClient;
using nlohmann::json;

struct Backend {
  const char* name;
  ads::http::TlsBackend make;
};

class TlsBackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto id = ads::http::tls::make_self_signed({"127.0.0.1"});
    ASSERT_TRUE(id.ok());
    id_ = *id;
    std::ofstream(tmp_.path / "ca.crt") << id_.cert_pem;
  }

  ads::http::ServerOptions options() const {
    ads::http::ServerOptions o;
    o.tls_cert_pem = id_.cert_pem;
    o.tls_key_pem = id_.key_pem;
    o.tls_backend = GetParam().make;
    o.max_body_bytes = 4u << 20;
    return o;
  }

  std::unique_ptr<ads::http::Server> start(ads::http::ServerOptions o) {
    auto s = std::make_unique<ads::http::Server>(std::move(o));
    s->route("GET", "/hello", [](ads::http::Request&) { return ads::http::Response::json(200, R"({"hi":1})"); });
    s->route("POST", "/echo", [](ads::http::Request& r) {
      ads::http::Response a = ads::http::Response::json(200, "{}");
      a.content_type = "application/octet-stream";
      a.body = r.body;
      return a;
    });
    auto st = s->start();
    EXPECT_TRUE(st.ok()) << st.error().message;
    return s;
  }

  ads::Result<ads::http::ClientResponse> call(uint16_t port, const std::string& method = "GET",
                                              const std::string& path = "/hello", std::string body = "") {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = "https://127.0.0.1:" + std::to_string(port) + path;
    r.ca_file = (tmp_.path / "ca.crt").string();
    r.body = std::move(body);
    r.timeout_ms = 20000;
    return ads::http::request(r);
  }

  ads::test::TempDir tmp_;
  ads::http::tls::Identity id_;
};

TEST_P(TlsBackendTest, ServesRequestsAndLargeBodiesBothWays) {
  auto s = start(options());
  auto r = call(s->port());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"hi":1})");
  // 3 MiB each way: many TLS records, partial reads and writes
  std::string big(3u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) ^ (i >> 9));
  auto e = call(s->port(), "POST", "/echo", big);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->status, 200);
  EXPECT_TRUE(e->body == big) << e->body.size();
  // over the body limit: a JSON 413 through TLS
  auto o = options();
  o.max_body_bytes = 1024;
  auto small = start(o);
  auto t = call(small->port(), "POST", "/echo", std::string(4096, 'x'));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->status, 413);
  EXPECT_EQ(json::parse(t->body, nullptr, false)["error"]["code"], "too_large") << t->body;
}

TEST_P(TlsBackendTest, ManyClientsAtOnce) {
  auto s = start(options());
  constexpr int kClients = 8, kEach = 5;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  ts.reserve(kClients);
  for (int i = 0; i < kClients; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < kEach; ++j) {
        auto r = call(s->port());
        if (r.ok() && r->status == 200) ++ok;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
}

TEST_P(TlsBackendTest, PlainHttpAtTheTlsPortIsToldSo) {
  auto s = start(options());
  RawClient c(s->port());
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  bool closed = false;
  std::string raw = c.read_all(10s, &closed);
  EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;
  EXPECT_NE(raw.find("tls_required"), std::string::npos) << raw;
}

// A handshake byte and then garbage, and a peer that vanishes mid-handshake:
// the connection ends, nothing else does.
TEST_P(TlsBackendTest, GarbageAndBrokenHandshakesEndOnlyTheirConnection) {
  auto s = start(options());
  {
    RawClient c(s->port());
    ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x00\x05hello", 10) + std::string(2000, '\xff')));
    bool closed = false;
    c.read_all(10s, &closed);
    EXPECT_TRUE(closed);
  }
  {
    RawClient c(s->port());
    // a record header that announces more than it sends, then the peer goes
    ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x40\x00", 5) + std::string(100, 'a')));
    c.close();
  }
  ASSERT_TRUE(eventually([&] { return s->stats().open == 0; }));
  auto r = call(s->port());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

// A client that starts a handshake and stalls, or trickles it, is cut at the
// head's deadline (which covers the handshake), and its slot is free again.
TEST_P(TlsBackendTest, AStalledHandshakeIsCutAtTheHeadDeadline) {
  auto o = options();
  o.head_timeout_ms = 300;
  o.request_timeout_ms = 300;
  o.max_connections = 1;
  auto s = start(o);
  RawClient c(s->port());
  ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x02\x00", 5) + std::string(10, '\x01')));
  bool closed = false;
  c.read_all(20s, &closed);
  EXPECT_TRUE(closed);
  ASSERT_TRUE(eventually([&] { return s->stats().open == 0; }));
  // a handshake trickled a byte every 100 ms (each byte resets no timer): cut
  // at the same deadline, long before its 517 bytes are in
  {
    RawClient t(s->port());
    std::string hello = std::string("\x16\x03\x01\x02\x00", 5) + std::string(512, '\x01');
    bool answered = false;
    size_t sent = t.trickle(hello, 100ms, 20s, &answered);
    EXPECT_TRUE(answered);  // the server closed the connection
    EXPECT_LT(sent, hello.size());
  }
  ASSERT_TRUE(eventually([&] { return s->stats().open == 0; }));
  auto r = call(s->port());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

// Refused for too many connections from one address: the 429 still goes out,
// in JSON, through a handshake (it was server_limits_test's, OpenSSL only).
TEST_P(TlsBackendTest, RefusalsAreAnsweredThroughTls) {
  auto o = options();
  o.max_connections_per_address = 1;
  o.max_queued = 0;
  auto s = start(o);
  RawClient holder(s->port());
  ASSERT_TRUE(eventually([&] { return s->stats().open == 1; }));
  auto refused = call(s->port());
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(json::parse(refused->body, nullptr, false)["error"]["code"], "too_many_connections") << refused->body;
  holder.close();
  ASSERT_TRUE(eventually([&] { return s->stats().open == 0; }));
  auto r = call(s->port());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

TEST_P(TlsBackendTest, BadCertificatesAndKeysAreRefusedByName) {
  auto other = ads::http::tls::make_self_signed({"127.0.0.1"});
  ASSERT_TRUE(other.ok());
  struct Case {
    std::string cert, key, field;
  } cases[] = {{"not a certificate", id_.key_pem, "tls.cert"},
               {id_.cert_pem, "not a key", "tls.key"},
               {id_.cert_pem, other->key_pem, "tls.key"},
               {id_.cert_pem.substr(0, id_.cert_pem.size() / 2), id_.key_pem, "tls.cert"}};
  for (auto& c : cases) {
    auto ctx = GetParam().make(c.cert, c.key);
    ASSERT_FALSE(ctx.ok()) << c.field;
    EXPECT_EQ(ctx.error().code, "invalid");
    EXPECT_EQ(ctx.error().field, c.field) << ctx.error().message;
    auto o = options();
    o.tls_cert_pem = c.cert;
    o.tls_key_pem = c.key;
    ads::http::Server s(o);
    auto st = s.start();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().field, c.field);
  }
  // a running server keeps its identity when a bad one is offered
  auto s = start(options());
  EXPECT_FALSE(s->set_tls_identity("junk", id_.key_pem).ok());
  auto r = call(s->port());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

// A write that failed (here: timed out on a client that read nothing) leaves
// the stream failed: once the client reads again, a later write is still
// refused with that error, not reported as sent (mbed TLS alone would send
// the cut record's rest with it and count only the new bytes).
TEST_P(TlsBackendTest, AWriteThatFailedLeavesTheStreamFailed) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto ctx = GetParam().make(id_.cert_pem, id_.key_pem);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  std::atomic<bool> drain{false}, done{false};
  std::atomic<size_t> drained{0};
  std::thread client([&] {
    asio::io_context cio;
    asio::ssl::context c(asio::ssl::context::tls_client);
    c.set_verify_mode(asio::ssl::verify_none);
    asio::ssl::stream<asio::ip::tcp::socket> t(cio, c);
    boost::system::error_code ec;
    t.next_layer().connect(acc.local_endpoint(), ec);
    if (!ec) t.handshake(asio::ssl::stream_base::client, ec);
    for (int i = 0; i < 3000 && !drain && !done; ++i) std::this_thread::sleep_for(10ms);  // reads nothing meanwhile
    std::vector<char> buf(1 << 16);
    while (!ec && !done) drained += t.read_some(asio::buffer(buf), ec);
  });
  asio::ip::tcp::socket sock(io);
  acc.accept(sock);
  ads::http::DeadlineSocket ds(sock, 10s, 200ms);
  struct Join {  // the client ends however the test does
    std::atomic<bool>& done;
    ads::http::DeadlineSocket& ds;
    std::thread& t;
    ~Join() {
      done = true;
      ds.shutdown();
      t.join();
    }
  } join{done, ds, client};
  auto st = (*ctx)->stream(ds);
  boost::system::error_code ec;
  st->handshake(ec);
  ASSERT_FALSE(ec) << ec.message();
  const std::string chunk(16000, 'x');
  for (int i = 0; i < 10000 && !ec; ++i) st->write(chunk.data(), chunk.size(), ec);
  EXPECT_EQ(ec, asio::error::timed_out) << ec.message();  // the buffers filled, the write waited 200 ms
  drain = true;
  EXPECT_TRUE(eventually([&] { return drained > 0; }));  // the client reads again
  boost::system::error_code again;
  EXPECT_EQ(st->write("late", 4, again), 0u);
  EXPECT_EQ(again, ec) << again.message();
  char one = 0;
  boost::system::error_code read_ec;
  EXPECT_EQ(st->read(&one, 1, read_ec), 0u);
  EXPECT_EQ(read_ec, ec);
}

// A certificate with a key but no backend is a programming error, named.
TEST(TlsBackend, ACertificateWithoutABackendDoesNotStart) {
  auto id = ads::http::tls::make_self_signed({"127.0.0.1"});
  ASSERT_TRUE(id.ok());
  ads::http::ServerOptions o;
  o.tls_cert_pem = id->cert_pem;
  o.tls_key_pem = id->key_pem;
  ads::http::Server s(o);
  auto st = s.start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("no TLS backend"), std::string::npos) << st.error().message;
}

INSTANTIATE_TEST_SUITE_P(Backends, TlsBackendTest,
                         ::testing::Values(Backend{"openssl", ads::http::openssl_tls},
                                           Backend{"mbedtls", ads::http::mbedtls_tls}),
                         [](const ::testing::TestParamInfo<Backend>& i) { return std::string(i.param.name); });

}  // namespace
