#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "agent/client.h"
#include "agent/protocol.h"
#include "core/names.h"
#include "engine/archive.h"
#include "engine/fetcher.h"
#include "http/client.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The lab's spec file: its path in the lab and its text (kept in the store so
// that later jobs read the same spec).
struct SpecFile {
  std::string path, text;
  LabSpec spec;
};

Result<SpecFile> read_spec(const std::string& dir) {
  for (const char* rel : {kSpecV2Path, kSpecV1Path}) {
    fs::path p = fs::path(dir) / rel;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    std::ifstream in(p, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.size() > (1u << 20)) return Error::invalid(rel, "the lab spec is larger than 1 MiB");
    auto r = parse_labspec(rel, text);
    if (!r) {
      Error e = r.error();
      e.message = std::string(rel) + ": " + (e.field.empty() ? "" : e.field + ": ") + e.message;
      return e;
    }
    return SpecFile{rel, text, std::move(r.value())};
  }
  return Error::invalid("spec", std::string("the lab has no lab spec: expected ") + kSpecV2Path + " or " + kSpecV1Path);
}

std::string file_sha256(const std::string& data) { return agent::sha256_hex(data); }

bool transient(const Error& e) { return e.code == "unavailable" || e.code == "timeout"; }

// The backup a restore or delete-backup job names ("" if none).
std::string backup_param(const Job& job) {
  json params = json::parse(job.params_json, nullptr, false);
  return params.is_object() ? params.value("backup", "") : "";
}
}  // namespace

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
  std::string out;
  for (char c : last) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') out.push_back(c);
    else out.push_back('-');
  }
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out[0]))) out.erase(0, 1);
  while (out.find("..") != std::string::npos) out.replace(out.find(".."), 2, ".");
  if (out.size() > 63) out.resize(63);
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
  cv_.notify_one();
}

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

Result<Deployment> Engine::submit(const DeployRequest& req) {
  auto st = validate_source(req.source);
  if (!st) return st.error();
  if (!req.ref.empty()) {
    st = validate_git_ref(req.ref);
    if (!st) return st.error();
  }
  std::string name = req.name.empty() ? default_name(req.source) : req.name;
  st = validate_lab_name(name);
  if (!st) return st.error();
  if (req.idempotency_key.size() > 255) return Error::invalid("Idempotency-Key", "must be at most 255 characters");
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
          p.owner != req.owner)
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
  if (!is_job_kind(kind) || kind == "deploy") return Error::invalid("operation", "unknown operation \"" + kind + "\"");
  std::lock_guard<std::mutex> lk(submit_mu_);
  auto got = store_.get(id);
  if (!got) return got.error();
  Deployment d = std::move(got.value());
  auto jobs = store_.jobs_of(id);
  if (!jobs) return jobs.error();
  for (auto& j : *jobs) {
    if (j.state == "queued" || j.state == "running")
      return Error::make("conflict", "deployment " + id + " already has a " + j.kind + " job (" + j.id + ") under way");
  }
  auto refuse = [&](const std::string& why) {
    return Error::make("conflict", "cannot " + kind + " deployment " + id + ": it is " + to_string(d.state) + why);
  };
  const State s = d.state;
  if (kind == "start" && s != State::kStopped && s != State::kRunning) return refuse("");
  if ((kind == "stop" || kind == "restart") && s != State::kRunning && s != State::kStopped) return refuse("");
  if ((kind == "test" || kind == "backup") && s != State::kRunning) return refuse(" (it must be running)");
  if (kind == "destroy" && s != State::kRunning && s != State::kStopped && s != State::kFailed && s != State::kDestroyed)
    return refuse("");
  if (kind == "restore" || kind == "delete-backup") {
    if (!params.is_object() || !params.contains("backup") || !params["backup"].is_string())
      return Error::invalid("backup", "is required: the id of one of the deployment's backups");
    auto b = store_.get_backup(params["backup"].get<std::string>());
    if (!b || b->deployment_id != id)
      return Error::invalid("backup", "deployment " + id + " has no backup " + params["backup"].get<std::string>());
    if (kind == "restore" && s != State::kRunning && s != State::kStopped && s != State::kDestroyed) return refuse("");
    if (kind == "restore" && s == State::kDestroyed) {
      // into a new machine: the data comes back through the lab's restore
      // action, or else from a snapshot that outlived the old machine
      auto spec = stored_spec(d);
      Provider* p = provider_for(d.provider);
      bool by_action = spec && !spec->action("restore").empty();
      bool by_snapshot = !b->snapshot.empty() && p && p->snapshots_outlive_machine();
      if (!by_action && !by_snapshot)
        return Error::make("conflict", "backup " + b->id + " cannot be restored into a new machine: the lab has no restore action" +
                                           (b->snapshot.empty() ? std::string(" and the backup has no snapshot")
                                                                : " and its " + d.provider + " snapshot went with the destroyed machine"));
    }
    if (kind == "delete-backup" && s != State::kRunning && s != State::kStopped && s != State::kFailed &&
        s != State::kDestroyed)
      return refuse("");
  }
  Job job;
  job.id = new_id();
  job.deployment_id = id;
  job.kind = kind;
  job.params_json = params.is_object() ? params.dump() : "{}";
  job.created_ms = job.updated_ms = now_ms();
  auto st = store_.admit_job(job, limit);  // again, atomically: another server may have queued one meanwhile
  if (!st) return st.error();
  log(d, "ads", "accepted: " + kind + " (job " + job.id + ")");
  enqueue(job.id);
  return job;
}

