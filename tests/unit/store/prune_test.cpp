// Issue 14.9: retention on both stores. Destroyed deployments older than the
// cut-off lose their logs; those without a backup (and without a job under
// way) are forgotten with their jobs and releases; nothing else is touched.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "support/store_backends.h"

namespace {

class Prune : public ads::test::BackendTest {
 protected:
  void add(ads::Store& s, const std::string& id, ads::State state, int64_t updated_ms, int log_lines) {
    ads::Deployment d;
    d.id = id;
    d.name = "lab";
    d.source = "/srv/lab";
    d.provider = "lxd";
    d.state = state;
    d.owner = "admin";
    d.created_ms = 1;
    d.updated_ms = updated_ms;
    ASSERT_TRUE(s.create(d).ok());
    for (int i = 0; i < log_lines; ++i) {
      ads::LogLine l;
      l.ts_ms = 1;
      l.stream = "stdout";
      l.text = "line " + std::to_string(i);
      ASSERT_TRUE(s.append_log(id, l).ok());
    }
    ads::Job j;
    j.id = id.substr(0, 25) + "j";
    j.deployment_id = id;
    j.kind = "deploy";
    j.state = "succeeded";
    j.created_ms = j.updated_ms = 1;
    ASSERT_TRUE(s.create_job(j).ok());
  }
};

TEST_P(Prune, ForgetsOldDestroyedDeploymentsAndKeepsEverythingElse) {
  auto s = open();
  ASSERT_TRUE(s);
  const int64_t cut = 1000000;
  const std::string gone = "01m88rqkev9cbfs1eqysk66p00", backed = "01m88rqkev9cbfs1eqysk66p10",
                    recent = "01m88rqkev9cbfs1eqysk66p20", running = "01m88rqkev9cbfs1eqysk66p30",
                    busy = "01m88rqkev9cbfs1eqysk66p40";
  add(*s, gone, ads::State::kDestroyed, cut - 1, 5);
  add(*s, backed, ads::State::kDestroyed, cut - 1, 4);
  add(*s, recent, ads::State::kDestroyed, cut, 3);
  add(*s, running, ads::State::kRunning, 1, 2);
  add(*s, busy, ads::State::kDestroyed, cut - 1, 1);
  ads::Backup b;
  b.id = "01m88rqkev9cbfs1eqysk66p11";
  b.deployment_id = backed;
  b.created_ms = 1;
  ASSERT_TRUE(s->add_backup(b).ok());
  ads::Job restore;  // a restore of it queued: not forgotten under the job
  restore.id = "01m88rqkev9cbfs1eqysk66p41";
  restore.deployment_id = busy;
  restore.kind = "restore";
  restore.state = "queued";
  restore.created_ms = restore.updated_ms = 2;
  ASSERT_TRUE(s->create_job(restore).ok());

  auto r = s->prune_destroyed(cut);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->log_lines, 5 + 4 + 1);
  EXPECT_EQ(r->deployments, 1);
  EXPECT_EQ(r->jobs, 1);
  EXPECT_EQ(s->get(gone).error().code, "not_found");
  EXPECT_TRUE(s->jobs_of(gone)->empty());
  // a backup can bring it back: the record stays, its log goes
  ASSERT_TRUE(s->get(backed).ok());
  EXPECT_TRUE(s->logs(backed, 0, 100)->empty());
  EXPECT_EQ(s->jobs_of(backed)->size(), 1u);
  EXPECT_EQ(s->backups_of(backed)->size(), 1u);
  EXPECT_EQ(s->logs(recent, 0, 100)->size(), 3u);
  EXPECT_EQ(s->logs(running, 0, 100)->size(), 2u);
  ASSERT_TRUE(s->get(busy).ok());
  EXPECT_EQ(s->jobs_of(busy)->size(), 2u);
  // again: nothing more to do
  r = s->prune_destroyed(cut);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->log_lines + r->deployments + r->jobs, 0);
  // a new deployment can take the forgotten one's idempotency key... and its
  // id is free: the store is consistent after the deletes
  add(*s, gone, ads::State::kRunning, 5, 1);
  EXPECT_EQ(s->logs(gone, 0, 100)->front().seq, 1);
}

// A lab that was released (release rows, one per machine it had) is
// forgotten with its releases; they referred to it and held the prune up.
TEST_P(Prune, ForgetsAReleasedLabWithItsReleases) {
  auto s = open();
  ASSERT_TRUE(s);
  const int64_t cut = 1000000;
  const std::string gone = "01m88rqkev9cbfs1eqysk66p50", kept = "01m88rqkev9cbfs1eqysk66p60";
  add(*s, gone, ads::State::kDestroyed, cut - 1, 2);
  add(*s, kept, ads::State::kRunning, 1, 1);
  int n = 0;
  for (const auto& [dep, state] :
       std::vector<std::pair<std::string, std::string>>{{gone, "removed"}, {gone, "removed"}, {kept, "serving"}}) {
    ads::Release r;
    r.id = "01m88rqkev9cbfs1eqysk66r" + std::to_string(n) + "0";
    r.deployment_id = dep;
    r.seq = ++n;
    r.state = state;
    r.created_ms = r.updated_ms = 1;
    ASSERT_TRUE(s->add_release(r).ok());
  }
  auto r = s->prune_destroyed(cut);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployments, 1);
  EXPECT_EQ(s->get(gone).error().code, "not_found");
  EXPECT_TRUE(s->releases_of(gone)->empty());
  ASSERT_TRUE(s->get(kept).ok());
  EXPECT_EQ(s->releases_of(kept)->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, Prune, ads::test::kBackends, ads::test::backend_name);

}  // namespace
