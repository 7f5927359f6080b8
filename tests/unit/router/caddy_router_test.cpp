// The Caddy router against a real Caddy (Debian's caddy 2.6) started by the
// test on loopback through router::start_proxy (the code `ads serve` uses),
// its admin API on a unix socket in a temporary directory, two upstreams on
// loopback. Skipped where caddy is not installed (scripts/install-deps.sh
// installs it).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include "http/client.h"
#include "http/server.h"
#include "router/caddy.h"
#include "router/caddy_process.h"
#include "support/caddy_options.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/switch_load.h"
#include "support/upstream.h"

namespace {
using ads::router::CaddyOptions;
using ads::router::CaddyRouter;
using ads::router::Route;
using ads::test::caddy_opts;
using ads::test::proxy_opts;
using nlohmann::json;

bool have_caddy() { return ads::test::run({"caddy", "version"}) == 0; }

using ads::test::Got;
using ads::test::Upstream;
Got get(int port, const std::string& host = "") { return ads::test::get_port(port, host); }

class CaddyRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_caddy()) GTEST_SKIP() << "caddy is not installed (scripts/install-deps.sh)";
    admin = "unix:" + dir.str() + "/proxy/admin.sock";
    auto pid = ads::router::start_proxy(proxy_opts(dir.str() + "/proxy", admin));
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    host_port = ads::test::free_loopback_port();
  }
  void TearDown() override { (void)ads::router::stop_proxy(dir.str() + "/proxy"); }

  CaddyRouter domain_router() {
    return CaddyRouter(caddy_opts(admin, "labs.test", "127.0.0.1", host_port, "localhost"));
  }
  CaddyRouter port_router() { return CaddyRouter(caddy_opts(admin, "", "127.0.0.1", 80, "127.0.0.1")); }

  ads::test::TempDir dir;
  std::string admin;
  int host_port = 0;
};

TEST_F(CaddyRouterTest, HostRoutingPutSwitchRemove) {
  Upstream a("a"), b("b");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"notes", a.address(), 0}).ok());
  auto g = get(host_port, "notes.labs.test");
  EXPECT_EQ(g.status, 200) << g.error;
  EXPECT_EQ(g.body, "a");
  // an unknown lab: 404 from the proxy, not another lab
  g = get(host_port, "other.labs.test");
  EXPECT_EQ(g.status, 404);
  // the switch: same name, new upstream
  ASSERT_TRUE(r.put(Route{"notes", b.address(), 0}).ok());
  EXPECT_EQ(get(host_port, "notes.labs.test").body, "b");
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].upstream, b.address());
  EXPECT_EQ(r.url(Route{"notes", b.address(), 0}), "http://notes.labs.test:" + std::to_string(host_port) + "/");
  ASSERT_TRUE(r.remove("notes").ok());
  EXPECT_EQ(get(host_port, "notes.labs.test").status, 404);
  EXPECT_TRUE(r.remove("notes").ok());  // none: still ok
}

TEST_F(CaddyRouterTest, PortRoutingGivesEachLabItsPort) {
  Upstream a("a"), b("b");
  auto r = port_router();
  int pa = ads::test::free_loopback_port(), pb = ads::test::free_loopback_port();
  ASSERT_NE(pa, pb);
  ASSERT_TRUE(r.put(Route{"one", a.address(), pa}).ok());
  ASSERT_TRUE(r.put(Route{"two", b.address(), pb}).ok());
  EXPECT_EQ(get(pa).body, "a");
  EXPECT_EQ(get(pb).body, "b");
  EXPECT_EQ(r.url(Route{"one", a.address(), pa}), "http://127.0.0.1:" + std::to_string(pa) + "/");
  ASSERT_TRUE(r.remove("one").ok());
  EXPECT_EQ(get(pa).status, 0);  // nothing listens there now
  EXPECT_EQ(get(pb).body, "b");  // the other lab is untouched
  // a port given to another lab: the stale route on it goes
  ASSERT_TRUE(r.put(Route{"three", a.address(), pb}).ok());
  EXPECT_EQ(get(pb).body, "a");
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].name, "three");
}

TEST_F(CaddyRouterTest, SyncReplacesEveryRoute) {
  Upstream a("a"), b("b");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"gone", a.address(), 0}).ok());
  ASSERT_TRUE(r.sync({Route{"x", a.address(), 0}, Route{"y", b.address(), 0}}).ok());
  EXPECT_EQ(get(host_port, "gone.labs.test").status, 404);
  EXPECT_EQ(get(host_port, "x.labs.test").body, "a");
  EXPECT_EQ(get(host_port, "y.labs.test").body, "b");
  // one bad route refuses the whole sync; what was there stays
  auto st = r.sync({Route{"x", a.address(), 0}, Route{"Bad_Name", b.address(), 0}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "name");
  EXPECT_EQ(get(host_port, "y.labs.test").body, "b");
}

TEST_F(CaddyRouterTest, RestartedProxyServesItsRoutesAgain) {
  Upstream a("a");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"keep", a.address(), 0}).ok());
  ASSERT_TRUE(ads::router::stop_proxy(dir.str() + "/proxy").ok());
  EXPECT_EQ(ads::router::proxy_pid(dir.str() + "/proxy"), 0);
  auto down = r.put(Route{"keep", a.address(), 0});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, "unavailable") << down.error().message;
  auto pid = ads::router::start_proxy(proxy_opts(dir.str() + "/proxy", admin));
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  EXPECT_EQ(get(host_port, "keep.labs.test").body, "a");  // from Caddy's autosave (--resume)
}

