// Job "destroy".
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

std::string Engine::do_destroy(Deployment& d, Job& job) {
  Provider* p = provider_for(d.provider);
  if (d.state == State::kDestroyed) return "";
  auto st = advance(d, State::kDestroying);
  if (!st) return st.error().message;
  if (!d.machine.empty()) {
    if (!p) return "provider " + d.provider + " is not configured";
    set_step(job, "removing machine");
    log(d, "ads", "removing machine " + d.machine);
    st = with_retry(d, "removing machine " + d.machine, [&] { return p->destroy(d.machine); });
    if (!st) return st.error().message;
  }
  d.machine.clear();
  d.address.clear();
  d.url.clear();
  release_addresses(d);
  st = advance(d, State::kDestroyed);
  if (!st) return st.error().message;
  log(d, "ads", "destroyed");
  return "";
}

}  // namespace ads
