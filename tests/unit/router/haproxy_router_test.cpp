// The HAProxy router against a real HAProxy (Debian's haproxy 2.6) started
// by the test on loopback through router::start_haproxy (the code `ads
// serve` uses), its runtime API on a unix socket in a temporary directory,
// upstreams on loopback. Skipped where haproxy is not installed
// (scripts/install-deps.sh installs it).
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "http/client.h"
#include "http/server.h"
#include "router/haproxy.h"
#include "router/haproxy_process.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/switch_load.h"
#include "support/upstream.h"

namespace {
using ads::router::HaproxyOptions;
using ads::router::HaproxyProcessOptions;
using ads::router::HaproxyRouter;
using ads::router::Route;
namespace fs = std::filesystem;

bool have_haproxy() { return ads::test::run({"haproxy", "-v"}) == 0; }

using ads::test::Got;
using ads::test::Upstream;
Got get(int port, const std::string& host = "") { return ads::test::get_port(port, host); }

std::string read_file(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class HaproxyRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_haproxy()) GTEST_SKIP() << "haproxy is not installed (scripts/install-deps.sh)";
    pdir = dir.str() + "/proxy";
    host_port = ads::test::free_loopback_port();
    first_port = ads::test::free_loopback_range(3);
    ASSERT_NE(first_port, 0) << "no three consecutive free ports on loopback";
  }
  void TearDown() override {
    if (started) (void)ads::router::stop_haproxy(pdir);
  }
  // HAProxy for host routing (labs.test on host_port) or port routing
  // (first_port .. first_port+2).
  void start(bool with_domain) {
    auto pid = ads::router::start_haproxy(process_opts(with_domain));
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    started = true;
  }
  HaproxyProcessOptions process_opts(bool with_domain) const {
    HaproxyProcessOptions o;
    o.dir = pdir;
    o.listen_host = "127.0.0.1";
    if (with_domain) {
      o.domain = "labs.test";
      o.listen_port = host_port;
    } else {
      o.ports = {first_port, first_port + 2};
    }
    return o;
  }
  HaproxyRouter domain_router() const {
    HaproxyOptions o;
    o.dir = pdir;
    o.domain = "labs.test";
    o.listen_port = host_port;
    return HaproxyRouter(o);
  }
  HaproxyRouter port_router() const {
    HaproxyOptions o;
    o.dir = pdir;
    o.public_host = "127.0.0.1";
    return HaproxyRouter(o);
  }

  ads::test::TempDir dir;
  std::string pdir;
  int host_port = 0, first_port = 0;
  bool started = false;
};

TEST_F(HaproxyRouterTest, HostRoutingPutSwitchRemove) {
  start(true);
  Upstream a("a"), b("b");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"notes", a.address(), 0}).ok());
  auto g = get(host_port, "notes.labs.test");
  EXPECT_EQ(g.status, 200) << g.error;
  EXPECT_EQ(g.body, "a");
  // the Host header as browsers send it: with the port, any case
  EXPECT_EQ(get(host_port, "Notes.LABS.test:" + std::to_string(host_port)).body, "a");
  // an unknown lab: 404 from the proxy, not another lab
  g = get(host_port, "other.labs.test");
  EXPECT_EQ(g.status, 404);
  EXPECT_EQ(g.body, "no lab is served at this address\n");
  EXPECT_EQ(get(host_port, "").status, 404);  // 127.0.0.1:port: no lab
  // the switch: same name, new upstream
  ASSERT_TRUE(r.put(Route{"notes", b.address(), 0}).ok());
  EXPECT_EQ(get(host_port, "notes.labs.test").body, "b");
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok()) << routes.error().message;
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].name, "notes");
  EXPECT_EQ((*routes)[0].upstream, b.address());
  EXPECT_EQ(r.url(Route{"notes", b.address(), 0}), "http://notes.labs.test:" + std::to_string(host_port) + "/");
  // the map file follows every change
  EXPECT_NE(read_file(pdir + "/hosts.map").find("notes.labs.test notes/" + b.address() + "\n"), std::string::npos);
  ASSERT_TRUE(r.remove("notes").ok());
  EXPECT_EQ(get(host_port, "notes.labs.test").status, 404);
  EXPECT_TRUE(r.remove("notes").ok());  // none: still ok
  EXPECT_EQ(read_file(pdir + "/hosts.map").find("notes"), std::string::npos);
  // the runtime API's socket: mode 0600 in a 0700 directory
  struct stat st {};
  ASSERT_EQ(::stat(pdir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((pdir + "/haproxy.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(HaproxyRouterTest, PortRoutingGivesEachLabItsPort) {
  start(false);
  Upstream a("a"), b("b");
  auto r = port_router();
  int pa = first_port, pb = first_port + 1, pc = first_port + 2;
  ASSERT_TRUE(r.put(Route{"one", a.address(), pa}).ok());
  ASSERT_TRUE(r.put(Route{"two", b.address(), pb}).ok());
  EXPECT_EQ(get(pa).body, "a");
  EXPECT_EQ(get(pb).body, "b");
  auto g = get(pc);
  EXPECT_EQ(g.status, 404) << "a port of the range with no lab: " << g.error;
  EXPECT_EQ(r.url(Route{"one", a.address(), pa}), "http://127.0.0.1:" + std::to_string(pa) + "/");
  ASSERT_TRUE(r.remove("one").ok());
  EXPECT_EQ(get(pa).status, 404);
  EXPECT_EQ(get(pb).body, "b");  // the other lab is untouched
  // a port given to another lab: the stale route on it goes
  ASSERT_TRUE(r.put(Route{"three", a.address(), pb}).ok());
  EXPECT_EQ(get(pb).body, "a");
  // a lab that moves to another port leaves the old one
  ASSERT_TRUE(r.put(Route{"three", a.address(), pc}).ok());
  EXPECT_EQ(get(pc).body, "a");
  EXPECT_EQ(get(pb).status, 404);
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok()) << routes.error().message;
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].name, "three");
  EXPECT_EQ((*routes)[0].port, pc);
  EXPECT_EQ(read_file(pdir + "/ports.map").find(std::to_string(pb) + " "), std::string::npos);
  EXPECT_NE(read_file(pdir + "/ports.map").find(std::to_string(pc) + " three/" + a.address()), std::string::npos);
}