Status Engine::advance(Deployment& d, State s) {
  // The state machine of core/deployment.h, enforced; staying put (a stop of
  // a stopped machine, a destroy resumed) is no transition.
  if (d.state != s && !can_transition(d.state, s))
    return Error::make("internal", "deployment " + d.id + " cannot go from " + to_string(d.state) + " to " +
                                       to_string(s) + " (not a transition of the state machine)");
  d.state = s;
  d.updated_ms = now_ms();
  return store_.update(d);
}

void Engine::set_step(Job& job, const std::string& step) {
  // a finished job's last step ends now; "started" is bookkeeping, not a step
  bool finished = job.state == "succeeded" || job.state == "failed";
  observe_step(job, finished || step == "started" ? "" : step);
  job.step = step;
  job.updated_ms = now_ms();
  auto st = store_.update_job(job);
  if (!st) spdlog::error("cannot record step of job {}: {}", job.id, st.error().message);
}

void Engine::log(const Deployment& d, const std::string& stream, const std::string& text) {
  LogLine l;
  l.ts_ms = now_ms();
  l.step = to_string(d.state);
  l.stream = stream;
  l.text = text;
  auto r = store_.append_log(d.id, l);
  if (!r) spdlog::error("cannot record a log line of {}: {}", d.id, r.error().message);
}

