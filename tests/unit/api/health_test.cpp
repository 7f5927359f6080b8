// GET /api/v1/deployments/{id}/health: the engine asks the deployment's real
// agent (in-process, on loopback) for its figures; refusals when it cannot.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/server.h"
#include "api/api.h"
#include "api/auth.h"
#include "http/client.h"
#include "support/process.h"

using nlohmann::json;

namespace {
const std::string kSecret(64, 's');

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::agent::AgentConfig cfg;
    cfg.secret = kSecret;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.lab_dir = (tmp.path / "lab").string();
    agent = std::make_unique<ads::agent::AgentServer>(cfg);
    ASSERT_TRUE(agent->start().ok());

    auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store = std::move(st.value());
    ads::EngineOptions opts;
    opts.agent_port = agent->port();
    engine = std::make_unique<ads::Engine>(*store, std::map<std::string, std::unique_ptr<ads::Provider>>{}, opts);
    server = std::make_unique<ads::http::Server>(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
    auth = std::make_unique<ads::Auth>(*store);
    auto boot = auth->bootstrap();
    ASSERT_TRUE(boot.ok() && boot->has_value());
    token = **boot;
    ads::register_api(*server, *store, *engine, *auth);
    ASSERT_TRUE(server->start().ok());
  }

  std::string make(ads::State state, const std::string& address, const std::string& secret = kSecret) {
    ads::Deployment d;
    d.id = "01m88rqkev9cbfs1eqysk664k" + std::to_string(n_++);
    d.name = "lab";
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.state = state;
    d.address = address;
    d.secret = secret;
    d.owner = "admin";
    d.created_ms = d.updated_ms = 1;
    EXPECT_TRUE(store->create(d).ok());
    return d.id;
  }

  std::pair<long, json> get(const std::string& path, const std::string& tok) {
    ads::http::ClientRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    if (!tok.empty()) r.headers.push_back({"Authorization", "Bearer " + tok});
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    if (!res) return {0, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }

  ads::test::TempDir tmp;
  std::unique_ptr<ads::agent::AgentServer> agent;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::Engine> engine;
  std::unique_ptr<ads::http::Server> server;
  std::unique_ptr<ads::Auth> auth;
  std::string token;
  int n_ = 0;
};

TEST_F(HealthTest, RunningDeploymentReportsItsAgentsFigures) {
  std::string id = make(ads::State::kRunning, "127.0.0.1");
  auto [status, body] = get("/api/v1/deployments/" + id + "/health", token);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["deployment"], id);
  EXPECT_GT(body["uptime_s"].get<double>(), 0.0);
  EXPECT_GT(body["memory"]["total_kb"].get<long long>(), 0);
  EXPECT_GT(body["disk"]["total_kb"].get<long long>(), 0);
  EXPECT_EQ(body["load"].size(), 3u);
  EXPECT_FALSE(body.value("checked_at", "").empty());
  EXPECT_EQ(body.dump().find(kSecret), std::string::npos);
}

TEST_F(HealthTest, RefusesWhenNotRunningUnknownOrUnauthenticated) {
  std::string stopped = make(ads::State::kStopped, "127.0.0.1");
  auto [s1, b1] = get("/api/v1/deployments/" + stopped + "/health", token);
  EXPECT_EQ(s1, 409);
  EXPECT_NE(b1["error"].value("message", "").find("stopped"), std::string::npos) << b1.dump();
  EXPECT_EQ(get("/api/v1/deployments/01m88rqkev9cbfs1eqysk66400/health", token).first, 404);
  EXPECT_EQ(get("/api/v1/deployments/not-an-id/health", token).first, 404);
  std::string running = make(ads::State::kRunning, "127.0.0.1");
  EXPECT_EQ(get("/api/v1/deployments/" + running + "/health", "").first, 401);
}

TEST_F(HealthTest, AgentThatRefusesTheSecretOrIsGoneIsAnError) {
  std::string wrong = make(ads::State::kRunning, "127.0.0.1", std::string(64, 'x'));
  auto [s1, b1] = get("/api/v1/deployments/" + wrong + "/health", token);
  EXPECT_GE(s1, 500) << b1.dump();
  EXPECT_FALSE(b1["error"].value("message", "").empty());
  agent->stop();
  std::string gone = make(ads::State::kRunning, "127.0.0.1");
  auto [s2, b2] = get("/api/v1/deployments/" + gone + "/health", token);
  EXPECT_EQ(s2, 503) << b2.dump();
  EXPECT_FALSE(b2["error"].value("message", "").empty());
}

}  // namespace
