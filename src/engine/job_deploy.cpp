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
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/archive.h"
#include "engine/engine.h"
#include "engine/fetcher.h"
#include "engine/internal.h"
#include "engine/lab_source.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::do_deploy_job(Deployment& d, Job& job) { return do_deploy(d, job, ""); }

// The pipeline from accepted to running. With `restore_backup`, it restores
// that backup's data once the lab is installed and started.
Status Engine::do_deploy(Deployment& d, Job& job, const std::string& restore_backup) {
  BuildHooks h;
  h.step = [&](State s) -> Status {
    if (stopping_) return Error::make("interrupted", "interrupted");  // left unfinished; the next start deals with it
    if (cancelled(d.id))
      return Error::make("cancelled", "cancelled");  // the runner ends it as its rules say (rolled back)
    auto st = advance(d, s);
    if (!st) {
      if (st.error().code == "interrupted") return st;  // the store was away past the lease: handed back
      return failed("cannot record step " + to_string(s) + ": " + st.error().message);
    }
    set_step(job, to_string(s));
    log(d, "ads", "step " + to_string(s));
    return Status::Ok();
  };
  // the machine's name is recorded before the machine exists: no machine without a record
  h.record_machine = [&](const Deployment&) { return advance(d, d.state); };
  h.machine = machine_name(d.id);
  h.address_owner = d.id;
  if (!restore_backup.empty()) {
    h.after_start = [&](Deployment& t) -> Status {
      auto b = store_.get_backup(restore_backup);
      if (!b) return b.error();
      // the agent secret of the machine the backup was taken on: a snapshot's
      // disk brings that machine's agent back with it (a backup made before
      // backups kept it: the deployment's, right unless a release came since)
      const std::string snapshot_secret = b->secret.empty() ? d.secret : b->secret;
      auto spec = stored_spec(t);
      if (!spec) return spec.error();
      const bool by_snapshot = !spec->has_action("restore");
      if (auto e = restore_data(t, job, *b); !e) return e;
      if (!by_snapshot) return Status::Ok();
      // The machine now runs the snapshot's disk (on AWS a new instance from
      // the AMI): its address may be new, its agent holds the secret of then,
      // and its lab was not started since it booted.
      if (!snapshot_secret.empty()) t.secret = snapshot_secret;
      if (auto e = bring_up(t, job); !e) return e;
      log(t, "ads", "the machine restored from snapshot " + b->snapshot + " answers at " + t.address);
      return h.record_machine(t);
    };
  }
  // A restore deploys the commit the backup was taken at.
  if (!restore_backup.empty() && !d.commit.empty()) h.ref = d.commit;
  if (auto st = build(d, job, h); !st) return st;
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  if (auto e = publish(d, *spec); !e) return e;
  if (auto st = h.step(State::kRunning); !st) return st;
  log(d, "ads", "running at " + d.url);
  spdlog::info("deployment {} ({}) running at {}", d.id, d.name, d.url);
  return Status::Ok();
}

// The machine made and started for `t` (recorded first), with its address.
Status Engine::make_machine(Deployment& t, MachineSpec& ms, const BuildHooks& h, Provider* p) {
  auto progress = [&](const std::string& s) { log(t, "ads", s); };
  t.machine = h.machine;
  auto st = h.record_machine(t);  // before the machine exists: no machine without a record
  if (!st) return st.error();
  if (std::string pool = p->address_pool(); !pool.empty()) {
    // allocated in the store (one transaction), so concurrent deploys never share one
    Result<std::string> a = Error::make("internal", "not allocated");
    auto got = store_write(t.id, "a static address", [&]() -> Status {
      a = store_.allocate_address(pool, h.address_owner);
      return a ? Status::Ok() : Status(a.error());
    });
    if (!got && got.error().code == "interrupted") return got.error();
    if (!a) return failed("no address for the machine in " + pool + ": " + a.error().message);
    ms.address = *a;
    log(t, "ads", "static address " + ms.address + " from " + pool);
  }
  st = with_retry(t, "creating the machine", [&] {
    Status s = p->create(ms, progress);
    if (!s && transient(s.error())) (void)p->destroy(ms.name);  // half-made: clear before trying again
    return s;
  });
  if (!st) {
    if (st.error().code == "conflict") t.machine.clear();  // not ours: never remove it
    return st.error();
  }
  st = with_retry(t, "starting the machine", [&] { return p->start(t.machine); });
  if (!st) return st.error();
  log(t, "ads", "machine " + t.machine + " started; waiting for its address");
  auto addr = p->wait_address(t.machine, opts_.address_timeout);
  if (!addr) return addr.error();
  t.address = *addr;
  log(t, "ads", "machine address " + t.address);
  return Status::Ok();
}

