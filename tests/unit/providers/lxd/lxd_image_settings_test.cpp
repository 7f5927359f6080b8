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

namespace {

// The storage pool of the machines' root disks (issue 19): a pool name or an
// error naming the setting.
TEST(LxdPoolSetting, APoolNameIsAcceptedAndAnythingElseIsRefused) {
  EXPECT_TRUE(ads::LxdProvider::create_from(json{{"pool", "ads-cow"}}).ok());
  EXPECT_TRUE(ads::LxdProvider::create_from(json{{"pool", "pool_2.b"}}).ok());
  for (const json& bad : {json(3), json(""), json("-x"), json("a/b"), json("../x"), json("a b"), json("a?b"),
                          json(std::string(64, 'a'))}) {
    auto r = ads::LxdProvider::create_from(json{{"pool", bad}});
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().field, "providers.lxd.pool") << bad.dump();
  }
}

// The manifest an ADS image carries (/etc/ads/image-files.sha256, as
// sha256sum writes it): what it lists, and what is not a line of it.
TEST(LxdImageManifest, ListsEachPathWithItsSha256AndSkipsWhatIsNoManifestLine) {
  const std::string a(64, 'a'), b = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  auto m = ads::LxdProvider::parse_image_manifest(
      a + "  /usr/local/bin/ads-agent\n" + b + " */etc/x\n" + std::string(64, 'A') + "  /upper/case\n" + a.substr(1) +
      "  /short\n" + a + "  relative\n" + a + " /one-space\n\n" + b + "  /last-without-newline");
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m["/usr/local/bin/ads-agent"], a);
  EXPECT_EQ(m["/etc/x"], b);
  EXPECT_EQ(m["/last-without-newline"], b);
  EXPECT_TRUE(ads::LxdProvider::parse_image_manifest("").empty());
  EXPECT_TRUE(ads::LxdProvider::parse_image_manifest(std::string(100000, '\n')).empty());
}

}  // namespace
