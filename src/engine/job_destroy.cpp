// Job "destroy": the route removed and the port freed (publish.cpp), the
// machine removed (with retries), the machines of its other releases (kept,
// or left by a failed one) too, addresses released, the deployment
// destroyed; its record, logs, backups and release list stay.
// Rules (core/job_rules.h): queued on a running, stopped, failed or destroyed
// deployment; runs again from the start when cut off. Fails: the deployment
// is marked failed at "destroying" with the reason (destroy it again).
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

Status Engine::do_destroy(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (d.state == State::kDestroyed) return Status::Ok();
  auto st = advance(d, State::kDestroying);
  if (!st) return st.error();
  unpublish(d, true);  // the stable URL stops first, then the machine goes
  if (!d.machine.empty()) {
    if (!p) return failed("provider " + d.provider + " is not configured");
    set_step(job, "removing machine");
    log(d, "ads", "removing machine " + d.machine);
    st = with_retry(d, "removing machine " + d.machine, [&] { return p->destroy(d.machine); });
    if (!st) return st.error();
  }
  auto rels = store_.releases_of(d.id);
  if (!rels) return rels.error();
  for (auto& r : *rels) {
    if (r.state == "removed" || (r.state == "failed" && r.machine.empty())) continue;
    if (r.machine == d.machine) r.machine.clear();  // removed above
    set_step(job, "removing the machines of earlier releases");
    if (auto e = remove_release_machine(d, r, r.state == "failed" ? "failed" : "removed"); !e) return e;
  }
  d.machine.clear();
  d.address.clear();
  d.url.clear();
  release_addresses(d);
  st = advance(d, State::kDestroyed);
  if (!st) return st.error();
  log(d, "ads", "destroyed");
  return Status::Ok();
}

}  // namespace ads
