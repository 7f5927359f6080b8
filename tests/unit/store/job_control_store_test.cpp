// Job control in the store, on every backend (SQLite on a real file,
// PostgreSQL on a real server on loopback): fair share in claim_job (the
// owner with the fewest jobs leased comes first; a per-server cap per owner),
// request_cancel (a queued job ends at once, a running one is marked for its
// server, an ended one is a conflict), and a destroy admitted behind a job
// being cancelled.
#include <gtest/gtest.h>

#include "support/store_backends.h"

namespace {

class JobControlStore : public ads::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    store = open();
    ASSERT_NE(store, nullptr);
  }
  // A deployment of `owner` with one queued job; ids sort in the order made.
  void add(const std::string& dep, const std::string& job_id, const std::string& owner,
           const std::string& kind = "deploy") {
    ads::Deployment d;
    d.id = dep;
    d.name = "lab-" + dep;  // two live labs never share a name
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.owner = owner;
    d.created_ms = d.updated_ms = 1;
    ads::Job j;
    j.id = job_id;
    j.deployment_id = dep;
    j.kind = kind;
    j.created_ms = j.updated_ms = 1;
    ASSERT_TRUE(store->admit_job(j, {owner, 0}, &d).ok());
  }
  std::string claim(const std::string& server, int64_t now, int cap = 0) {
    auto r = store->claim_job(server, now, 60000, cap);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() && r->has_value() ? (*r)->id : "";
  }
  std::unique_ptr<ads::Store> store;
};

TEST_P(JobControlStore, ClaimsGoToTheOwnerWithTheFewestJobsUnderWayFirst) {
  // ann queued three jobs before bob queued one
  add("01da1", "01ja1", "ann");
  add("01da2", "01ja2", "ann");
  add("01da3", "01ja3", "ann");
  add("01db1", "01jb1", "bob");
  EXPECT_EQ(claim("s1", 1000), "01ja1");  // nobody has anything: the oldest
  EXPECT_EQ(claim("s1", 1000), "01jb1");  // ann has one under way, bob none: bob's, though younger
  EXPECT_EQ(claim("s1", 1000), "01ja2");  // one each: the oldest
  EXPECT_EQ(claim("s1", 1000), "01ja3");
  EXPECT_EQ(claim("s1", 1000), "");
}

TEST_P(JobControlStore, OneOwnerNeverHoldsMoreThanItsShareOfAServer) {
  add("01da1", "01ja1", "ann");
  add("01da2", "01ja2", "ann");
  add("01da3", "01ja3", "ann");
  EXPECT_EQ(claim("s1", 1000, 2), "01ja1");
  EXPECT_EQ(claim("s1", 1000, 2), "01ja2");
  // ann holds two of s1's workers: her third job waits, even with s1 idle...
  EXPECT_EQ(claim("s1", 1000, 2), "");
  // ...while another owner's job is taken at once
  add("01db1", "01jb1", "bob");
  EXPECT_EQ(claim("s1", 1000, 2), "01jb1");
  // the cap is per server: another server may take ann's third
  EXPECT_EQ(claim("s2", 1000, 2), "01ja3");
  // a lease that lapsed (its server died) no longer counts against her
  add("01da4", "01ja4", "ann");
  EXPECT_EQ(claim("s1", 1000, 2), "");
  EXPECT_EQ(claim("s1", 1000 + 60001, 2), "01ja1");  // every lease lapsed: the oldest, taken over
}

TEST_P(JobControlStore, AQueuedJobIsCancelledAtOnce) {
  add("01da1", "01ja1", "ann");
  auto c = store->request_cancel("01ja1", 5000, "cancelled (asked by ann)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->state, "cancelled");
  EXPECT_EQ(c->error, "cancelled (asked by ann)");
  auto j = store->get_job("01ja1").value();
  EXPECT_EQ(j.state, "cancelled");
  EXPECT_EQ(j.updated_ms, 5000);
  // nobody can claim it any more, and a second cancel is a conflict
  EXPECT_EQ(claim("s1", 6000), "");
  auto again = store->request_cancel("01ja1", 6000, "x");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "conflict");
  auto none = store->request_cancel("01jzz", 6000, "x");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found");
}

TEST_P(JobControlStore, ARunningJobIsMarkedForItsServer) {
  add("01da1", "01ja1", "ann");
  ASSERT_EQ(claim("s1", 1000), "01ja1");  // claimed: still "queued" until its worker records it running
  auto c = store->request_cancel("01ja1", 2000, "x");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->state, "queued");
  EXPECT_EQ(c->cancel_requested_ms, 2000);
  // the mark stays as it was first made, and update_job leaves it alone
  auto j = store->get_job("01ja1").value();
  j.state = "running";
  j.cancel_requested_ms = 0;
  ASSERT_TRUE(store->update_job(j).ok());
  EXPECT_EQ(store->request_cancel("01ja1", 3000, "x")->cancel_requested_ms, 2000);
  EXPECT_EQ(store->get_job("01ja1")->cancel_requested_ms, 2000);
  EXPECT_EQ(store->get_job("01ja1")->state, "running");
  // a finished job: conflict
  j.state = "succeeded";
  ASSERT_TRUE(store->update_job(j).ok());
  auto late = store->request_cancel("01ja1", 4000, "x");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "conflict");
}

TEST_P(JobControlStore, ADestroyQueuesBehindAJobBeingCancelledOnly) {
  add("01da1", "01ja1", "ann");
  ASSERT_EQ(claim("s1", 1000), "01ja1");
  ads::Job destroy;
  destroy.id = "01ja2";
  destroy.deployment_id = "01da1";
  destroy.kind = "destroy";
  destroy.created_ms = destroy.updated_ms = 1;
  ads::Store::Admission behind{"ann", 0, true};
  // the running job is not being cancelled: still a conflict
  auto refused = store->admit_job(destroy, behind);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "conflict");
  ASSERT_TRUE(store->request_cancel("01ja1", 2000, "x").ok());
  // without the flag, still one job at a time
  auto plain = store->admit_job(destroy, {"ann", 0});
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().code, "conflict");
  EXPECT_GT(store->get_job("01ja1")->cancel_requested_ms, 0);
  auto admitted = store->admit_job(destroy, behind);
  ASSERT_TRUE(admitted.ok()) << admitted.error().message;
  // the destroy waits for the cancelled job to end
  EXPECT_EQ(claim("s2", 1500), "");
  auto j = store->get_job("01ja1").value();
  j.state = "cancelled";
  ASSERT_TRUE(store->update_job(j).ok());
  EXPECT_EQ(claim("s2", 1500), "01ja2");
}

INSTANTIATE_TEST_SUITE_P(Backends, JobControlStore, ads::test::kBackends, ads::test::backend_name);

}  // namespace
