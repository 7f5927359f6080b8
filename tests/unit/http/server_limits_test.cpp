// http::Server's connection limits and deadlines against real sockets on
// loopback (issue 14.5/14.6): slow clients are cut at a deadline per request,
// not kept alive by a byte now and then; one address gets its share of
// connections; a reserve keeps the requests its filter names going; more
// clients than threads wait in a queue instead of being refused.
// Settings are small so that each test is short; waits are bounded, and no
// assertion is about how fast anything happened.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <latch>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "support/process.h"
#include "support/raw_client.h"

namespace {
using namespace std::chrono_literals;
using ads::test::eventually;
using ads::test::RawClient;
using nlohmann::json;

// Options with small deadlines; each test sets what it is about.
ads::http::ServerOptions small() {
  ads::http::ServerOptions o;
  o.max_body_bytes = 4096;
  o.max_connections = 8;
  o.read_timeout_s = 30;
  o.head_timeout_ms = 30000;
  o.request_timeout_ms = 30000;
  o.max_connections_per_address = 0;
  o.queue_timeout_ms = 30000;
  return o;
}

void add_routes(ads::http::Server& s) {
  s.route("GET", "/hello", [](ads::http::Request&) { return ads::http::Response::json(200, R"({"hi":1})"); });
  s.route("POST", "/echo", [](ads::http::Request& r) { return ads::http::Response::json(200, r.body); });
}

ads::Result<ads::http::ClientResponse> get(uint16_t port, const std::string& path = "/hello",
                                           std::vector<std::pair<std::string, std::string>> headers = {}) {
  ads::http::ClientRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + path;
  r.headers = std::move(headers);
  r.timeout_ms = 20000;
  return ads::http::request(r);
}

// The status and the JSON body of a raw HTTP/1.1 response.
int status_of(const std::string& raw) { return raw.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(raw.c_str() + 9) : 0; }
json body_of(const std::string& raw) {
  auto end = raw.find("\r\n\r\n");
  return end == std::string::npos ? json() : json::parse(raw.substr(end + 4), nullptr, false);
}

const std::string kSlowHead = "GET /hello HTTP/1.1\r\nHost: ads\r\nX-Pad: " + std::string(200, 'a') + "\r\n\r\n";

// One byte every 50 ms: each would reset a per-read timeout; the head
// deadline (500 ms) still cuts the client long before its head is complete.
TEST(ServerDeadlines, ASlowHeadIsCutAtTheHeadDeadline) {
  auto o = small();
  o.head_timeout_ms = 500;
  o.read_timeout_s = 5;
  ads::http::Server s(o);
  add_routes(s);
  ASSERT_TRUE(s.start().ok());
  RawClient slow(s.port());
  ASSERT_TRUE(slow.connected());
  bool answered = false;
  size_t sent = slow.trickle(kSlowHead, 50ms, 8s, &answered);
  EXPECT_LT(sent, kSlowHead.size()) << "the whole head went through: the client was never cut";
  // cut while it was still sending (a per-read timeout would only cut it once it fell silent)
  EXPECT_TRUE(answered) << "not cut while sending a byte every 50 ms";
  bool closed = false;
  std::string reply = slow.read_all(5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(status_of(reply), 408) << reply;
  EXPECT_EQ(body_of(reply)["error"]["code"], "request_timeout") << reply;
  EXPECT_GE(s.stats().deadline_cuts, 1u);
  // and the server goes on serving
  auto ok = get(s.port());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
}

TEST(ServerDeadlines, ASlowBodyIsCutAtTheRequestDeadline) {
  auto o = small();
  o.head_timeout_ms = 500;
  o.request_timeout_ms = 1000;
  o.read_timeout_s = 5;
  ads::http::Server s(o);
  add_routes(s);
  ASSERT_TRUE(s.start().ok());
  RawClient slow(s.port());
  ASSERT_TRUE(
      slow.send("POST /echo HTTP/1.1\r\nHost: ads\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"));
  std::string body(1000, 'x');
  bool answered = false;
  size_t sent = slow.trickle(body, 50ms, 8s, &answered);
  EXPECT_LT(sent, body.size());
  EXPECT_TRUE(answered) << "not cut while sending a byte every 50 ms";
  bool closed = false;
  std::string reply = slow.read_all(5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(status_of(reply), 408) << reply;
  EXPECT_NE(body_of(reply)["error"]["message"].get<std::string>().find("1000 ms"), std::string::npos) << reply;
}

// A connection that sends nothing is closed at the head deadline, without an
// answer. (Before, the 30 s read timeout never fired at all: Asio's blocking
// read waits again, with no limit, after SO_RCVTIMEO's EAGAIN.)
TEST(ServerDeadlines, AnIdleConnectionIsClosedQuietly) {
  auto o = small();
  o.head_timeout_ms = 300;
  o.read_timeout_s = 1;
  ads::http::Server s(o);
  add_routes(s);
  ASSERT_TRUE(s.start().ok());
  RawClient idle(s.port());
  bool closed = false;
  std::string got = idle.read_all(8s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(got, "");
  EXPECT_TRUE(eventually([&] { return s.stats().open == 0; }));
}

// A kept-alive connection waits for its next request within the head deadline
// too, counted from the end of the previous answer.
TEST(ServerDeadlines, KeepAliveServesSeveralRequestsThenClosesWhenIdle) {
  auto o = small();
  o.head_timeout_ms = 400;
  ads::http::Server s(o);
  add_routes(s);
  ASSERT_TRUE(s.start().ok());
  RawClient c(s.port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: ads\r\n\r\n"));
    std::string r = c.read_response(5s);
    EXPECT_EQ(status_of(r), 200) << r;
  }
  bool closed = false;
  EXPECT_EQ(c.read_all(8s, &closed), "");
  EXPECT_TRUE(closed);
}

TEST(ServerConnections, OneAddressGetsItsShareTheRestWaitsThenIsRefusedWith429) {
  auto o = small();
  o.max_connections_per_address = 2;
  o.max_queued_per_address = 1;
  ads::http::Server s(o);
  add_routes(s);
  ASSERT_TRUE(s.start().ok());
  RawClient a1(s.port(), "127.0.0.2"), a2(s.port(), "127.0.0.2");
  ASSERT_TRUE(eventually([&] { return s.stats().open == 2; }));
  RawClient a3(s.port(), "127.0.0.2");  // waits
  ASSERT_TRUE(eventually([&] { return s.stats().queued == 1; }));
  RawClient a4(s.port(), "127.0.0.2");  // over its share
  ASSERT_TRUE(a4.send("GET /hello HTTP/1.1\r\nHost: ads\r\n\r\n"));
  bool closed = false;
  std::string refused = a4.read_all(5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(status_of(refused), 429) << refused;
  EXPECT_EQ(body_of(refused)["error"]["code"], "too_many_connections") << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  EXPECT_EQ(s.stats().refused_per_address, 1u);

  // another address is served at once
  RawClient b(s.port(), "127.0.0.3");
  ASSERT_TRUE(b.send("GET /hello HTTP/1.1\r\nHost: ads\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(status_of(b.read_all(5s)), 200);

  // the waiting one is served once one of its address's connections ends
  ASSERT_TRUE(a3.send("GET /hello HTTP/1.1\r\nHost: ads\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(a3.readable(200ms));  // still waiting (not a timing check: it cannot be served yet)
  a1.close();
  EXPECT_EQ(status_of(a3.read_all(5s)), 200);
}

TEST(ServerConnections, AWaitingConnectionIsRefusedWith503AfterTheQueueTimeout) {
  auto o = small();
  o.max_connections = 1;
  o.queue_timeout_ms = 300;
  ads::http::Server s(o);
  add_routes(s);
  ASSERT_TRUE(s.start().ok());
  RawClient holder(s.port());
  ASSERT_TRUE(eventually([&] { return s.stats().open == 1; }));
  RawClient waiting(s.port());
  ASSERT_TRUE(waiting.send("GET /hello HTTP/1.1\r\nHost: ads\r\n\r\n"));
  bool closed = false;
  std::string r = waiting.read_all(8s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(status_of(r), 503) << r;
  EXPECT_EQ(body_of(r)["error"]["code"], "unavailable") << r;
  EXPECT_EQ(s.stats().queue_timeouts, 1u);
}

// Clients holding every normal slot do not shut out what the reserve filter
// names; others get a 503 there; a slow client in a reserved slot is cut at
// the reserved head deadline.
TEST(ServerConnections, TheReserveServesOnlyWhatItsFilterLetsIn) {
  auto o = small();
  o.max_connections = 4;
  o.reserved_connections = 2;
  o.max_queued = 0;
  o.reserved_head_timeout_ms = 300;
  ads::http::Server s(o);
  add_routes(s);
  s.set_reserve_filter([](const ads::http::Request& r) { return !r.header("x-key").empty(); });
  ASSERT_TRUE(s.start().ok());
  RawClient slow1(s.port(), "127.0.0.2"), slow2(s.port(), "127.0.0.3");
  ASSERT_TRUE(slow1.send("GET /hello HTTP/1.1\r\n"));
  ASSERT_TRUE(slow2.send("GET /hello HTTP/1.1\r\n"));
  ASSERT_TRUE(eventually([&] { return s.stats().open == 2; }));

  auto keyed = get(s.port(), "/hello", {{"X-Key", "k"}});
  ASSERT_TRUE(keyed.ok()) << keyed.error().message;
  EXPECT_EQ(keyed->status, 200);
  auto plain = get(s.port());
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->status, 503);
  EXPECT_EQ(json::parse(plain->body, nullptr, false)["error"]["code"], "unavailable") << plain->body;
  EXPECT_EQ(s.stats().reserve_refusals, 1u);

  // slow clients in the reserved slots too: they are cut at its short head deadline
  ASSERT_TRUE(eventually([&] { return s.stats().open == 2; }));  // the two above have left
  RawClient slow3(s.port(), "127.0.0.4"), slow4(s.port(), "127.0.0.5");
  ASSERT_TRUE(slow3.send("GET /hello HTTP/1.1\r\n"));
  ASSERT_TRUE(slow4.send("GET /hello HTTP/1.1\r\n"));
  bool closed3 = false, closed4 = false;
  std::string r3 = slow3.read_all(8s, &closed3), r4 = slow4.read_all(8s, &closed4);
  EXPECT_EQ(status_of(r3), 408) << r3 << closed3 << " " << s.stats().deadline_cuts << " " << s.stats().refused_busy;
  EXPECT_EQ(status_of(r4), 408) << r4;
  EXPECT_TRUE(closed3 && closed4);
  ASSERT_TRUE(eventually([&] { return s.stats().open == 2; }));
  auto again = get(s.port(), "/hello", {{"X-Key", "k"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200);
  // the normal slots' slow clients are still there (their deadline is long)
  EXPECT_FALSE(slow1.readable(0ms));
}

// More clients at once than the server has threads: they wait their turn
// and every one gets its answer (before, every one beyond 64 got a 503).
TEST(ServerConnections, TwoHundredClientsAtOnceAllGetTheirAnswer) {
  auto o = small();
  o.max_connections = 8;
  o.max_connections_per_address = 4;
  ads::http::Server s(o);
  add_routes(s);
  std::atomic<int> inside{0}, most{0};
  s.route("GET", "/slowish", [&](ads::http::Request&) {
    int now = ++inside;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(10ms);
    --inside;
    return ads::http::Response::json(200, R"({"ok":true})");
  });
  ASSERT_TRUE(s.start().ok());
  constexpr int kClients = 200;
  std::latch go(kClients);
  std::vector<long> status(kClients, 0);
  std::vector<std::thread> ts;
  ts.reserve(static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    ts.emplace_back([&, i] {
      go.arrive_and_wait();
      auto r = get(s.port(), "/slowish");
      status[i] = r ? r->status : -1;
    });
  }
  for (auto& t : ts) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(status[i], 200) << "client " << i;
  EXPECT_LE(most.load(), 4);  // one address: its share at once, the others waited
  EXPECT_EQ(s.stats().refused_busy + s.stats().refused_per_address + s.stats().queue_timeouts, 0u);
}

// (Over HTTPS, a refused client's 429: tls_backends_test.cpp, both TLS backends.)

TEST(ServerConnections, StopEndsSlowAndWaitingConnections) {
  auto o = small();
  o.max_connections = 2;
  auto s = std::make_unique<ads::http::Server>(o);
  add_routes(*s);
  ASSERT_TRUE(s->start().ok());
  std::vector<std::unique_ptr<RawClient>> cs;
  for (int i = 0; i < 5; ++i) {
    cs.push_back(std::make_unique<RawClient>(s->port()));
    ASSERT_TRUE(cs.back()->send("GET /hello HTTP/1.1\r\n"));
  }
  ASSERT_TRUE(eventually([&] { return s->stats().open == 2 && s->stats().queued == 3; }));
  s->stop();
  for (auto& c : cs) {
    bool closed = false;
    c->read_all(5s, &closed);
    EXPECT_TRUE(closed);
  }
}

// Connection threads outlive their connection (ServerOptions::idle_threads):
// the next connection is served by one that waits, not by a new thread.
// Threads are told apart by their kernel id (gettid), which Linux does not
// hand out again soon, unlike std::thread::id.
void add_tid_route(ads::http::Server& s) {
  s.route("GET", "/tid", [](ads::http::Request&) {
    return ads::http::Response::json(200, json{{"tid", static_cast<long>(::gettid())}}.dump());
  });
}
long tid_of(uint16_t port) {
  auto r = get(port, "/tid");
  if (!r || r->status != 200) return -1;
  return json::parse(r->body, nullptr, false).value("tid", -1L);
}

TEST(ServerThreads, AnIdleThreadServesTheNextConnection) {
  auto o = small();
  o.idle_threads = 1;
  ads::http::Server s(o);
  add_tid_route(s);
  ASSERT_TRUE(s.start().ok());
  long first = tid_of(s.port());
  ASSERT_GT(first, 0);
  ASSERT_TRUE(eventually([&] { return s.stats().idle_threads == 1; }));
  EXPECT_EQ(tid_of(s.port()), first);  // a new connection (libcurl opens one per call), the same thread
  ASSERT_TRUE(eventually([&] { return s.stats().idle_threads == 1; }));
  EXPECT_EQ(s.stats().threads, 1u);
}

TEST(ServerThreads, WithoutIdleThreadsEachConnectionHasAThreadOfItsOwn) {
  auto o = small();
  o.idle_threads = 0;
  ads::http::Server s(o);
  add_tid_route(s);
  ASSERT_TRUE(s.start().ok());
  long first = tid_of(s.port());
  ASSERT_GT(first, 0);
  ASSERT_TRUE(eventually([&] { return s.stats().threads == 0; }));
  long second = tid_of(s.port());
  ASSERT_GT(second, 0);
  EXPECT_NE(second, first);
  EXPECT_TRUE(eventually([&] { return s.stats().threads == 0; }));
  EXPECT_EQ(s.stats().idle_threads, 0u);
}

TEST(ServerThreads, AnIdleThreadEndsAfterItsTime) {
  auto o = small();
  o.idle_threads = 4;
  o.idle_thread_ms = 200;
  ads::http::Server s(o);
  add_tid_route(s);
  ASSERT_TRUE(s.start().ok());
  ASSERT_GT(tid_of(s.port()), 0);
  EXPECT_TRUE(eventually([&] { return s.stats().threads == 0; }));
  EXPECT_EQ(s.stats().idle_threads, 0u);
  EXPECT_GT(tid_of(s.port()), 0);  // and the next connection gets a new one
}

// Connections arriving around the moment the idle thread's wait ends (some
// just before, some just after) are all served, by it or by a new thread.
// The exact window between the wait's timeout and its look at the hand-off
// queue is rarely hit by timing alone; the code closes it by doing both
// under one lock (Server::wait_idle).
TEST(ServerThreads, AConnectionArrivingAsTheIdleThreadTimesOutIsServed) {
  auto o = small();
  o.idle_threads = 1;
  o.idle_thread_ms = 100;
  auto s = std::make_unique<ads::http::Server>(o);
  add_tid_route(*s);
  ASSERT_TRUE(s->start().ok());
  for (int i = 0; i < 30; ++i) {
    EXPECT_GT(tid_of(s->port()), 0) << "request " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(85 + (i * 7) % 30));  // 85-114 ms
  }
  s->stop();
  EXPECT_EQ(s->stats().threads, 0u);
  EXPECT_EQ(s->stats().open, 0u);
}

TEST(ServerThreads, AfterABurstAtMostIdleThreadsStayAndStopEndsThem) {
  auto o = small();
  o.max_connections = 8;
  o.idle_threads = 2;
  auto s = std::make_unique<ads::http::Server>(o);
  std::latch all_in(8);
  s->route("GET", "/together", [&](ads::http::Request&) {
    all_in.arrive_and_wait();  // eight connections served at once: eight threads
    return ads::http::Response::json(200, R"({"ok":true})");
  });
  ASSERT_TRUE(s->start().ok());
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  ts.reserve(8);
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&] {
      auto r = get(s->port(), "/together");
      if (r && r->status == 200) ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 8);
  ASSERT_TRUE(eventually([&] { return s->stats().threads == 2; }));
  EXPECT_EQ(s->stats().idle_threads, 2u);
  s->stop();  // waits for its threads: none is left to touch the server
  EXPECT_EQ(s->stats().threads, 0u);
  EXPECT_EQ(s->stats().idle_threads, 0u);
}

TEST(ServerConnections, SettingsThatCannotWorkAreRefusedAtStart) {
  auto o = small();
  o.reserved_connections = o.max_connections;
  ads::http::Server s(o);
  auto st = s.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "reserved_connections");
  auto o3 = small();
  o3.request_timeout_ms = o3.head_timeout_ms - 1;
  ads::http::Server s3(o3);
  auto st3 = s3.start();
  ASSERT_FALSE(st3.ok());
  EXPECT_EQ(st3.error().field, "request_timeout_ms");
  auto o2 = small();
  o2.head_timeout_ms = 0;
  ads::http::Server s2(o2);
  auto st2 = s2.start();
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error().field, "head_timeout_ms");
}

}  // namespace
