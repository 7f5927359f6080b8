// What the store keeps for stable URLs, run against every backend (SQLite on
// a real file, PostgreSQL on a real server): live labs' names are unique
// (admit_job), host ports are never held by two deployments (allocate_port),
// and the stable URL and port are kept with the deployment.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "store/store.h"
#include "support/store_backends.h"

namespace {
using ads::Deployment;
using ads::State;

class StableUrlStoreTest : public ads::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    store = open();
    ASSERT_NE(store, nullptr);
  }
  static Deployment deployment(const std::string& id, const std::string& name) {
    Deployment d;
    d.id = id;
    d.name = name;
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.owner = "ann";
    d.created_ms = d.updated_ms = 1;
    return d;
  }
  static ads::Job job(const std::string& id, const std::string& deployment_id) {
    ads::Job j;
    j.id = id;
    j.deployment_id = deployment_id;
    j.kind = "deploy";
    j.created_ms = j.updated_ms = 1;
    return j;
  }
  void set_state(const std::string& id, State s) {
    auto d = store->get(id);
    ASSERT_TRUE(d.ok());
    d->state = s;
    ASSERT_TRUE(store->update(*d).ok());
  }
  std::unique_ptr<ads::Store> store;
};

TEST_P(StableUrlStoreTest, TwoLiveLabsCannotHaveOneName) {
  auto a = deployment("01d1", "notes");
  ASSERT_TRUE(store->admit_job(job("01j1", "01d1"), {}, &a).ok());
  auto b = deployment("01d2", "notes");
  auto r = store->admit_job(job("01j2", "01d2"), {}, &b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "conflict");
  EXPECT_EQ(r.error().field, "name");
  EXPECT_NE(r.error().message.find("01d1"), std::string::npos) << r.error().message;
  EXPECT_FALSE(store->get("01d2").ok()) << "a refused deploy leaves nothing behind";
  EXPECT_FALSE(store->get_job("01j2").ok());
  // another name is fine
  auto c = deployment("01d3", "notes-2");
  EXPECT_TRUE(store->admit_job(job("01j3", "01d3"), {}, &c).ok());
  // each live state holds the name; failed and destroyed free it
  for (State s : {State::kRunning, State::kStopped, State::kDestroying, State::kInstalling}) {
    set_state("01d1", s);
    EXPECT_FALSE(store->admit_job(job("01j2", "01d2"), {}, &b).ok()) << ads::to_string(s);
  }
  set_state("01d1", State::kFailed);
  ASSERT_TRUE(store->admit_job(job("01j2", "01d2"), {}, &b).ok());
  set_state("01d2", State::kDestroyed);
  auto d = deployment("01d4", "notes");
  EXPECT_TRUE(store->admit_job(job("01j4", "01d4"), {}, &d).ok());
}

TEST_P(StableUrlStoreTest, OlderRecordsWithOneNameStayReadable) {
  // made before names were unique: create() does not check, list/get read both
  ASSERT_TRUE(store->create(deployment("01o1", "same")).ok());
  ASSERT_TRUE(store->create(deployment("01o2", "same")).ok());
  ads::ListQuery q;
  q.name = "same";
  auto l = store->list(q);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->size(), 2u);
  // but no third live one joins them
  auto n = deployment("01o3", "same");
  EXPECT_FALSE(store->admit_job(job("01jo3", "01o3"), {}, &n).ok());
}

// Several servers admit a deploy of one name at once: exactly one gets it.
TEST_P(StableUrlStoreTest, ServersRacingForOneNameLetOneThrough) {
  constexpr int kServers = 4;
  std::vector<std::unique_ptr<ads::Store>> stores;
  stores.reserve(static_cast<size_t>(kServers));
  for (int i = 0; i < kServers; ++i) stores.push_back(open());
  std::atomic<int> admitted{0}, refused{0}, other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  ts.reserve(static_cast<size_t>(kServers));
  for (int i = 0; i < kServers; ++i) {
    ts.emplace_back([&, i] {
      while (!go) std::this_thread::yield();
      auto d = deployment("01r" + std::to_string(i), "contested");
      auto r = stores[i]->admit_job(job("01jr" + std::to_string(i), d.id), {}, &d);
      if (r.ok()) ++admitted;
      else if (r.error().code == "conflict" && r.error().field == "name") ++refused;
      else ++other;
    });
  }
  go = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted, 1);
  EXPECT_EQ(refused, kServers - 1);
  EXPECT_EQ(other, 0);
}

