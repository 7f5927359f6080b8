// Warm machines in the store (Store::add_warm ... warm_machines), against
// every backend (SQLite on a real file, PostgreSQL on a real server on
// loopback): the count per OS key held under races, and a claim that never
// gives one machine to two deploys, be they two workers (threads on one
// Store) or two servers (two Stores on one database).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/store.h"
#include "support/store_backends.h"

namespace {

class WarmStoreTest : public ads::test::BackendTest {
 protected:
  static ads::WarmMachine warm(const std::string& name, int64_t created_ms, const std::string& os = "debian-12",
                               const std::string& agent = "sha-a") {
    ads::WarmMachine w;
    w.name = name;
    w.provider = "lxd";
    w.os_key = os;
    w.state = "creating";
    w.agent_sha256 = agent;
    w.maker = "server-1";
    w.created_ms = w.updated_ms = created_ms;
    return w;
  }
};

TEST_P(WarmStoreTest, AMachineIsClaimedOnceReadyOldestFirstAndOnlyWithTheSameAgent) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->add_warm(warm("ads-w-b", 2000), 5).ok());
  ASSERT_TRUE(s->add_warm(warm("ads-w-a", 1000), 5).ok());
  ASSERT_TRUE(s->add_warm(warm("ads-w-c", 3000, "debian-12", "sha-old"), 5).ok());
  // none is ready yet: nothing to claim
  auto none = s->claim_warm("lxd", "debian-12", "sha-a");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  // one still being made is noted alive: its updated_ms moves on, nothing else
  ASSERT_TRUE(s->touch_warm("ads-w-c", 4000).ok());
  auto touched = s->warm_machines();
  ASSERT_TRUE(touched.ok());
  ASSERT_EQ(touched->size(), 3u);
  EXPECT_EQ((*touched)[2].name, "ads-w-c");
  EXPECT_EQ((*touched)[2].state, "creating");
  EXPECT_EQ((*touched)[2].created_ms, 3000);
  EXPECT_EQ((*touched)[2].updated_ms, 4000);
  ASSERT_TRUE(s->set_warm_ready("ads-w-b", "10.0.0.2", 5000).ok());
  ASSERT_TRUE(s->set_warm_ready("ads-w-a", "10.0.0.3", 5001).ok());
  ASSERT_TRUE(s->set_warm_ready("ads-w-c", "10.0.0.4", 5002).ok());
  // ready once only
  auto again = s->set_warm_ready("ads-w-a", "10.0.0.9", 6000);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "not_found");

  auto all = s->warm_machines();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "ads-w-a");  // oldest first
  EXPECT_EQ((*all)[0].state, "ready");
  EXPECT_EQ((*all)[0].address, "10.0.0.3");
  EXPECT_EQ((*all)[0].maker, "server-1");
  EXPECT_EQ((*all)[0].updated_ms, 5001);
  // one that is ready (or gone) is no longer being made
  auto ready = s->touch_warm("ads-w-c", 7000);
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.error().code, "not_found");
  auto gone = s->touch_warm("ads-w-none", 7000);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "not_found");

  // other OS key, other provider: none
  auto other = s->claim_warm("lxd", "debian-13", "sha-a");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  other = s->claim_warm("aws", "debian-12", "sha-a");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());

  auto first = s->claim_warm("lxd", "debian-12", "sha-a");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->name, "ads-w-a");
  EXPECT_EQ((*first)->address, "10.0.0.3");
  auto second = s->claim_warm("lxd", "debian-12", "sha-a");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->name, "ads-w-b");
  // ads-w-c carries another agent: no deploy of this one takes it
  auto third = s->claim_warm("lxd", "debian-12", "sha-a");
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->has_value());
  // claimed ones are forgotten; the other stays
  all = s->warm_machines();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "ads-w-c");
  // and it outlives a reopening
  auto reopened = open();
  ASSERT_TRUE(reopened);
  auto kept = reopened->claim_warm("lxd", "debian-12", "sha-old");
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(kept->has_value());
  EXPECT_EQ((*kept)->name, "ads-w-c");
}

