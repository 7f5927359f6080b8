// The engine's front door: new deployments (submit), operations on existing
// ones (operate), a running lab's health. The work itself is done by the
// job runner (runner.cpp) and the job kinds (job_*.cpp).
#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <random>

#include "agent/client.h"
#include "core/job_rules.h"
#include "core/names.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Engine::Engine(Store& store, std::map<std::string, std::unique_ptr<Provider>> providers, EngineOptions opts)
    : store_(store), providers_(std::move(providers)), opts_(std::move(opts)) {}

Engine::~Engine() { stop(); }

std::string Engine::new_id() {
  std::array<uint8_t, 10> entropy;
  std::random_device rd;
  for (auto& b : entropy) b = static_cast<uint8_t>(rd());
  std::lock_guard<std::mutex> lk(id_mu_);
  return ids_.next(static_cast<uint64_t>(now_ms()), entropy);
}

std::string Engine::default_name(const std::string& source) {
  std::string s = source;
  while (!s.empty() && (s.back() == '/' || s.back() == '\\')) s.pop_back();
  auto slash = s.find_last_of("/:");
  std::string last = slash == std::string::npos ? s : s.substr(slash + 1);
  if (last.size() > 4 && last.substr(last.size() - 4) == ".git") last.resize(last.size() - 4);
  // a DNS label (core/names.h): lower case, anything else a single '-'
  std::string out;
  for (char c : last) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) && u < 0x80) out.push_back(static_cast<char>(std::tolower(u)));
    else if (!out.empty() && out.back() != '-') out.push_back('-');
  }
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "lab" : out;
}

Provider* Engine::provider_for(const std::string& kind) {
  auto it = providers_.find(kind);
  return it == providers_.end() ? nullptr : it->second.get();
}

void Engine::enqueue(const std::string& job_id) {
  // The job is in the store; a worker (of this server or another) claims it.
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++wakeups_;
  }
  // all: one that cannot take it now (a worker waiting out a store outage)
  // must not swallow the wake-up; the first free worker takes it
  cv_.notify_all();
}

Result<Deployment> Engine::submit(const DeployRequest& req) {
  auto st = validate_source(req.source);
  if (!st) return st.error();
  if (st = check_source_access(req.source, req.admin, opts_.sources); !st) return st.error();
  if (!req.ref.empty()) {
    st = validate_git_ref(req.ref);
    if (!st) return st.error();
  }
  std::string name = req.name.empty() ? default_name(req.source) : req.name;
  st = validate_dns_label(name);  // the host of its stable URL
  if (!st) return st.error();
  if (req.ttl_s != 0 && (req.ttl_s < kMinTtlSeconds || req.ttl_s > kMaxTtlSeconds))
    return Error::invalid("ttl_s", "must be from " + std::to_string(kMinTtlSeconds) + " to " +
                                       std::to_string(kMaxTtlSeconds) + " seconds");
  if (req.idempotency_key.size() > 255) return Error::invalid("Idempotency-Key", "must be at most 255 characters");
  for (unsigned char c : req.idempotency_key)
    if (c < 0x20 || c > 0x7e) return Error::invalid("Idempotency-Key", "must be printable ASCII");
  std::string provider = req.provider.empty() ? opts_.default_provider : req.provider;
  if (!provider_for(provider)) {
    std::string known;
    for (auto& [k, v] : providers_) known += (known.empty() ? "" : ", ") + k;
    return Error::invalid("provider", "no provider \"" + provider + "\" is configured (configured: " + known + ")");
  }
  std::lock_guard<std::mutex> lk(submit_mu_);
  if (!req.idempotency_key.empty()) {
    auto prior = store_.find_by_idempotency_key(req.idempotency_key);
    if (!prior) return prior.error();
    if (prior->has_value()) {
      const Deployment& p = **prior;
      if (p.source != req.source || p.ref != req.ref || p.name != name || p.provider != provider ||
          p.owner != req.owner || p.shared != req.shared || p.keep_failed != req.keep_failed ||
          (p.expires_ms > 0) != (req.ttl_s > 0))
        return Error{"conflict", "this Idempotency-Key was used for a different request (deployment " + p.id + ")",
                     "Idempotency-Key"};
      return p;
    }
  }
  Deployment d;
  d.id = new_id();
  d.name = name;
  d.source = req.source;
  d.ref = req.ref;
  d.provider = provider;
  d.idempotency_key = req.idempotency_key;
  d.owner = req.owner;
  d.shared = req.shared;
  d.state = State::kAccepted;
  d.created_ms = d.updated_ms = now_ms();
  d.keep_failed = req.keep_failed;
  if (req.ttl_s > 0) d.expires_ms = d.created_ms + req.ttl_s * 1000;
  Job job;
  job.id = new_id();
  job.deployment_id = d.id;
  job.kind = "deploy";
  job.created_ms = job.updated_ms = d.created_ms;
  st = store_.admit_job(job, {req.owner, req.max_active_jobs}, &d);
  if (!st) return st.error();
  log(d, "ads", "accepted: deploy " + d.source + (d.ref.empty() ? "" : " at " + d.ref) + " as " + d.name);
  enqueue(job.id);
  return d;
}