TEST_F(HaproxyRouterTest, SyncReplacesEveryRouteAtOnce) {
  start(true);
  Upstream a("a"), b("b");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"gone", a.address(), 0}).ok());
  ASSERT_TRUE(r.put(Route{"x", b.address(), 0}).ok());
  ASSERT_TRUE(r.sync({Route{"x", a.address(), 0}, Route{"y", b.address(), 0}}).ok());
  EXPECT_EQ(get(host_port, "gone.labs.test").status, 404);
  EXPECT_EQ(get(host_port, "x.labs.test").body, "a");
  EXPECT_EQ(get(host_port, "y.labs.test").body, "b");
  std::string file = read_file(pdir + "/hosts.map");
  EXPECT_EQ(file.find("gone"), std::string::npos);
  EXPECT_NE(file.find("y.labs.test y/" + b.address()), std::string::npos);
  // one bad route refuses the whole sync; what was there stays
  auto st = r.sync({Route{"x", b.address(), 0}, Route{"Bad_Name", b.address(), 0}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "name");
  EXPECT_EQ(get(host_port, "x.labs.test").body, "a");
  EXPECT_EQ(get(host_port, "y.labs.test").body, "b");
  EXPECT_EQ(read_file(pdir + "/hosts.map"), file);
  // an empty sync: no routes
  ASSERT_TRUE(r.sync({}).ok());
  EXPECT_EQ(get(host_port, "x.labs.test").status, 404);
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  EXPECT_TRUE(routes->empty());
}

TEST_F(HaproxyRouterTest, SyncRefusesTwoLabsOnOnePort) {
  start(false);
  Upstream a("a");
  auto r = port_router();
  ASSERT_TRUE(r.put(Route{"one", a.address(), first_port}).ok());
  auto st = r.sync({Route{"x", a.address(), first_port + 1}, Route{"y", a.address(), first_port + 1}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "port");
  EXPECT_EQ(get(first_port).body, "a");
  EXPECT_EQ(get(first_port + 1).status, 404);
}

TEST_F(HaproxyRouterTest, RefusedRoutesChangeNothing) {
  start(true);
  Upstream a("a");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"keep", a.address(), 0}).ok());
  std::string file = read_file(pdir + "/hosts.map");
  for (const std::string& name :
       std::vector<std::string>{"", "UPPER", "under_score", "-lead", "trail-", "a.b", std::string(64, 'a'), "x y",
                                "caf\xc3\xa9", "a;b", "a\nb", "a\\b", "keep;show", "keep\n"}) {
    auto st = r.put(Route{name, a.address(), 0});
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().field, "name") << name;
    st = r.sync({Route{name, a.address(), 0}});
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().field, "name") << name;
  }
  for (const std::string& up : std::vector<std::string>{
           "", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "http://x:80", "localhost:80", "lab.example.org:8080",
           "a b:80", "x:80/y", "127.0.0.1:80;show info", "127.0.0.1:80 x", "127.0.0.1:80\n", "127.0.0.1\\:80",
           "127.000.0.1:80", "127.1:80", "[::1]:80", "127.0.0.1:+80", "\"x\":80"}) {
    auto st = r.put(Route{"keep", up, 0});
    ASSERT_FALSE(st.ok()) << up;
    EXPECT_EQ(st.error().field, "upstream") << up;
  }
  auto st = r.put(Route{"keep", "localhost:80", 0});
  EXPECT_NE(st.error().message.find("host names"), std::string::npos) << st.error().message;
  EXPECT_EQ(get(host_port, "keep.labs.test").body, "a");
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].upstream, a.address());
  EXPECT_EQ(read_file(pdir + "/hosts.map"), file);
  // without a domain every lab needs its port
  auto pr = port_router();
  st = pr.put(Route{"ok", "127.0.0.1:80", 0});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "port");
}

