// What failures leave behind, dealt with later: machines whose removal failed
// (the clean-up queue, in the store so that it outlives a restart, tried
// again by the janitor with a growing delay) and backup archives that no
// record lists (a crash between writing one and recording it), and the
// directories of Ansible controller runs a crash cut short (they hold the
// run's private SSH key).
#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "engine/durable_file.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using namespace engine_detail;

namespace {

constexpr int64_t kMaxCleanupDelayMs = 3600 * 1000;

// The wait before try number `attempts` + 1: the interval, doubled per try.
int64_t cleanup_delay_ms(std::chrono::milliseconds interval, int attempts) {
  int64_t delay = std::max<int64_t>(interval.count(), 1);
  for (int i = 1; i < attempts && delay < kMaxCleanupDelayMs; ++i) delay *= 2;
  return std::min(delay, kMaxCleanupDelayMs);
}

bool has_unfinished_job(Store& store, const std::string& deployment_id) {
  auto jobs = store.jobs_of(deployment_id);
  if (!jobs) return true;  // cannot tell: leave it for the next pass
  for (auto& j : *jobs)
    if (j.state == "queued" || j.state == "running") return true;
  return false;
}

}  // namespace

engine_detail::DirHold::DirHold(const fs::path& dir) {
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd_ < 0) {
    error_ = errno;
  } else if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    error_ = errno;
    ::close(fd_);
    fd_ = -1;
  }
}

engine_detail::DirHold::~DirHold() {
  if (fd_ >= 0) ::close(fd_);
}

void Engine::sweep_ansible_runs() {
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(opts_.work_dir, ec)) {
    const fs::path& p = entry.path();
    if (!p.filename().string().starts_with("ansible-")) continue;
    // held while it is removed: a run cannot take it in between
    const DirHold sweeping(p);
    if (!sweeping.held()) continue;  // a run under way (here or in another server sharing work_dir), or no dir
    std::error_code rm;
    fs::remove_all(p, rm);
    if (rm) spdlog::warn("cannot remove {}, left by an Ansible run that ended mid-way: {}", p.string(), rm.message());
    else spdlog::info("removed {}, left by an Ansible run that ended mid-way (its SSH key with it)", p.string());
  }
}

void Engine::queue_cleanup(const Deployment& d, const std::string& error) {
  Cleanup c;
  c.deployment_id = d.id;
  c.provider = d.provider;
  c.machine = d.machine;
  c.attempts = 1;
  c.created_ms = now_ms();
  c.next_ms = c.created_ms + cleanup_delay_ms(opts_.cleanup_interval, 1);
  c.last_error = error;
  auto st = store_.put_cleanup(c);
  if (!st) {
    log(d, "ads",
        "could not queue the removal of machine " + d.machine + ": " + st.error().message +
            " (ads doctor reports it; ads destroy removes it)");
    return;
  }
  log(d, "ads", "machine " + d.machine + " will be removed later: the removal is tried again until it succeeds");
}

void Engine::run_cleanups() {
  auto queue = store_.cleanups();
  if (!queue) {
    spdlog::error("cannot read the clean-up queue: {}", queue.error().message);
    return;
  }
  for (auto& c : *queue) {
    if (stopping_) return;
    if (c.next_ms > now_ms()) continue;
    Provider* p = provider_for(c.provider);
    if (!p) continue;  // not configured on this server; another may have it
    auto d = store_.get(c.deployment_id);
    // a job under way (a destroy, say) deals with the machine itself
    if (d && has_unfinished_job(store_, d->id)) continue;
    auto st = p->destroy(c.machine);
    if (!st) {
      c.attempts += 1;
      c.last_error = st.error().message;
      c.next_ms = now_ms() + cleanup_delay_ms(opts_.cleanup_interval, c.attempts);
      (void)store_.put_cleanup(c);
      if (d)
        log(*d, "ads",
            "removing machine " + c.machine + " failed again (" + st.error().message + "); try " +
                std::to_string(c.attempts + 1) + " in " +
                std::to_string(cleanup_delay_ms(opts_.cleanup_interval, c.attempts) / 1000) + " s");
      continue;
    }
    if (d) {
      // read again just before the write: keep what changed meanwhile
      auto now = store_.get(c.deployment_id);
      if (now && now->machine == c.machine) {
        now->machine.clear();
        now->address.clear();
        now->url.clear();
        now->updated_ms = now_ms();
        if (auto u = store_.update(*now); !u) {
          spdlog::error("cannot record the removal of machine {}: {}", c.machine, u.error().message);
          continue;  // tried again next pass (the provider finds nothing then)
        }
        release_addresses(*now);
      }
      log(*d, "ads", "removed machine " + c.machine + " (clean-up, try " + std::to_string(c.attempts + 1) + ")");
    }
    spdlog::info("clean-up: removed machine {} of deployment {}", c.machine, c.deployment_id);
    if (auto del = store_.delete_cleanup(c.provider, c.machine); !del)
      spdlog::error("cannot take machine {} off the clean-up queue: {}", c.machine, del.error().message);
  }
}

