// Steps shared by every job kind: recording state and steps, the log,
// retries of provider calls, failing and cleaning up, agent actions and the
// HTTP check.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "agent/client.h"
#include "core/ansible_output.h"
#include "engine/agent_wait.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "http/client.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::advance(Deployment& d, State s) {
  // The state machine of core/deployment.h, enforced; staying put (a stop of
  // a stopped machine, a destroy resumed) is no transition.
  if (d.state != s && !can_transition(d.state, s))
    return Error::make("internal", "deployment " + d.id + " cannot go from " + to_string(d.state) + " to " +
                                       to_string(s) + " (not a transition of the state machine)");
  d.state = s;
  d.updated_ms = now_ms();
  return store_write(d.id, "state " + to_string(s), [&] { return store_.update(d); });
}

void Engine::set_step(Job& job, const std::string& step) {
  // a finished job's last step ends now; "started" is bookkeeping, not a step
  bool finished = job.state == "succeeded" || job.state == "failed" || job.state == "cancelled";
  observe_step(job, finished || step == "started" ? "" : step);
  job.step = step;
  job.updated_ms = now_ms();
  auto st =
      store_write(job.deployment_id, "step \"" + step + "\" of job " + job.id, [&] { return store_.update_job(job); });
  if (!st) spdlog::error("cannot record step of job {}: {}", job.id, st.error().message);
}

JobLogCap*& engine_detail::current_job_log_cap() {
  thread_local JobLogCap* cap = nullptr;
  return cap;
}

void Engine::append_log(const std::string& id, const LogLine& l) {
  auto r = store_.append_log(id, l);
  if (!r) spdlog::error("cannot record a log line of {}: {}", id, r.error().message);
}

void Engine::log(const Deployment& d, const std::string& stream, const std::string& text) {
  LogLine l;
  l.ts_ms = now_ms();
  l.step = to_string(d.state);
  l.stream = stream;
  l.text = text;
  // a job's output is capped (head and tail kept); the engine's own lines
  // always go in, after what the cap held back
  JobLogCap* cap = current_job_log_cap();
  if (cap && cap->deployment_id == d.id) {
    if (stream == "ads") {
      for (auto& held : cap->cap.drain()) append_log(d.id, held);
    } else if (!cap->cap.add(l)) {
      return;
    }
  }
  append_log(d.id, l);
}

Status Engine::with_retry(const Deployment& d, const std::string& what, const std::function<Status()>& f) {
  auto backoff = opts_.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    Status st = f();
    if (st || !transient(st.error()) || attempt >= opts_.provider_attempts || stopping_ || cancelled(d.id)) return st;
    log(d, "ads",
        what + " failed (" + st.error().message + "); trying again in " + std::to_string(backoff.count()) +
            " ms (attempt " + std::to_string(attempt + 1) + " of " + std::to_string(opts_.provider_attempts) + ")");
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
  // Recorded before anything is removed: a failure the store cannot take
  // before the job's lease lapses removes nothing (the job is handed back
  // with its machine, for whoever claims it next).
  auto pre = store_write(d.id, "the failure", [&] { return store_.update(d); });
  if (!pre && pre.error().code == "interrupted") {
    spdlog::error("deployment {}: cannot record its failure ({}); {}", d.id, error, pre.error().message);
    return;
  }
  log(d, "ads", "failed at " + d.failed_step + ": " + error);
  if (!d.machine.empty() && (opts_.keep_failed || d.keep_failed)) {
    log(d, "ads",
        "keeping machine " + d.machine + " for inspection (keep_failed" +
            (d.expires_ms > 0 ? "; until the deployment expires at " + iso8601_utc(d.expires_ms) : std::string()) +
            "): ads exec " + d.id + " -- CMD, then ads destroy " + d.id);
  } else if (!remove_machine(d)) {
    queue_cleanup(d, "the removal failed when the deployment failed");
  }
  if (d.machine.empty()) {
    release_addresses(d);  // no machine (any more): no address either
    unpublish(d, false);   // nor a route to it; the port stays until destroy
  }
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
  // Each command may run the lab's timeout for this action (held to the
  // operator's maximum; the agent enforces it); the stream may last that
  // for every command of the action.
  long per_command = opts_.action_timeout_ms;
  size_t commands = 1;
  if (auto spec = stored_spec(d)) {
    per_command = command_timeout_ms(*spec, action);
    size_t n = 0;
    if (action == "install") {
      for (const auto& ph : spec->install) n += ph.commands.size();
    } else {
      n = spec->action(action).size();
    }
    if (!spec->playbook_for(action).empty()) n += 1;
    commands = std::max<size_t>(1, n);
  }
  const long stream_ms = per_command * static_cast<long>(commands) + 60000;
  // A server stopping leaves the stream at once (the action goes on in the
  // machine; the job is handed back, see the runner); a cancelled job too
  // (its command was killed first, see job_control.cpp).
  auto halted = [&]() -> std::optional<Error> {
    if (stopping_) return Error::make("interrupted", action + ": left unfinished, the server is stopping");
    if (cancelled(d.id)) return Error::make("cancelled", action + ": cancelled");
    return std::nullopt;
  };
  auto abandon = [&] { return stopping_.load() || cancelled(d.id); };
  // An agent answers "busy" while it still runs an action started by a
  // server that has since died (the action outlives its caller): wait for it.
  auto rc = retry_while_agent_busy(
      [&]() -> Result<int> {
        if (auto h = halted()) return *h;
        return c.run_action(action, sink, stream_ms, abandon);
      },
      [](const Error& e) { return e.code == "busy" || e.code == "conflict"; },  // conflict: an older agent
      abandon, std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.action_timeout_ms),
      [&] { log(d, "ads", "the agent is busy (an action started before a restart or a takeover?); waiting for it"); });
  if (!rc && (rc.error().code == "aborted" || rc.error().code == "cancelled")) {
    if (auto h = halted()) return *h;
    return rc.error();  // cancelled on the agent by someone else
  }
  return rc;
}