TEST_P(WarmStoreTest, TheCountPerOsKeyIsHeldAndRemovalIsByState) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->add_warm(warm("ads-w-1", 1), 2).ok());
  ASSERT_TRUE(s->add_warm(warm("ads-w-2", 2), 2).ok());
  auto full = s->add_warm(warm("ads-w-3", 3), 2);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, "exhausted") << full.error().message;
  // another OS key has its own count
  ASSERT_TRUE(s->add_warm(warm("ads-w-4", 4, "debian-12-build"), 2).ok());
  // a name twice is refused
  EXPECT_FALSE(s->add_warm(warm("ads-w-1", 5, "debian-12-build"), 9).ok());

  ASSERT_TRUE(s->set_warm_ready("ads-w-1", "10.0.0.2", 10).ok());
  // removal names the state it saw: a machine that became ready meanwhile
  // is not removed as a half-made one
  auto r = s->remove_warm("ads-w-1", "creating");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  r = s->remove_warm("ads-w-1", "ready");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  r = s->remove_warm("ads-w-1", "ready");  // gone: not removed twice
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  // a half-made one removed by another server: its maker's ready fails
  r = s->remove_warm("ads-w-2", "creating");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  auto late = s->set_warm_ready("ads-w-2", "10.0.0.3", 11);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "not_found");
  // with both gone, two can be made again
  ASSERT_TRUE(s->add_warm(warm("ads-w-5", 12), 2).ok());
  ASSERT_TRUE(s->add_warm(warm("ads-w-6", 13), 2).ok());
  EXPECT_FALSE(s->add_warm(warm("ads-w-7", 14), 2).ok());
}

// Two servers (two Stores on one database), each with four workers
// (threads), claim from 40 ready machines at once, 64 claims in all: each
// machine goes to exactly one claim, and the other 24 claims find none.
TEST_P(WarmStoreTest, ConcurrentClaimsNeverShareAMachine) {
  auto s1 = open();
  auto s2 = open();
  ASSERT_TRUE(s1 && s2);
  constexpr int kMachines = 40, kThreads = 8, kPerThread = 60 / kThreads + 1;
  for (int i = 0; i < kMachines; ++i) {
    std::string name = "ads-w-" + std::to_string(100 + i);
    ASSERT_TRUE(s1->add_warm(warm(name, 1000 + i), kMachines).ok());
    ASSERT_TRUE(s1->set_warm_ready(name, "10.0.1." + std::to_string(i + 2), 2000).ok());
  }
  std::mutex mu;
  std::map<std::string, int> claims;  // machine -> times claimed
  int empty = 0;
  std::vector<std::string> errors;
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  ts.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      ads::Store& s = (t % 2) ? *s1 : *s2;
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        auto c = s.claim_warm("lxd", "debian-12", "sha-a");
        std::lock_guard<std::mutex> lk(mu);
        if (!c.ok()) errors.push_back(c.error().message);
        else if (c->has_value()) ++claims[(*c)->name];
        else ++empty;
      }
    });
  }
  go = true;
  for (auto& t : ts) t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(claims.size(), static_cast<size_t>(kMachines));
  for (auto& [name, n] : claims) EXPECT_EQ(n, 1) << name << " was claimed " << n << " times";
  EXPECT_EQ(empty, kThreads * kPerThread - kMachines);
  auto left = s1->warm_machines();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

// Two servers making warm machines at once never make more than asked
// between them (the count and the record in one transaction).
TEST_P(WarmStoreTest, ConcurrentMakersNeverExceedTheCount) {
  auto s1 = open();
  auto s2 = open();
  ASSERT_TRUE(s1 && s2);
  std::atomic<int> added{0};
  std::atomic<bool> go{false};
  std::vector<std::string> errors;
  std::mutex mu;
  std::vector<std::thread> ts;
  ts.reserve(6);
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      ads::Store& s = (t % 2) ? *s1 : *s2;
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 5; ++i) {
        auto st = s.add_warm(warm("ads-w-" + std::to_string(t) + "-" + std::to_string(i), t * 10 + i), 3);
        if (st.ok()) {
          ++added;
        } else if (st.error().code != "exhausted") {
          std::lock_guard<std::mutex> lk(mu);
          errors.push_back(st.error().message);
        }
      }
    });
  }
  go = true;
  for (auto& t : ts) t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(added.load(), 3);
  auto all = s1->warm_machines();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Backends, WarmStoreTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
