// `ads serve` config files: every setting, and errors that name the bad key.
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
  ASSERT_TRUE(load(R"({"listen":"0.0.0.0:9000","workers":4,"keep_failed":true,
    "limits":{"requests_per_second":5,"request_burst":50,"auth_failures_per_minute":3,"auth_failure_burst":4,
              "active_jobs_per_user":2}})").ok());
  EXPECT_EQ(cfg.listen, "0.0.0.0:9000");
  EXPECT_EQ(cfg.workers, 4);
  EXPECT_TRUE(cfg.keep_failed);
  EXPECT_EQ(cfg.limits.requests_per_second, 5);
  EXPECT_EQ(cfg.limits.request_burst, 50);
  EXPECT_EQ(cfg.limits.auth_failures_per_minute, 3);
  EXPECT_EQ(cfg.limits.auth_failure_burst, 4);
  EXPECT_EQ(cfg.limits.active_jobs_per_user, 2);
}

TEST_F(ConfigFile, DefaultsLimitEveryone) {
  ASSERT_TRUE(load("{}").ok());
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

}  // namespace
