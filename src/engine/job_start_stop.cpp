// Jobs "start", "stop" and "restart" (a stop, then a start).
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

}  // namespace ads
