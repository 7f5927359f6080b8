// Job "test": the lab's test action (if any: its commands, then its playbook
// from this host in controller mode) and the HTTP check.
// Rules (core/job_rules.h): queued on a running deployment only; runs again
// from the start when cut off. Its result (passed, exit code, HTTP, the first
// 200 output lines) is the job's result; a failed test fails the job only.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "core/ansible_output.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::do_test(Deployment& d, Job& job) {
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  json result = {{"passed", false}};
  std::vector<std::string> output;
  auto sink = [&](const std::string& stream, const std::string& line) {
    log(d, stream, line);
    if (output.size() < 200) output.push_back(stream + " | " + line);
  };
  std::string error;
  if (spec->has_action("test")) {
    set_step(job, "running the lab's test");
    agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
    auto rc = agent_action(d, client, "test", sink);
    // a test playbook in controller mode then runs from this host (as in
    // run_action); its failed task goes into the error
    AnsibleOutput ansible;
    if (rc && *rc == 0 && !spec->playbook_for("test").empty() &&
        spec->ansible_mode == LabSpec::AnsibleMode::kController) {
      rc = run_controller_playbook(d, client, *spec, "test", "",
                                   [&](const std::string& stream, const std::string& line) {
                                     ansible.feed(stream, line);
                                     sink(stream, line);
                                   });
    }
    if (!rc && (rc.error().code == "interrupted" || rc.error().code == "cancelled")) return rc.error();
    if (!rc) error = "test: " + rc.error().message;
    else if (*rc != 0) error = "the lab's test failed with exit code " + std::to_string(*rc);
    if (auto f = ansible.failure(); rc && *rc != 0 && f) error += ": ansible: " + *f;
    result["test_exit_code"] = rc ? json(*rc) : json(nullptr);
  } else {
    log(d, "ads", "the lab has no test action; checking HTTP only");
  }
  set_step(job, "checking HTTP");
  Status http = http_check(d, *spec, nullptr);
  result["http_ok"] = http.ok();
  if (error.empty() && !http) error = http.error().message;
  result["passed"] = error.empty();
  result["output"] = output;
  job.result_json = result.dump();
  log(d, "ads", error.empty() ? "test passed" : "test failed: " + error);
  if (!error.empty()) return failed(error);
  return Status::Ok();
}

}  // namespace ads