Status Engine::run_action(Deployment& d, agent::AgentClient& c, const std::string& action,
                          const std::string& lab_tree) {
  // what a playbook's output says went wrong, when the action runs one
  auto spec = stored_spec(d);
  const bool playbook = spec && !spec->playbook_for(action).empty();
  const bool controller = playbook && spec->ansible_mode == LabSpec::AnsibleMode::kController;
  AnsibleOutput ansible;
  bool in_playbook = false;  // from the agent's "$ ansible-playbook ..." on (not the shell commands before it)
  auto sink = [&](const std::string& stream, const std::string& line) {
    if (playbook && stream == "agent" && line.rfind("$ ", 0) == 0)
      in_playbook = line.rfind("$ ansible-playbook ", 0) == 0;
    if (in_playbook) ansible.feed(stream, line);
    log(d, stream, line);
  };
  // the agent runs the action's commands (and, in local mode, its playbook)
  auto rc = agent_action(d, c, action, sink);
  bool from_controller = false;  // its errors say the action already
  if (rc && *rc == 0 && controller) {
    from_controller = true;
    // then the controller runs the playbook from this host
    auto controller_sink = [&](const std::string& stream, const std::string& line) {
      ansible.feed(stream, line);
      log(d, stream, line);
    };
    rc = run_controller_playbook(d, c, *spec, action, lab_tree, controller_sink);
  }
  if (!rc) {
    if (rc.error().code == "interrupted" || rc.error().code == "cancelled") return rc.error();
    if (from_controller) return rc.error();
    return failed(action + ": " + rc.error().message);
  }
  if (*rc != 0) {
    std::string why = action + " failed with exit code " + std::to_string(*rc);
    if (auto f = ansible.failure()) why += ": ansible: " + *f;
    return failed(why + " (see the log)");
  }
  return Status::Ok();
}

Status Engine::http_check(Deployment& d, const LabSpec& spec, std::string* url_out) {
  std::string url = lab_url(d.address, spec);
  auto deadline = std::chrono::steady_clock::now() + opts_.http_check_timeout;
  std::string last;
  Backoff pause(std::chrono::milliseconds(25), std::chrono::milliseconds(300));  // often at first (a lab just started)
  while (true) {
    http::ClientRequest hr;
    hr.url = url;
    hr.timeout_ms = 5000;
    hr.connect_timeout_ms = 2000;
    auto r = http::request(hr);
    if (r && r->status >= 200 && r->status < 400) {
      log(d, "ads", "GET " + url + " -> " + std::to_string(r->status));
      if (url_out) *url_out = url;
      return Status::Ok();
    }
    last = r ? "HTTP " + std::to_string(r->status) : r.error().message;
    if (std::chrono::steady_clock::now() >= deadline || stopping_ || cancelled(d.id))
      return failed("the lab does not answer at " + url + ": " + last);
    std::this_thread::sleep_for(pause.next());
  }
}

}  // namespace ads