TEST_F(HaproxyRouterTest, RestartedProxyServesTheRoutesOfItsMapFile) {
  start(true);
  Upstream a("a"), b("b");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"keep", a.address(), 0}).ok());
  ASSERT_TRUE(r.put(Route{"keep", b.address(), 0}).ok());
  ASSERT_TRUE(r.put(Route{"other", a.address(), 0}).ok());
  ASSERT_TRUE(ads::router::stop_haproxy(pdir).ok());
  EXPECT_EQ(ads::router::haproxy_pid(pdir), 0);
  auto down = r.put(Route{"keep", a.address(), 0});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, "unavailable") << down.error().message;
  EXPECT_FALSE(r.ping().ok());
  auto pid = ads::router::start_haproxy(process_opts(true));
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  EXPECT_EQ(ads::router::haproxy_pid(pdir), *pid);
  EXPECT_EQ(get(host_port, "keep.labs.test").body, "b");  // the last switch, from the map file
  EXPECT_EQ(get(host_port, "other.labs.test").body, "a");
  auto routes = r.routes();
  ASSERT_TRUE(routes.ok());
  EXPECT_EQ(routes->size(), 2u);
  // starting again while it runs: the same process
  auto again = ads::router::start_haproxy(process_opts(true));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *pid);
}

TEST_F(HaproxyRouterTest, ANewStartWithOtherSettingsReplacesTheRunningProxy) {
  start(false);
  int first = ads::router::haproxy_pid(pdir);
  Upstream a("a");
  ASSERT_TRUE(port_router().put(Route{"one", a.address(), first_port}).ok());
  // the operator gives ADS a domain: the static config changes, so a new
  // HAProxy serves it (the old one would answer "no map hosts.map")
  auto pid = ads::router::start_haproxy(process_opts(true));
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  EXPECT_NE(*pid, first);
  EXPECT_EQ(ads::router::haproxy_pid(pdir), *pid);
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"one", a.address(), 0}).ok());
  EXPECT_EQ(get(host_port, "one.labs.test").body, "a");
  EXPECT_EQ(get(first_port).status, 0) << "the port range is not bound any more";
}

TEST_F(HaproxyRouterTest, KilledProxyComesBackWithItsRoutes) {
  start(false);
  Upstream a("a");
  auto r = port_router();
  ASSERT_TRUE(r.put(Route{"one", a.address(), first_port + 1}).ok());
  int pid = ads::router::haproxy_pid(pdir);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (int i = 0; i < 100 && ads::router::haproxy_pid(pdir) != 0; ++i) ::usleep(50000);
  ASSERT_EQ(ads::router::haproxy_pid(pdir), 0);
  auto again = ads::router::start_haproxy(process_opts(false));  // its socket file is left over
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(get(first_port + 1).body, "a");
}

TEST_F(HaproxyRouterTest, APortOfTheRangeHeldElsewhereIsAClearErrorAtStart) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(first_port + 1));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  auto pid = ads::router::start_haproxy(process_opts(false));
  ::close(fd);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().code, "failed");
  EXPECT_NE(pid.error().message.find("haproxy exited at start"), std::string::npos) << pid.error().message;
  // the end of HAProxy's log says which port
  EXPECT_NE(pid.error().message.find("Address already in use"), std::string::npos) << pid.error().message;
  EXPECT_NE(pid.error().message.find("127.0.0.1:" + std::to_string(first_port + 1)), std::string::npos)
      << pid.error().message;
  EXPECT_EQ(ads::router::haproxy_pid(pdir), 0);
}

TEST_F(HaproxyRouterTest, ARouterOfTheOtherModeGetsAClearError) {
  start(false);  // ports.map only
  auto r = domain_router();
  auto st = r.put(Route{"x", "127.0.0.1:80", 0});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "failed");
  EXPECT_NE(st.error().message.find("hosts.map"), std::string::npos) << st.error().message;
}

