// The engine and the reverse proxy, for each kind: a real HAProxy (the
// default, router::start_haproxy) and a real Caddy (router::start_proxy),
// started by the code `ads serve` uses, a real SQLite store, an upstream on loopback in
// place of a lab's machine; no machine is made (the records are written
// as a deploy would leave them, and the LXD provider points at a socket
// where no LXD listens). Start syncs the published labs' routes from the
// store; a destroy removes the route and frees the port; names of live
// labs are unique (409 naming "name") for deploys and for a restore that
// would bring a destroyed lab back.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/engine.h"
#include "http/client.h"
#include "http/server.h"
#include "providers/provider.h"
#include "router/caddy.h"
#include "router/caddy_process.h"
#include "router/haproxy.h"
#include "router/haproxy_process.h"
#include "support/build_paths.h"
#include "support/caddy_options.h"
#include "support/engine_wait.h"
#include "support/ports.h"
#include "support/process.h"

namespace {
using ads::test::caddy_opts;
using ads::test::proxy_opts;
using nlohmann::json;

long get_status(int port, std::string* body = nullptr) {
  ads::http::ClientRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  r.timeout_ms = 10000;
  auto res = ads::http::request(r);
  if (!res) return 0;
  if (body) *body = res->body;
  return res->status;
}

// The proxy kind is the parameter: "haproxy" or "caddy".
class EngineRoutesTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool haproxy() const { return GetParam() == "haproxy"; }
  void SetUp() override {
    if (haproxy() ? ads::test::run({"haproxy", "-v"}) != 0 : ads::test::run({"caddy", "version"}) != 0)
      GTEST_SKIP() << GetParam() << " is not installed (scripts/install-deps.sh)";
    admin = "unix:" + tmp.str() + "/proxy/admin.sock";
    port = ads::test::free_loopback_port();
    if (haproxy()) {
      ads::router::HaproxyProcessOptions o;
      o.dir = tmp.str() + "/proxy";
      o.listen_host = "127.0.0.1";
      o.ports = {port, port};
      auto pid = ads::router::start_haproxy(o);
      ASSERT_TRUE(pid.ok()) << pid.error().message;
    } else {
      auto pid = ads::router::start_proxy(proxy_opts(tmp.str() + "/proxy", admin));
      ASSERT_TRUE(pid.ok()) << pid.error().message;
    }
    auto s = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
    ads::http::ServerOptions so;
    upstream = std::make_unique<ads::http::Server>(so);
    upstream->route("GET", "/", [](ads::http::Request&) {
      ads::http::Response r;
      r.content_type = "text/plain";
      r.body = "the lab";
      return r;
    });
    ASSERT_TRUE(upstream->start().ok());
  }
  void TearDown() override {
    if (engine) engine->stop();
    if (upstream) upstream->stop();
    (void)(haproxy() ? ads::router::stop_haproxy(tmp.str() + "/proxy") : ads::router::stop_proxy(tmp.str() + "/proxy"));
  }
  std::shared_ptr<ads::router::Router> make_router() const {
    if (haproxy()) {
      ads::router::HaproxyOptions o;
      o.dir = tmp.str() + "/proxy";
      o.public_host = "127.0.0.1";
      return std::make_shared<ads::router::HaproxyRouter>(o);
    }
    return std::make_shared<ads::router::CaddyRouter>(caddy_opts(admin, "", "127.0.0.1", 80, "127.0.0.1"));
  }
  ads::Result<std::vector<ads::router::Route>> routes() const {
    auto r = make_router();
    if (haproxy()) return static_cast<ads::router::HaproxyRouter&>(*r).routes();
    return static_cast<ads::router::CaddyRouter&>(*r).routes();
  }
  // What the lab's port answers with no route: HAProxy holds the whole
  // range and says 404; Caddy listens only on ports with a route.
  long no_route() const { return haproxy() ? 404 : 0; }
  void start_engine() {
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    auto lxd = ads::make_provider("lxd", json{{"socket", (tmp.path / "no-lxd.sock").string()}});
    ASSERT_TRUE(lxd.ok()) << lxd.error().message;
    providers["lxd"] = std::move(lxd.value());
    auto opts = ads::test::engine_options(tmp.path);
    opts.router = make_router();
    opts.proxy_ports = {port, port};
    opts.provider_attempts = 1;
    engine = std::make_unique<ads::Engine>(*store, std::move(providers), opts);
    auto st = engine->start();
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  // A record as a deploy leaves it: running on "its machine" (the upstream).
  ads::Deployment lab(const std::string& id, const std::string& name, ads::State state) {
    ads::Deployment d;
    d.id = id;
    d.name = name;
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.state = state;
    d.address = "127.0.0.1";
    d.owner = "admin";
    d.created_ms = d.updated_ms = 1;
    d.spec_json = json{
        {"path", "ads-lab.json"},
        {"text",
         json{{"ads", 2},
              {"os", {{"name", "debian"}, {"version", "12"}}},
              {"actions", {{"start", {"true"}}, {"restore", {"true"}}}},
              {"http", {{"port", upstream->port()}}}}
             .dump()}}.dump();
    return d;
  }

  ads::test::TempDir tmp;
  std::string admin;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::http::Server> upstream;
  std::unique_ptr<ads::Engine> engine;
  int port = 0;
};

TEST_P(EngineRoutesTest, StartGivesTheProxyThePublishedLabsAndDestroyTakesTheRouteAway) {
  auto live = lab("01live", "notes", ads::State::kRunning);
  live.public_port = port;
  live.stable_url = "http://127.0.0.1:" + std::to_string(port) + "/";
  ASSERT_TRUE(store->create(live).ok());
  // a failed lab that had been published has no route
  auto failed = lab("01fail", "gone", ads::State::kFailed);
  failed.stable_url = "http://127.0.0.1:1/";
  ASSERT_TRUE(store->create(failed).ok());
  EXPECT_EQ(get_status(port), no_route()) << "no route before ADS starts";

  start_engine();
  std::string body;
  EXPECT_EQ(get_status(port, &body), 200);
  EXPECT_EQ(body, "the lab");
  auto routes = this->routes();
  ASSERT_TRUE(routes.ok()) << routes.error().message;
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].name, "notes");
  EXPECT_EQ((*routes)[0].upstream, "127.0.0.1:" + std::to_string(upstream->port()));

  auto job = engine->operate("01live", "destroy");
  ASSERT_TRUE(job.ok()) << job.error().message;
  auto d = ads::test::settle(*store, "01live");
  EXPECT_EQ(d.state, ads::State::kDestroyed) << ads::test::log_of(*store, "01live");
  EXPECT_EQ(d.stable_url, "");
  EXPECT_EQ(d.public_port, 0) << "the port is free again";
  EXPECT_EQ(get_status(port), no_route()) << "the route is gone";
  routes = this->routes();
  ASSERT_TRUE(routes.ok());
  EXPECT_TRUE(routes->empty());
}

