// Test support: a fixture whose tests run once per store backend. GetParam()
// is "sqlite" (a file in the test's temp dir, in a folder not made yet) or
// "postgres" (a fresh database on the PostgreSQL server this test process
// starts, tests/support/postgres.h). Instantiate with
//   INSTANTIATE_TEST_SUITE_P(Backends, MyTest, ads::test::kBackends, ads::test::backend_name);
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/store.h"
#include "support/postgres.h"
#include "support/process.h"

namespace ads::test {

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      url_ = "sqlite://" + (tmp.path / "state" / "ads.db").string();
    } else {
      auto& pg = shared_postgres();
      ASSERT_TRUE(pg.ok()) << "cannot start PostgreSQL: " << pg.error();
      url_ = pg.fresh_database();
      ASSERT_FALSE(url_.empty()) << pg.error();
    }
  }
  // A new Store on the test's database (a reopening, or another server).
  std::unique_ptr<Store> open() {
    auto s = open_store(url_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s.value()) : nullptr;
  }
  TempDir tmp;
  std::string url_;
};

inline const auto kBackends = ::testing::Values(std::string("sqlite"), std::string("postgres"));
inline std::string backend_name(const ::testing::TestParamInfo<std::string>& i) { return i.param; }

}  // namespace ads::test
