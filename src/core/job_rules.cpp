#include "core/job_rules.h"

#include <algorithm>

namespace ads {

const std::vector<JobRules>& all_job_rules() {
  using S = State;
  static const std::vector<JobRules> rules = [] {
    std::vector<JobRules> r;
    using C = JobRules::OnCancel;
    r.push_back({"deploy", false, {}, "", false, false, C::kRollBack, false});
    r.push_back({"start", true, {S::kStopped, S::kRunning}, "", false, true, C::kKeepState, false});
    r.push_back({"stop", true, {S::kRunning, S::kStopped}, "", false, true, C::kKeepState, false});
    r.push_back({"restart", true, {S::kRunning, S::kStopped}, "", false, true, C::kKeepState, false});
    r.push_back({"test", true, {S::kRunning}, " (it must be running)", false, true, C::kKeepState, false});
    r.push_back({"backup", true, {S::kRunning}, " (it must be running)", false, false, C::kKeepState, false});
    r.push_back({"restore", true, {S::kRunning, S::kStopped, S::kDestroyed}, "", true, false, C::kRollBack, false});
    r.push_back({"destroy",
                 true,
                 {S::kRunning, S::kStopped, S::kFailed, S::kDestroyed},
                 "",
                 false,
                 true,
                 C::kFailDeployment,
                 true});
    r.push_back({"delete-backup",
                 true,
                 {S::kRunning, S::kStopped, S::kFailed, S::kDestroyed},
                 "",
                 true,
                 true,
                 C::kKeepState,
                 true});
    // a release or a rollback leaves the serving release alone until its
    // switch (a cancel before it removes what the release built); run again
    // after a cut, it first finishes or undoes what the cut-off run did
    // (engine/job_release.cpp)
    r.push_back({"release", true, {S::kRunning}, " (it must be running)", false, true, C::kKeepState, false});
    r.push_back({"rollback", true, {S::kRunning}, " (it must be running)", false, true, C::kKeepState, false});
    // a dry run (engine/job_check.cpp): it changes nothing, so it simply runs again
    r.push_back({"check", true, {S::kRunning}, " (it must be running)", false, true, C::kKeepState, false});
    return r;
  }();
  return rules;
}

const JobRules* job_rules(std::string_view kind) {
  for (const auto& r : all_job_rules())
    if (r.kind == kind) return &r;
  return nullptr;
}

bool accepts(const JobRules& r, State s) {
  return std::find(r.accepted_in.begin(), r.accepted_in.end(), s) != r.accepted_in.end();
}

const char* describe(JobRules::OnCancel c) {
  switch (c) {
    case JobRules::OnCancel::kRollBack:
      return "rolled back";
    case JobRules::OnCancel::kKeepState:
      return "the deployment keeps its state";
    case JobRules::OnCancel::kFailDeployment:
      return "the deployment is marked failed";
  }
  return "";
}

}  // namespace ads
