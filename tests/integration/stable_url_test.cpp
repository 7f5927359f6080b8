// Stable URLs on real LXD through a real HAProxy (the default) or Caddy
// that `ads serve` starts (docs/operators/proxy.md): the example lab is reachable at its stable URL
// (host routing with a Host header; a port of its own without a domain),
// a second live lab cannot take its name (409 naming "name"), a restarted
// proxy gets its routes back from the store, and a destroy removes the route.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "http/client.h"
#include "router/caddy_process.h"
#include "router/haproxy_process.h"
#include "support/ads_server.h"
#include "support/build_paths.h"
#include "support/ports.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
using namespace ads::test;

struct Got {
  long status = 0;
  std::string body, error;
};

Got get(const std::string& url, const std::string& host = "") {
  ads::http::ClientRequest r;
  r.url = url;
  if (!host.empty()) r.headers.emplace_back("Host", host);
  r.timeout_ms = 10000;
  auto res = ads::http::request(r);
  if (!res) return {0, "", res.error().message};
  return {res->status, res->body, ""};
}

class StableUrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
    data = (tmp.path / "data").string();
  }
  // The proxy outlives ads serve by design; the test stops it.
  void TearDown() override {
    (void)ads::router::stop_haproxy(data + "/proxy");
    (void)ads::router::stop_proxy(data + "/proxy");
  }
  void host_routing_survives_a_restart_of_proxy_and_server(const std::string& kind);
  std::string config(const json& proxy) {
    std::string path = (tmp.path / "ads.json").string();
    std::ofstream(path) << json{{"proxy", proxy}}.dump();
    return path;
  }
  TempDir tmp;
  ContainerGuard guard;
  std::string data;
};

TEST_F(StableUrlTest, PortPerLabServesTheLabUntilItIsDestroyed) {
  int first = ads::test::free_loopback_port();
  std::string cfg = config({{"listen", "127.0.0.1:80"},
                            {"ports", std::to_string(first) + "-" + std::to_string(first)},
                            {"public_host", "127.0.0.1"}});
  Server s(data, ADS_AGENT_BIN, {}, "2", cfg);
  ASSERT_FALSE(s.base().empty());
  json req = {{"source", kSource + "/examples/labs/static-site"}, {"name", "stable-port"}};
  long status = 0;
  json d = s.call("POST", "/api/v1/deployments", &req, &status);
  ASSERT_EQ(status, 202) << d.dump();
  std::string id = d["id"];
  guard.ids.insert(id);
  d = s.wait_for(id, {"running", "failed"});
  ASSERT_EQ(d["state"], "running") << d.dump() << "\n" << s.log_text(id);
  std::string stable = "http://127.0.0.1:" + std::to_string(first) + "/";
  EXPECT_EQ(d["stable_url"], stable) << d.dump();
  Got g = get(stable);
  EXPECT_EQ(g.status, 200) << g.error;
  EXPECT_NE(g.body.find("ADS example lab"), std::string::npos) << g.body;
  EXPECT_NE(s.log_text(id).find("stable URL " + stable), std::string::npos);

  // the name is taken while the lab lives
  json dup = s.call("POST", "/api/v1/deployments", &req, &status);
  EXPECT_EQ(status, 409) << dup.dump();
  EXPECT_EQ(dup["error"]["field"], "name") << dup.dump();
  EXPECT_NE(dup["error"]["message"].get<std::string>().find(id), std::string::npos) << dup.dump();
  // a name that is no DNS label is refused before anything is made
  json bad = {{"source", kSource + "/examples/labs/static-site"}, {"name", "Not_A_Label"}};
  json r = s.call("POST", "/api/v1/deployments", &bad, &status);
  EXPECT_EQ(status, 400) << r.dump();
  EXPECT_EQ(r["error"]["field"], "name");
  // the only port of the range is the lab's: another lab cannot be published
  json other = {{"source", kSource + "/examples/labs/static-site"}, {"name", "stable-other"}};
  json o = s.call("POST", "/api/v1/deployments", &other, &status);
  ASSERT_EQ(status, 202) << o.dump();
  guard.ids.insert(o["id"].get<std::string>());
  o = s.wait_for(o["id"], {"running", "failed"});
  EXPECT_EQ(o["state"], "failed") << o.dump();
  EXPECT_NE(o.value("error", "").find("no port for the lab's stable URL"), std::string::npos) << o.dump();
  EXPECT_EQ(lxd()->inspect("ads-" + o["id"].get<std::string>()).error().code, "not_found");
  EXPECT_EQ(get(stable).status, 200) << "the first lab is untouched";

  s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  EXPECT_EQ(status, 202);
  d = s.wait_for(id, {"destroyed", "failed"}, 120);
  EXPECT_EQ(d["state"], "destroyed") << d.dump();
  EXPECT_EQ(d["stable_url"], "");
  EXPECT_EQ(get(stable).status, 404) << "HAProxy (it holds the whole range) has no lab on the port after its destroy";
  // its name and its port are free again
  json again = s.call("POST", "/api/v1/deployments", &req, &status);
  EXPECT_EQ(status, 202) << again.dump();
  guard.ids.insert(again["id"].get<std::string>());
  again = s.wait_for(again["id"], {"running", "failed"});
  EXPECT_EQ(again["stable_url"], stable) << again.dump();
  s.call("DELETE", "/api/v1/deployments/" + again["id"].get<std::string>());
  s.wait_for(again["id"], {"destroyed", "failed"}, 120);
}

