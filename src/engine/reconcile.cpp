// The reconciler: what the providers have against what the store says.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "agent/client.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Result<std::vector<Engine::Drift>> Engine::reconcile() {
  std::vector<Drift> out;
  std::set<std::pair<std::string, std::string>> seen;
  std::set<std::pair<std::string, std::string>> warm;  // (provider, machine) the store lists as warm
  if (auto w = store_.warm_machines(); w)
    for (auto& m : *w) warm.insert({m.provider, m.name});
  else return w.error();
  for (auto& [kind, p] : providers_) {
    auto machines = p->list();
    if (!machines) return machines.error();
    for (auto& m : *machines) {
      seen.insert({kind, m.name});
      if (m.labels.count(kWarmLabel) && !m.labels.count("deployment")) {
        if (!warm.count({kind, m.name}))
          out.push_back({kind, m.name, "",
                         "a warm machine the store does not list (left by a crash); the warm keeper removes it", ""});
        continue;
      }
      std::string id = m.labels.count("deployment") ? m.labels.at("deployment") : "";
      auto d = store_.get(id);
      bool a_release = false;  // the kept (or building) machine of one of its releases
      if (d && d->machine != m.name) {
        auto rels = store_.releases_of(id);
        if (!rels) return rels.error();
        for (auto& r : *rels)
          a_release = a_release || (r.machine == m.name && (r.state == "kept" || r.state == "building"));
      }
      if (a_release) {
        continue;
      } else if (!d) {
        out.push_back({kind, m.name, id, "orphan: the store has no deployment " + id, ""});
      } else if (d->machine != m.name) {
        out.push_back({kind, m.name, id,
                       "orphan: deployment " + id + " is " + to_string(d->state) + " and does not own this machine",
                       ""});
      }
    }
  }
  // failed deployments that still own a machine the provider has (its
  // removal failed): queued for another try, and fixed at once by a destroy
  std::map<std::pair<std::string, std::string>, Cleanup> queued;
  if (auto q = store_.cleanups(); q)
    for (auto& c : *q) queued[{c.provider, c.machine}] = c;
  ListQuery fq;
  fq.state = State::kFailed;
  fq.limit = 100000;
  auto failed_ones = store_.list(fq);
  if (!failed_ones) return failed_ones.error();
  for (auto& d : *failed_ones) {
    if (d.machine.empty() || !seen.count({d.provider, d.machine})) continue;
    std::string problem = "failed deployment " + d.id + " still owns this machine";
    auto it = queued.find({d.provider, d.machine});
    if (it != queued.end())
      problem += " (its removal failed " + std::to_string(it->second.attempts) +
                 " time(s), last: " + it->second.last_error + "; it is tried again)";
    else if (opts_.keep_failed || d.keep_failed) problem += " (kept for inspection: keep_failed)";
    out.push_back({d.provider, d.machine, d.id, problem, "destroy"});
  }
  ListQuery q;
  q.limit = 100000;
  auto all = store_.list(q);
  if (!all) return all.error();
  for (auto& d : *all) {
    if (d.machine.empty() || !providers_.count(d.provider)) continue;
    if (!seen.count({d.provider, d.machine}) && is_settled(d.state))
      out.push_back({d.provider, d.machine, d.id,
                     "missing: deployment is " + to_string(d.state) + " but the provider has no such machine", ""});
  }
  return out;
}

}  // namespace ads
