// The job runner: workers claim jobs from the store (with a lease renewed
// while they work), run them one at a time per deployment, and deal with the
// work an earlier process left unfinished (resume, deploy again, or roll
// back). Also the step-duration figures for /metrics.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "agent/client.h"
#include "core/job_rules.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/store_health.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

const std::vector<double>& Engine::step_bounds() {
  static const std::vector<double> b = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
  return b;
}

void Engine::observe_step(const Job& job, const std::string& next_step) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lk(metrics_mu_);
  auto it = step_began_.find(job.id);
  if (it != step_began_.end()) {
    double secs = std::chrono::duration<double>(now - it->second.second).count();
    auto& h = step_hist_[{job.kind, it->second.first}];
    const auto& bounds = step_bounds();
    if (h.buckets.empty()) h.buckets.assign(bounds.size(), 0);
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (secs <= bounds[i]) {
        h.buckets[i] += 1;
        break;
      }
    }
    h.count += 1;
    h.sum += secs;
  }
  if (next_step.empty()) {
    step_began_.erase(job.id);
  } else {
    step_began_[job.id] = {next_step, now};
  }
}

std::map<std::pair<std::string, std::string>, StepHistogram> Engine::step_durations() const {
  std::lock_guard<std::mutex> lk(metrics_mu_);
  return step_hist_;
}

// Every kind of job (core/job_rules.h) and the function that does it.
Status Engine::run_kind(Deployment& d, Job& job) {
  using JobFn = Status (Engine::*)(Deployment&, Job&);
  static const std::map<std::string, JobFn> kJobs = {
      {"deploy", &Engine::do_deploy_job},
      {"start", &Engine::do_start},
      {"stop", &Engine::do_stop},
      {"restart", &Engine::do_restart},
      {"test", &Engine::do_test},
      {"backup", &Engine::do_backup},
      {"restore", &Engine::do_restore},
      {"destroy", &Engine::do_destroy},
      {"delete-backup", &Engine::do_delete_backup},
      {"release", &Engine::do_release},
      {"rollback", &Engine::do_rollback},
      {"check", &Engine::do_check},
  };
  auto it = kJobs.find(job.kind);
  if (it == kJobs.end()) return failed("unknown job kind " + job.kind);
  return (this->*(it->second))(d, job);
}

void Engine::run_job(Job& job) {
  auto got = store_.get(job.deployment_id);
  if (!got && transient(got.error())) return;  // the store is away: handed back (its lease lapses)
  if (!got) {
    job.state = "failed";
    job.error = got.error().message;
    set_step(job, "");
    return;
  }
  Deployment d = std::move(got.value());
  auto tracked = track(job);  // watched for cancels while it runs (job_control.cpp)
  struct Untrack {
    Engine* e;
    const Job& j;
    ~Untrack() { e->untrack(j); }
  } untrack_at_end{this, job};
  job.state = "running";
  job.attempts += 1;
  set_step(job, "started");
  // the job's output goes through its log cap; what the cap holds at the end
  // is written when the job is done (also when it throws)
  struct JobLogScope {
    Engine* e;
    JobLogCap cap;
    ~JobLogScope() {
      current_job_log_cap() = nullptr;
      for (auto& held : cap.cap.drain()) e->append_log(cap.deployment_id, held);
    }
  } log_scope{this, {d.id, LogCap(opts_.log_cap)}};
  current_job_log_cap() = &log_scope.cap;
  Status result = run_kind(d, job);
  if (!result && (tracked->cancel || result.error().code == "cancelled")) {
    finish_cancelled(d, job);
    return;
  }
  if (!result && result.error().code == "interrupted") {
    observe_step(job, "");
    return;  // left as it is (and its lease released at stop); the next start or another server deals with it
  }
  std::string error = result ? "" : result.error().message;
  bool pipeline_job = job.kind == "deploy" || (job.kind == "restore" && d.state != State::kRunning &&
                                               d.state != State::kStopped && d.state != State::kDestroyed);
  if (!error.empty()) {
    job.state = "failed";
    job.error = error;
    if (pipeline_job) {
      fail_deployment(d, error);
    } else {
      log(d, "ads", job.kind + " failed: " + error);
      if (job.kind == "destroy") {
        d.failed_step = "destroying";
        d.error = error;
        (void)advance(d, State::kFailed);
        if (!d.machine.empty()) queue_cleanup(d, error);
      } else {
        (void)store_write(d.id, "the deployment",
                          [&] { return store_.update(d); });  // keep what the job learnt (an address, say)
      }
    }
  } else {
    job.state = "succeeded";
    (void)store_write(d.id, "the deployment", [&] { return store_.update(d); });
  }
  set_step(job, job.state == "succeeded" ? "done" : job.step);
}

