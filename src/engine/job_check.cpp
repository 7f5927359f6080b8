// Job "check": a dry run of the lab's install playbook against its running
// machine, `ansible-playbook --check` (and `--diff` when asked): in the
// controller mode from the ADS host (its sandbox and per-run key,
// engine/ansible_controller.cpp), in the local mode by the machine's agent
// (POST /v1/check: the lab to check is sent along, unpacked beside the lab
// and removed after). In Ansible's check mode each task reports what it would
// change instead of changing it, and --diff shows how (a file's lines); a
// task marked `check_mode: false`, and the lab's own modules and plugins,
// still run for real: a check is as safe as the playbook. The output goes to
// the deployment's log as it comes (diffs included: viewers read the log);
// the job's result holds the tasks that would change and the PLAY RECAP's
// counts.
// Rules (core/job_rules.h): queued on a running deployment only, with
// - {} : the deployment's source at its ref as it is now (a branch's newest
//        commit; a plain directory's files as they are): what a release of
//        it would change, playbook-wise;
// - {"ref": r}: the source at another branch, tag or commit;
// - {"as_deployed": true}: the lab exactly as deployed (the machine's copy):
//        what changed on the machine since (drift), as the playbook sees it;
// - and {"diff": true} for --diff.
// Runs again from the start when cut off (a check left running in the machine
// by a stopped server is waited for, as an action is). A lab that installs
// with commands is refused by the job with the reason.
#include <filesystem>

