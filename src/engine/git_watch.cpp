// Deploy on git push (issue 17.3; core/git_push.h has the rules).
// Engine::push: a verified push to a tracked deployment starts a release of
// the pushed commit, or — while a job of the deployment is under way — is
// kept in the store as the track's pending commit (a newer push replaces it:
// coalescing). The git watch, a thread of the engine, releases the pending
// commit once the deployment is idle and running again (checked every
// git_watch_interval, a second by default; the pending commit lives in the
// store, so a restart or another server on the store picks it up, and
// Store::take_pending lets only one of them start it), and polls the branch of
// tracks with poll_s > 0 (one ls-remote at a time, through the source policy:
// engine/fetcher.h remote_branch_commit).
#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/fetcher.h"
#include "engine/internal.h"

namespace ads {
using nlohmann::json;
using namespace engine_detail;

namespace {
bool has_job_under_way(Store& store, const std::string& id, bool* busy) {
  auto jobs = store.jobs_of(id);
  if (!jobs) return false;
  *busy = false;
  for (auto& j : *jobs) *busy |= j.state == "queued" || j.state == "running";
  return true;
}
}  // namespace

Result<Engine::PushOutcome> Engine::push(const std::string& id, const GitPush& p, const std::string& by,
                                         const Store::Admission& limit) {
  auto t = store_.get_track(id);
  if (!t) return t.error();
  auto d = store_.get(id);
  if (!d) return d.error();
  bool busy = false;
  if (!has_job_under_way(store_, id, &busy)) return Error::make("unavailable", "cannot read the jobs of " + id);
  PushOutcome out;
  out.action = decide_push(*t, p, busy, d->commit);
  out.message = describe(out.action, *t, p);
  auto coalesce = [&]() -> Result<PushOutcome> {
    out.action = PushAction::kCoalesce;
    out.message = describe(out.action, *t, p);
    if (auto st = store_.set_pending(id, p.commit, now_ms()); !st) return st.error();
    log(*d, "ads",
        "push of " + p.commit + " to " + t->branch + " (" + by + "): a job is under way; " + p.commit +
            " is released when it ends");
    return out;
  };
  if (out.action == PushAction::kCoalesce) return coalesce();
  if (out.action != PushAction::kRelease) return out;
  auto j = operate(id, "release", json{{"ref", p.commit}, {"by", by}}, limit);
  if (!j) {
    bool now_busy = false;
    if (j.error().code == "conflict" && has_job_under_way(store_, id, &now_busy) && now_busy) return coalesce();
    return j.error();
  }
  // an older pending commit must not be released after this one
  if (!t->pending_commit.empty()) (void)store_.take_pending(id, t->pending_commit);
  log(*d, "ads", "push of " + p.commit + " to " + t->branch + " (" + by + "): release job " + j->id);
  out.job = std::move(j.value());
  return out;
}

void Engine::poll_branch(const GitTrack& t, const Deployment& d) {
  if (auto st = store_.set_polled(t.deployment_id, now_ms()); !st) return;
  auto c = remote_branch_commit(d.source, t.branch, opts_.sources, owner_may_use_any_path(store_, d.owner));
  if (!c) {
    spdlog::warn("git poll of {} ({} of {}): {}", d.id, t.branch, redact_source(d.source), c.error().message);
    return;
  }
  if (*c == d.commit || *c == t.pending_commit) return;
  auto r = push(d.id, GitPush{t.branch, *c, false}, "git-poll", {d.owner, 0});
  if (!r) log(d, "ads", "git poll: " + t.branch + " is at " + *c + " but no release could start: " + r.error().message);
}

void Engine::git_watch_pass() {
  auto tracks = store_.tracks();
  if (!tracks) return;  // the store is away: the next pass tries again
  for (const auto& t : *tracks) {
    if (stopping_) return;
    auto d = store_.get(t.deployment_id);
    if (!d || d->state == State::kDestroyed) continue;
    bool busy = false;
    if (!has_job_under_way(store_, d->id, &busy)) continue;
    const bool running = d->state == State::kRunning;
    if (t.poll_s > 0 && running && now_ms() - t.polled_ms >= std::max(t.poll_s, opts_.min_poll_s) * 1000) {
      poll_branch(t, *d);
      continue;  // its pending commit, if any, on the next pass
    }
    if (t.pending_commit.empty() || busy) continue;
    if (t.pending_commit == d->commit) {  // released meanwhile (by a push, another server): nothing to do
      (void)store_.take_pending(d->id, t.pending_commit);
      continue;
    }
    if (!release_pending_now(t, busy, running, d->commit)) continue;
    auto taken = store_.take_pending(d->id, t.pending_commit);
    if (!taken || !*taken) continue;  // a newer push, or another server took it
    auto j = operate(d->id, "release", json{{"ref", t.pending_commit}, {"by", "git-push"}}, {d->owner, 0});
    if (j) {
      log(*d, "ads",
          "release of the pushed commit " + t.pending_commit + " that waited for the job before it: job " + j->id);
      continue;
    }
    bool now_busy = false;
    if (j.error().code == "conflict" && has_job_under_way(store_, d->id, &now_busy) && now_busy) {
      (void)store_.set_pending(d->id, t.pending_commit, now_ms());  // a job came first: wait for it
      continue;
    }
    log(*d, "ads", "the pushed commit " + t.pending_commit + " cannot be released: " + j.error().message);
  }
}

// While the store is in trouble (this server's claims fail: locked, down,
// full) the watch leaves it alone: its reads would only compete with the
// jobs' writes for the store (SQLite: for its one connection) and their
// leases. It looks again once the store answers.
void Engine::git_watch() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    git_cv_.wait_for(lk, opts_.git_watch_interval, [&] { return stopping_.load(); });
    if (stopping_) return;
    if (store_health_.trouble()) continue;
    lk.unlock();
    git_watch_pass();
    lk.lock();
  }
}

}  // namespace ads