bool Engine::recover(Job& job, const std::string& taken_over_by) {
  // Every write here is fenced by the job's lease like the job's own (a
  // store away past it hands the job back: nothing more is written, so the
  // job and its deployment never disagree; whoever claims it next recovers it).
  auto write_job = [&] {
    return store_write(job.deployment_id, "job " + job.id, [&] { return store_.update_job(job); });
  };
  auto handed_back = [](const Status& st) { return !st && st.error().code == "interrupted"; };
  auto d = store_.get(job.deployment_id);
  if (!d) {
    if (transient(d.error())) return false;  // the store is away: handed back (its lease lapses)
    job.state = "failed";
    job.error = d.error().message;
    (void)write_job();
    return false;
  }
  const JobRules* rules = job_rules(job.kind);
  bool resumable = rules && rules->resumable;
  if (job.state == "queued" || resumable || (job.kind == "deploy" && d->state == State::kAccepted)) {
    log(*d, "ads",
        "resuming " + job.kind + " job " + job.id +
            (taken_over_by.empty() ? " after a restart of ads serve"
                                   : ": taken over by server " + taken_over_by + " (its server stopped)"));
    job.state = "queued";
    return !handed_back(write_job());
  }
  std::string why = "interrupted: ads serve stopped during " + job.kind + " (" + job.step + ")";
  if (!taken_over_by.empty()) why += "; taken over by server " + taken_over_by;
  if (job.kind == "deploy" && job.attempts < opts_.deploy_attempts && !is_settled(d->state)) {
    // Deploy again from the start: what the cut-off run made goes first (the
    // new run makes a machine of the same name, and its address again).
    log(*d, "ads",
        why + "; removing what it made and deploying again from the start (run " + std::to_string(job.attempts + 1) +
            " of at most " + std::to_string(opts_.deploy_attempts) + ")");
    if (remove_machine(*d)) {
      release_addresses(*d);
      d->failed_step.clear();
      d->error.clear();
      auto st = advance(*d, State::kAccepted);
      if (handed_back(st)) {
        log(*d, "ads", "cannot record the new start: " + st.error().message);
        return false;
      }
      if (st) {
        job.state = "queued";
        job.error.clear();
        return !handed_back(write_job());
      }
      log(*d, "ads", "cannot record the new start: " + st.error().message);
    }
    why += "; could not start it again";
  }
  job.state = "failed";
  job.error = why;
  if (handed_back(write_job())) return false;
  if (!is_settled(d->state)) {
    fail_deployment(*d, why + "; rolled back");
  } else {
    log(*d, "ads", why);
  }
  return false;
}

Status Engine::start() {
  {
    std::ifstream in(opts_.agent_binary, std::ios::binary);
    if (!in) return Error::invalid("agent_binary", "cannot read the agent binary " + opts_.agent_binary);
    agent_bytes_.assign(std::istreambuf_iterator<char>(in), {});
    agent_sha256_ = file_sha256(agent_bytes_);
  }
  // What this server id held before (a crash, a restart) is free to claim at once.
  auto released = store_.renew_leases(opts_.server_id, 0);
  if (!released) return released.error();
  if (!opts_.shared_store) {
    // The only server: every unfinished job is ours to resume or roll back now.
    auto jobs = store_.unfinished_jobs();
    if (!jobs) return jobs.error();
    std::set<std::string> has_job;
    for (auto& job : *jobs) {
      has_job.insert(job.deployment_id);
      (void)recover(job, "");
    }
    // Deployments mid-way without a job (made by an older ads): roll back.
    auto unfinished = store_.unfinished();
    if (!unfinished) return unfinished.error();
    for (auto& d : *unfinished) {
      if (!has_job.count(d.id))
        fail_deployment(d, "interrupted: ads serve stopped during " + to_string(d.state) + "; rolled back");
    }
  }
  sweep_backup_archives();
  sweep_ansible_runs();
  sync_routes();  // a proxy started (again) with ADS gets every stable URL back
  stopping_ = false;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) threads_.emplace_back([this] { worker(); });
  renewer_ = std::thread([this] { renew_leases(); });
  janitor_ = std::thread([this] { janitor(); });
  cancel_watcher_ = std::thread([this] { watch_cancels(); });
  git_watcher_ = std::thread([this] { git_watch(); });
  // the keeper runs while warm machines are asked for, or the store lists
  // some (warm turned off: it removes them)
  bool warm_listed = false;
  if (auto w = store_.warm_machines(); w)
    for (auto& m : *w) warm_listed = warm_listed || m.provider == opts_.default_provider;
  if (!opts_.warm.empty() || warm_listed) warm_keeper_ = std::thread([this] { warm_keeper(); });
  return Status::Ok();
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);  // a janitor between its check and its wait sees it
    stopping_ = true;
  }
  cv_.notify_all();
  renew_cv_.notify_all();
  janitor_cv_.notify_all();
  git_cv_.notify_all();
  warm_cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  bool was_running = !threads_.empty();
  threads_.clear();
  if (renewer_.joinable()) renewer_.join();
  if (janitor_.joinable()) janitor_.join();
  if (cancel_watcher_.joinable()) cancel_watcher_.join();
  if (git_watcher_.joinable()) git_watcher_.join();
  if (warm_keeper_.joinable()) warm_keeper_.join();
  // Jobs left mid-way are free for another server (or the next start) at once.
  if (was_running) (void)store_.renew_leases(opts_.server_id, 0);
}