Status Engine::with_retry(const Deployment& d, const std::string& what, const std::function<Status()>& f) {
  auto backoff = opts_.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    Status st = f();
    if (st || !transient(st.error()) || attempt >= opts_.provider_attempts || stopping_) return st;
    log(d, "ads", what + " failed (" + st.error().message + "); trying again in " +
                      std::to_string(backoff.count()) + " ms (attempt " + std::to_string(attempt + 1) + " of " +
                      std::to_string(opts_.provider_attempts) + ")");
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

void Engine::fail_deployment(Deployment& d, const std::string& error) {
  if (d.state != State::kFailed && !can_transition(d.state, State::kFailed)) {
    // a settled deployment (say running) met a job that did not fit it: the
    // job fails; the deployment and its machine stay as they are
    log(d, "ads", error + " (the deployment stays " + to_string(d.state) + ")");
    spdlog::error("deployment {}: {} (it stays {})", d.id, error, to_string(d.state));
    return;
  }
  d.failed_step = to_string(d.state);
  d.error = error;
  log(d, "ads", "failed at " + d.failed_step + ": " + error);
  if (!d.machine.empty() && opts_.keep_failed) {
    log(d, "ads", "keeping machine " + d.machine + " for inspection (keep_failed)");
  } else {
    (void)remove_machine(d);
  }
  if (d.machine.empty()) release_addresses(d);  // no machine (any more): no address either
  auto st = advance(d, State::kFailed);
  if (!st) spdlog::error("cannot record failure of {}: {}", d.id, st.error().message);
  spdlog::warn("deployment {} failed at {}: {}", d.id, d.failed_step, error);
}

bool Engine::remove_machine(Deployment& d) {
  if (d.machine.empty()) return true;
  Provider* p = provider_for(d.provider);
  if (!p) {
    log(d, "ads", "could not remove machine " + d.machine + ": provider " + d.provider + " is not configured");
    return false;
  }
  auto st = with_retry(d, "removing machine " + d.machine, [&] { return p->destroy(d.machine); });
  if (!st) {
    log(d, "ads", "could not remove machine " + d.machine + ": " + st.error().message);
    return false;
  }
  log(d, "ads", "removed machine " + d.machine);
  d.machine.clear();
  d.address.clear();
  d.url.clear();
  return true;
}

void Engine::release_addresses(const Deployment& d) {
  auto st = store_.release_addresses(d.id);
  if (!st) log(d, "ads", "could not release the static address: " + st.error().message);
}

Result<LabSpec> Engine::stored_spec(const Deployment& d) {
  json j = json::parse(d.spec_json, nullptr, false);
  if (!j.is_object() || !j.contains("path") || !j.contains("text"))
    return Error::make("failed", "deployment " + d.id + " has no recorded lab spec");
  return parse_labspec(j["path"].get<std::string>(), j["text"].get<std::string>());
}

Result<int> Engine::agent_action(Deployment& d, agent::AgentClient& c, const std::string& action,
                                 const agent::LineSink& sink) {
  // An agent answers "busy" while it still runs an action started by a
  // server that has since died (the action outlives its caller): wait for it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.action_timeout_ms);
  bool told = false;
  while (true) {
    auto rc = c.run_action(action, sink, opts_.action_timeout_ms);
    if (rc || rc.error().code != "conflict" || stopping_ || std::chrono::steady_clock::now() >= deadline) return rc;
    if (!told) log(d, "ads", "the agent is busy (an action started before a restart or a takeover?); waiting for it");
    told = true;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

std::string Engine::run_action(Deployment& d, agent::AgentClient& c, const std::string& action) {
  auto sink = [&](const std::string& stream, const std::string& line) { log(d, stream, line); };
  auto rc = agent_action(d, c, action, sink);
  if (!rc) return action + ": " + rc.error().message;
  if (*rc != 0) return action + " failed with exit code " + std::to_string(*rc) + " (see the log)";
  return "";
}

std::string Engine::http_check(Deployment& d, const LabSpec& spec, std::string* url_out) {
  std::string url = "http://" + d.address + (spec.http_port == 80 ? "" : ":" + std::to_string(spec.http_port)) +
                    spec.http_path;
  auto deadline = std::chrono::steady_clock::now() + opts_.http_check_timeout;
  std::string last;
  while (true) {
    http::ClientRequest hr;
    hr.url = url;
    hr.timeout_ms = 5000;
    hr.connect_timeout_ms = 2000;
    auto r = http::request(hr);
    if (r && r->status >= 200 && r->status < 400) {
      log(d, "ads", "GET " + url + " -> " + std::to_string(r->status));
      if (url_out) *url_out = url;
      return "";
    }
    last = r ? "HTTP " + std::to_string(r->status) : r.error().message;
    if (std::chrono::steady_clock::now() >= deadline || stopping_) return "the lab does not answer at " + url + ": " + last;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

// The pipeline from accepted to running. With `restore_backup`, it restores
// that backup's data once the lab is installed and started.
std::string Engine::do_deploy(Deployment& d, Job& job, const std::string& restore_backup) {
  Provider* p = provider_for(d.provider);
  if (!p) return "provider " + d.provider + " is not configured";
  auto progress = [&](const std::string& s) { log(d, "ads", s); };
  bool interrupted = false;
  std::string step_error;
  auto step = [&](State s) -> bool {
    if (stopping_) {
      interrupted = true;  // left unfinished; the next start deals with it
      return false;
    }
    auto st = advance(d, s);
    if (!st) {
      step_error = "cannot record step " + to_string(s) + ": " + st.error().message;
      return false;
    }
    set_step(job, to_string(s));
    log(d, "ads", "step " + to_string(s));
    return true;
  };
#define ADS_STEP(s)                                              \
  if (!step(s)) return interrupted ? "interrupted" : step_error

  ADS_STEP(State::kFetching);
  fs::path work = fs::path(opts_.work_dir) / d.id;
  std::error_code ec;
  fs::create_directories(opts_.work_dir, ec);
  fs::remove_all(work, ec);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{work};
  // A restore deploys the commit the backup was taken at.
  std::string ref = d.ref;
  if (!restore_backup.empty() && !d.commit.empty()) ref = d.commit;
  auto fetched = fetch_lab(d.source, ref, work.string(), progress);
  if (!fetched) return fetched.error().message;
  d.commit = fetched->commit;

  ADS_STEP(State::kValidating);
  auto specfile = read_spec(fetched->dir);
  if (!specfile) return specfile.error().message;
  const LabSpec& spec = specfile->spec;
  d.spec_json = json{{"path", specfile->path}, {"text", specfile->text}}.dump();
  log(d, "ads", "lab spec v" + std::to_string(spec.format) + ": " + spec.os_key() +
                    (spec.memory_mb ? ", " + std::to_string(spec.memory_mb) + " MB" : ""));
  auto tarball = tar_gz_directory(fetched->dir);
  if (!tarball) return tarball.error().message;

  ADS_STEP(State::kProvisioning);
  if (agent_bytes_.empty()) return "the agent binary " + opts_.agent_binary + " could not be read";
  d.secret = agent::random_hex(32);
  d.machine = machine_name(d.id);
  auto st = store_.update(d);  // record the machine's name before it exists: no machine without a record
  if (!st) return st.error().message;
  MachineSpec ms;
  ms.name = d.machine;
  ms.os_key = spec.os_key();
  ms.memory_mb = spec.memory_mb;
  ms.storage_mb = spec.storage_mb;
  ms.labels = {{"deployment", d.id}, {"lab", d.name}};
  json agent_cfg = {{"secret", d.secret}, {"port", agent::kAgentPort}, {"host", "0.0.0.0"}, {"lab_dir", "/opt/lab"},
                    {"command_timeout_s", opts_.action_timeout_ms / 1000}};
  ms.files = {{"/usr/local/bin/ads-agent", agent_bytes_, 0755}, {"/etc/ads-agent/agent.json", agent_cfg.dump(), 0600}};
  if (std::string pool = p->address_pool(); !pool.empty()) {
    // allocated in the store (one transaction), so concurrent deploys never share one
    auto a = store_.allocate_address(pool, d.id);
    if (!a) return "no address for the machine in " + pool + ": " + a.error().message;
    ms.address = *a;
    log(d, "ads", "static address " + ms.address + " from " + pool);
  }
  st = with_retry(d, "creating the machine", [&] {
    Status s = p->create(ms, progress);
    if (!s && transient(s.error())) (void)p->destroy(ms.name);  // half-made: clear before trying again
    return s;
  });
  if (!st) {
    if (st.error().code == "conflict") d.machine.clear();  // not ours: never remove it
    return st.error().message;
  }
  st = with_retry(d, "starting the machine", [&] { return p->start(d.machine); });
  if (!st) return st.error().message;
  log(d, "ads", "machine " + d.machine + " started; waiting for its address");
  auto addr = p->wait_address(d.machine, opts_.address_timeout);
  if (!addr) return addr.error().message;
  d.address = *addr;
  log(d, "ads", "machine address " + d.address);

  ADS_STEP(State::kStartingAgent);
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  st = client.wait_ready(opts_.agent_timeout);
  if (!st) return st.error().message;
  log(d, "ads", "agent answers on " + client.base_url());

  ADS_STEP(State::kUploading);
  log(d, "ads", "uploading the lab (" + std::to_string(tarball->size()) + " bytes)");
  auto up = client.upload_lab(*tarball);
  if (!up) return "the agent refused the lab: " + up.error().message;

  ADS_STEP(State::kInstalling);
  if (!spec.install.empty() || !spec.ansible_playbook.empty()) {
    if (auto e = run_action(d, client, "install"); !e.empty()) return e;
  } else {
    log(d, "ads", "the lab has no install steps");
  }

  ADS_STEP(State::kStarting);
  if (!spec.action("start").empty()) {
    if (auto e = run_action(d, client, "start"); !e.empty()) return e;
  }
  if (!restore_backup.empty()) {
    auto b = store_.get_backup(restore_backup);
    if (!b) return b.error().message;
    if (auto e = restore_data(d, job, *b); !e.empty()) return e;
  }

  ADS_STEP(State::kVerifying);
  if (!spec.action("test").empty()) {
    if (auto e = run_action(d, client, "test"); !e.empty()) return e;
  }
  std::string url;
  if (auto e = http_check(d, spec, &url); !e.empty()) return e;
  d.url = url;
  ADS_STEP(State::kRunning);
  log(d, "ads", "running at " + url);
  spdlog::info("deployment {} ({}) running at {}", d.id, d.name, url);
  return "";
#undef ADS_STEP
}

std::string Engine::do_start(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (!p) return "provider " + d.provider + " is not configured";
  auto spec = stored_spec(d);
  if (!spec) return spec.error().message;
  set_step(job, "starting machine");
  auto m = p->inspect(d.machine);
  if (!m) return m.error().message;
  if (m->status != "Running") {
    auto st = with_retry(d, "starting the machine", [&] { return p->start(d.machine); });
    if (!st) return st.error().message;
  }
  auto addr = p->wait_address(d.machine, opts_.address_timeout);
  if (!addr) return addr.error().message;
  d.address = *addr;
  set_step(job, "waiting for the agent");
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  auto st = client.wait_ready(opts_.agent_timeout);
  if (!st) return st.error().message;
  set_step(job, "starting the lab");
  if (!spec->action("start").empty()) {
    if (auto e = run_action(d, client, "start"); !e.empty()) return e;
  }
  set_step(job, "checking the lab");
  std::string url;
  if (auto e = http_check(d, *spec, &url); !e.empty()) return e;
  d.url = url;
  auto s2 = advance(d, State::kRunning);
  if (!s2) return s2.error().message;
  log(d, "ads", "running at " + url);
  return "";
}

std::string Engine::do_stop(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (!p) return "provider " + d.provider + " is not configured";
  auto spec = stored_spec(d);
  if (!spec) return spec.error().message;
  if (d.state == State::kRunning && !spec->action("stop").empty()) {
    set_step(job, "stopping the lab");
    agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
    if (auto e = run_action(d, client, "stop"); !e.empty())
      log(d, "ads", "the lab's stop action failed (" + e + "); stopping the machine anyway");
  }
  set_step(job, "stopping machine");
  auto st = with_retry(d, "stopping the machine", [&] { return p->stop(d.machine); });
  if (!st) return st.error().message;
  auto s2 = advance(d, State::kStopped);
  if (!s2) return s2.error().message;
  log(d, "ads", "stopped");
  return "";
}

std::string Engine::do_test(Deployment& d, Job& job) {
  auto spec = stored_spec(d);
  if (!spec) return spec.error().message;
  json result = {{"passed", false}};
  std::vector<std::string> output;
  auto sink = [&](const std::string& stream, const std::string& line) {
    log(d, stream, line);
    if (output.size() < 200) output.push_back(stream + " | " + line);
  };
  std::string error;
  if (!spec->action("test").empty()) {
    set_step(job, "running the lab's test");
    agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
    auto rc = agent_action(d, client, "test", sink);
    if (!rc) error = "test: " + rc.error().message;
    else if (*rc != 0) error = "the lab's test failed with exit code " + std::to_string(*rc);
    result["test_exit_code"] = rc ? json(*rc) : json(nullptr);
  } else {
    log(d, "ads", "the lab has no test action; checking HTTP only");
  }
  set_step(job, "checking HTTP");
  std::string http_error = http_check(d, *spec, nullptr);
  result["http_ok"] = http_error.empty();
  if (error.empty()) error = http_error;
  result["passed"] = error.empty();
  result["output"] = output;
  job.result_json = result.dump();
  log(d, "ads", error.empty() ? "test passed" : "test failed: " + error);
  return error;
}

std::string Engine::do_backup(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (!p) return "provider " + d.provider + " is not configured";
  auto spec = stored_spec(d);
  if (!spec) return spec.error().message;
  Backup b;
  b.id = new_id();
  b.deployment_id = d.id;
  b.commit = d.commit;
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  if (!spec->action("backup").empty()) {
    set_step(job, "running the lab's backup");
    if (auto e = run_action(d, client, "backup"); !e.empty()) return e;
  } else {
    log(d, "ads", "the lab has no backup action: the backup holds no lab data, only the machine snapshot");
  }
  set_step(job, "copying the data");
  auto data = client.download_backup(opts_.max_backup_bytes);
  if (!data) return "cannot copy the backup from the agent: " + data.error().message;
  fs::path dir = fs::path(opts_.backup_dir) / d.id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path file = dir / (b.id + ".tar.gz");
  std::string snap = "backup-" + b.id;
  // a backup that fails leaves nothing behind: no archive without a record,
  // no snapshot (or AMI) that nothing lists
  auto discard = [&](const std::string& why, bool snapshot_tried) {
    std::error_code rm;
    fs::remove(file, rm);
    if (snapshot_tried) {
      auto del = p->delete_snapshot(d.machine, snap);
      if (!del && del.error().code != "unsupported")
        log(d, "ads", "could not remove the unfinished snapshot " + snap + ": " + del.error().message);
    }
    return why;
  };
  {
    std::ofstream out(file, std::ios::binary);
    out.write(data->data(), static_cast<std::streamsize>(data->size()));
    if (!out) return discard("cannot write " + file.string(), false);
  }
  // a backup is recorded only if it can be read back whole (gzip + tar)
  if (auto v = verify_tar_gz_file(file.string()); !v)
    return discard("the agent's backup is not a usable archive: " + v.error().message, false);
  b.path = file.string();
  b.size_bytes = static_cast<int64_t>(data->size());
  b.sha256 = file_sha256(*data);
  set_step(job, "snapshot");
  auto st = p->snapshot(d.machine, snap);
  if (st) {
    b.snapshot = snap;
    log(d, "ads", "provider snapshot " + snap);
  } else if (st.error().code == "unsupported") {
    log(d, "ads", st.error().message + "; the backup holds the lab's data only");
  } else {
    return discard("snapshot failed: " + st.error().message, true);
  }
  b.created_ms = now_ms();
  st = store_.add_backup(b);
  if (!st) return discard(st.error().message, !b.snapshot.empty());
  job.result_json = json{{"backup", b.id}, {"size_bytes", b.size_bytes}, {"sha256", b.sha256}}.dump();
  log(d, "ads", "backup " + b.id + ": " + std::to_string(b.size_bytes) + " bytes, sha256 " + b.sha256);
  if (opts_.keep_backups > 0) {
    // the new backup is made: pruning the old ones cannot fail this job, only say so
    auto all = store_.backups_of(d.id);  // oldest first
    if (!all) {
      log(d, "ads", "cannot list the backups to keep the last " + std::to_string(opts_.keep_backups) + ": " +
                        all.error().message);
      return "";
    }
    size_t extra = all->size() > static_cast<size_t>(opts_.keep_backups)
                       ? all->size() - static_cast<size_t>(opts_.keep_backups) : 0;
    for (size_t i = 0; i < extra; ++i) {
      const Backup& old = (*all)[i];
      if (old.id == b.id) continue;
      log(d, "ads", "keeping the last " + std::to_string(opts_.keep_backups) + " backups: deleting backup " + old.id);
      if (auto e = remove_backup(d, job, old); !e.empty())
        log(d, "ads", "could not delete backup " + old.id + " (it stays listed): " + e);
    }
  }
  return "";
}

std::string Engine::restore_data(Deployment& d, Job& job, const Backup& b) {
  auto spec = stored_spec(d);
  if (!spec) return spec.error().message;
  set_step(job, "checking the backup");
  std::ifstream in(b.path, std::ios::binary);
  if (!in) return "the backup archive " + b.path + " is missing";
  std::string data((std::istreambuf_iterator<char>(in)), {});
  if (file_sha256(data) != b.sha256) return "the backup archive " + b.path + " does not match its checksum";
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  if (!spec->action("restore").empty()) {
    set_step(job, "placing the data");
    auto st = client.upload_backup(data);
    if (!st) return "cannot place the backup: " + st.error().message;
    set_step(job, "running the lab's restore");
    if (auto e = run_action(d, client, "restore"); !e.empty()) return e;
    log(d, "ads", "restored the lab's data from backup " + b.id);
    return "";
  }
  Provider* p = provider_for(d.provider);
  if (b.snapshot.empty() || !p) return "the lab has no restore action and backup " + b.id + " has no snapshot";
  set_step(job, "restoring the snapshot");
  auto st = p->restore_snapshot(d.machine, b.snapshot);
  if (!st) return st.error().message;
  log(d, "ads", "restored the machine to snapshot " + b.snapshot);
  return "";
}

std::string Engine::do_restore(Deployment& d, Job& job) {
  auto b = store_.get_backup(backup_param(job));
  if (!b) return b.error().message;
  if (d.state == State::kDestroyed) {
    // into a new machine: the pipeline again, at the backup's commit
    log(d, "ads", "restoring backup " + b->id + " into a new machine");
    d.commit = b->commit;
    d.failed_step.clear();
    d.error.clear();
    auto st = advance(d, State::kAccepted);
    if (!st) return st.error().message;
    return do_deploy(d, job, b->id);
  }
  if (d.state == State::kStopped) {
    if (auto e = do_start(d, job); !e.empty()) return e;
  }
  if (auto e = restore_data(d, job, *b); !e.empty()) return e;
  auto spec = stored_spec(d);
  if (!spec) return spec.error().message;
  if (!b->snapshot.empty() && spec->action("restore").empty()) {
    // the snapshot brought the machine back as it was; start the lab again
    if (auto e = do_start(d, job); !e.empty()) return e;
  }
  return http_check(d, *spec, nullptr);
}

std::string Engine::do_destroy(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (d.state == State::kDestroyed) return "";
  auto st = advance(d, State::kDestroying);
  if (!st) return st.error().message;
  if (!d.machine.empty()) {
    if (!p) return "provider " + d.provider + " is not configured";
    set_step(job, "removing machine");
    log(d, "ads", "removing machine " + d.machine);
    st = with_retry(d, "removing machine " + d.machine, [&] { return p->destroy(d.machine); });
    if (!st) return st.error().message;
  }
  d.machine.clear();
  d.address.clear();
  d.url.clear();
  release_addresses(d);
  st = advance(d, State::kDestroyed);
  if (!st) return st.error().message;
  log(d, "ads", "destroyed");
  return "";
}

// The provider's snapshot first (it may outlive the machine: an AMI, a vzdump
// archive), then the archive on this host, then the record: a failure leaves
// the backup listed, and deleting it again finishes the work.
std::string Engine::do_delete_backup(Deployment& d, Job& job) {
  std::string backup_id = backup_param(job);
  auto b = store_.get_backup(backup_id);
  if (!b && b.error().code == "not_found") {
    // operate() checked that it existed: a resumed job whose first run got this far
    log(d, "ads", "backup " + backup_id + " is already deleted");
    return "";
  }
  if (!b) return b.error().message;
  return remove_backup(d, job, *b);
}

std::string Engine::remove_backup(Deployment& d, Job& job, const Backup& b) {
  if (!b.snapshot.empty()) {
    Provider* p = provider_for(d.provider);
    if (!p) return "provider " + d.provider + " is not configured";
    set_step(job, "deleting the snapshot");
    std::string machine = machine_name(d.id);
    auto st = with_retry(d, "deleting snapshot " + b.snapshot, [&] { return p->delete_snapshot(machine, b.snapshot); });
    if (!st && st.error().code != "unsupported") return "cannot delete snapshot " + b.snapshot + ": " + st.error().message;
  }
  set_step(job, "deleting the archive");
  std::error_code ec;
  if (!b.path.empty() && !fs::remove(b.path, ec) && ec) return "cannot delete " + b.path + ": " + ec.message();
  auto st = store_.delete_backup(b.id);
  if (!st && st.error().code != "not_found") return st.error().message;
  log(d, "ads", "deleted backup " + b.id);
  return "";
}

void Engine::run_job(Job& job) {
  auto got = store_.get(job.deployment_id);
  if (!got) {
    job.state = "failed";
    job.error = got.error().message;
    set_step(job, "");
    return;
  }
  Deployment d = std::move(got.value());
  job.state = "running";
  job.attempts += 1;
  set_step(job, "started");
  std::string error;
  if (job.kind == "deploy") {
    error = do_deploy(d, job, "");
  } else if (job.kind == "start") {
    error = do_start(d, job);
  } else if (job.kind == "stop") {
    error = do_stop(d, job);
  } else if (job.kind == "restart") {
    error = do_stop(d, job);
    if (error.empty()) error = do_start(d, job);
  } else if (job.kind == "test") {
    error = do_test(d, job);
  } else if (job.kind == "backup") {
    error = do_backup(d, job);
  } else if (job.kind == "restore") {
    error = do_restore(d, job);
  } else if (job.kind == "destroy") {
    error = do_destroy(d, job);
  } else if (job.kind == "delete-backup") {
    error = do_delete_backup(d, job);
  } else {
    error = "unknown job kind " + job.kind;
  }
  if (error == "interrupted") {
    observe_step(job, "");
    return;  // left as it is (and its lease released at stop); the next start or another server deals with it
  }
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
      } else {
        (void)store_.update(d);  // keep what the job learnt (an address, say)
      }
    }
  } else {
    job.state = "succeeded";
    (void)store_.update(d);
  }
  set_step(job, job.state == "succeeded" ? "done" : job.step);
}

bool Engine::recover(Job& job, const std::string& taken_over_by) {
  auto d = store_.get(job.deployment_id);
  if (!d) {
    job.state = "failed";
    job.error = d.error().message;
    (void)store_.update_job(job);
    return false;
  }
  bool idempotent = job.kind == "start" || job.kind == "stop" || job.kind == "restart" || job.kind == "test" ||
                    job.kind == "destroy" || job.kind == "delete-backup";
  if (job.state == "queued" || idempotent || (job.kind == "deploy" && d->state == State::kAccepted)) {
    log(*d, "ads", "resuming " + job.kind + " job " + job.id +
                       (taken_over_by.empty() ? " after a restart of ads serve"
                                              : ": taken over by server " + taken_over_by + " (its server stopped)"));
    job.state = "queued";
    (void)store_.update_job(job);
    return true;
  }
  std::string why = "interrupted: ads serve stopped during " + job.kind + " (" + job.step + ")";
  if (!taken_over_by.empty()) why += "; taken over by server " + taken_over_by;
  if (job.kind == "deploy" && job.attempts < opts_.deploy_attempts && !is_settled(d->state)) {
    // Deploy again from the start: what the cut-off run made goes first (the
    // new run makes a machine of the same name, and its address again).
    log(*d, "ads", why + "; removing what it made and deploying again from the start (run " +
                       std::to_string(job.attempts + 1) + " of at most " + std::to_string(opts_.deploy_attempts) + ")");
    if (remove_machine(*d)) {
      release_addresses(*d);
      d->failed_step.clear();
      d->error.clear();
      auto st = advance(*d, State::kAccepted);
      if (st) {
        job.state = "queued";
        job.error.clear();
        (void)store_.update_job(job);
        return true;
      }
      log(*d, "ads", "cannot record the new start: " + st.error().message);
    }
    why += "; could not start it again";
  }
  job.state = "failed";
  job.error = why;
  (void)store_.update_job(job);
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
  stopping_ = false;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) threads_.emplace_back([this] { worker(); });
  renewer_ = std::thread([this] { renew_leases(); });
  return Status::Ok();
}

void Engine::stop() {
  stopping_ = true;
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  bool was_running = !threads_.empty();
  threads_.clear();
  if (renewer_.joinable()) renewer_.join();
  // Jobs left mid-way are free for another server (or the next start) at once.
  if (was_running) (void)store_.renew_leases(opts_.server_id, 0);
}

void Engine::renew_leases() {
  const auto every = std::max(opts_.lease / 3, std::chrono::milliseconds(100));
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, every, [&] { return stopping_.load(); });
    if (stopping_) return;
    lk.unlock();
    auto r = store_.renew_leases(opts_.server_id, now_ms() + opts_.lease.count());
    if (!r) spdlog::error("cannot renew the leases of server {}: {}", opts_.server_id, r.error().message);
    lk.lock();
  }
}