void Engine::sweep_backup_archives() {
  std::error_code ec;
  if (!fs::is_directory(opts_.backup_dir, ec)) return;
  for (auto& sub : fs::directory_iterator(opts_.backup_dir, ec)) {
    if (!sub.is_directory(ec) || sub.is_symlink(ec)) continue;
    std::string id = sub.path().filename().string();
    auto d = store_.get(id);
    if (!d) continue;                              // not a deployment of this store: not ours to judge
    if (has_unfinished_job(store_, id)) continue;  // a backup may be being written
    auto backups = store_.backups_of(id);
    if (!backups) continue;
    std::set<std::string> recorded;
    for (auto& b : *backups) recorded.insert(fs::path(b.path).filename().string());
    for (auto& f : fs::directory_iterator(sub.path(), ec)) {
      if (!f.is_regular_file(ec) || f.is_symlink(ec)) continue;
      std::string name = f.path().filename().string();
      if (recorded.count(name)) continue;
      bool partial = name.ends_with(kPartialSuffix);
      if (!partial && !name.ends_with(".tar.gz")) continue;  // not an archive ADS writes
      std::error_code rm;
      fs::remove(f.path(), rm);
      if (rm) {
        spdlog::warn("cannot remove the unrecorded archive {}: {}", f.path().string(), rm.message());
        continue;
      }
      log(*d, "ads",
          std::string("removed ") + (partial ? "a partly written" : "an unrecorded") + " backup archive " + name +
              " (left by a crash before it was recorded)");
    }
  }
}

Result<PruneResult> Engine::prune(int days) {
  if (days < 0) days = opts_.retention_days;
  if (days <= 0)
    return Error::invalid("older_than_days", "no retention is configured (retention_days is 0); give the days");
  if (days > 36500) return Error::invalid("older_than_days", "must be at most 36500 (100 years)");
  int64_t before = now_ms() - static_cast<int64_t>(days) * 86400 * 1000;
  auto r = store_.prune_destroyed(before);
  if (r && (r->log_lines || r->deployments))
    spdlog::info("prune: {} log lines, {} jobs and {} destroyed deployments older than {} days removed", r->log_lines,
                 r->jobs, r->deployments, days);
  return r;
}

void Engine::destroy_expired() {
  auto due = store_.expired(now_ms(), 1000);
  if (!due) {
    spdlog::error("listing expired deployments: {}", due.error().message);
    return;
  }
  for (auto& d : *due) {
    if (stopping_) return;
    auto jobs = store_.jobs_of(d.id);
    if (!jobs) continue;
    // one destroy at a time; after one that failed, the next in 10 minutes
    bool wait = false;
    for (auto& j : *jobs) {
      if (j.kind != "destroy") continue;
      if (j.state == "queued" || j.state == "running") wait = true;
      if (j.state == "failed" && now_ms() - j.updated_ms < 10 * 60 * 1000) wait = true;
    }
    if (wait) continue;
    auto job = operate(d.id, "destroy", nlohmann::json::object(), Store::Admission{});
    if (job) {
      log(d, "ads", "the deployment expired at " + iso8601_utc(d.expires_ms) + " (ttl): destroying it");
    } else if (job.error().code != "conflict") {  // conflict: another server queued it meanwhile
      log(d, "ads", "cannot destroy the expired deployment now: " + job.error().message);
    }
  }
}

void Engine::janitor() {
  // the first prune one interval after the start (a server started and
  // stopped at once, as in tests, prunes nothing); then every interval
  last_prune_ = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    lk.unlock();
    run_cleanups();
    if (!stopping_) destroy_expired();
    auto now = std::chrono::steady_clock::now();
    if (opts_.retention_days > 0 && !stopping_ && now - last_prune_ >= opts_.prune_interval) {
      last_prune_ = now;
      if (auto p = prune(); !p) spdlog::error("prune: {}", p.error().message);
    }
    lk.lock();
    janitor_cv_.wait_for(lk, opts_.cleanup_interval, [&] { return stopping_.load(); });
  }
}

}  // namespace ads
