// The LXD provider's image settings: local aliases and images pulled from an
// image server (no LXD needed; tests/integration/lxd_cluster_test.cpp pulls
// one from a second LXD daemon for real).
#include <gtest/gtest.h>

#include "providers/lxd/lxd_provider.h"

namespace {
using nlohmann::json;

TEST(LxdImageSettings, AnImageServerEntryIsAccepted) {
  json images = {{"debian-12", "ads-debian-12"},
                 {"ubuntu-22.04",
                  {{"server", "https://images.example.org"}, {"protocol", "simplestreams"}, {"alias", "ubuntu/22.04"}}},
                 {"debian-12-remote",
                  {{"server", "https://10.1.2.3:8443"},
                   {"protocol", "lxd"},
                   {"alias", "ads-debian-12"},
                   {"certificate", "/etc/ads/images.crt"}}},
                 {"centos-7", {{"server", "https://images.example.org"}, {"alias", "centos/7"}}}};
  auto p = ads::make_provider("lxd", json{{"images", images}});
  ASSERT_TRUE(p.ok()) << p.error().to_string();
}

TEST(LxdImageSettings, EveryBadImageFieldIsNamed) {
  struct Case {
    json entry;
    std::string field;
  };
  const std::string f = "providers.lxd.images.k";
  std::vector<Case> cases = {
      {3, f},
      {json::array(), f},
      {{{"alias", "x"}}, f + ".server"},
      {{{"server", "http://images.example.org"}, {"alias", "x"}}, f + ".server"},
      {{{"server", "https://images.example.org"}}, f + ".alias"},
      {{{"server", "https://images.example.org"}, {"alias", "x"}, {"protocol", "ftp"}}, f + ".protocol"},
      {{{"server", "https://images.example.org"}, {"alias", "x"}, {"certificate", "rel.crt"}}, f + ".certificate"},
      {{{"server", "https://images.example.org"}, {"alias", "a b"}}, f + ".alias"},
      {{{"server", "https://images.example.org"}, {"alias", ""}}, f + ".alias"},
      {{{"server", "https://images.example.org"}, {"alias", 5}}, f + ".alias"},
      {{{"server", "https://x\n"}, {"alias", "x"}}, f + ".server"},
      {{{"server", "https://images.example.org"}, {"alias", "x"}, {"fingerprint", "ab"}}, f + ".fingerprint"},
  };
  for (auto& c : cases) {
    auto p = ads::make_provider("lxd", json{{"images", {{"k", c.entry}}}});
    ASSERT_FALSE(p.ok()) << c.entry.dump();
    EXPECT_EQ(p.error().field, c.field) << c.entry.dump() << ": " << p.error().to_string();
  }
}

}  // namespace
