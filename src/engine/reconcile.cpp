// The reconciler: what the providers have against what the store says.
#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/client.h"
#include "engine/internal.h"
#include <set>

namespace ads {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace engine_detail;

Result<std::vector<Engine::Drift>> Engine::reconcile() {
  std::vector<Drift> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (auto& [kind, p] : providers_) {
    auto machines = p->list();
    if (!machines) return machines.error();
    for (auto& m : *machines) {
      seen.insert({kind, m.name});
      std::string id = m.labels.count("deployment") ? m.labels.at("deployment") : "";
      auto d = store_.get(id);
      bool a_release = false;  // the kept (or building) machine of one of its releases
      if (d && d->machine != m.name) {
        auto rels = store_.releases_of(id);
        if (!rels) return rels.error();
        for (auto& r : *rels) a_release = a_release || (r.machine == m.name && (r.state == "kept" || r.state == "building"));
      }
      if (a_release) {
        continue;
      } else if (!d) {
        out.push_back({kind, m.name, id, "orphan: the store has no deployment " + id});
      } else if (d->machine != m.name) {
        out.push_back({kind, m.name, id, "orphan: deployment " + id + " is " + to_string(d->state) +
                                             " and does not own this machine"});
      }
    }
  }
  ListQuery q;
  q.limit = 100000;
  auto all = store_.list(q);
  if (!all) return all.error();
  for (auto& d : *all) {
    if (d.machine.empty() || !providers_.count(d.provider)) continue;
    if (!seen.count({d.provider, d.machine}) && is_settled(d.state))
      out.push_back({d.provider, d.machine, d.id, "missing: deployment is " + to_string(d.state) +
                                                     " but the provider has no such machine"});
  }
  return out;
}

}  // namespace ads
