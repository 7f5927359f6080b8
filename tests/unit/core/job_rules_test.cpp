#include "core/job_rules.h"

#include <gtest/gtest.h>

namespace {
using ads::State;

TEST(JobRules, EveryJobKindHasRulesInTheSameOrder) {
  const auto& rules = ads::all_job_rules();
  ASSERT_EQ(rules.size(), ads::job_kinds().size());
  for (size_t i = 0; i < rules.size(); ++i) {
    EXPECT_EQ(rules[i].kind, ads::job_kinds()[i]);
    EXPECT_EQ(ads::job_rules(rules[i].kind), &rules[i]);
  }
  EXPECT_EQ(ads::job_rules("format"), nullptr);
  EXPECT_EQ(ads::job_rules(""), nullptr);
}

TEST(JobRules, OnlyDeployIsNotAnOperationAndNeverQueuedOnAnExistingDeployment) {
  for (const auto& r : ads::all_job_rules()) {
    EXPECT_EQ(r.operation, r.kind != "deploy") << r.kind;
    if (!r.operation) {
      EXPECT_TRUE(r.accepted_in.empty());
    }
  }
}

TEST(JobRules, StatesEachKindAccepts) {
  auto ok = [](const char* kind, State s) { return ads::accepts(*ads::job_rules(kind), s); };
  EXPECT_TRUE(ok("test", State::kRunning));
  EXPECT_FALSE(ok("test", State::kStopped));
  EXPECT_TRUE(ok("start", State::kStopped));
  EXPECT_TRUE(ok("destroy", State::kFailed));
  EXPECT_FALSE(ok("backup", State::kFailed));
  EXPECT_TRUE(ok("restore", State::kDestroyed));
  EXPECT_FALSE(ok("restore", State::kFailed));
  for (State s : ads::all_states()) {
    // no operation is ever queued on a deployment mid-pipeline
    if (ads::is_settled(s)) continue;
    for (const auto& r : ads::all_job_rules())
      EXPECT_FALSE(ads::accepts(r, s)) << r.kind << " in " << ads::to_string(s);
  }
}

TEST(JobRules, WhatRunsAgainAfterAStoppedServer) {
  for (const char* k : {"start", "stop", "restart", "test", "destroy", "delete-backup", "release", "rollback", "check"})
    EXPECT_TRUE(ads::job_rules(k)->resumable) << k;
  for (const char* k : {"deploy", "backup", "restore"}) EXPECT_FALSE(ads::job_rules(k)->resumable) << k;
  EXPECT_TRUE(ads::job_rules("restore")->needs_backup);
  EXPECT_TRUE(ads::job_rules("delete-backup")->needs_backup);
}

TEST(JobRules, WhatACancelLeavesAndWhatTheLimitNeverRefuses) {
  using C = ads::JobRules::OnCancel;
  // on the way to running: rolled back; a destroy: failed, to destroy again
  EXPECT_EQ(ads::job_rules("deploy")->on_cancel, C::kRollBack);
  EXPECT_EQ(ads::job_rules("restore")->on_cancel, C::kRollBack);
  EXPECT_EQ(ads::job_rules("destroy")->on_cancel, C::kFailDeployment);
  for (const char* k : {"start", "stop", "restart", "test", "backup", "delete-backup", "check"})
    EXPECT_EQ(ads::job_rules(k)->on_cancel, C::kKeepState) << k;
  for (const auto& r : ads::all_job_rules())
    EXPECT_EQ(r.cleanup, r.kind == "destroy" || r.kind == "delete-backup") << r.kind;
  EXPECT_EQ(std::string(ads::describe(C::kRollBack)), "rolled back");
}

TEST(JobRules, ReleasesRollbacksAndChecksOnlyOfARunningLab) {
  for (const char* k : {"release", "rollback", "check"})
    for (State s : ads::all_states())
      EXPECT_EQ(ads::accepts(*ads::job_rules(k), s), s == State::kRunning) << k << " in " << ads::to_string(s);
}
}  // namespace