Status Engine::build(Deployment& t, Job& job, const BuildHooks& h) {
  Provider* p = provider_for(t.provider);
  if (!p) return failed("provider " + t.provider + " is not configured");
  auto progress = [&](const std::string& s) { log(t, "ads", s); };
#define ADS_STEP(s) \
  if (auto st_ = h.step(s); !st_) return st_

  ADS_STEP(State::kFetching);
  fs::path work = fs::path(opts_.work_dir) / (h.address_owner.empty() ? t.id : h.address_owner);
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
  std::string ref = h.ref.empty() ? t.ref : h.ref;
  auto fetched =
      fetch_lab(t.source, ref, work.string(), opts_.sources, owner_may_use_any_path(store_, t.owner), progress);
  if (!fetched) return fetched.error();
  t.commit = fetched->commit;

  ADS_STEP(State::kValidating);
  auto specfile = read_spec(fetched->dir);
  if (!specfile) return specfile.error();
  const LabSpec& spec = specfile->spec;
  if (auto tc = check_timeouts(spec); !tc) return failed(tc.error().message);
  t.spec_json = json{{"path", specfile->path}, {"text", specfile->text}}.dump();
  log(t, "ads",
      "lab spec v" + std::to_string(spec.format) + ": " + spec.os_key() +
          (spec.memory_mb ? ", " + std::to_string(spec.memory_mb) + " MB" : ""));
  auto tarball = tar_gz_directory(fetched->dir, opts_.sources.max_checkout_bytes);
  if (!tarball) return tarball.error();

  ADS_STEP(State::kProvisioning);
  if (agent_bytes_.empty()) return failed("the agent binary " + opts_.agent_binary + " could not be read");
  t.secret = agent::random_hex(32);
  MachineSpec ms;
  ms.name = h.machine;
  ms.os_key = spec.os_key();
  ms.memory_mb = spec.memory_mb;
  ms.storage_mb = spec.storage_mb;
  ms.labels = {{"deployment", t.id}, {"lab", t.name}};
  json agent_cfg = {{"secret", t.secret},
                    {"port", agent::kAgentPort},
                    {"host", "0.0.0.0"},
                    {"lab_dir", "/opt/lab"},
                    {"command_timeout_s", opts_.action_timeout_ms / 1000},
                    // for the lab's commands and playbooks (ADS_DEPLOYMENT_ID, ads_name, ...);
                    // the stable URL is known from the first publish on (a release, a redeploy)
                    {"deployment_id", t.id},
                    {"lab_name", t.name},
                    {"stable_url", t.stable_url}};
  // where others can read the machine's files, the secret in them is a
  // bootstrap secret, replaced at starting_agent (agent/handover.h)
  const bool bootstrap = p->files_readable_by_others();
  if (bootstrap) agent_cfg["secret_file"] = "/etc/ads-agent/secret";
  // the agent is not sent to a machine whose image carries this very binary
  // (LXD: the image's manifest; scripts/build-image.sh); its config and
  // secret always are, never baked into an image
  ms.files = {{"/usr/local/bin/ads-agent", agent_bytes_, 0755, agent_sha256_},
              {"/etc/ads-agent/agent.json", agent_cfg.dump(), 0600}};
  // a warm machine (warm_pool.cpp), when one is ready; else one made now
  auto warm = take_warm(t, ms, h, p);
  if (!warm) return warm.error();
  if (!*warm) {
    if (auto st = make_machine(t, ms, h, p); !st) return st;
  }

  ADS_STEP(State::kStartingAgent);
  if (bootstrap) {
    if (auto e = replace_bootstrap_secret(t, h.record_machine); !e) return e;
  }
  agent::AgentClient client(agent::AgentClient::url_for(t.address, opts_.agent_port), t.secret);
  if (auto st = client.wait_ready(opts_.agent_timeout); !st) return st.error();
  log(t, "ads", "agent answers on " + client.base_url());

  ADS_STEP(State::kUploading);
  log(t, "ads", "uploading the lab (" + std::to_string(tarball->size()) + " bytes)");
  auto up = client.upload_lab(*tarball);
  if (!up) return failed("the agent refused the lab: " + up.error().message);

  ADS_STEP(State::kInstalling);
  if (!spec.install.empty() || !spec.ansible_playbook.empty()) {
    if (auto e = run_action(t, client, "install", fetched->dir); !e) return e;
  } else {
    log(t, "ads", "the lab has no install steps");
  }

  ADS_STEP(State::kStarting);
  if (spec.has_action("start")) {
    if (auto e = run_action(t, client, "start", fetched->dir); !e) return e;
  }
  if (h.after_start) {
    if (auto e = h.after_start(t); !e) return e;
  }

  ADS_STEP(State::kVerifying);
  if (spec.has_action("test")) {
    // the machine's address and agent secret as they are now (after_start may have replaced the machine)
    agent::AgentClient now(agent::AgentClient::url_for(t.address, opts_.agent_port), t.secret);
    if (auto e = run_action(t, now, "test", fetched->dir); !e) return e;
  }
  std::string url;
  if (auto e = http_check(t, spec, &url); !e) return e;
  t.url = url;
  return Status::Ok();
#undef ADS_STEP
}

}  // namespace ads
