// SQLite-only behaviour of the store on real files (the Store contract
// itself is tested against every backend in store_test.cpp).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "support/process.h"

namespace {

class SqliteFileTest : public ::testing::Test {
 protected:
  std::string url() const { return "sqlite://" + (tmp.path / "state" / "ads.db").string(); }
  std::unique_ptr<ads::Store> open() {
    auto s = ads::open_store(url());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s.value()) : nullptr;
  }
  ads::test::TempDir tmp;
};

TEST_F(SqliteFileTest, UsesWriteAheadLoggingAndRecordsItsSchemaVersion) {
  auto s = open();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((tmp.path / "state" / "ads.db").c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT MAX(version) FROM schema_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), ads::SqliteStore::latest_schema_version());
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_F(SqliteFileTest, OpenStoreAcceptsSqliteUrlsAndPathsAndRefusesOthers) {
  EXPECT_TRUE(ads::open_store((tmp.path / "plain.db").string()).ok());
  auto other = ads::open_store("mysql://localhost/ads");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, "invalid");
  EXPECT_EQ(other.error().field, "store");
  EXPECT_FALSE(ads::open_store("sqlite://").ok());
  auto unwritable = ads::open_store("sqlite:///proc/ads/x.db");
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.error().field, "store");
}

}  // namespace
