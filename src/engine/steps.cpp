// Steps shared by every job kind: recording state and steps, the log,
// retries of provider calls, failing and cleaning up, agent actions and the
// HTTP check.
#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
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

Status Engine::run_action(Deployment& d, agent::AgentClient& c, const std::string& action) {
  auto sink = [&](const std::string& stream, const std::string& line) { log(d, stream, line); };
  auto rc = agent_action(d, c, action, sink);
  if (!rc) return failed(action + ": " + rc.error().message);
  if (*rc != 0) return failed(action + " failed with exit code " + std::to_string(*rc) + " (see the log)");
  return Status::Ok();
}

Status Engine::http_check(Deployment& d, const LabSpec& spec, std::string* url_out) {
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
      return Status::Ok();
    }
    last = r ? "HTTP " + std::to_string(r->status) : r.error().message;
    if (std::chrono::steady_clock::now() >= deadline || stopping_) return failed("the lab does not answer at " + url + ": " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

}  // namespace ads
