// Job control (issue 14.4): cancel of any job, fair share of the workers
// between owners, and the lab's command timeouts held to the operator's
// maximum.
//
// Cancel works through the store, so that it reaches whichever server runs
// the job: Store::request_cancel ends a job that has not started at once, or
// marks a running one. Every server watches the jobs it runs (every
// cancel_poll); for a marked one it asks the machine's agent to kill the
// running command (POST /v1/actions/cancel), then raises the job's cancel
// flag, which every wait of the job checks (steps, retries, the agent's
// stream, the HTTP check). The runner then ends the job "cancelled" and
// leaves the deployment as the job's rules say (core/job_rules.h on_cancel).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "agent/client.h"
#include "core/job_rules.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
using namespace engine_detail;

std::shared_ptr<Engine::Running> Engine::track(const Job& job) {
  auto r = std::make_shared<Running>();
  r->job_id = job.id;
  std::lock_guard<std::mutex> lk(running_mu_);
  running_[job.deployment_id] = r;
  return r;
}

void Engine::untrack(const Job& job) {
  std::lock_guard<std::mutex> lk(running_mu_);
  auto it = running_.find(job.deployment_id);
  if (it != running_.end() && it->second->job_id == job.id) running_.erase(it);
}

bool Engine::cancelled(const std::string& deployment_id) {
  std::lock_guard<std::mutex> lk(running_mu_);
  auto it = running_.find(deployment_id);
  return it != running_.end() && it->second->cancel.load();
}

int Engine::owner_share() const {
  if (opts_.jobs_per_owner > 0) return opts_.jobs_per_owner;
  return std::max(1, opts_.workers - 1);
}

void Engine::watch_cancels() {
  while (!stopping_) {
    // short sleeps: a stop is never held up by this thread
    auto until = std::chrono::steady_clock::now() + opts_.cancel_poll;
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stopping_) return;
    std::vector<std::pair<std::string, std::shared_ptr<Running>>> now;
    {
      std::lock_guard<std::mutex> lk(running_mu_);
      now.assign(running_.begin(), running_.end());
    }
    for (auto& [deployment_id, r] : now) {
      if (r->cancel || stopping_) continue;
      auto j = store_.get_job(r->job_id);
      if (!j || j->cancel_requested_ms == 0) continue;
      // the command in the machine first (the agent answers once it ended),
      // then the job's own waits
      auto d = store_.get(deployment_id);
      if (d && !d->address.empty() && !d->secret.empty()) {
        agent::AgentClient c(agent::AgentClient::url_for(d->address, opts_.agent_port), d->secret);
        auto st = c.cancel(15000);
        if (st) log(*d, "ads", "cancel: the agent stopped the command it was running");
        else if (st.error().code == "conflict") log(*d, "ads", "cancel: no command was running in the machine");
        else log(*d, "ads", "cancel: the agent could not be asked to stop its command: " + st.error().message);
      }
      r->cancel = true;
      spdlog::info("job {} of {}: cancelled", r->job_id, deployment_id);
    }
  }
}

Result<Job> Engine::cancel(const std::string& job_id, const std::string& why) {
  auto j = store_.request_cancel(job_id, now_ms(), "cancelled (" + why + ")");
  if (!j) return j.error();
  auto d = store_.get(j->deployment_id);
  if (!d) return j;
  if (j->state == "cancelled") {
    // it had not started (or was waiting to run again): nothing runs, only
    // a deployment on its way to running goes back
    log(*d, "ads", j->kind + " job " + j->id + " cancelled before it started (" + why + ")");
    if (j->attempts > 0 && !d->address.empty() && !d->secret.empty()) {
      // it ran before (a stopped server handed it back): its agent may still
      // run the command it started
      agent::AgentClient c(agent::AgentClient::url_for(d->address, opts_.agent_port), d->secret);
      if (c.cancel(15000)) log(*d, "ads", "cancel: the agent stopped the command it was running");
    }
    const JobRules* rules = job_rules(j->kind);
    if (rules && rules->on_cancel == JobRules::OnCancel::kRollBack && !is_settled(d->state))
      fail_deployment(*d, "cancelled before it started (" + why + "); rolled back");
  } else {
    log(*d, "ads", "cancel of " + j->kind + " job " + j->id + " asked (" + why + "); the server running it stops it");
    // a worker of this server may have just claimed it: nothing else to do,
    // the watcher (or the claim) sees the mark
  }
  return j;
}

void Engine::finish_cancelled(Deployment& d, Job& job) {
  const JobRules* rules = job_rules(job.kind);
  auto on_cancel = rules ? rules->on_cancel : JobRules::OnCancel::kKeepState;
  job.state = "cancelled";
  job.error = "cancelled";
  switch (on_cancel) {
    case JobRules::OnCancel::kRollBack:
      if (!is_settled(d.state)) {
        fail_deployment(d, job.kind + " cancelled at " + to_string(d.state) + "; rolled back");
        break;
      }
      (void)store_.update(d);
      break;
    case JobRules::OnCancel::kFailDeployment:
      if (d.state == State::kDestroying) {  // before that step the deployment is as it was
        d.failed_step = to_string(d.state);
        d.error = job.kind + " cancelled; " + job.kind + " it again";
        if (auto st = advance(d, State::kFailed); !st) log(d, "ads", "cannot record the cancel: " + st.error().message);
      }
      break;
    case JobRules::OnCancel::kKeepState:
      (void)store_.update(d);  // keep what the job learnt (an address, say)
      break;
  }
  log(d, "ads",
      job.kind + " job " + job.id + " cancelled (" + describe(on_cancel) + "; the deployment is " + to_string(d.state) +
          ")");
  set_step(job, "cancelled");
}

void Engine::cancel_unstarted(Job& job) {
  auto d = store_.get(job.deployment_id);
  if (!d) {
    job.state = "cancelled";
    job.error = "cancelled";
    set_step(job, "cancelled");
    return;
  }
  if (job.state == "running" && !d->address.empty() && !d->secret.empty()) {
    // its server died mid-way: its agent may still run the job's command
    agent::AgentClient c(agent::AgentClient::url_for(d->address, opts_.agent_port), d->secret);
    auto st = c.cancel(15000);
    if (st) log(*d, "ads", "cancel: the agent stopped the command it was running");
  }
  finish_cancelled(*d, job);
}

long Engine::command_timeout_ms(const LabSpec& spec, const std::string& action) const {
  long lab = static_cast<long>(spec.timeout_for(action)) * 1000;
  if (lab > 0 && lab < opts_.action_timeout_ms) return lab;
  return opts_.action_timeout_ms;
}

Status Engine::check_timeouts(const LabSpec& spec) const {
  const long max_s = opts_.action_timeout_ms / 1000;
  for (const auto& [name, secs] : spec.timeouts_s) {
    if (secs > max_s)
      return Error::invalid("timeouts." + name, "timeouts." + name + " asks " + std::to_string(secs) +
                                                    " s for a command; this server allows at most " +
                                                    std::to_string(max_s) + " s (max_command_timeout_s)");
  }
  return Status::Ok();
}

}  // namespace ads
