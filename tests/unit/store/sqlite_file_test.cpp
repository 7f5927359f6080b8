// SQLite-only behaviour of the store on real files (the Store contract
// itself is tested against every backend in store_test.cpp).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "support/engine_wait.h"
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

// The store keeps its prepared statements (StmtCache): a kept statement must
// be as good as a new one after its last step failed, after another
// connection changed the schema, and must not hold a read of the file open.
TEST_F(SqliteFileTest, KeptStatementsSurviveAFailedStepASchemaChangeAndHoldNoRead) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->create(ads::test::lab_record("01aaaaaaaaaaaaaaaaaaaaaaa1", ads::State::kRunning)).ok());
  ads::Job orphan;
  orphan.id = "01jjjjjjjjjjjjjjjjjjjjjjj1";
  orphan.deployment_id = "01aaaaaaaaaaaaaaaaaaaaaaa9";  // no such deployment: the insert's step fails
  orphan.kind = "start";
  EXPECT_FALSE(s->create_job(orphan).ok());
  ads::Job good = orphan;
  good.id = "01jjjjjjjjjjjjjjjjjjjjjjj2";
  good.deployment_id = "01aaaaaaaaaaaaaaaaaaaaaaa1";
  ASSERT_TRUE(s->create_job(good).ok()) << "the same INSERT, kept after its failure";
  ASSERT_TRUE(s->get_job(good.id).ok());

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((tmp.path / "state" / "ads.db").c_str(), &raw), SQLITE_OK);
  sqlite3_busy_timeout(raw, 5000);
  ASSERT_EQ(sqlite3_exec(raw,
                         "ALTER TABLE deployments ADD COLUMN later TEXT NOT NULL DEFAULT '';"
                         "CREATE INDEX deployments_later ON deployments(later);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto list = s->list({});
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->size(), 1u);
  ASSERT_TRUE(s->create(ads::test::lab_record("01aaaaaaaaaaaaaaaaaaaaaaa2", ads::State::kRunning)).ok());
  EXPECT_EQ(s->get("01aaaaaaaaaaaaaaaaaaaaaaa2")->state, ads::State::kRunning);

  // every kept statement was reset: nothing of the store reads the file now,
  // so a checkpoint that must wait for all readers completes
  int log_frames = -1, done = -1;
  ASSERT_EQ(sqlite3_wal_checkpoint_v2(raw, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames, &done), SQLITE_OK)
      << sqlite3_errmsg(raw);
  EXPECT_EQ(log_frames, 0);  // TRUNCATE left the log empty
  sqlite3_close(raw);
}

}  // namespace
