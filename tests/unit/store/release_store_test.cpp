// Releases in the store (core/deployment.h Release), on every backend: the
// rows round-trip, a deployment's releases come back by number, a number is
// never given twice, and a switch changes the deployment and its releases
// together or not at all.
#include <gtest/gtest.h>

#include "store/store.h"
#include "support/store_backends.h"

namespace {

ads::Deployment deployment(const std::string& id) {
  ads::Deployment d;
  d.id = id;
  d.name = "cse02";
  d.source = "/labs/cse02";
  d.provider = "lxd";
  d.state = ads::State::kRunning;
  d.machine = "ads-" + id;
  d.address = "10.0.0.2";
  d.secret = "old-secret";
  d.commit = std::string(40, 'a');
  return d;
}

ads::Release release(const std::string& id, const std::string& deployment_id, int64_t seq, const std::string& state) {
  ads::Release r;
  r.id = id;
  r.deployment_id = deployment_id;
  r.seq = seq;
  r.state = state;
  r.ref = "v" + std::to_string(seq);
  r.commit = std::string(40, static_cast<char>('a' + seq));
  r.machine = "ads-" + deployment_id + "-r" + std::to_string(seq);
  r.address = "10.0.0." + std::to_string(seq + 10);
  r.url = "http://" + r.address + "/";
  r.secret = "secret-" + std::to_string(seq);
  r.spec_json = R"({"path":"ads-lab.json","text":"{}"})";
  r.by = "alice";
  r.job_id = "01jjjjjjjjjjjjjjjjjjjjjjj" + std::to_string(seq);
  r.created_ms = 1700000000000 + seq;
  r.updated_ms = r.created_ms;
  return r;
}

class ReleaseStoreTest : public ads::test::BackendTest {};

const std::string kD = "01dddddddddddddddddddddddd";

TEST_P(ReleaseStoreTest, RowsRoundTripInOrderOfTheirNumbers) {
  auto s = open();
  ASSERT_TRUE(s->create(deployment(kD)).ok());
  ASSERT_TRUE(s->add_release(release("01rrrrrrrrrrrrrrrrrrrrrrr2", kD, 2, "building")).ok());
  ASSERT_TRUE(s->add_release(release("01rrrrrrrrrrrrrrrrrrrrrrr1", kD, 1, "serving")).ok());
  auto got = s->get_release("01rrrrrrrrrrrrrrrrrrrrrrr2");
  ASSERT_TRUE(got.ok()) << got.error().message;
  auto want = release("01rrrrrrrrrrrrrrrrrrrrrrr2", kD, 2, "building");
  EXPECT_EQ(got->deployment_id, kD);
  EXPECT_EQ(got->seq, 2);
  EXPECT_EQ(got->state, "building");
  EXPECT_EQ(got->ref, want.ref);
  EXPECT_EQ(got->commit, want.commit);
  EXPECT_EQ(got->machine, want.machine);
  EXPECT_EQ(got->address, want.address);
  EXPECT_EQ(got->url, want.url);
  EXPECT_EQ(got->secret, want.secret);
  EXPECT_EQ(got->spec_json, want.spec_json);
  EXPECT_EQ(got->by, "alice");
  EXPECT_EQ(got->job_id, want.job_id);
  EXPECT_EQ(got->created_ms, want.created_ms);
  auto all = s->releases_of(kD);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].seq, 1);
  EXPECT_EQ((*all)[1].seq, 2);
  // updated in place, found by id
  got->state = "failed";
  got->error = "install failed with exit code 2";
  got->machine.clear();
  ASSERT_TRUE(s->update_release(*got).ok());
  auto again = s->get_release(got->id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, "failed");
  EXPECT_EQ(again->error, "install failed with exit code 2");
  EXPECT_EQ(again->machine, "");
}

TEST_P(ReleaseStoreTest, ANumberIsNeverGivenTwiceAndUnknownsAreRefused) {
  auto s = open();
  ASSERT_TRUE(s->create(deployment(kD)).ok());
  ASSERT_TRUE(s->add_release(release("01rrrrrrrrrrrrrrrrrrrrrrr1", kD, 1, "serving")).ok());
  auto dup = s->add_release(release("01rrrrrrrrrrrrrrrrrrrrrrr9", kD, 1, "building"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "conflict");
  auto orphan = s->add_release(release("01rrrrrrrrrrrrrrrrrrrrrrr8", "01nnnnnnnnnnnnnnnnnnnnnnnn", 1, "building"));
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, "conflict");
  EXPECT_EQ(s->get_release("01rrrrrrrrrrrrrrrrrrrrrrr7").error().code, "not_found");
  EXPECT_EQ(s->update_release(release("01rrrrrrrrrrrrrrrrrrrrrrr7", kD, 7, "kept")).error().code, "not_found");
}

TEST_P(ReleaseStoreTest, ASwitchChangesTheDeploymentAndItsReleasesTogetherOrNotAtAll) {
  auto s = open();
  auto d = deployment(kD);
  ASSERT_TRUE(s->create(d).ok());
  ASSERT_TRUE(s->create(deployment("01eeeeeeeeeeeeeeeeeeeeeeee")).ok());
  auto r1 = release("01rrrrrrrrrrrrrrrrrrrrrrr1", kD, 1, "serving");
  auto r2 = release("01rrrrrrrrrrrrrrrrrrrrrrr2", kD, 2, "building");
  ASSERT_TRUE(s->add_release(r1).ok());
  ASSERT_TRUE(s->add_release(r2).ok());
  // a release of another deployment in the batch: nothing is written
  auto other = release("01rrrrrrrrrrrrrrrrrrrrrrr3", "01eeeeeeeeeeeeeeeeeeeeeeee", 1, "serving");
  ASSERT_TRUE(s->add_release(other).ok());
  auto bad_d = d;
  bad_d.machine = r2.machine;
  r1.state = "kept";
  auto refused = s->switch_release(bad_d, {r1, other});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(s->get(kD)->machine, d.machine);
  EXPECT_EQ(s->get_release(r1.id)->state, "serving");
  // a missing release in the batch: nothing is written either
  auto ghost = release("01rrrrrrrrrrrrrrrrrrrrrrr6", kD, 6, "kept");
  ASSERT_FALSE(s->switch_release(bad_d, {r1, ghost}).ok());
  EXPECT_EQ(s->get(kD)->machine, d.machine);
  EXPECT_EQ(s->get_release(r1.id)->state, "serving");
  // the real switch
  r2.state = "serving";
  ASSERT_TRUE(s->switch_release(bad_d, {r2, r1}).ok());
  EXPECT_EQ(s->get(kD)->machine, r2.machine);
  EXPECT_EQ(s->get_release(r1.id)->state, "kept");
  EXPECT_EQ(s->get_release(r2.id)->state, "serving");
}

INSTANTIATE_TEST_SUITE_P(Backends, ReleaseStoreTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
