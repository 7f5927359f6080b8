// Jobs "start", "stop" and "restart" (a stop, then a start).
// Rules (core/job_rules.h): queued on a running or stopped deployment; each
// step tolerates work already done, so a job cut off by a stopped server
// runs again from the start. Fails: the job only; the deployment keeps its
// state (what the job learnt, an address say, is kept). A lab's stop action
// that fails does not stop the machine from being stopped.
#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::do_start(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (!p) return failed("provider " + d.provider + " is not configured");
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  set_step(job, "starting machine");
  auto m = p->inspect(d.machine);
  if (!m) return m.error();
  if (m->status != "Running") {
    auto st = with_retry(d, "starting the machine", [&] { return p->start(d.machine); });
    if (!st) return st.error();
  }
  auto addr = p->wait_address(d.machine, opts_.address_timeout);
  if (!addr) return addr.error();
  d.address = *addr;
  set_step(job, "waiting for the agent");
  agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
  auto st = client.wait_ready(opts_.agent_timeout);
  if (!st) return st.error();
  set_step(job, "starting the lab");
  if (!spec->action("start").empty()) {
    if (auto e = run_action(d, client, "start"); !e) return e;
  }
  set_step(job, "checking the lab");
  std::string url;
  if (auto e = http_check(d, *spec, &url); !e) return e;
  d.url = url;
  if (opts_.router) {  // the address may be a new one (and a lab from before the proxy gets its URL)
    set_step(job, "routing the stable URL");
    if (auto e = publish(d, *spec); !e) return e;
  }
  auto s2 = advance(d, State::kRunning);
  if (!s2) return s2.error();
  log(d, "ads", "running at " + url);
  return Status::Ok();
}

Status Engine::do_stop(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (!p) return failed("provider " + d.provider + " is not configured");
  auto spec = stored_spec(d);
  if (!spec) return spec.error();
  if (d.state == State::kRunning && !spec->action("stop").empty()) {
    set_step(job, "stopping the lab");
    agent::AgentClient client(agent::AgentClient::url_for(d.address, opts_.agent_port), d.secret);
    if (auto e = run_action(d, client, "stop"); !e) {
      if (e.error().code == "interrupted" || e.error().code == "cancelled") return e;
      log(d, "ads", "the lab's stop action failed (" + e.error().message + "); stopping the machine anyway");
    }
  }
  set_step(job, "stopping machine");
  auto st = with_retry(d, "stopping the machine", [&] { return p->stop(d.machine); });
  if (!st) return st.error();
  auto s2 = advance(d, State::kStopped);
  if (!s2) return s2.error();
  log(d, "ads", "stopped");
  return Status::Ok();
}

Status Engine::do_restart(Deployment& d, Job& job) {
  if (auto st = do_stop(d, job); !st) return st;
  return do_start(d, job);
}

}  // namespace ads