void StableUrlTest::host_routing_survives_a_restart_of_proxy_and_server(const std::string& kind) {
  int port = ads::test::free_loopback_port();
  std::string cfg = config({{"kind", kind}, {"domain", "labs.test"}, {"listen", "127.0.0.1:" + std::to_string(port)}});
  std::string id;
  std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";
  {
    Server s(data, ADS_AGENT_BIN, {}, "2", cfg);
    json req = {{"source", kSource + "/examples/labs/static-site"}, {"name", "stable-host"}};
    long status = 0;
    json d = s.call("POST", "/api/v1/deployments", &req, &status);
    ASSERT_EQ(status, 202) << d.dump();
    id = d["id"];
    guard.ids.insert(id);
    d = s.wait_for(id, {"running", "failed"});
    ASSERT_EQ(d["state"], "running") << d.dump() << "\n" << s.log_text(id);
    EXPECT_EQ(d["stable_url"], "http://stable-host.labs.test:" + std::to_string(port) + "/");
    Got g = get(base, "stable-host.labs.test:" + std::to_string(port));
    EXPECT_EQ(g.status, 200) << g.error;
    EXPECT_NE(g.body.find("ADS example lab"), std::string::npos) << g.body;
    EXPECT_EQ(get(base, "nobody.labs.test").status, 404);
  }
  // the proxy outlived the server; now it goes too, and with it its
  // saved routes (HAProxy's map file, Caddy's autosave): only the store
  // knows the route
  if (kind == "haproxy") {
    ASSERT_GT(ads::router::haproxy_pid(data + "/proxy"), 0);
    ASSERT_TRUE(ads::router::stop_haproxy(data + "/proxy").ok());
    fs::remove(data + "/proxy/hosts.map");
  } else {
    ASSERT_GT(ads::router::proxy_pid(data + "/proxy"), 0);
    ASSERT_TRUE(ads::router::stop_proxy(data + "/proxy").ok());
    fs::remove_all(data + "/proxy/config");
  }
  EXPECT_EQ(get(base, "stable-host.labs.test").status, 0);
  Server s(data, ADS_AGENT_BIN, {}, "2", cfg);
  Got g = get(base, "stable-host.labs.test");
  EXPECT_EQ(g.status, 200) << g.error;
  EXPECT_NE(g.body.find("ADS example lab"), std::string::npos) << g.body;

  long status = 0;
  s.call("DELETE", "/api/v1/deployments/" + id, nullptr, &status);
  EXPECT_EQ(status, 202);
  EXPECT_EQ(s.wait_for(id, {"destroyed", "failed"}, 120)["state"], "destroyed");
  EXPECT_EQ(get(base, "stable-host.labs.test").status, 404) << "the route is gone";
}

TEST_F(StableUrlTest, HostRoutingSurvivesARestartOfProxyAndServer) {
  host_routing_survives_a_restart_of_proxy_and_server("haproxy");
}

TEST_F(StableUrlTest, HostRoutingSurvivesARestartOfProxyAndServerOnCaddy) {
  host_routing_survives_a_restart_of_proxy_and_server("caddy");
}

}  // namespace