TEST_F(CaddyRouterTest, BadRoutesAreRefusedBeforeCaddySeesThem) {
  auto r = domain_router();
  for (const std::string& name : std::vector<std::string>{"", "UPPER", "under_score", "-lead", "trail-", "a.b",
                                                          std::string(64, 'a'), "x y", "caf\xc3\xa9", "a;b"}) {
    auto st = r.put(Route{name, "127.0.0.1:80", 0});
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().field, "name") << name;
  }
  for (const std::string& up : std::vector<std::string>{"", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000",
                                                        "http://x:80", "a b:80", "x:80/y", "\"x\":80"}) {
    auto st = r.put(Route{"ok", up, 0});
    ASSERT_FALSE(st.ok()) << up;
    EXPECT_EQ(st.error().field, "upstream") << up;
  }
  auto pr = port_router();
  auto st = pr.put(Route{"ok", "127.0.0.1:80", 0});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "port");
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  EXPECT_TRUE(routes->empty());
}

TEST_F(CaddyRouterTest, CaddyRefusingAConfigIsAnError) {
  // a port below 1024 held by someone else... simplest refusal: a port Caddy
  // cannot bind because this test holds it
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int held = ntohs(a.sin_port);
  auto r = port_router();
  auto st = r.put(Route{"busy", "127.0.0.1:80", held});
  ::close(fd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "failed");
  EXPECT_NE(st.error().message.find("refused"), std::string::npos) << st.error().message;
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  EXPECT_TRUE(routes->empty());  // Caddy kept its previous config
}

// The basis of the zero-downtime bench: 2,000 requests by 4 keep-alive
// clients while the route switches 20 times between two upstreams.
// DISABLED: it FAILS with Debian's Caddy 2.6.2. Every change of routes is a
// reload of Caddy's whole config, and a reload resets a few client
// connections ("Failure when receiving data from the peer": 1-16 of 2,000
// in runs here, also when the change is another lab's route, and also with
// "Connection: close" on every response, i.e. not only idle keep-alive
// connections). Run it with --gtest_also_run_disabled_tests; the figures
// come from bench/switch_bench.cpp (ads_switch_bench).
TEST_F(CaddyRouterTest, DISABLED_SwitchUnderLoadFailsNoRequest) {
  Upstream a("a"), b("b");
  auto r = domain_router();
  ads::test::expect_switches_fail_no_request(r, host_port, "live", "live.labs.test", a, b);
}

TEST(CaddyConfig, ShapesAndRoundTrip) {
  CaddyOptions o = caddy_opts("unix:/run/x.sock", "labs.example.org", "", 80, "localhost");
  std::map<std::string, Route> routes = {{"a", Route{"a", "10.0.0.2:80", 0}}, {"b", Route{"b", "10.0.0.3:8080", 0}}};
  json c = CaddyRouter::config(o, CaddyRouter::admin_config(o.admin), routes);
  EXPECT_EQ(c["admin"]["listen"], "unix//run/x.sock");
  auto& server = c["apps"]["http"]["servers"]["ads"];
  EXPECT_EQ(server["listen"][0], ":80");
  EXPECT_EQ(server["routes"][0]["match"][0]["host"][0], "a.labs.example.org");
  EXPECT_EQ(server["routes"][1]["handle"][0]["upstreams"][0]["dial"], "10.0.0.3:8080");
  EXPECT_EQ(server["routes"].back()["handle"][0]["status_code"], 404);
  EXPECT_EQ(server["automatic_https"]["disable"], true);
  auto back = CaddyRouter::parse_routes(c);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back["b"].upstream, "10.0.0.3:8080");

  CaddyOptions p = caddy_opts("127.0.0.1:2019", "", "0.0.0.0", 80, "ads.example.org");
  routes = {{"a", Route{"a", "10.0.0.2:80", 8101}}};
  c = CaddyRouter::config(p, CaddyRouter::admin_config(p.admin), routes);
  EXPECT_EQ(c["admin"]["origins"][0], "127.0.0.1:2019");
  EXPECT_EQ(c["apps"]["http"]["servers"]["ads-lab-a"]["listen"][0], "0.0.0.0:8101");
  back = CaddyRouter::parse_routes(c);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back["a"].port, 8101);
  CaddyRouter pr(p);
  EXPECT_EQ(pr.url(Route{"a", "10.0.0.2:80", 8101}), "http://ads.example.org:8101/");
  CaddyRouter dr(o);
  EXPECT_EQ(dr.url(Route{"a", "10.0.0.2:80", 0}), "http://a.labs.example.org/");
  // a config ADS did not write, or none at all
  EXPECT_TRUE(CaddyRouter::parse_routes(json()).empty());
  EXPECT_TRUE(
      CaddyRouter::parse_routes(json::parse(R"({"apps":{"http":{"servers":{"x":{"routes":[{"handle":[]}]}}}}})"))
          .empty());
}

}  // namespace
