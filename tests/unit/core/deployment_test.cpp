// The deployment state machine (core/deployment.h).
#include "core/deployment.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {
using ads::State;

const std::vector<std::pair<State, std::string>> kExpectedNames = {
    {State::kAccepted, "accepted"},
    {State::kFetching, "fetching"},
    {State::kValidating, "validating"},
    {State::kProvisioning, "provisioning"},
    {State::kStartingAgent, "starting_agent"},
    {State::kUploading, "uploading"},
    {State::kInstalling, "installing"},
    {State::kStarting, "starting"},
    {State::kVerifying, "verifying"},
    {State::kRunning, "running"},
    {State::kFailed, "failed"},
    {State::kDestroying, "destroying"},
    {State::kDestroyed, "destroyed"},
    {State::kStopped, "stopped"},
};

// States in which the pipeline is doing work (all pipeline states but running).
const std::vector<State> kWorking = {State::kAccepted,     State::kFetching,      State::kValidating,
                                     State::kProvisioning, State::kStartingAgent, State::kUploading,
                                     State::kInstalling,   State::kStarting,      State::kVerifying};

TEST(DeploymentStates, NamesAreStableAndRoundTrip) {
  ASSERT_EQ(ads::all_states().size(), kExpectedNames.size());
  std::set<std::string> seen;
  for (const auto& [state, name] : kExpectedNames) {
    EXPECT_EQ(ads::to_string(state), name);
    auto back = ads::state_from_string(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, state) << name;
    seen.insert(ads::to_string(state));
  }
  EXPECT_EQ(seen.size(), kExpectedNames.size());  // no two states share a name
  for (State s : ads::all_states()) EXPECT_EQ(ads::state_from_string(ads::to_string(s)), s);
}

TEST(DeploymentStates, UnknownNamesAreRefused) {
  for (std::string bad : {"", "unknown", "sideways", "Running", "RUNNING", " running", "running ", "starting-agent",
                          "startingAgent", "destroy"})
    EXPECT_EQ(ads::state_from_string(bad), std::nullopt) << bad;
}

TEST(DeploymentStates, PipelineIsTheDocumentedOrder) {
  const std::vector<State> expected = {
      State::kAccepted,  State::kFetching,   State::kValidating, State::kProvisioning, State::kStartingAgent,
      State::kUploading, State::kInstalling, State::kStarting,   State::kVerifying,    State::kRunning};
  EXPECT_EQ(ads::pipeline(), expected);
}

TEST(DeploymentStates, SettledStatesAreThoseWithNoWorkUnderWay) {
  const std::set<State> settled = {State::kRunning, State::kFailed, State::kDestroyed, State::kStopped};
  for (State s : ads::all_states()) EXPECT_EQ(ads::is_settled(s), settled.count(s) == 1) << ads::to_string(s);
}

TEST(DeploymentTransitions, PipelineStepsInOrderAndFailureFromEveryWorkingStep) {
  const auto& p = ads::pipeline();
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    EXPECT_TRUE(ads::can_transition(p[i], p[i + 1])) << ads::to_string(p[i]);
    EXPECT_TRUE(ads::can_transition(p[i], State::kFailed)) << ads::to_string(p[i]);
  }
}

TEST(DeploymentTransitions, NoSkippingNoGoingBackButToTheStartAndNoSelfLoops) {
  const auto& p = ads::pipeline();
  for (size_t i = 0; i < p.size(); ++i) {
    for (size_t j = 0; j < p.size(); ++j) {
      if (j == i + 1) continue;
      // a deploy cut off by a stopped server starts again from accepted
      bool restart = j == 0 && i > 0 && p[i] != State::kRunning;
      if (restart) {
        EXPECT_TRUE(ads::can_transition(p[i], p[j])) << ads::to_string(p[i]) << " -> accepted";
        continue;
      }
      EXPECT_FALSE(ads::can_transition(p[i], p[j])) << ads::to_string(p[i]) << " -> " << ads::to_string(p[j]);
    }
  }
  for (State s : ads::all_states()) EXPECT_FALSE(ads::can_transition(s, s)) << ads::to_string(s);
}

