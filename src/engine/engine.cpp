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

json spec_to_json(const LabSpec& s) {
  json phases = json::array();
  for (auto& p : s.install) phases.push_back({{"name", p.name}, {"commands", p.commands}});
  return {{"format", s.format},       {"id", s.id},
          {"title", s.title},         {"os", s.os},
          {"os_version", s.os_version}, {"memory_mb", s.memory_mb},
          {"swap_mb", s.swap_mb},     {"storage_mb", s.storage_mb},
          {"workdir", s.workdir},     {"ansible_playbook", s.ansible_playbook},
          {"install", phases},        {"actions", s.actions},
          {"http", {{"port", s.http_port}, {"path", s.http_path}}}};
}

Result<LabSpec> read_spec(const std::string& dir) {
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
    return r;
  }
  return Error::invalid("spec", std::string("the lab has no lab spec: expected ") + kSpecV2Path + " or " + kSpecV1Path);
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
  std::string provider = req.provider.empty() ? opts_.default_provider : req.provider;
  if (!provider_for(provider)) {
    std::string known;
    for (auto& [k, v] : providers_) known += (known.empty() ? "" : ", ") + k;
    return Error::invalid("provider", "no provider \"" + provider + "\" is configured (configured: " + known + ")");
  }
  Deployment d;
  d.id = new_id();
  d.name = name;
  d.source = req.source;
  d.ref = req.ref;
  d.provider = provider;
  d.state = State::kAccepted;
  d.created_ms = d.updated_ms = now_ms();
  st = store_.create(d);
  if (!st) return st.error();
  log(d, "ads", "accepted: deploy " + d.source + (d.ref.empty() ? "" : " at " + d.ref) + " as " + d.name);
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back({d.id, Job::kDeploy});
  }
  cv_.notify_one();
  return d;
}

Result<Deployment> Engine::destroy(const std::string& id) {
  auto d = store_.get(id);
  if (!d) return d.error();
  if (d->state == State::kDestroyed || d->state == State::kDestroying) return *d;
  if (!can_transition(d->state, State::kDestroying))
    return Error::make("conflict", "deployment " + id + " is " + to_string(d->state) +
                                       "; it can be destroyed once it is running or failed");
  auto st = advance(*d, State::kDestroying);
  if (!st) return st.error();
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back({id, Job::kDestroy});
  }
  cv_.notify_one();
  return *d;
}

