// The SQLite store on real files.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>
#include <thread>

#include "store/store.h"
#include "support/process.h"

namespace {

ads::Deployment sample(const std::string& id, const std::string& name = "cse02") {
  ads::Deployment d;
  d.id = id;
  d.name = name;
  d.source = "https://example.invalid/labs/it's \"quoted\".git";
  d.ref = "v1";
  d.commit = std::string(40, 'a');
  d.provider = "lxd";
  d.state = ads::State::kInstalling;
  d.failed_step = "";
  d.error = "'); DROP TABLE deployments;--";
  d.machine = "ads-" + id;
  d.address = "10.0.0.2";
  d.url = "http://10.0.0.2/";
  d.secret = "s3cr3t-ünïcødé";
  d.spec_json = R"({"a":1})";
  d.created_ms = 1700000000123;
  d.updated_ms = 1700000000456;
  return d;
}

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

TEST_F(SqliteFileTest, EveryFieldRoundTripsAndSurvivesReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  }
  auto s = open();
  auto d = s->get("01aaaaaaaaaaaaaaaaaaaaaaaa");
  ASSERT_TRUE(d.ok());
  auto want = sample("01aaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(d->name, want.name);
  EXPECT_EQ(d->source, want.source);
  EXPECT_EQ(d->ref, want.ref);
  EXPECT_EQ(d->commit, want.commit);
  EXPECT_EQ(d->provider, want.provider);
  EXPECT_EQ(d->state, ads::State::kInstalling);
  EXPECT_EQ(d->error, want.error);
  EXPECT_EQ(d->machine, want.machine);
  EXPECT_EQ(d->address, want.address);
  EXPECT_EQ(d->url, want.url);
  EXPECT_EQ(d->secret, want.secret);
  EXPECT_EQ(d->spec_json, want.spec_json);
  EXPECT_EQ(d->created_ms, want.created_ms);
  EXPECT_EQ(d->updated_ms, want.updated_ms);
  // the SQL-looking text did not drop anything
  EXPECT_EQ(s->list({})->size(), 1u);
}

TEST_F(SqliteFileTest, ConflictsAndMissingIds) {
  auto s = open();
  ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  auto dup = s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "conflict");
  EXPECT_EQ(s->get("01bbbbbbbbbbbbbbbbbbbbbbbb").error().code, "not_found");
  EXPECT_EQ(s->update(sample("01bbbbbbbbbbbbbbbbbbbbbbbb")).error().code, "not_found");
  EXPECT_EQ(s->append_log("01bbbbbbbbbbbbbbbbbbbbbbbb", {}).error().code, "not_found");
}

TEST_F(SqliteFileTest, UpdateListFiltersPagingAndUnfinished) {
  auto s = open();
  for (int i = 0; i < 6; ++i) {
    auto d = sample("01aaaaaaaaaaaaaaaaaaaaaaa" + std::to_string(i), i % 2 ? "odd" : "even");
    d.state = i < 2 ? ads::State::kRunning : (i < 4 ? ads::State::kFailed : ads::State::kProvisioning);
    ASSERT_TRUE(s->create(d).ok());
  }
  auto d = s->get("01aaaaaaaaaaaaaaaaaaaaaaa5").value();
  d.state = ads::State::kDestroyed;
  ASSERT_TRUE(s->update(d).ok());
  EXPECT_EQ(s->get(d.id)->state, ads::State::kDestroyed);

  ads::ListQuery q;
  q.limit = 4;
  auto page1 = s->list(q).value();
  ASSERT_EQ(page1.size(), 4u);
  EXPECT_EQ(page1[0].id, "01aaaaaaaaaaaaaaaaaaaaaaa0");
  q.after_id = page1.back().id;
  auto page2 = s->list(q).value();
  ASSERT_EQ(page2.size(), 2u);
  EXPECT_EQ(page2[0].id, "01aaaaaaaaaaaaaaaaaaaaaaa4");
  ads::ListQuery byname;
  byname.name = "odd";
  EXPECT_EQ(s->list(byname)->size(), 3u);
  ads::ListQuery bystate;
  bystate.state = ads::State::kFailed;
  EXPECT_EQ(s->list(bystate)->size(), 2u);
  auto unfinished = s->unfinished().value();
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].id, "01aaaaaaaaaaaaaaaaaaaaaaa4");
}