TEST_P(EngineRoutesTest, NamesAreDnsLabelsAndALiveLabKeepsItsName) {
  ASSERT_TRUE(store->create(lab("01held", "notes", ads::State::kStopped)).ok());
  start_engine();
  ads::DeployRequest req;
  req.source = std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site";
  req.owner = "admin";
  req.admin = true;
  req.name = "notes";
  auto r = engine->submit(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "conflict");
  EXPECT_EQ(r.error().field, "name");
  EXPECT_NE(r.error().message.find("01held"), std::string::npos) << r.error().message;
  for (const std::string& bad : std::vector<std::string>{"Notes", "my_lab", "a.b", "-x", "x-", std::string(64, 'a')}) {
    req.name = bad;
    auto b = engine->submit(req);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error().code, "invalid") << bad;
    EXPECT_EQ(b.error().field, "name") << bad;
  }
  // names derived from a source are DNS labels
  EXPECT_EQ(ads::Engine::default_name("https://git.example.org/Group/My_Lab.v2.git"), "my-lab-v2");
  EXPECT_EQ(ads::Engine::default_name("/srv/__x__/"), "x");
  EXPECT_EQ(ads::Engine::default_name("/srv/caf\xc3\xa9"), "caf");
  EXPECT_EQ(ads::Engine::default_name("/srv/___"), "lab");
}

TEST_P(EngineRoutesTest, ARestoreCannotBringBackANameALiveLabHolds) {
  auto old = lab("01old", "notes", ads::State::kDestroyed);
  ASSERT_TRUE(store->create(old).ok());
  ads::Backup b;
  b.id = "01bk";
  b.deployment_id = "01old";
  b.created_ms = 1;
  b.path = (tmp.path / "b.tar.gz").string();
  ASSERT_TRUE(store->add_backup(b).ok());
  ASSERT_TRUE(store->create(lab("01new", "notes", ads::State::kRunning)).ok());
  start_engine();
  auto r = engine->operate("01old", "restore", json{{"backup", "01bk"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "conflict");
  EXPECT_EQ(r.error().field, "name");
  EXPECT_NE(r.error().message.find("01new"), std::string::npos) << r.error().message;
  auto jobs = store->jobs_of("01old");
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

INSTANTIATE_TEST_SUITE_P(Proxies, EngineRoutesTest, ::testing::Values("haproxy", "caddy"),
                         [](const auto& info) { return info.param; });

}  // namespace