void Engine::worker() {
  while (!stopping_) {
    auto claimed = store_.claim_job(opts_.server_id, now_ms(), opts_.lease.count());
    if (!claimed) spdlog::error("cannot claim a job: {}", claimed.error().message);
    if (!claimed || !claimed->has_value()) {
      // nothing to do: sleep until a job is queued here or the poll interval
      // passes (another server may have queued one, or a lease lapsed)
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, opts_.poll, [&] { return stopping_ || wakeups_ > 0; });
      if (wakeups_ > 0) --wakeups_;
      continue;
    }
    Job job = std::move(**claimed);
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
    cv_.notify_one();
  }
}

Result<std::vector<Engine::Drift>> Engine::reconcile() {
  std::vector<Drift> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (auto& [kind, p] : providers_) {
    auto machines = p->list();
    if (!machines) return machines.error();
    for (auto& m : *machines) {
      seen.insert({kind, m.name});
      std::string id = m.labels.count("deployment") ? m.labels.at("deployment") : "";
      auto d = store_.get(id);
      if (!d) {
        out.push_back({kind, m.name, id, "orphan: the store has no deployment " + id});
      } else if (d->machine != m.name) {
        out.push_back({kind, m.name, id, "orphan: deployment " + id + " is " + to_string(d->state) +
                                             " and does not own this machine"});
      }
    }
  }
  ListQuery q;
  q.limit = 100000;
  auto all = store_.list(q);
  if (!all) return all.error();
  for (auto& d : *all) {
    if (d.machine.empty() || !providers_.count(d.provider)) continue;
    if (!seen.count({d.provider, d.machine}) && is_settled(d.state))
      out.push_back({d.provider, d.machine, d.id, "missing: deployment is " + to_string(d.state) +
                                                     " but the provider has no such machine"});
  }
  return out;
}

}  // namespace ads
