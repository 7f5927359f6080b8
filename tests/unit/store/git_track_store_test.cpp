// Tracked branches in the store (core/git_push.h GitTrack), on every backend:
// a track round-trips and is replaced whole, a delivery id is new once (a
// replay is refused) and only the newest ids are kept, a pending commit is
// taken only while it is still the one read, and a track goes with its
// deployment.
#include <gtest/gtest.h>

#include "store/store.h"
#include "support/store_backends.h"

namespace {

const std::string kD = "01dddddddddddddddddddddddd";

ads::Deployment deployment(const std::string& id) {
  ads::Deployment d;
  d.id = id;
  d.name = "web-" + id.substr(20);
  d.source = "/labs/web";
  d.provider = "lxd";
  d.state = ads::State::kRunning;
  return d;
}

ads::GitTrack track(const std::string& id) {
  ads::GitTrack t;
  t.deployment_id = id;
  t.branch = "main";
  t.secret = std::string(64, 'f');
  t.poll_s = 60;
  t.created_ms = 1700000000000;
  t.updated_ms = t.created_ms;
  return t;
}

class GitTrackStoreTest : public ads::test::BackendTest {};

TEST_P(GitTrackStoreTest, ATrackRoundTripsAndIsReplacedWhole) {
  auto s = open();
  EXPECT_EQ(s->put_track(track(kD)).error().code, "not_found");  // no such deployment
  ASSERT_TRUE(s->create(deployment(kD)).ok());
  EXPECT_EQ(s->get_track(kD).error().code, "not_found");
  ASSERT_TRUE(s->put_track(track(kD)).ok());
  auto got = s->get_track(kD);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->branch, "main");
  EXPECT_EQ(got->secret, std::string(64, 'f'));
  EXPECT_EQ(got->poll_s, 60);
  EXPECT_EQ(got->created_ms, 1700000000000);
  auto t = track(kD);
  t.branch = "release/2";
  t.poll_s = 0;
  t.secret = std::string(64, 'e');
  ASSERT_TRUE(s->put_track(t).ok());
  got = s->get_track(kD);
  EXPECT_EQ(got->branch, "release/2");
  EXPECT_EQ(got->poll_s, 0);
  EXPECT_EQ(got->secret, std::string(64, 'e'));
  ASSERT_EQ(s->tracks()->size(), 1u);
  ASSERT_TRUE(s->delete_track(kD).ok());
  EXPECT_EQ(s->get_track(kD).error().code, "not_found");
  EXPECT_TRUE(s->tracks()->empty());
  EXPECT_TRUE(s->delete_track(kD).ok());  // nothing to forget: fine
}

TEST_P(GitTrackStoreTest, ADeliveryIsNewOnceAndOnlyTheNewestAreKept) {
  auto s = open();
  ASSERT_TRUE(s->create(deployment(kD)).ok());
  ASSERT_TRUE(s->create(deployment("01eeeeeeeeeeeeeeeeeeeeeeee")).ok());
  ASSERT_TRUE(s->put_track(track(kD)).ok());
  EXPECT_TRUE(*s->note_delivery(kD, "d-1", 1, 3));
  EXPECT_FALSE(*s->note_delivery(kD, "d-1", 2, 3));                           // a replay
  EXPECT_TRUE(*s->note_delivery("01eeeeeeeeeeeeeeeeeeeeeeee", "d-1", 2, 3));  // another deployment's ids are its own
  EXPECT_TRUE(*s->note_delivery(kD, "d-2", 3, 3));
  EXPECT_TRUE(*s->note_delivery(kD, "d-3", 4, 3));
  EXPECT_TRUE(*s->note_delivery(kD, "d-4", 5, 3));  // d-1 goes: three kept
  EXPECT_FALSE(*s->note_delivery(kD, "d-4", 6, 3));
  EXPECT_FALSE(*s->note_delivery(kD, "d-2", 6, 3));
  EXPECT_TRUE(*s->note_delivery(kD, "d-1", 7, 3));  // forgotten, so new again (the bound)
  // untracking forgets the ids too
  ASSERT_TRUE(s->delete_track(kD).ok());
  EXPECT_TRUE(*s->note_delivery(kD, "d-4", 8, 3));
}

TEST_P(GitTrackStoreTest, APendingCommitIsTakenOnlyWhileItIsTheOneRead) {
  auto s = open();
  ASSERT_TRUE(s->create(deployment(kD)).ok());
  EXPECT_EQ(s->set_pending(kD, std::string(40, 'a'), 5).error().code, "not_found");  // tracks nothing
  ASSERT_TRUE(s->put_track(track(kD)).ok());
  ASSERT_TRUE(s->set_pending(kD, std::string(40, 'a'), 5).ok());
  EXPECT_EQ(s->get_track(kD)->pending_commit, std::string(40, 'a'));
  ASSERT_TRUE(s->set_pending(kD, std::string(40, 'b'), 6).ok());  // a newer push replaces it
  EXPECT_FALSE(*s->take_pending(kD, std::string(40, 'a')));       // read before the newer push: not taken
  EXPECT_EQ(s->get_track(kD)->pending_commit, std::string(40, 'b'));
  EXPECT_TRUE(*s->take_pending(kD, std::string(40, 'b')));
  EXPECT_EQ(s->get_track(kD)->pending_commit, "");
  ASSERT_TRUE(s->set_polled(kD, 99).ok());
  EXPECT_EQ(s->get_track(kD)->polled_ms, 99);
}

TEST_P(GitTrackStoreTest, ATrackGoesWithItsPrunedDeployment) {
  auto s = open();
  auto d = deployment(kD);
  d.state = ads::State::kDestroyed;
  d.updated_ms = 1;
  ASSERT_TRUE(s->create(d).ok());
  ASSERT_TRUE(s->put_track(track(kD)).ok());
  ASSERT_TRUE(*s->note_delivery(kD, "d-1", 1, 3));
  auto pruned = s->prune_destroyed(1000);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(pruned->deployments, 1);
  EXPECT_EQ(s->get_track(kD).error().code, "not_found");
}

INSTANTIATE_TEST_SUITE_P(Backends, GitTrackStoreTest, ads::test::kBackends, ads::test::backend_name);

}  // namespace
