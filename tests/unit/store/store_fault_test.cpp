// Issue 16.1 and 16.2 at the store. A store that cannot answer says so with
// the code "unavailable" (the API answers it 503, the engine retries it),
// never "internal" and never a verdict such as not_found; a PostgreSQL
// connection left in the pool from before a restart is replaced before use,
// so the first calls after the server is back succeed; and a server renews
// the leases of the jobs it runs only (renew_leases_of), on both stores.
// Real PostgreSQL (a server of this test's own, stopped and started again)
// and real SQLite (locked by another connection, as another process would).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "store/postgres/postgres_store.h"
#include "store/store.h"
#include "support/postgres.h"
#include "support/store_backends.h"

namespace {

ads::Deployment deployment(const std::string& id) {
  ads::Deployment d;
  d.id = id;
  d.name = "lab";
  d.source = "/labs/lab";
  d.provider = "lxd";
  d.state = ads::State::kInstalling;
  return d;
}

ads::Job job(const std::string& id, const std::string& deployment_id) {
  ads::Job j;
  j.id = id;
  j.deployment_id = deployment_id;
  j.kind = "deploy";
  j.state = "running";
  return j;
}

ads::User user(const std::string& id, const std::string& name) {
  ads::User u;
  u.id = id;
  u.name = name;
  u.role = ads::Role::kDeployer;
  return u;
}

TEST(StoreFault, PostgresDownIsUnavailableAndPooledConnectionsFromBeforeARestartAreReplaced) {
  ads::test::PostgresServer pg;  // this test's own: stopped and started below
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string url = pg.fresh_database();
  ASSERT_FALSE(url.empty()) << pg.error();
  auto opened = ads::open_store(url, 4);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& store = *opened.value();
  auto* pgs = dynamic_cast<ads::PostgresStore*>(&store);
  ASSERT_NE(pgs, nullptr);
  ASSERT_TRUE(store.create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu1", "alice")).ok());
  // several callers at once: the pool opens more than one connection
  auto busy = [&] {
    std::vector<std::thread> ts;
    ts.reserve(8);
    for (int i = 0; i < 8; ++i)
      ts.emplace_back([&] {
        for (int k = 0; k < 20; ++k) (void)store.get_user_by_name("alice");
      });
    for (auto& t : ts) t.join();
  };
  busy();
  ASSERT_GT(pgs->connections(), 1u);

  // a restart with nobody calling: every pooled connection is dead, and the
  // first calls afterwards (one at a time, then several at once) all succeed
  ASSERT_TRUE(pg.stop());
  ASSERT_TRUE(pg.start_again()) << pg.error();
  for (int i = 0; i < 6; ++i) {
    auto u = store.get_user_by_name("alice");
    ASSERT_TRUE(u.ok()) << "call " << i << " after the restart: " << u.error().message;
  }
  busy();
  ASSERT_TRUE(pg.stop());
  ASSERT_TRUE(pg.start_again()) << pg.error();
  {
    std::atomic<int> failed{0};
    std::vector<std::thread> ts;
    ts.reserve(4);
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([&] {
        if (!store.get_user_by_name("alice").ok()) ++failed;
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(failed.load(), 0) << "concurrent first calls after a restart";
  }

  // down: reads and writes are "unavailable", not a verdict on what was asked
  ASSERT_TRUE(pg.stop());
  auto missing = store.get_user_by_name("alice");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "unavailable") << missing.error().message;
  auto token = store.token_by_hash(std::string(64, 'a'));
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code, "unavailable") << token.error().message;
  auto st = store.create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu2", "bob"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "unavailable") << st.error().message;
  // back: the next call succeeds
  ASSERT_TRUE(pg.start_again()) << pg.error();
  auto back = store.create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu2", "bob"));
  EXPECT_TRUE(back.ok()) << back.error().message;
}

TEST(StoreFault, SqliteLockedByAnotherConnectionIsUnavailableForWritesAndStillAnswersReads) {
  ads::test::TempDir tmp;
  std::string path = (tmp.path / "ads.db").string();
  auto opened = ads::open_store("sqlite://" + path);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& store = *opened.value();
  ASSERT_TRUE(store.create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu1", "alice")).ok());

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE;", nullptr, nullptr, nullptr), SQLITE_OK);
  // a write waits out the busy timeout, then says the store is unavailable
  auto st = store.create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu2", "bob"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "unavailable") << st.error().message;
  // reads go on (WAL: a reader does not wait for the writer)
  auto u = store.get_user_by_name("alice");
  EXPECT_TRUE(u.ok()) << u.error().message;
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  auto back = store.create_user(user("01uuuuuuuuuuuuuuuuuuuuuuu2", "bob"));
  EXPECT_TRUE(back.ok()) << back.error().message;
}

class LeaseRenewal : public ads::test::BackendTest {};

// A server renews the leases of the jobs it is running and lets the others
// lapse (a job its worker gave up is taken over, not kept forever).
TEST_P(LeaseRenewal, OnlyTheNamedJobsAreRenewed) {
  auto s = open();
  ASSERT_TRUE(s);
  for (const char* d : {"01aaaaaaaaaaaaaaaaaaaaaaaa", "01bbbbbbbbbbbbbbbbbbbbbbbb"})
    ASSERT_TRUE(s->create(deployment(d)).ok());
  ASSERT_TRUE(s->create_job(job("01jjjjjjjjjjjjjjjjjjjjjjj1", "01aaaaaaaaaaaaaaaaaaaaaaaa")).ok());
  ASSERT_TRUE(s->create_job(job("01jjjjjjjjjjjjjjjjjjjjjjj2", "01bbbbbbbbbbbbbbbbbbbbbbbb")).ok());
  ASSERT_TRUE(s->claim_job("server-a", 1000, 1000).value().has_value());
  ASSERT_TRUE(s->claim_job("server-a", 1000, 1000).value().has_value());

  EXPECT_EQ(s->renew_leases_of("server-a", {"01jjjjjjjjjjjjjjjjjjjjjjj1"}, 9000).value(), 1);
  EXPECT_EQ(s->get_job("01jjjjjjjjjjjjjjjjjjjjjjj1")->lease_expires_ms, 9000);
  EXPECT_EQ(s->get_job("01jjjjjjjjjjjjjjjjjjjjjjj2")->lease_expires_ms, 2000);
  // another server's name renews nothing; nor does an unknown id
  EXPECT_EQ(s->renew_leases_of("server-b", {"01jjjjjjjjjjjjjjjjjjjjjjj2"}, 9000).value(), 0);
  EXPECT_EQ(s->renew_leases_of("server-a", {"01jjjjjjjjjjjjjjjjjjjjjjj9"}, 9000).value(), 0);
  // the job left out lapses and is taken over; the renewed one is not
  auto taken = s->claim_job("server-b", 3000, 1000).value();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->id, "01jjjjjjjjjjjjjjjjjjjjjjj2");
  EXPECT_FALSE(s->claim_job("server-b", 3000, 1000).value().has_value());
  // and server-a cannot renew a job taken from it
  EXPECT_EQ(s->renew_leases_of("server-a", {"01jjjjjjjjjjjjjjjjjjjjjjj2"}, 9000).value(), 0);
  EXPECT_EQ(s->get_job("01jjjjjjjjjjjjjjjjjjjjjjj2")->lease_owner, "server-b");
}

INSTANTIATE_TEST_SUITE_P(Backends, LeaseRenewal, ads::test::kBackends, ads::test::backend_name);

}  // namespace