Result<json> Engine::health(const std::string& id) {
  auto d = store_.get(id);
  if (!d) return d.error();
  if (d->state != State::kRunning || d->address.empty())
    return Error::make("conflict", "deployment " + id + " is " + to_string(d->state) +
                                       "; its agent reports health only while it is running");
  agent::AgentClient client(agent::AgentClient::url_for(d->address, opts_.agent_port), d->secret);
  return client.health(5000);
}

Result<Job> Engine::operate(const std::string& id, const std::string& kind, const json& params,
                            const Store::Admission& limit) {
  const JobRules* rules = job_rules(kind);
  if (!rules || !rules->operation) return Error::invalid("operation", "unknown operation \"" + kind + "\"");
  std::lock_guard<std::mutex> lk(submit_mu_);
  auto got = store_.get(id);
  if (!got) return got.error();
  Deployment d = std::move(got.value());
  auto jobs = store_.jobs_of(id);
  if (!jobs) return jobs.error();
  // A destroy cancels the job under way first (issue 14.4) and queues
  // behind it; anything else waits its turn (409).
  bool behind_cancel = false;
  std::vector<Job> under_way;
  for (auto& j : *jobs) {
    if (j.state != "queued" && j.state != "running") continue;
    if (kind != "destroy" || j.kind == "destroy")
      return Error::make("conflict", "deployment " + id + " already has a " + j.kind + " job (" + j.id + ") under way");
    under_way.push_back(j);
  }
  for (auto& j : under_way) {
    auto c = cancel(j.id, "the deployment is to be destroyed");
    if (!c && c.error().code != "conflict") return c.error();  // conflict: it ended meanwhile
    behind_cancel = c && c->state != "cancelled";
    auto again = store_.get(id);
    if (!again) return again.error();
    d = std::move(again.value());
  }
  std::optional<Backup> backup;
  if (rules->needs_backup) {
    if (!params.is_object() || !params.contains("backup") || !params["backup"].is_string())
      return Error::invalid("backup", "is required: the id of one of the deployment's backups");
    auto b = store_.get_backup(params["backup"].get<std::string>());
    if (!b || b->deployment_id != id)
      return Error::invalid("backup", "deployment " + id + " has no backup " + params["backup"].get<std::string>());
    backup = std::move(b.value());
  }
  if (!behind_cancel && !accepts(*rules, d.state))
    return Error::make("conflict",
                       "cannot " + kind + " deployment " + id + ": it is " + to_string(d.state) + rules->refusal_hint);
  if (kind == "restore") {
    if (auto st = admit_restore(d, *backup); !st) return st.error();
    if (d.state == State::kDestroyed && d.expires_ms > 0) {
      // a throwaway brought back is kept for good: its expiry has passed,
      // and the janitor would destroy it again at once
      d.expires_ms = 0;
      d.keep_failed = false;
      if (auto st = store_.update(d); !st) return st.error();
    }
    if (d.state == State::kDestroyed) {
      // it comes back to life under its name: no other live lab may hold it now
      ListQuery q;
      q.name = d.name;
      q.limit = 1000;
      auto same = store_.list(q);
      if (!same) return same.error();
      for (auto& o : *same)
        if (o.id != d.id && o.state != State::kFailed && o.state != State::kDestroyed)
          return Error{"conflict",
                       "a live lab is already named \"" + d.name + "\" (deployment " + o.id +
                           "); destroy it before restoring this one",
                       "name"};
    }
  }
  Job job;
  job.id = new_id();
  job.deployment_id = id;
  job.kind = kind;
  job.params_json = params.is_object() ? params.dump() : "{}";
  job.created_ms = job.updated_ms = now_ms();
  Store::Admission admission = limit;
  if (rules->cleanup) admission.max_active = 0;  // clean-up is never refused by the per-user limit (issue 16.9)
  admission.behind_cancelled = behind_cancel;
  auto st = store_.admit_job(job, admission);  // again, atomically: another server may have queued one meanwhile
  if (!st) return st.error();
  log(d, "ads", "accepted: " + kind + " (job " + job.id + ")");
  enqueue(job.id);
  return job;
}

}  // namespace ads
