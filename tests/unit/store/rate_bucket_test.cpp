// Shared rate buckets (Store::take_rate), run against every backend (SQLite on
// a real file, PostgreSQL on a real server the test starts on loopback): the
// bucket rule of core/rate.h kept in the store, one bucket for every Store
// object on one database, forgotten once full again.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <pqxx/pqxx>
#include <thread>

#include "store/store.h"
#include "support/store_backends.h"

namespace {

class RateBucketTest : public ads::test::BackendTest {
 protected:
  // Rows in the table behind the buckets, read past the Store interface.
  int64_t rows() {
    if (GetParam() == "postgres") {
      pqxx::connection c(url_);
      pqxx::work w(c);
      return w.exec1("SELECT count(*) FROM rate_buckets")[0].as<int64_t>();
    }
    sqlite3* db = nullptr;
    std::string path = url_.substr(std::string("sqlite://").size());
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM rate_buckets", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
  }
};

TEST_P(RateBucketTest, AllowsTheBurstThenRefusesWithTheWaitAndRefills) {
  auto s = open();
  ASSERT_TRUE(s);
  const int64_t t = 1'700'000'000'000;
  for (int i = 0; i < 3; ++i) {
    auto r = s->take_rate("signin:10.0.0.1", 2.0, 3.0, t);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->allowed) << "take " << i;
  }
  auto refused = s->take_rate("signin:10.0.0.1", 2.0, 3.0, t);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->retry_after_ms, 501);
  // another key has its own bucket
  EXPECT_TRUE(s->take_rate("signin:10.0.0.2", 2.0, 3.0, t)->allowed);
  // a refusal took nothing: half a second later there is a token
  EXPECT_FALSE(s->take_rate("signin:10.0.0.1", 2.0, 3.0, t + 499)->allowed);
  EXPECT_TRUE(s->take_rate("signin:10.0.0.1", 2.0, 3.0, t + 500)->allowed);
  EXPECT_FALSE(s->take_rate("signin:10.0.0.1", 2.0, 3.0, t + 500)->allowed);
}

TEST_P(RateBucketTest, AnotherStoreOnTheDatabaseDrawsFromTheSameBucket) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  const int64_t t = 1'700'000'000'000;
  EXPECT_TRUE(a->take_rate("authfail:x", 0.0, 2.0, t)->allowed);
  EXPECT_TRUE(b->take_rate("authfail:x", 0.0, 2.0, t)->allowed);
  EXPECT_FALSE(a->take_rate("authfail:x", 0.0, 2.0, t + 1)->allowed);
  EXPECT_FALSE(b->take_rate("authfail:x", 0.0, 2.0, t + 1)->allowed);
  // and it outlives the Store objects
  a.reset();
  b.reset();
  auto c = open();
  auto r = c->take_rate("authfail:x", 0.0, 2.0, t + 2);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->retry_after_ms, INT64_MAX);  // a rate of 0 never refills
}

// Eight threads on two Store objects take from one bucket that never
// refills: exactly `burst` takes succeed, however they interleave.
TEST_P(RateBucketTest, RacingServersGetExactlyTheBurst) {
  auto s1 = open();
  auto s2 = open();
  ASSERT_TRUE(s1 && s2);
  constexpr int kThreads = 8, kPerThread = 10, kBurst = 25;
  std::atomic<int> allowed{0}, errors{0};
  std::vector<std::thread> ts;
  ts.reserve(static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      ads::Store& s = (t % 2) ? *s1 : *s2;
      for (int i = 0; i < kPerThread; ++i) {
        auto r = s.take_rate("signin:race", 0.0, kBurst, 1'700'000'000'000 + i);
        if (!r.ok()) ++errors;
        else if (r->allowed) ++allowed;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(allowed.load(), kBurst);
}

TEST_P(RateBucketTest, BucketsFullAgainAreForgotten) {
  auto s = open();
  ASSERT_TRUE(s);
  const int64_t t = 1'700'000'000'000;
  ASSERT_TRUE(s->take_rate("signin:a", 1.0, 2.0, t)->allowed);
  ASSERT_TRUE(s->take_rate("signin:b", 1.0, 2.0, t)->allowed);
  EXPECT_EQ(rows(), 2);
  // "a" and "b" miss one token each: full a second later. Before that, kept.
  ASSERT_TRUE(s->take_rate("signin:c", 1.0, 2.0, t + 500)->allowed);
  EXPECT_EQ(rows(), 3);
  // later, a take of "c" forgets "a" and "b" (full again); "c" stays (it took)
  ASSERT_TRUE(s->take_rate("signin:c", 1.0, 2.0, t + 5'000)->allowed);
  EXPECT_EQ(rows(), 1);
  // a forgotten bucket is a fresh one: the whole burst again
  EXPECT_TRUE(s->take_rate("signin:a", 1.0, 2.0, t + 5'000)->allowed);
  EXPECT_TRUE(s->take_rate("signin:a", 1.0, 2.0, t + 5'000)->allowed);
  EXPECT_FALSE(s->take_rate("signin:a", 1.0, 2.0, t + 5'000)->allowed);
}

TEST_P(RateBucketTest, AnEmptyKeyIsRefused) {
  auto s = open();
  ASSERT_TRUE(s);
  auto r = s->take_rate("", 1.0, 2.0, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid");
}

INSTANTIATE_TEST_SUITE_P(Backends, RateBucketTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