Status Engine::advance(Deployment& d, State s) {
  d.state = s;
  d.updated_ms = now_ms();
  return store_.update(d);
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

void Engine::fail(Deployment& d, const std::string& error, Provider* p) {
  d.failed_step = to_string(d.state);
  d.error = error;
  log(d, "ads", "failed at " + d.failed_step + ": " + error);
  if (p && !d.machine.empty()) {
    if (opts_.keep_failed) {
      log(d, "ads", "keeping machine " + d.machine + " for inspection (keep_failed)");
    } else {
      auto st = p->destroy(d.machine);
      if (st) {
        log(d, "ads", "removed machine " + d.machine);
        d.machine.clear();
        d.address.clear();
      } else {
        log(d, "ads", "could not remove machine " + d.machine + ": " + st.error().message);
      }
    }
  }
  auto st = advance(d, State::kFailed);
  if (!st) spdlog::error("cannot record failure of {}: {}", d.id, st.error().message);
  spdlog::warn("deployment {} failed at {}: {}", d.id, d.failed_step, error);
}

void Engine::run_deploy(const std::string& id) {
  auto got = store_.get(id);
  if (!got) {
    spdlog::error("job for unknown deployment {}: {}", id, got.error().message);
    return;
  }
  Deployment d = std::move(got.value());
  Provider* p = provider_for(d.provider);
  if (!p) return fail(d, "provider " + d.provider + " is not configured", nullptr);
  auto progress = [&](const std::string& s) { log(d, "ads", s); };
  auto step = [&](State s) -> bool {
    if (stopping_) return false;  // left unfinished; the next start rolls it back
    auto st = advance(d, s);
    if (!st) {
      spdlog::error("cannot record step of {}: {}", d.id, st.error().message);
      return false;
    }
    log(d, "ads", "step " + to_string(s));
    return true;
  };

  // fetching
  if (!step(State::kFetching)) return;
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
  auto fetched = fetch_lab(d.source, d.ref, work.string(), progress);
  if (!fetched) return fail(d, fetched.error().message, p);
  d.commit = fetched->commit;

  // validating
  if (!step(State::kValidating)) return;
  auto spec = read_spec(fetched->dir);
  if (!spec) return fail(d, spec.error().message, p);
  d.spec_json = spec_to_json(*spec).dump();
  log(d, "ads", "lab spec v" + std::to_string(spec->format) + ": " + spec->os_key() +
                    (spec->memory_mb ? ", " + std::to_string(spec->memory_mb) + " MB" : ""));
  auto tarball = tar_gz_directory(fetched->dir);
  if (!tarball) return fail(d, tarball.error().message, p);

  // provisioning
  if (!step(State::kProvisioning)) return;
  if (agent_bytes_.empty()) return fail(d, "the agent binary " + opts_.agent_binary + " could not be read", p);
  d.secret = agent::random_hex(32);
  d.machine = machine_name(d.id);
  auto st = store_.update(d);  // record the machine name before it exists: no orphan without a record
  if (!st) return fail(d, st.error().message, nullptr);
  MachineSpec ms;
  ms.name = d.machine;
  ms.os_key = spec->os_key();
  ms.memory_mb = spec->memory_mb;
  ms.storage_mb = spec->storage_mb;
  ms.labels = {{"deployment", d.id}, {"lab", d.name}};
  json agent_cfg = {{"secret", d.secret}, {"port", agent::kAgentPort}, {"host", "0.0.0.0"}, {"lab_dir", "/opt/lab"},
                    {"command_timeout_s", opts_.action_timeout_ms / 1000}};
  ms.files = {{"/usr/local/bin/ads-agent", agent_bytes_, 0755},
              {"/etc/ads-agent/agent.json", agent_cfg.dump(), 0600}};
  st = p->create(ms, progress);
  if (!st) {
    if (st.error().code == "conflict") d.machine.clear();  // not ours: never remove it
    return fail(d, st.error().message, p);
  }
  st = p->start(d.machine);
  if (!st) return fail(d, st.error().message, p);
  log(d, "ads", "machine " + d.machine + " started; waiting for its address");
  auto addr = p->wait_address(d.machine, opts_.address_timeout);
  if (!addr) return fail(d, addr.error().message, p);
  d.address = *addr;
  log(d, "ads", "machine address " + d.address);

  // starting_agent
  if (!step(State::kStartingAgent)) return;
  agent::AgentClient client("http://" + d.address + ":" + std::to_string(agent::kAgentPort), d.secret);
  st = client.wait_ready(opts_.agent_timeout);
  if (!st) return fail(d, st.error().message, p);
  log(d, "ads", "agent answers on " + client.base_url());

  // uploading
  if (!step(State::kUploading)) return;
  log(d, "ads", "uploading the lab (" + std::to_string(tarball->size()) + " bytes)");
  auto up = client.upload_lab(*tarball);
  if (!up) return fail(d, "the agent refused the lab: " + up.error().message, p);

  auto sink = [&](const std::string& stream, const std::string& line) { log(d, stream, line); };
  auto run = [&](const std::string& action) -> bool {
    auto rc = client.run_action(action, sink, opts_.action_timeout_ms);
    if (!rc) {
      fail(d, action + ": " + rc.error().message, p);
      return false;
    }
    if (*rc != 0) {
      fail(d, action + " failed with exit code " + std::to_string(*rc) + " (see the log)", p);
      return false;
    }
    return true;
  };

  // installing
  if (!step(State::kInstalling)) return;
  if (!spec->install.empty() || !spec->ansible_playbook.empty()) {
    if (!run("install")) return;
  } else {
    log(d, "ads", "the lab has no install steps");
  }

  // starting
  if (!step(State::kStarting)) return;
  if (!spec->action("start").empty()) {
    if (!run("start")) return;
  } else {
    log(d, "ads", "the lab has no start action");
  }

  // verifying: the lab's own test, then an HTTP check of its URL
  if (!step(State::kVerifying)) return;
  if (!spec->action("test").empty()) {
    if (!run("test")) return;
  }
  std::string url = "http://" + d.address + (spec->http_port == 80 ? "" : ":" + std::to_string(spec->http_port)) +
                    spec->http_path;
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
      break;
    }
    last = r ? "HTTP " + std::to_string(r->status) : r.error().message;
    if (std::chrono::steady_clock::now() >= deadline || stopping_)
      return fail(d, "the lab does not answer at " + url + ": " + last, p);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  d.url = url;
  if (!step(State::kRunning)) return;
  log(d, "ads", "running at " + url);
  spdlog::info("deployment {} ({}) running at {}", d.id, d.name, url);
}

void Engine::run_destroy(const std::string& id) {
  auto got = store_.get(id);
  if (!got) return;
  Deployment d = std::move(got.value());
  Provider* p = provider_for(d.provider);
  if (!d.machine.empty()) {
    if (!p) return fail(d, "provider " + d.provider + " is not configured", nullptr);
    log(d, "ads", "removing machine " + d.machine);
    auto st = p->destroy(d.machine);
    if (!st) {
      d.failed_step = "destroying";
      d.error = st.error().message;
      log(d, "ads", "could not remove machine " + d.machine + ": " + st.error().message);
      auto s2 = advance(d, State::kFailed);
      (void)s2;
      return;
    }
  }
  d.machine.clear();
  d.address.clear();
  d.url.clear();
  auto st = advance(d, State::kDestroyed);
  if (!st) spdlog::error("cannot record destruction of {}: {}", d.id, st.error().message);
  log(d, "ads", "destroyed");
}

Status Engine::start() {
  {
    std::ifstream in(opts_.agent_binary, std::ios::binary);
    if (!in) return Error::invalid("agent_binary", "cannot read the agent binary " + opts_.agent_binary);
    agent_bytes_.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto unfinished = store_.unfinished();
  if (!unfinished) return unfinished.error();
  for (auto& d : *unfinished) {
    if (d.state == State::kAccepted) {
      queue_.push_back({d.id, Job::kDeploy});
    } else if (d.state == State::kDestroying) {
      queue_.push_back({d.id, Job::kDestroy});
    } else {
      fail(d, "interrupted: ads serve stopped during " + to_string(d.state) + "; rolled back", provider_for(d.provider));
    }
  }
  stopping_ = false;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) threads_.emplace_back([this] { worker(); });
  return Status::Ok();
}

void Engine::stop() {
  stopping_ = true;
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Engine::worker() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
    }
    try {
      if (job.kind == Job::kDeploy) run_deploy(job.id);
      else run_destroy(job.id);
    } catch (const std::exception& e) {
      spdlog::error("job {} crashed: {}", job.id, e.what());
      auto d = store_.get(job.id);
      if (d) fail(*d, std::string("internal error: ") + e.what(), provider_for(d->provider));
    }
  }
}

}  // namespace ads