TEST_P(StableUrlStoreTest, PortsAreTheLowestFreeAndNeverShared) {
  for (int i = 1; i <= 4; ++i)
    ASSERT_TRUE(store->create(deployment("01p" + std::to_string(i), "p" + std::to_string(i))).ok());
  EXPECT_EQ(*store->allocate_port("01p1", 9000, 9002), 9000);
  EXPECT_EQ(*store->allocate_port("01p2", 9000, 9002), 9001);
  EXPECT_EQ(*store->allocate_port("01p1", 9000, 9002), 9000);  // the one it holds
  EXPECT_EQ(store->get("01p1")->public_port, 9000);
  EXPECT_EQ(*store->allocate_port("01p3", 9000, 9002), 9002);
  auto full = store->allocate_port("01p4", 9000, 9002);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, "exhausted");
  EXPECT_EQ(full.error().field, "proxy.ports");
  // freed by an update with port 0 (a destroy); the gap is reused
  auto d = *store->get("01p2");
  EXPECT_EQ(d.public_port, 9001);
  d.public_port = 0;
  ASSERT_TRUE(store->update(d).ok());
  EXPECT_EQ(*store->allocate_port("01p4", 9000, 9002), 9001);
  // a port outside a new range is given up for one inside it
  EXPECT_EQ(*store->allocate_port("01p1", 9100, 9101), 9100);
  EXPECT_EQ(store->get("01p1")->public_port, 9100);
  auto none = store->allocate_port("01zz", 9000, 9002);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found");
  EXPECT_FALSE(store->allocate_port("01p1", 9002, 9000).ok());
  EXPECT_FALSE(store->allocate_port("01p1", 0, 10).ok());
}

TEST_P(StableUrlStoreTest, TheStoreRefusesOnePortToTwoDeployments) {
  ASSERT_TRUE(store->create(deployment("01u1", "u1")).ok());
  ASSERT_TRUE(store->create(deployment("01u2", "u2")).ok());
  ASSERT_EQ(*store->allocate_port("01u1", 9000, 9010), 9000);
  auto d = *store->get("01u2");
  d.public_port = 9000;  // a buggy writer: the unique index stops it
  EXPECT_FALSE(store->update(d).ok());
  EXPECT_EQ(store->get("01u2")->public_port, 0);
}

TEST_P(StableUrlStoreTest, ServersRacingForPortsGetDifferentOnes) {
  constexpr int kServers = 4, kEach = 5;
  for (int i = 0; i < kServers * kEach; ++i)
    ASSERT_TRUE(store->create(deployment("01q" + std::to_string(100 + i), "q" + std::to_string(i))).ok());
  std::vector<std::unique_ptr<ads::Store>> stores;
  stores.reserve(static_cast<size_t>(kServers));
  for (int i = 0; i < kServers; ++i) stores.push_back(open());
  std::mutex mu;
  std::vector<int> got;
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  ts.reserve(static_cast<size_t>(kServers));
  for (int i = 0; i < kServers; ++i) {
    ts.emplace_back([&, i] {
      for (int k = 0; k < kEach; ++k) {
        auto p = stores[i]->allocate_port("01q" + std::to_string(100 + i * kEach + k), 9000, 9999);
        std::lock_guard<std::mutex> lk(mu);
        if (p.ok()) got.push_back(*p);
        else ++errors;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(got.size(), static_cast<size_t>(kServers * kEach));
  EXPECT_EQ(std::set<int>(got.begin(), got.end()).size(), got.size());
}

TEST_P(StableUrlStoreTest, TheStableUrlIsKept) {
  auto d = deployment("01s1", "kept");
  d.stable_url = "http://kept.labs.example.org/";
  d.public_port = 0;
  ASSERT_TRUE(store->create(d).ok());
  EXPECT_EQ(store->get("01s1")->stable_url, "http://kept.labs.example.org/");
  d.stable_url = "http://host:8100/";
  d.public_port = 8100;
  ASSERT_TRUE(store->update(d).ok());
  auto back = open()->get("01s1");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->stable_url, "http://host:8100/");
  EXPECT_EQ(back->public_port, 8100);
}

INSTANTIATE_TEST_SUITE_P(Backends, StableUrlStoreTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