TEST_F(SqliteFileTest, LogSequenceHasNoGapsUnderConcurrentWriters) {
  auto s = open();
  ASSERT_TRUE(s->create(sample("01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<int64_t> seqs;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        ads::LogLine l;
        l.text = "t" + std::to_string(t) + " line " + std::to_string(i);
        l.stream = "stdout";
        auto r = s->append_log("01aaaaaaaaaaaaaaaaaaaaaaaa", l);
        ASSERT_TRUE(r.ok());
        std::lock_guard<std::mutex> lk(mu);
        EXPECT_TRUE(seqs.insert(*r).second) << *r;
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(seqs.size(), 200u);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 200);
  auto tail = s->logs("01aaaaaaaaaaaaaaaaaaaaaaaa", 195, 100).value();
  ASSERT_EQ(tail.size(), 5u);
  EXPECT_EQ(tail[0].seq, 196);
  auto two = s->logs("01aaaaaaaaaaaaaaaaaaaaaaaa", 0, 2).value();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].seq, 2);
}

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
  EXPECT_EQ(sqlite3_column_int(st, 0), 4);  // 4: addresses
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_F(SqliteFileTest, JobsBackupsAndIdempotencyKeys) {
  auto s = open();
  auto d = sample("01aaaaaaaaaaaaaaaaaaaaaaaa");
  d.idempotency_key = "key-1";
  ASSERT_TRUE(s->create(d).ok());
  auto again = sample("01bbbbbbbbbbbbbbbbbbbbbbbb");
  again.idempotency_key = "key-1";
  EXPECT_EQ(s->create(again).error().code, "conflict");  // one deployment per key
  auto found = s->find_by_idempotency_key("key-1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, d.id);
  EXPECT_FALSE(s->find_by_idempotency_key("key-2")->has_value());

  ads::Job j;
  j.id = "01jjjjjjjjjjjjjjjjjjjjjjj1";
  j.deployment_id = d.id;
  j.kind = "backup";
  j.params_json = R"({"x":1})";
  ASSERT_TRUE(s->create_job(j).ok());
  j.state = "running";
  j.step = "snapshot";
  j.attempts = 2;
  ASSERT_TRUE(s->update_job(j).ok());
  auto got = s->get_job(j.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, "running");
  EXPECT_EQ(got->step, "snapshot");
  EXPECT_EQ(got->attempts, 2);
  EXPECT_EQ(got->params_json, R"({"x":1})");
  EXPECT_EQ(s->unfinished_jobs()->size(), 1u);
  j.state = "succeeded";
  ASSERT_TRUE(s->update_job(j).ok());
  EXPECT_EQ(s->unfinished_jobs()->size(), 0u);
  EXPECT_EQ(s->jobs_of(d.id)->size(), 1u);
  ads::Job orphan = j;
  orphan.id = "01jjjjjjjjjjjjjjjjjjjjjjj2";
  orphan.deployment_id = "01zzzzzzzzzzzzzzzzzzzzzzzz";
  EXPECT_EQ(s->create_job(orphan).error().code, "conflict");  // foreign key
  EXPECT_EQ(s->get_job("01jjjjjjjjjjjjjjjjjjjjjjj9").error().code, "not_found");

  ads::Backup b{"01kkkkkkkkkkkkkkkkkkkkkkk1", d.id, 1700000000000, 1234, std::string(64, 'f'), "/x/b.tgz", "snap1", "abc"};
  ASSERT_TRUE(s->add_backup(b).ok());
  auto gb = s->get_backup(b.id);
  ASSERT_TRUE(gb.ok());
  EXPECT_EQ(gb->size_bytes, 1234);
  EXPECT_EQ(gb->snapshot, "snap1");
  EXPECT_EQ(gb->commit, "abc");
  EXPECT_EQ(s->backups_of(d.id)->size(), 1u);
  EXPECT_EQ(s->get_backup("01kkkkkkkkkkkkkkkkkkkkkkk9").error().code, "not_found");
}

TEST_F(SqliteFileTest, OpenStoreAcceptsSqliteUrlsAndPathsAndRefusesOthers) {
  EXPECT_TRUE(ads::open_store((tmp.path / "plain.db").string()).ok());
  auto pg = ads::open_store("postgres://localhost/ads");
  ASSERT_FALSE(pg.ok());
  EXPECT_EQ(pg.error().code, "invalid");
  EXPECT_EQ(pg.error().field, "store");
  EXPECT_FALSE(ads::open_store("sqlite://").ok());
  auto unwritable = ads::open_store("sqlite:///proc/ads/x.db");
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.error().field, "store");
}

}  // namespace
