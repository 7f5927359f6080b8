// `ads serve` config files: every setting, and errors that name the bad key;
// the store as a URL or as an object, and the settings of several servers sharing one store.
#include "cli/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/process.h"

namespace {

class ConfigFile : public ::testing::Test {
 protected:
  ads::Status load(const std::string& text) {
    std::ofstream(tmp.path / "c.json") << text;
    return ads::cli::load_config_file((tmp.path / "c.json").string(), cfg);
  }
  ads::test::TempDir tmp;
  ads::cli::ServeConfig cfg;
};

TEST_F(ConfigFile, ReadsSettingsAndLimits) {
  ASSERT_TRUE(load(R"({"listen":"0.0.0.0:9000","workers":4,"keep_failed":true,"keep_backups":3,"deploy_attempts":1,
    "max_backup_mb":2048,
    "limits":{"requests_per_second":5,"request_burst":50,"auth_failures_per_minute":3,"auth_failure_burst":4,
              "active_jobs_per_user":2}})").ok());
  EXPECT_EQ(cfg.listen, "0.0.0.0:9000");
  EXPECT_EQ(cfg.workers, 4);
  EXPECT_TRUE(cfg.keep_failed);
  EXPECT_EQ(cfg.keep_backups, 3);
  EXPECT_EQ(cfg.deploy_attempts, 1);
  EXPECT_EQ(cfg.max_backup_mb, 2048);
  EXPECT_EQ(cfg.limits.requests_per_second, 5);
  EXPECT_EQ(cfg.limits.request_burst, 50);
  EXPECT_EQ(cfg.limits.auth_failures_per_minute, 3);
  EXPECT_EQ(cfg.limits.auth_failure_burst, 4);
  EXPECT_EQ(cfg.limits.active_jobs_per_user, 2);
}

TEST_F(ConfigFile, DefaultsLimitEveryone) {
  ASSERT_TRUE(load("{}").ok());
  EXPECT_EQ(cfg.keep_backups, 0);  // every backup is kept unless asked
  EXPECT_EQ(cfg.deploy_attempts, 2);  // a deploy cut off by a stopped server runs once more
  EXPECT_EQ(cfg.max_backup_mb, 512);  // what an agent takes back for a restore
  EXPECT_GT(cfg.limits.requests_per_second, 0);
  EXPECT_GE(cfg.limits.request_burst, 1);
  EXPECT_GE(cfg.limits.active_jobs_per_user, 1);
}

TEST_F(ConfigFile, BadSettingsNameTheirKey) {
  struct Case {
    const char* text;
    const char* field;
  };
  for (auto c : std::vector<Case>{{R"({"limits":5})", "limits"},
                                  {R"({"limits":{"requests_per_second":0}})", "limits.requests_per_second"},
                                  {R"({"limits":{"requests_per_second":"fast"}})", "limits.requests_per_second"},
                                  {R"({"limits":{"request_burst":-1}})", "limits.request_burst"},
                                  {R"({"limits":{"request_burst":0.5}})", "limits"},
                                  {R"({"limits":{"active_jobs_per_user":0}})", "limits.active_jobs_per_user"},
                                  {R"({"limits":{"active_jobs_per_user":1.5}})", "limits.active_jobs_per_user"},
                                  {R"({"limits":{"per_ip":1}})", "limits.per_ip"},
                                  {R"({"workers":0})", "workers"},
                                  {R"({"keep_failed":"yes"})", "keep_failed"},
                                  {R"({"keep_backups":-1})", "keep_backups"},
                                  {R"({"keep_backups":1.5})", "keep_backups"},
                                  {R"({"keep_backups":"3"})", "keep_backups"},
                                  {R"({"keep_backups":10001})", "keep_backups"},
                                  {R"({"max_backup_mb":0})", "max_backup_mb"},
                                  {R"({"max_backup_mb":"1g"})", "max_backup_mb"},
                                  {R"({"max_backup_mb":1048577})", "max_backup_mb"},
                                  {R"({"deploy_attempts":0})", "deploy_attempts"},
                                  {R"({"deploy_attempts":11})", "deploy_attempts"},
                                  {R"({"deploy_attempts":"2"})", "deploy_attempts"},
                                  {R"({"listen":8080})", "listen"},
                                  {R"({"colour":"blue"})", "colour"},
                                  {R"([1,2])", "config"},
                                  {R"({not json)", "config"}}) {
    SCOPED_TRACE(c.text);
    auto st = load(c.text);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().field, c.field) << st.error().message;
    EXPECT_FALSE(st.error().message.empty());
  }
  EXPECT_EQ(ads::cli::load_config_file((tmp.path / "missing.json").string(), cfg).error().field, "config");
}

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
  EXPECT_EQ(cfg.store_connections, 0u);  // the store's default
  ASSERT_TRUE(load(R"({"store":{"kind":"postgres","url":"postgresql://ads@h/x","connections":12}})").ok());
  EXPECT_EQ(cfg.store_connections, 12u);
}

TEST_F(ConfigTest, BadStoreObjectsNameTheKey) {
  EXPECT_EQ(field_of(R"({"store":{"kind":"mysql","url":"x"}})"), "store.kind");
  EXPECT_EQ(field_of(R"({"store":{"url":"postgresql://a@b/c"}})"), "store.kind");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres"}})"), "store.url");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"http://x"}})"), "store.url");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite"}})"), "store.path");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite","path":"/x","password":"p"}})"), "store.password");
  EXPECT_EQ(field_of(R"({"store":42})"), "store");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"postgresql://a@b/c","connections":0}})"), "store.connections");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"postgresql://a@b/c","connections":65}})"), "store.connections");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"postgresql://a@b/c","connections":"4"}})"), "store.connections");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite","path":"/x","connections":4}})"), "store.connections");
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
