// `ads serve` config files: the store as a URL or as an object, and the
// settings of several servers sharing one store; errors name the key.
#include <gtest/gtest.h>

#include <fstream>

#include "cli/config.h"
#include "support/process.h"

namespace {

class ConfigTest : public ::testing::Test {
 protected:
  ads::Status load(const std::string& text) {
    std::string path = (tmp.path / "ads.json").string();
    std::ofstream(path) << text;
    return ads::cli::load_config_file(path, cfg);
  }
  std::string field_of(const std::string& text) {
    auto st = load(text);
    EXPECT_FALSE(st.ok()) << text;
    return st.ok() ? "" : st.error().field;
  }
  ads::test::TempDir tmp;
  ads::cli::ServeConfig cfg;
};

TEST_F(ConfigTest, StoreAsUrlOrObject) {
  EXPECT_EQ(cfg.store, "");  // SQLite in the data dir unless told
  ASSERT_TRUE(load(R"({"store":"postgresql://ads@127.0.0.1:5432/ads"})").ok());
  EXPECT_EQ(cfg.store, "postgresql://ads@127.0.0.1:5432/ads");
  ASSERT_TRUE(load(R"({"store":{"kind":"postgres","url":"postgresql://ads@127.0.0.1:5433/x"}})").ok());
  EXPECT_EQ(cfg.store, "postgresql://ads@127.0.0.1:5433/x");
  ASSERT_TRUE(load(R"({"store":{"kind":"sqlite","path":"/var/lib/ads/other.db"}})").ok());
  EXPECT_EQ(cfg.store, "sqlite:///var/lib/ads/other.db");
}

TEST_F(ConfigTest, BadStoreObjectsNameTheKey) {
  EXPECT_EQ(field_of(R"({"store":{"kind":"mysql","url":"x"}})"), "store.kind");
  EXPECT_EQ(field_of(R"({"store":{"url":"postgresql://a@b/c"}})"), "store.kind");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres"}})"), "store.url");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"http://x"}})"), "store.url");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite"}})"), "store.path");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite","path":"/x","password":"p"}})"), "store.password");
  EXPECT_EQ(field_of(R"({"store":42})"), "store");
}

TEST_F(ConfigTest, ServerIdLeaseAndMetricsToken) {
  EXPECT_EQ(cfg.lease_ms, 30000);
  EXPECT_TRUE(cfg.metrics_need_token);
  ASSERT_TRUE(load(R"({"server_id":"ads-a","lease_ms":5000,"metrics_need_token":false})").ok());
  EXPECT_EQ(cfg.server_id, "ads-a");
  EXPECT_EQ(cfg.lease_ms, 5000);
  EXPECT_FALSE(cfg.metrics_need_token);
  EXPECT_EQ(field_of(R"({"lease_ms":999})"), "lease_ms");
  EXPECT_EQ(field_of(R"({"lease_ms":"5s"})"), "lease_ms");
  EXPECT_EQ(field_of(R"({"metrics_need_token":"no"})"), "metrics_need_token");
  EXPECT_EQ(field_of(R"({"server_id":7})"), "server_id");
}

}  // namespace
