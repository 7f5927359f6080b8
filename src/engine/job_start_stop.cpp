// Jobs "start", "stop" and "restart" (a stop, then a start).
// Rules (core/job_rules.h): queued on a running or stopped deployment; each
// step tolerates work already done, so a job cut off by a stopped server
// runs again from the start. Fails: the job only; the deployment keeps its
// state (what the job learnt, an address say, is kept). A lab's stop action
// that fails does not stop the machine from being stopped.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Status Engine::bring_up(Deployment& t, Job& job) {
  Provider* p = provider_for(t.provider);
  if (!p) return failed("provider " + t.provider + " is not configured");
  auto spec = stored_spec(t);
  if (!spec) return spec.error();
  set_step(job, "starting machine");
  auto m = p->inspect(t.machine);
  if (!m) return m.error();
  if (m->status != "Running") {
    auto st = with_retry(t, "starting the machine", [&] { return p->start(t.machine); });
    if (!st) return st.error();
  }
  auto addr = p->wait_address(t.machine, opts_.address_timeout);
  if (!addr) return addr.error();
  t.address = *addr;
  set_step(job, "waiting for the agent");
  agent::AgentClient client(agent::AgentClient::url_for(t.address, opts_.agent_port), t.secret);
  auto st = client.wait_ready(opts_.agent_timeout);
  if (!st) return st.error();
  set_step(job, "starting the lab");
  if (spec->has_action("start")) {
    if (auto e = run_action(t, client, "start"); !e) return e;
  }
  set_step(job, "checking the lab");
  std::string url;
  if (auto e = http_check(t, *spec, &url); !e) return e;
  t.url = url;
  return Status::Ok();
}

Status Engine::do_start(Deployment& d, Job& job) {
  if (auto st = bring_up(d, job); !st) return st;
  if (opts_.router) {  // the address may be a new one (and a lab from before the proxy gets its URL)
    auto spec = stored_spec(d);
    if (!spec) return spec.error();
    set_step(job, "routing the stable URL");
    if (auto e = publish(d, *spec); !e) return e;
  }
  auto s2 = advance(d, State::kRunning);
  if (!s2) return s2.error();
  log(d, "ads", "running at " + d.url);
  return Status::Ok();
}

Status Engine::put_down(Deployment& t, Job& job) {
  Provider* p = provider_for(t.provider);
  if (!p) return failed("provider " + t.provider + " is not configured");
  auto spec = stored_spec(t);
  if (!spec) return spec.error();
  if (t.state == State::kRunning && spec->has_action("stop")) {
    set_step(job, "stopping the lab");
    agent::AgentClient client(agent::AgentClient::url_for(t.address, opts_.agent_port), t.secret);
    if (auto e = run_action(t, client, "stop"); !e) {
      if (e.error().code == "interrupted" || e.error().code == "cancelled") return e;
      log(t, "ads", "the lab's stop action failed (" + e.error().message + "); stopping the machine anyway");
    }
  }
  set_step(job, "stopping machine");
  return with_retry(t, "stopping the machine", [&] { return p->stop(t.machine); });
}

Status Engine::do_stop(Deployment& d, Job& job) {
  if (auto st = put_down(d, job); !st) return st;
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
