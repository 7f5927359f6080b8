// The "proxy" settings: which proxy (kind), HAProxy the default, and the
// settings that belong to one kind only.
#include "cli/proxy_config.h"

#include <gtest/gtest.h>

namespace {
using ads::cli::ProxyConfig;
using nlohmann::json;

TEST(ProxyConfig, HaproxyIsTheDefaultAndCaddyStaysAvailable) {
  ProxyConfig p;
  ASSERT_TRUE(ads::cli::parse_proxy_config(json{{"domain", "labs.example.org"}}, p).ok());
  EXPECT_TRUE(p.enabled);
  EXPECT_EQ(p.kind, "haproxy");
  auto hp = ads::cli::haproxy_process_options(p, "/var/lib/ads");
  EXPECT_EQ(hp.binary, "haproxy");
  EXPECT_EQ(hp.dir, "/var/lib/ads/proxy");
  EXPECT_EQ(hp.domain, "labs.example.org");
  EXPECT_EQ(hp.listen_port, 80);
  auto ho = ads::cli::haproxy_options(p, "/var/lib/ads");
  EXPECT_EQ(ho.dir, "/var/lib/ads/proxy");
  EXPECT_EQ(ho.domain, "labs.example.org");

  ProxyConfig c;
  ASSERT_TRUE(ads::cli::parse_proxy_config(
                  json{{"kind", "caddy"}, {"admin", "unix:/run/ads/admin.sock"}, {"ports", "9000-9010"}}, c)
                  .ok());
  EXPECT_EQ(c.kind, "caddy");
  auto cp = ads::cli::proxy_process_options(c, "/var/lib/ads");
  EXPECT_EQ(cp.binary, "caddy");
  EXPECT_EQ(cp.admin, "unix:/run/ads/admin.sock");

  ProxyConfig b;
  ASSERT_TRUE(
      ads::cli::parse_proxy_config(
          json{{"binary", "/opt/haproxy/sbin/haproxy"}, {"ports", "9000-9010"}, {"listen", "127.0.0.1:8080"}}, b)
          .ok());
  hp = ads::cli::haproxy_process_options(b, "/d");
  EXPECT_EQ(hp.binary, "/opt/haproxy/sbin/haproxy");
  EXPECT_EQ(hp.ports, std::make_pair(9000, 9010));
  EXPECT_EQ(hp.listen_host, "127.0.0.1");
}

TEST(ProxyConfig, BadKindsAndCaddyOnlySettingsAreRefusedByName) {
  for (const json& bad : {json{{"kind", "nginx"}}, json{{"kind", ""}}, json{{"kind", "HAProxy"}}, json{{"kind", 1}}}) {
    ProxyConfig p;
    auto st = ads::cli::parse_proxy_config(bad, p);
    ASSERT_FALSE(st.ok()) << bad.dump();
    EXPECT_EQ(st.error().field, "proxy.kind") << bad.dump();
  }
  // "admin" is Caddy's admin endpoint; HAProxy's socket is fixed
  ProxyConfig p;
  auto st = ads::cli::parse_proxy_config(json{{"admin", "unix:/run/x.sock"}}, p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "proxy.admin");
  EXPECT_NE(st.error().message.find("caddy"), std::string::npos) << st.error().message;
  st = ads::cli::parse_proxy_config(json{{"admin", "unix:/run/x.sock"}, {"kind", "haproxy"}}, p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "proxy.admin");
}

}  // namespace
