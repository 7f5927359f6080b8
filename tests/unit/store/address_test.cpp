// Static address allocation, run against every backend (SQLite on a real file,
// PostgreSQL on a real server the test starts on loopback): the contract of
// Store::allocate_address / release_addresses, and no duplicates under races
// (threads on one Store, and two Stores on one database).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/store.h"
#include "support/process.h"
#include "support/store_backends.h"

namespace {

class AddressTest : public ads::test::BackendTest {};

TEST_P(AddressTest, HandsOutTheLowestFreeAndTheSameToTheSameOwner) {
  auto s = open();
  auto a = s->allocate_address("10.250.0.0/24", "dep-a");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, "10.250.0.2");  // .0 network, .1 gateway
  auto b = s->allocate_address("10.250.0.0/24", "dep-b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "10.250.0.3");
  auto again = s->allocate_address("10.250.0.0/24", "dep-a");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, "10.250.0.2");
  // another subnet is another pool; the same owner may hold one in each
  auto other = s->allocate_address("192.168.9.0/28", "dep-a");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, "192.168.9.2");
}

TEST_P(AddressTest, ReleaseFreesEveryAddressOfTheOwnerAndTheGapIsReused) {
  auto s = open();
  ASSERT_EQ(*s->allocate_address("10.250.0.0/24", "a"), "10.250.0.2");
  ASSERT_EQ(*s->allocate_address("10.250.0.0/24", "b"), "10.250.0.3");
  ASSERT_EQ(*s->allocate_address("10.251.0.0/24", "b"), "10.251.0.2");
  ASSERT_EQ(*s->allocate_address("10.250.0.0/24", "c"), "10.250.0.4");
  ASSERT_TRUE(s->release_addresses("b").ok());
  EXPECT_EQ(*s->allocate_address("10.250.0.0/24", "d"), "10.250.0.3");
  EXPECT_EQ(*s->allocate_address("10.251.0.0/24", "e"), "10.251.0.2");
  EXPECT_TRUE(s->release_addresses("b").ok());  // holds none now
  EXPECT_TRUE(s->release_addresses("nobody").ok());
  EXPECT_EQ(*s->allocate_address("10.250.0.0/24", "a"), "10.250.0.2");  // untouched
}

TEST_P(AddressTest, ExhaustedWhenEveryAddressIsTaken) {
  auto s = open();
  // /29: .2 .. .6 are the pool
  for (int i = 2; i <= 6; ++i)
    ASSERT_EQ(*s->allocate_address("10.9.0.0/29", "o" + std::to_string(i)), "10.9.0." + std::to_string(i));
  auto r = s->allocate_address("10.9.0.0/29", "late");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "exhausted");
  EXPECT_NE(r.error().message.find("10.9.0.0/29"), std::string::npos);
  // an owner who already holds one still gets it back
  EXPECT_EQ(*s->allocate_address("10.9.0.0/29", "o4"), "10.9.0.4");
  auto tiny = s->allocate_address("10.9.0.0/31", "x");
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.error().code, "exhausted");
}

TEST_P(AddressTest, InvalidSubnetOrOwner) {
  auto s = open();
  for (std::string bad : {"", "10.0.0.0", "10.0.0.0/33", "10.0.0.7/24", "300.0.0.0/8", "::1/128"}) {
    auto r = s->allocate_address(bad, "o");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "invalid") << bad;
  }
  auto r = s->allocate_address("10.0.0.0/24", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid");
}

TEST_P(AddressTest, SurvivesReopening) {
  {
    auto s = open();
    ASSERT_EQ(*s->allocate_address("10.250.0.0/24", "a"), "10.250.0.2");
  }
  auto s = open();
  EXPECT_EQ(*s->allocate_address("10.250.0.0/24", "b"), "10.250.0.3");
  EXPECT_EQ(*s->allocate_address("10.250.0.0/24", "a"), "10.250.0.2");
}

// Many threads on two Store objects (two connections on one database)
// allocate at once: every owner gets one address, no address twice.
TEST_P(AddressTest, ConcurrentAllocationsNeverCollide) {
  auto s1 = open();
  auto s2 = open();
  ASSERT_TRUE(s1 && s2);
  constexpr int kThreads = 8, kPerThread = 25;  // 200 of a /24's 253
  std::mutex mu;
  std::map<std::string, std::string> got;  // owner -> address
  std::vector<std::string> errors;
  std::vector<std::thread> ts;
  ts.reserve(static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      ads::Store& s = (t % 2) ? *s1 : *s2;
      for (int i = 0; i < kPerThread; ++i) {
        std::string owner = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = s.allocate_address("10.77.0.0/24", owner);
        // ask again at once: the same answer
        auto r2 = s.allocate_address("10.77.0.0/24", owner);
        std::lock_guard<std::mutex> lk(mu);
        if (!r.ok() || !r2.ok()) {
          errors.push_back(!r.ok() ? r.error().message : r2.error().message);
          continue;
        }
        if (*r != *r2) errors.push_back(owner + " got " + *r + " then " + *r2);
        got[owner] = *r;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> distinct;
  for (auto& [o, a] : got) distinct.insert(a);
  EXPECT_EQ(distinct.size(), got.size()) << "an address was handed out twice";
  // and they are exactly the lowest 200: .2 .. .201
  for (int i = 2; i < 2 + kThreads * kPerThread; ++i)
    EXPECT_TRUE(distinct.count("10.77.0." + std::to_string(i))) << "missing 10.77.0." << i;
}

INSTANTIATE_TEST_SUITE_P(Backends, AddressTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
