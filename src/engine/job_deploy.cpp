// Job "deploy": the pipeline from accepted to running (core/deployment.h):
// fetching -> validating -> provisioning -> starting_agent -> uploading ->
// installing -> starting -> verifying -> running.
// Rules (core/job_rules.h): made by Engine::submit with its new deployment,
// never by operate(). Each step is recorded before its work; the machine's
// name is recorded before the machine exists (no machine without a record).
// Fails: the deployment fails at its step, its machine is removed (unless
// keep_failed) and its static address released. Cut off by a stopped server:
// deployed again from the start (what the run made removed first) while the
// job has runs left (deploy_attempts), else failed and rolled back.
#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/internal.h"
#include "engine/archive.h"
#include "engine/fetcher.h"
#include "engine/lab_source.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;


Status Engine::do_deploy_job(Deployment& d, Job& job) { return do_deploy(d, job, ""); }

// The pipeline from accepted to running. With `restore_backup`, it restores
// that backup's data once the lab is installed and started.
Status Engine::do_deploy(Deployment& d, Job& job, const std::string& restore_backup) {
  Provider* p = provider_for(d.provider);
  if (!p) return failed("provider " + d.provider + " is not configured");
  auto progress = [&](const std::string& s) { log(d, "ads", s); };
  bool interrupted = false, cancel = false;
  std::string step_error;
  auto step = [&](State s) -> bool {
    if (stopping_) {
      interrupted = true;  // left unfinished; the next start deals with it
      return false;
    }
    if (cancelled(d.id)) {
      cancel = true;  // the runner ends it as its rules say (rolled back)
      return false;
    }
    auto st = advance(d, s);
    if (!st) {
      interrupted = st.error().code == "interrupted";  // the store was away past the lease: handed back
      step_error = "cannot record step " + to_string(s) + ": " + st.error().message;
      return false;
    }
    set_step(job, to_string(s));
    log(d, "ads", "step " + to_string(s));
    return true;
  };
#define ADS_STEP(s)                                              \
  if (!step(s))                                                  \
  return interrupted ? Error::make("interrupted", "interrupted")  \
                     : cancel ? Error::make("cancelled", "cancelled") : failed(step_error)

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
  auto fetched = fetch_lab(d.source, ref, work.string(), opts_.sources, owner_may_use_any_path(store_, d.owner), progress);
  if (!fetched) return fetched.error();
  d.commit = fetched->commit;

  ADS_STEP(State::kValidating);
  auto specfile = read_spec(fetched->dir);
  if (!specfile) return specfile.error();
  const LabSpec& spec = specfile->spec;
  if (auto t = check_timeouts(spec); !t) return failed(t.error().message);
  d.spec_json = json{{"path", specfile->path}, {"text", specfile->text}}.dump();
  log(d, "ads", "lab spec v" + std::to_string(spec.format) + ": " + spec.os_key() +
                    (spec.memory_mb ? ", " + std::to_string(spec.memory_mb) + " MB" : ""));
  auto tarball = tar_gz_directory(fetched->dir, opts_.sources.max_checkout_bytes);
  if (!tarball) return tarball.error();

  ADS_STEP(State::kProvisioning);
  if (agent_bytes_.empty()) return failed("the agent binary " + opts_.agent_binary + " could not be read");
  d.secret = agent::random_hex(32);
  d.machine = machine_name(d.id);
  auto st = advance(d, d.state);  // record the machine's name before it exists: no machine without a record
  if (!st) return st.error();
  MachineSpec ms;
  ms.name = d.machine;
  ms.os_key = spec.os_key();
  ms.memory_mb = spec.memory_mb;
  ms.storage_mb = spec.storage_mb;
  ms.labels = {{"deployment", d.id}, {"lab", d.name}};
  json agent_cfg = {{"secret", d.secret}, {"port", agent::kAgentPort}, {"host", "0.0.0.0"}, {"lab_dir", "/opt/lab"},
                    {"command_timeout_s", opts_.action_timeout_ms / 1000}};
  // where others can read the machine's files, the secret in them is a
  // bootstrap secret, replaced at starting_agent (agent/handover.h)
  const bool bootstrap = p->files_readable_by_others();
  if (bootstrap) agent_cfg["secret_file"] = "/etc/ads-agent/secret";
  ms.files = {{"/usr/local/bin/ads-agent", agent_bytes_, 0755}, {"/etc/ads-agent/agent.json", agent_cfg.dump(), 0600}};
  if (std::string pool = p->address_pool(); !pool.empty()) {
    // allocated in the store (one transaction), so concurrent deploys never share one
    Result<std::string> a = Error::make("internal", "not allocated");
    auto got = store_write(d.id, "a static address", [&]() -> Status {
      a = store_.allocate_address(pool, d.id);
      return a ? Status::Ok() : Status(a.error());
    });
    if (!got && got.error().code == "interrupted") return got.error();
    if (!a) return failed("no address for the machine in " + pool + ": " + a.error().message);
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
    return st.error();
  }
  st = with_retry(d, "starting the machine", [&] { return p->start(d.machine); });
  if (!st) return st.error();
  log(d, "ads", "machine " + d.machine + " started; waiting for its address");
  auto addr = p->wait_address(d.machine, opts_.address_timeout);
  if (!addr) return addr.error();
  d.address = *addr;
  log(d, "ads", "machine address " + d.address);

  ADS_STEP(State::kStartingAgent);
  if (bootstrap) {
    if (auto e = replace_bootstrap_secret(d); !e) return e;
  }
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  st = client.wait_ready(opts_.agent_timeout);
  if (!st) return st.error();
  log(d, "ads", "agent answers on " + client.base_url());

  ADS_STEP(State::kUploading);
  log(d, "ads", "uploading the lab (" + std::to_string(tarball->size()) + " bytes)");
  auto up = client.upload_lab(*tarball);
  if (!up) return failed("the agent refused the lab: " + up.error().message);

  ADS_STEP(State::kInstalling);
  if (!spec.install.empty() || !spec.ansible_playbook.empty()) {
    if (auto e = run_action(d, client, "install"); !e) return e;
  } else {
    log(d, "ads", "the lab has no install steps");
  }

  ADS_STEP(State::kStarting);
  if (!spec.action("start").empty()) {
    if (auto e = run_action(d, client, "start"); !e) return e;
  }
  if (!restore_backup.empty()) {
    auto b = store_.get_backup(restore_backup);
    if (!b) return b.error();
    if (auto e = restore_data(d, job, *b); !e) return e;
  }

  ADS_STEP(State::kVerifying);
  if (!spec.action("test").empty()) {
    if (auto e = run_action(d, client, "test"); !e) return e;
  }
  std::string url;
  if (auto e = http_check(d, spec, &url); !e) return e;
  d.url = url;
  if (auto e = publish(d, spec); !e) return e;
  ADS_STEP(State::kRunning);
  log(d, "ads", "running at " + url);
  spdlog::info("deployment {} ({}) running at {}", d.id, d.name, url);
  return Status::Ok();
#undef ADS_STEP
}

}  // namespace ads