// A kept-alive client connection: HAProxy keeps it and keeps an idle
// server-side connection to the old upstream; after a switch the next
// request on the same client connection is answered by the new upstream.
TEST_F(HaproxyRouterTest, AKeptAliveConnectionGoesToTheNewUpstreamAfterASwitch) {
  start(true);
  Upstream a("a"), b("b");
  auto r = domain_router();
  ASSERT_TRUE(r.put(Route{"live", a.address(), 0}).ok());
  ads::test::KeepAliveClient c("http://127.0.0.1:" + std::to_string(host_port) + "/", "live.labs.test", 10000);
  auto fetch = [&](long* new_connections) {
    auto g = c.get();
    *new_connections = g.new_connections;
    return g.rc == CURLE_OK ? g.body : std::string("error: ") + curl_easy_strerror(g.rc);
  };
  long fresh = -1;
  EXPECT_EQ(fetch(&fresh), "a");
  EXPECT_EQ(fetch(&fresh), "a");
  EXPECT_EQ(fresh, 0) << "the client connection is kept alive";
  ASSERT_TRUE(r.put(Route{"live", b.address(), 0}).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(fetch(&fresh), "b") << i;
    EXPECT_EQ(fresh, 0) << "the same client connection, request " << i;
  }
  ASSERT_TRUE(r.put(Route{"live", a.address(), 0}).ok());
  EXPECT_EQ(fetch(&fresh), "a");
  EXPECT_EQ(fresh, 0);
}

// Issue 17's bar: 2,000 requests by 4 keep-alive clients while the route
// switches 20 times between two upstreams, and not one fails (Caddy 2.6
// drops 1-16 here: caddy_router_test.cpp).
TEST_F(HaproxyRouterTest, SwitchUnderLoadFailsNoRequest) {
  start(true);
  Upstream a("a"), b("b");
  auto r = domain_router();
  ads::test::expect_switches_fail_no_request(r, host_port, "live", "live.labs.test", a, b);
}

TEST(HaproxyConfig, StaticAndChecked) {
  HaproxyProcessOptions o;
  o.dir = "/var/lib/ads/proxy";
  o.domain = "labs.example.org";
  o.listen_port = 80;
  std::string c = ads::router::haproxy_config(o);
  EXPECT_NE(c.find("stats socket /var/lib/ads/proxy/haproxy.sock mode 600 level admin"), std::string::npos) << c;
  EXPECT_NE(c.find("bind :80\n"), std::string::npos) << c;
  EXPECT_NE(c.find("req.hdr(host),field(1,:),lower,map(/var/lib/ads/proxy/hosts.map)"), std::string::npos) << c;
  EXPECT_NE(c.find("server lab 0.0.0.0:0"), std::string::npos);
  EXPECT_EQ(c.find("labs.example.org"), std::string::npos) << "no per-lab (or per-domain) content";
  o.domain = "";
  o.listen_host = "10.1.2.3";
  o.ports = {8100, 8999};
  c = ads::router::haproxy_config(o);
  EXPECT_NE(c.find("bind 10.1.2.3:8100-8999\n"), std::string::npos) << c;
  EXPECT_NE(c.find("dst_port,map_int(/var/lib/ads/proxy/ports.map)"), std::string::npos) << c;
  // paths that could not go into the config or a command as they are
  for (const std::string& d : std::vector<std::string>{"relative/dir", "/a b", "/a;b", "/a\\b", "/a\nb", "/caf\xc3\xa9",
                                                       "/" + std::string(120, 'a')}) {
    auto st = ads::router::check_haproxy_dir(d);
    ASSERT_FALSE(st.ok()) << d;
    EXPECT_EQ(st.error().field, "proxy.dir");
    HaproxyProcessOptions bad;
    bad.dir = d;
    auto pid = ads::router::start_haproxy(bad);
    ASSERT_FALSE(pid.ok());
    EXPECT_EQ(pid.error().field, "proxy.dir");
  }
  EXPECT_TRUE(ads::router::check_haproxy_dir("/var/lib/ads-1/proxy_2.x+y").ok());
  // the runtime API client sends no line that HAProxy would split or unescape
  for (const std::string& line :
       std::vector<std::string>{"", "show info; shutdown frontend labs", "set map /m k v\nshow info", "a\\;b", "a\tb",
                                std::string("a\0b", 3), std::string(5000, 'a')}) {
    auto r = HaproxyRouter::command("/nonexistent.sock", line, 100);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "invalid") << line;
  }
  auto down = HaproxyRouter::command("/nonexistent/admin.sock", "show info", 1000);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, "unavailable");
  auto entries = HaproxyRouter::parse_show_map(
      "0x55d0 a.labs.test a/10.0.0.2:80\n0x55d1 8101 b/10.0.0.3:8080\n\n"
      "garbage\n0x1 only-key\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].first, "8101");
  EXPECT_EQ(entries[1].second, "b/10.0.0.3:8080");
}

}  // namespace
