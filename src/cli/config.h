// `ads serve` settings: defaults, then a JSON config file, then flags.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api/limits.h"
#include "api/oidc.h"
#include "core/result.h"

namespace ads::cli {

struct ServeConfig {
  std::string listen = "127.0.0.1:8089";
  std::string data_dir = "/var/lib/ads";
  std::string store;            // "" : sqlite://<data_dir>/ads.db
  std::string agent_binary;     // "" : ads-agent beside the ads binary
  std::string default_provider = "lxd";
  int workers = 2;
  bool keep_failed = false;
  nlohmann::json providers = {{"lxd", nlohmann::json::object()}};
  ApiLimits limits;             // "limits": {"requests_per_second", ...}
  std::optional<OidcSettings> oidc;  // "oidc": {...}: OpenID Connect sign-in
};

// Reads a JSON config file over `cfg`; errors name the bad key.
Status load_config_file(const std::string& path, ServeConfig& cfg);
// "host:port" -> parts; errors name the field "listen".
Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& s);

}  // namespace ads::cli
