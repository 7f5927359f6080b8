// The one table of providers.
#include <functional>

#include "providers/lxd/lxd_provider.h"
#include "providers/openvz/openvz_provider.h"
#include "providers/provider.h"

namespace ads {
namespace {
using Factory = std::function<Result<std::unique_ptr<Provider>>(const nlohmann::json&)>;

const std::vector<std::pair<std::string, Factory>>& table() {
  static const std::vector<std::pair<std::string, Factory>> t = {
      {"lxd", [](const nlohmann::json& s) { return LxdProvider::create_from(s); }},
      {"openvz", [](const nlohmann::json& s) { return OpenvzProvider::create_from(s); }},
  };
  return t;
}
}  // namespace

Result<std::unique_ptr<Provider>> make_provider(const std::string& kind, const nlohmann::json& settings) {
  for (auto& [k, f] : table())
    if (k == kind) return f(settings);
  std::string known;
  for (auto& [k, f] : table()) known += (known.empty() ? "" : ", ") + k;
  return Error::invalid("provider", "unknown provider \"" + kind + "\" (known: " + known + ")");
}

std::vector<std::string> provider_kinds() {
  std::vector<std::string> out;
  for (auto& [k, f] : table()) out.push_back(k);
  return out;
}

}  // namespace ads
