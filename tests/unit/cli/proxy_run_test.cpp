// Starting the configured proxy (cli/proxy_run.h, what `ads serve` and `ads
// service` use) with a real HAProxy and a real Caddy on loopback: one kind
// replaces the other in the same data directory, status lists what runs,
// stop stops it. Skipped where either is not installed.
#include "cli/proxy_run.h"

#include <gtest/gtest.h>

#include "support/ports.h"
#include "support/process.h"
#include "support/upstream.h"

namespace {
using nlohmann::json;

TEST(ProxyRun, OneKindReplacesTheOtherAndStopStopsIt) {
  if (ads::test::run({"haproxy", "-v"}) != 0 || ads::test::run({"caddy", "version"}) != 0)
    GTEST_SKIP() << "haproxy and caddy are needed (scripts/install-deps.sh)";
  ads::test::TempDir tmp;
  std::string data = tmp.str();
  int first = ads::test::free_loopback_range(2);
  ASSERT_NE(first, 0);
  std::string ports = std::to_string(first) + "-" + std::to_string(first + 1);
  ads::cli::ProxyConfig caddy, haproxy;
  ASSERT_TRUE(
      ads::cli::parse_proxy_config(
          json{{"kind", "caddy"}, {"listen", "127.0.0.1:80"}, {"ports", ports}, {"public_host", "127.0.0.1"}}, caddy)
          .ok());
  ASSERT_TRUE(ads::cli::parse_proxy_config(
                  json{{"listen", "127.0.0.1:80"}, {"ports", ports}, {"public_host", "127.0.0.1"}}, haproxy)
                  .ok());
  EXPECT_TRUE(ads::cli::running_proxies(data).empty());

  auto c = ads::cli::start_configured_proxy(caddy, data);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kind, "caddy");
  auto running = ads::cli::running_proxies(data);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].kind, "caddy");
  EXPECT_EQ(running[0].pid, c->pid);

  // the config now says HAProxy: the Caddy of the directory goes first
  auto h = ads::cli::start_configured_proxy(haproxy, data);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->kind, "haproxy");
  running = ads::cli::running_proxies(data);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].kind, "haproxy");
  EXPECT_EQ(running[0].log, data + "/proxy/haproxy.log");
  // its router works, with the URLs the config gives
  ads::test::Upstream up("up");
  ads::router::Route route{"lab", up.address(), first + 1};
  ASSERT_TRUE(h->router->put(route).ok());
  EXPECT_EQ(h->router->url(route), "http://127.0.0.1:" + std::to_string(first + 1) + "/");
  EXPECT_EQ(ads::test::get_port(first + 1).body, "up");
  // started again: the same HAProxy
  auto again = ads::cli::start_configured_proxy(haproxy, data);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->pid, h->pid);

  auto stopped = ads::cli::stop_proxies(data);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  ASSERT_EQ(stopped->size(), 1u);
  EXPECT_EQ((*stopped)[0].kind, "haproxy");
  EXPECT_TRUE(ads::cli::running_proxies(data).empty());
  EXPECT_EQ(ads::test::get_port(first + 1).status, 0);
}

TEST(ProxyRun, AProxyThatCannotStartIsAnErrorWithItsLog) {
  if (ads::test::run({"haproxy", "-v"}) != 0) GTEST_SKIP() << "haproxy is not installed (scripts/install-deps.sh)";
  ads::test::TempDir tmp;
  ads::cli::ProxyConfig p;
  ASSERT_TRUE(ads::cli::parse_proxy_config(json{{"binary", "/nonexistent/haproxy"}}, p).ok());
  auto h = ads::cli::start_configured_proxy(p, tmp.str());
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("haproxy exited at start"), std::string::npos) << h.error().message;
  EXPECT_TRUE(ads::cli::running_proxies(tmp.str()).empty());
}

}  // namespace