#include "agent/client.h"
#include "agent/protocol.h"
#include "core/ansible_output.h"
#include "core/text.h"
#include "engine/agent_wait.h"
#include "engine/archive.h"
#include "engine/engine.h"
#include "engine/fetcher.h"
#include "engine/internal.h"
#include "engine/lab_source.h"
#include "engine/source_access.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::do_check(Deployment& d, Job& job) {
  json params = json::parse(job.params_json, nullptr, false);
  if (!params.is_object()) params = json::object();
  const bool as_deployed = params.value("as_deployed", false);
  const bool diff = params.value("diff", false);
  const std::string ref = params.value("ref", "");

  LabSpec spec;
  std::string lab_tree;  // "": the machine's copy of the deployed lab
  std::string what;      // for the log and the result: which lab was checked
  std::string commit;
  // the checkout, in a directory held while the run lasts: a start after a
  // crash removes what no one holds (Engine::sweep_ansible_runs, "ansible-")
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      if (!p.empty()) fs::remove_all(p, e);
    }
  } cleanup;
  std::optional<DirHold> hold;
  if (as_deployed) {
    auto s = stored_spec(d);
    if (!s) return s.error();
    spec = std::move(s.value());
    commit = d.commit;
    what = "the lab as deployed" + (d.commit.empty() ? std::string() : " (commit " + d.commit.substr(0, 12) + ")");
  } else {
    set_step(job, "fetching");
    std::error_code ec;
    fs::create_directories(opts_.work_dir, ec);
    cleanup.p = fs::path(opts_.work_dir) / ("ansible-check-" + d.id + "-" + agent::random_hex(6));
    fs::create_directory(cleanup.p, ec);
    if (ec) return failed("check: cannot make " + cleanup.p.string() + ": " + ec.message());
    hold.emplace(cleanup.p);
    if (!hold->held()) return failed("check: cannot hold " + cleanup.p.string() + ": " + errno_text(hold->error()));
    const std::string at = ref.empty() ? d.ref : ref;
    auto fetched =
        fetch_lab(d.source, at, (cleanup.p / "lab").string(), opts_.sources, owner_may_use_any_path(store_, d.owner),
                  [&](const std::string& line) { log(d, "ads", line); });
    if (!fetched) return failed("check: " + fetched.error().message);
    auto specfile = read_spec(fetched->dir);
    if (!specfile) return failed("check: " + specfile.error().message);
    spec = std::move(specfile->spec);
    if (auto tc = check_timeouts(spec); !tc) return failed("check: " + tc.error().message);
    lab_tree = fetched->dir;
    commit = fetched->commit;
    what = printable(d.source, 200) + (at.empty() ? "" : " at " + printable(at, 100)) +
           (commit.empty() ? " (a plain directory, as it is now)" : " (commit " + commit.substr(0, 12) + ")");
  }
  const std::string playbook = spec.playbook_for("install");
  if (playbook.empty())
    return failed("check: " + what +
                  " installs with commands, not with an Ansible playbook; a check runs the install playbook in "
                  "Ansible's check mode (docs/integrators/ansible.md)");

  set_step(job, "checking");
  log(d, "ads",
      "check: " + playbook + " of " + what + " in Ansible's check mode" + (diff ? " with --diff" : "") +
          ": each task says what it would change (a task with check_mode: false runs for real)");
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  AnsibleOutput ansible;
  auto sink = [&](const std::string& stream, const std::string& line) {
    ansible.feed(stream, line);
    log(d, stream, line);
  };
  std::vector<std::string> check_args = {"--check"};
  if (diff) check_args.emplace_back("--diff");
  Result<int> rc = 0;
  if (spec.ansible_mode == LabSpec::AnsibleMode::kController) {
    rc = run_controller_playbook(d, client, spec, "install", lab_tree, sink, check_args);
    if (!rc && rc.error().code != "interrupted" && rc.error().code != "cancelled")
      return failed("check: " + rc.error().message);
    if (!rc) return rc.error();
  } else {
    // local mode: the machine's agent runs it, from the lab sent along, or
    // from the lab as deployed
    std::string tarball;
    if (!lab_tree.empty()) {
      auto t = tar_gz_directory(lab_tree, opts_.sources.max_checkout_bytes);
      if (!t) return failed("check: " + t.error().message);
      tarball = std::move(t.value());
    }
    auto abandon = [&] { return stopping_.load() || cancelled(d.id); };
    // a check (or an action) left running by a server that stopped holds the
    // agent until it ends: waited for, as agent_action does
    rc = retry_while_agent_busy(
        [&]() -> Result<int> {
          if (abandon()) return Error::make("aborted", "check: stopped before it began");
          return client.run_check(tarball, sink, command_timeout_ms(spec, "install") + 60000, abandon, diff);
        },
        [](const Error& e) { return e.code == "busy"; }, abandon,
        std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.action_timeout_ms),
        [&] { log(d, "ads", "the agent is busy (a check or an action started before a restart?); waiting for it"); });
    if (stopping_) return Error::make("interrupted", "check: left unfinished, the server is stopping");
    if (cancelled(d.id) || (!rc && rc.error().code == "cancelled")) return Error::make("cancelled", "check: cancelled");
    if (!rc && rc.error().code == "not_found")
      return failed(
          "check: this machine's agent predates checks in local mode; a redeploy or a release brings the "
          "new agent");
    if (!rc) return failed("check: " + rc.error().message);
  }

  const auto& changed = ansible.changed_tasks();
  json result = {{"checked", what},
                 {"commit", commit},
                 {"playbook", playbook},
                 {"diff", diff},
                 {"exit_code", *rc},
                 {"changed_tasks", changed},
                 {"changed_tasks_cut", ansible.changed_tasks_cut()}};
  if (const auto& r = ansible.recap())
    result["recap"] = {{"ok", r->ok},
                       {"changed", r->changed},
                       {"unreachable", r->unreachable},
                       {"failed", r->failed},
                       {"skipped", r->skipped}};
  job.result_json = result.dump(-1, ' ', false, json::error_handler_t::replace);
  if (*rc != 0) {
    std::string why = "check: ansible-playbook --check ended with exit code " + std::to_string(*rc);
    if (auto f = ansible.failure()) {
      why += ": " + *f;
      if (f->starts_with("task '"))
        why +=
            " (in check mode a task fails when it needs what an earlier task would have made; see "
            "docs/integrators/ansible.md)";
    }
    return failed(why);
  }
  std::string names;
  for (const auto& t : changed) {
    if (names.size() > 2000) {
      names += ", ...";
      break;
    }
    names += (names.empty() ? "" : ", ") + ("'" + t + "'");
  }
  log(d, "ads",
      changed.empty() ? "check: nothing would change"
                      : "check: " + std::to_string(changed.size()) + (ansible.changed_tasks_cut() ? " or more" : "") +
                            " task(s) would change: " + names);
  return Status::Ok();
}

}  // namespace ads
