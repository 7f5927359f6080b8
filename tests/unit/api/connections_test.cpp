// The API under many clients at once and under slow clients (issue 14.5,
// 14.6), on a real http::Server with `ads serve`'s own HTTP settings
// (cli::serve_http_defaults), a real SQLite store and the real routes.
#include <gtest/gtest.h>

#include <latch>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api.h"
#include "api/auth.h"
#include "cli/config.h"
#include "http/client.h"
#include "support/process.h"
#include "support/raw_client.h"

namespace {
using namespace std::chrono_literals;
using ads::test::eventually;
using ads::test::RawClient;
using nlohmann::json;

class ApiConnections : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store = std::move(st.value());
    engine = std::make_unique<ads::Engine>(*store, std::map<std::string, std::unique_ptr<ads::Provider>>{},
                                           ads::EngineOptions{});
    auth = std::make_unique<ads::Auth>(*store);
    auto boot = auth->bootstrap();
    ASSERT_TRUE(boot.ok() && boot->has_value());
    token = **boot;
    for (int i = 0; i < 30; ++i) {
      ads::Deployment d;
      char id[32];
      std::snprintf(id, sizeof id, "01conn%020d", i);
      d.id = id;
      d.name = "lab";
      d.source = "/srv/lab";
      d.provider = "lxd";
      d.state = ads::State::kRunning;
      d.owner = "admin";
      ASSERT_TRUE(store->create(d).ok());
    }
  }
  void serve(ads::http::ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    server = std::make_unique<ads::http::Server>(o);
    ads::ApiLimits limits;  // one token for every client: its rate is not what is tested here
    limits.requests_per_second = 1e6;
    limits.request_burst = 1e6;
    ads::register_api(*server, *store, *engine, *auth, limits);
    ASSERT_TRUE(server->start().ok());
  }
  ads::Result<ads::http::ClientResponse> get(const std::string& path, const std::string& tok) {
    ads::http::ClientRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    if (!tok.empty()) r.headers.push_back({"Authorization", "Bearer " + tok});
    r.timeout_ms = 60000;
    return ads::http::request(r);
  }
  // `n` clients at once (they start together), each GET /api/v1/deployments; their statuses.
  std::vector<long> list_at_once(int n) {
    std::latch go(n);
    std::vector<long> status(n, 0);
    std::vector<std::thread> ts;
    ts.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      ts.emplace_back([&, i] {
        go.arrive_and_wait();
        auto r = get("/api/v1/deployments", token);
        status[i] = !r ? -1 : r->status == 200 && json::parse(r->body)["deployments"].size() == 30 ? 200 : r->status;
      });
    }
    for (auto& t : ts) t.join();
    return status;
  }

  ads::test::TempDir tmp;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::Engine> engine;
  std::unique_ptr<ads::Auth> auth;
  std::unique_ptr<ads::http::Server> server;
  std::string token;
};

// 200 honest clients at once from one address, with `ads serve`'s defaults:
// every one gets its list (before: 136 of 200 got 503).
TEST_F(ApiConnections, TwoHundredClientsAtOnceAllGetTheList) {
  serve(ads::cli::serve_http_defaults());
  auto status = list_at_once(200);
  for (size_t i = 0; i < status.size(); ++i) EXPECT_EQ(status[i], 200) << "client " << i;
  auto st = server->stats();
  EXPECT_EQ(st.refused_busy + st.refused_per_address + st.queue_timeouts, 0u);
}

// The same with a server far smaller than the crowd: the rest wait their turn.
TEST_F(ApiConnections, TwoHundredClientsAtOnceOnEightThreadsAllGetTheList) {
  auto o = ads::cli::serve_http_defaults();
  o.max_connections = 8;
  o.reserved_connections = 2;
  o.queue_timeout_ms = 60000;
  serve(o);
  auto status = list_at_once(200);
  for (size_t i = 0; i < status.size(); ++i) EXPECT_EQ(status[i], 200) << "client " << i;
}

// Slow clients without a token from several addresses hold every normal
// connection (each under its address's share, their deadline far away): a
// client with a token still gets its answer, and so does the health check;
// a request without credentials is told the server is busy, in JSON.
TEST_F(ApiConnections, SlowClientsDoNotShutOutTokensOrTheHealthCheck) {
  auto o = ads::cli::serve_http_defaults();
  o.max_connections = 6;
  o.reserved_connections = 2;
  o.max_connections_per_address = 2;
  o.max_queued_per_address = 1;
  o.head_timeout_ms = 60000;
  o.request_timeout_ms = 60000;
  serve(o);
  std::vector<std::unique_ptr<RawClient>> slow;
  for (const char* a : {"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"}) {
    slow.push_back(std::make_unique<RawClient>(server->port(), a));
    ASSERT_TRUE(slow.back()->send("GET /api/v1/deployments HTTP/1.1\r\nHost: ads\r\n"));  // and never the rest
  }
  ASSERT_TRUE(eventually([&] { return server->stats().open == 4; }));
  // one more from an address at its share waits; the next is refused, in JSON
  RawClient waits(server->port(), "127.0.0.2");
  ASSERT_TRUE(eventually([&] { return server->stats().queued == 1; }));
  RawClient over(server->port(), "127.0.0.2");
  ASSERT_TRUE(over.send("GET /api/v1/deployments HTTP/1.1\r\nHost: ads\r\n\r\n"));
  std::string refused = over.read_all(10s);
  EXPECT_EQ(refused.rfind("HTTP/1.1 429", 0), 0u) << refused;
  EXPECT_NE(refused.find(R"("code":"too_many_connections")"), std::string::npos) << refused;

  for (int i = 0; i < 3; ++i) {
    auto list = get("/api/v1/deployments", token);
    ASSERT_TRUE(list.ok()) << list.error().message;
    EXPECT_EQ(list->status, 200) << list->body;
    auto health = get("/api/v1/health", token);
    ASSERT_TRUE(health.ok());
    EXPECT_EQ(health->status, 200) << health->body;
  }
  // the health route gets through the reserve even without a token (to its 401)
  auto anon_health = get("/api/v1/health", "");
  ASSERT_TRUE(anon_health.ok());
  EXPECT_EQ(anon_health->status, 401);
  auto anon = get("/api/v1/deployments", "");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->status, 503) << anon->body;
  EXPECT_EQ(json::parse(anon->body, nullptr, false)["error"]["code"], "unavailable") << anon->body;
  EXPECT_EQ(server->stats().open - server->stats().reserved_open, 4u);  // the slow ones are all still there
}

}  // namespace