TEST(DeploymentTransitions, WorkingStatesCannotStopOrBeDestroyedMidway) {
  for (State s : kWorking) {
    EXPECT_FALSE(ads::can_transition(s, State::kDestroying)) << ads::to_string(s);
    EXPECT_FALSE(ads::can_transition(s, State::kDestroyed)) << ads::to_string(s);
    EXPECT_FALSE(ads::can_transition(s, State::kStopped)) << ads::to_string(s);
  }
}

// Every pair of states, against the transitions documented in deployment.h.
TEST(DeploymentTransitions, CompleteTransitionTable) {
  std::set<std::pair<State, State>> allowed;
  const auto& p = ads::pipeline();
  for (size_t i = 0; i + 1 < p.size(); ++i) allowed.insert({p[i], p[i + 1]});
  for (State s : kWorking) allowed.insert({s, State::kFailed});
  for (State s : kWorking)
    if (s != State::kAccepted) allowed.insert({s, State::kAccepted});  // a cut-off deploy starts again
  allowed.insert({State::kRunning, State::kStopped});
  allowed.insert({State::kStopped, State::kRunning});
  for (State s : {State::kRunning, State::kStopped, State::kFailed}) allowed.insert({s, State::kDestroying});
  allowed.insert({State::kDestroying, State::kDestroyed});
  allowed.insert({State::kDestroying, State::kFailed});
  allowed.insert({State::kDestroyed, State::kAccepted});  // restore into a new machine
  for (State from : ads::all_states())
    for (State to : ads::all_states())
      EXPECT_EQ(ads::can_transition(from, to), allowed.count({from, to}) == 1)
          << ads::to_string(from) << " -> " << ads::to_string(to);
}

TEST(DeploymentTransitions, RunningLeavesOnlyToStoppedOrDestroying) {
  for (State to : ads::all_states()) {
    bool expected = to == State::kStopped || to == State::kDestroying;
    EXPECT_EQ(ads::can_transition(State::kRunning, to), expected) << ads::to_string(to);
  }
}

TEST(DeploymentTransitions, DestroyedLeavesOnlyForARestore) {
  for (State to : ads::all_states()) {
    EXPECT_EQ(ads::can_transition(State::kDestroyed, to), to == State::kAccepted) << ads::to_string(to);
  }
  // Nothing reaches destroyed except through destroying.
  for (State from : ads::all_states())
    EXPECT_EQ(ads::can_transition(from, State::kDestroyed), from == State::kDestroying) << ads::to_string(from);
}

TEST(DeploymentTransitions, FailedOnlyGoesToDestroying) {
  for (State to : ads::all_states())
    EXPECT_EQ(ads::can_transition(State::kFailed, to), to == State::kDestroying) << ads::to_string(to);
}

TEST(JobKinds, KnownKindsOnly) {
  const std::vector<std::string> expected = {"deploy",  "start",   "stop",          "restart", "test",     "backup",
                                             "restore", "destroy", "delete-backup", "release", "rollback", "check"};
  EXPECT_EQ(ads::job_kinds(), expected);
  for (const auto& k : expected) EXPECT_TRUE(ads::is_job_kind(k)) << k;
  for (std::string bad : {"", "format", "Deploy", "deploy ", "install"}) EXPECT_FALSE(ads::is_job_kind(bad)) << bad;
}

TEST(DeploymentRecord, DefaultsAreAcceptedAndEmpty) {
  ads::Deployment d;
  EXPECT_EQ(d.state, State::kAccepted);
  EXPECT_FALSE(d.shared);
  EXPECT_TRUE(d.id.empty());
  ads::Job j;
  EXPECT_EQ(j.state, "queued");
  EXPECT_EQ(j.params_json, "{}");
  EXPECT_EQ(j.attempts, 0);
}

}  // namespace