// Renews the leases of the jobs this process is running (LeaseBook), and
// only those: a job its worker gave up is left to lapse. After a failure it
// tries again sooner (backoff), since a lease that lapses here is lost.
void Engine::renew_leases() {
  const auto every = std::max(opts_.lease / 3, std::chrono::milliseconds(100));
  Backoff retry(opts_.store_retry_first, every);
  auto wait = every;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    renew_cv_.wait_for(lk, wait, [&] { return stopping_.load(); });
    if (stopping_) return;
    lk.unlock();
    int64_t before = now_ms();
    auto ids = leases_.live(before);
    wait = every;
    if (!ids.empty()) {
      auto r = store_.renew_leases_of(opts_.server_id, ids, before + opts_.lease.count());
      if (r) {
        leases_.renewed(ids, before + opts_.lease.count());
        retry.reset();
        if (auto lasted = store_health_.succeeded(now_ms()))
          spdlog::info("the store answers again (it did not for {} ms)", *lasted);
      } else {
        if (store_health_.failed(r.error().message, now_ms()).began)
          spdlog::error("cannot renew the leases of server {}: {}; trying again with backoff", opts_.server_id,
                        r.error().message);
        wait = retry.next();
      }
    }
    lk.lock();
  }
}

void Engine::worker() {
  while (!stopping_) {
    int64_t before = now_ms();
    auto claimed = store_.claim_job(opts_.server_id, before, opts_.lease.count(), owner_share());
    if (!claimed) {
      // the store cannot answer: said once, then tried again with backoff
      // (a queued job's wake-up does not cut the wait short)
      auto f = store_health_.failed(claimed.error().message, now_ms());
      if (f.began)
        spdlog::error("cannot claim a job: {}; trying again with backoff (up to {} ms apart), quietly until it answers",
                      claimed.error().message, opts_.store_retry_max.count());
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, f.wait, [&] { return stopping_.load(); });
      continue;
    }
    if (auto lasted = store_health_.succeeded(now_ms()))
      spdlog::info("the store answers again (it did not for {} ms)", *lasted);
    if (!claimed->has_value()) {
      // nothing to do: sleep until a job is queued here or the poll interval
      // passes (another server may have queued one, or a lease lapsed)
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, opts_.poll, [&] { return stopping_ || wakeups_ > 0; });
      if (wakeups_ > 0) --wakeups_;
      continue;
    }
    Job job = std::move(**claimed);
    // A job whose lease lapsed here while its worker still winds it down:
    // left alone until that worker is done (its new lease lapses; claimed again).
    if (leases_.has(job.id)) continue;
    if (job.cancel_requested_ms != 0) {
      cancel_unstarted(job);  // cancelled before it (re)started here
      continue;
    }
    // The lease counts from before the claim; a claim that waited on a busy
    // store may return with most of it (or all) gone: renewed first, or
    // left to lapse (claimed again later) when the store cannot renew it.
    int64_t until = before + opts_.lease.count();
    if (int64_t at = now_ms(); until - at < opts_.lease.count() / 2) {
      auto r = store_.renew_leases_of(opts_.server_id, {job.id}, at + opts_.lease.count());
      if (!r || *r == 0) continue;  // not renewed, or no longer this server's
      until = at + opts_.lease.count();
    }
    leases_.add(job.id, job.deployment_id, until);
    struct Done {
      LeaseBook& b;
      std::string id;
      ~Done() { b.remove(id); }
    } done{leases_, job.id};
    if (job.state == "running") {
      // its server stopped or died and its lease lapsed
      spdlog::info("server {} takes over job {} ({} of {})", opts_.server_id, job.id, job.kind, job.deployment_id);
      if (!recover(job, opts_.server_id)) continue;
    }
    try {
      run_job(job);
    } catch (const std::exception& e) {
      spdlog::error("job {} crashed: {}", job.id, e.what());
      job.state = "failed";
      job.error = std::string("internal error: ") + e.what();
      (void)store_.update_job(job);
      auto d = store_.get(job.deployment_id);
      if (d && !is_settled(d->state)) fail_deployment(*d, job.error);
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++wakeups_;  // the deployment's next job may be claimable now
    }
    cv_.notify_all();
  }
}

}  // namespace ads
