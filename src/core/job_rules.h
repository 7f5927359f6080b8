// The rules each kind of job follows: in which states of its deployment it
// may be queued, what it needs, and what happens when a server stops under
// it. Pure data (no I/O); the engine's job_*.cpp files do the work and the
// runner applies these rules. A new kind of job is one row here and one file
// in src/engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/deployment.h"

namespace ads {

struct JobRules {
  std::string kind;
  // Queued by Engine::operate (an operation on an existing deployment); false
  // for "deploy", which Engine::submit makes with its new deployment.
  bool operation = true;
  // States of the deployment in which operate() accepts it.
  std::vector<State> accepted_in;
  // Added to the refusal when the state does not fit, e.g. " (it must be running)".
  std::string refusal_hint;
  // Needs {"backup": "<id of one of the deployment's backups>"} as parameters.
  bool needs_backup = false;
  // Cut off by a stopped or killed server, it simply runs again from the
  // start (each of its steps tolerates work already done). Otherwise the
  // runner deploys again (deploy, within its attempts) or fails it and rolls
  // the deployment back.
  bool resumable = false;
  // What a cancelled job (core of issue 14.4: `ads cancel`, or a destroy
  // asked for while the job is under way) leaves behind. The job itself ends
  // "cancelled" in every case; the agent's running command is killed.
  enum class OnCancel {
    kRollBack,        // a deployment on its way to running fails and its machine goes (a deploy; a
                      // restore into a new machine); a settled one keeps its state
    kKeepState,       // the deployment keeps the state it has (the work is simply not done)
    kFailDeployment,  // the deployment is marked failed at this job's work (a destroy: destroy it again)
  };
  OnCancel on_cancel = OnCancel::kKeepState;
  // Clean-up work (destroy, delete-backup): never refused by the per-user
  // limit of jobs under way (issue 16.9), so what a user made can always go.
  bool cleanup = false;
};

// The rules of `kind`; nullptr for a kind that does not exist.
const JobRules* job_rules(std::string_view kind);
// Every kind's rules, in job_kinds() order.
const std::vector<JobRules>& all_job_rules();
// Whether a job of these rules may be queued on a deployment in state `s`.
bool accepts(const JobRules& r, State s);
// "cancelled" as a word for the log: "rolled back", "kept as it was", ...
const char* describe(JobRules::OnCancel c);

}  // namespace ads
