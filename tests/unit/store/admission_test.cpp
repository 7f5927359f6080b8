// Store::admit_job, run against every backend (SQLite on a real file,
// PostgreSQL on a real server the test starts on loopback): one unfinished
// job per deployment and a limit of unfinished jobs per owner, checked in the
// transaction that inserts the job; and held under races between several
// Stores on one database (as several ADS servers would be).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/store_backends.h"

namespace {

class AdmissionTest : public ads::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    store = open();
    ASSERT_NE(store, nullptr);
  }
  static ads::Deployment deployment(const std::string& id, const std::string& owner) {
    ads::Deployment d;
    d.id = id;
    d.name = "lab-" + id;  // live labs' names are unique (stable_url_test.cpp)
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.owner = owner;
    d.created_ms = d.updated_ms = 1;
    return d;
  }
  static ads::Job job(const std::string& id, const std::string& deployment_id, const std::string& kind = "deploy") {
    ads::Job j;
    j.id = id;
    j.deployment_id = deployment_id;
    j.kind = kind;
    j.created_ms = j.updated_ms = 1;
    return j;
  }
  int64_t jobs_of(const std::string& id) {
    auto j = store->jobs_of(id);
    return j.ok() ? static_cast<int64_t>(j->size()) : -1;
  }
  std::unique_ptr<ads::Store> store;
};

TEST_P(AdmissionTest, ADeployInsertsTheDeploymentAndItsJobTogether) {
  auto d = deployment("01d1", "ann");
  ASSERT_TRUE(store->admit_job(job("01j1", "01d1"), {"ann", 2}, &d).ok());
  EXPECT_EQ(store->get("01d1")->owner, "ann");
  EXPECT_EQ(jobs_of("01d1"), 1);
  // the same deployment id again: refused, and its job with it
  auto again = store->admit_job(job("01j2", "01d1"), {"ann", 2}, &d);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "conflict");
  EXPECT_FALSE(store->get_job("01j2").ok());
}

TEST_P(AdmissionTest, OneUnfinishedJobPerDeployment) {
  auto d = deployment("01d1", "ann");
  ASSERT_TRUE(store->admit_job(job("01j1", "01d1"), {}, &d).ok());
  auto second = store->admit_job(job("01j2", "01d1", "stop"), {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "conflict");
  EXPECT_NE(second.error().message.find("deploy job (01j1)"), std::string::npos) << second.error().message;
  EXPECT_EQ(jobs_of("01d1"), 1);
  auto first = *store->get_job("01j1");
  first.state = "succeeded";
  ASSERT_TRUE(store->update_job(first).ok());
  EXPECT_TRUE(store->admit_job(job("01j2", "01d1", "stop"), {}).ok());
  EXPECT_EQ(jobs_of("01d1"), 2);
}

TEST_P(AdmissionTest, TheOwnersLimitCountsUnfinishedJobsOnItsOwnDeployments) {
  for (int i = 1; i <= 2; ++i) {
    auto d = deployment("01a" + std::to_string(i), "ann");
    ASSERT_TRUE(store->admit_job(job("01ja" + std::to_string(i), d.id), {"ann", 2}, &d).ok());
  }
  // bob's jobs do not count for ann, nor ann's for bob
  auto b = deployment("01b1", "bob");
  ASSERT_TRUE(store->admit_job(job("01jb1", "01b1"), {"bob", 1}, &b).ok());
  auto over = deployment("01a3", "ann");
  auto r = store->admit_job(job("01ja3", "01a3"), {"ann", 2}, &over);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "too_many");
  EXPECT_NE(r.error().message.find("ann has 2 jobs under way (limit 2)"), std::string::npos) << r.error().message;
  EXPECT_FALSE(store->get("01a3").ok()) << "a refused deploy leaves no deployment behind";
  // no limit: admitted
  EXPECT_TRUE(store->admit_job(job("01ja3", "01a3"), {"ann", 0}, &over).ok());
  // a finished job frees a place
  auto j = *store->get_job("01ja1");
  j.state = "failed";
  ASSERT_TRUE(store->update_job(j).ok());
  j = *store->get_job("01ja2");
  j.state = "succeeded";
  ASSERT_TRUE(store->update_job(j).ok());
  EXPECT_TRUE(store->admit_job(job("01ja4", "01a1", "destroy"), {"ann", 2}).ok());
}

// Several Stores on one database (several servers), each on its own thread,
// admit deploys for one owner at once: exactly the limit get through.
TEST_P(AdmissionTest, ServersRacingForTheLastPlacesLetExactlyTheLimitThrough) {
  constexpr int kServers = 4, kTries = 5, kLimit = 3;
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
      for (int k = 0; k < kTries; ++k) {
        std::string n = std::to_string(i) + std::to_string(k);
        auto d = deployment("01r" + n, "ann");
        auto r = stores[i]->admit_job(job("01jr" + n, d.id), {"ann", kLimit}, &d);
        if (r.ok()) ++admitted;
        else if (r.error().code == "too_many") ++refused;
        else ++other;
      }
    });
  }
  go = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted, kLimit);
  EXPECT_EQ(refused, kServers * kTries - kLimit);
  EXPECT_EQ(other, 0);
  auto unfinished = store->unfinished_jobs();
  ASSERT_TRUE(unfinished.ok());
  EXPECT_EQ(unfinished->size(), static_cast<size_t>(kLimit));
}

INSTANTIATE_TEST_SUITE_P(Backends, AdmissionTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
