// Starting, finding and stopping the reverse proxy of `ads serve` and `ads
// service` (docs/operators/proxy.md), whichever kind the config names:
// HAProxy (the default) or Caddy. Both keep their files in
// DATA_DIR/proxy; one runs at a time (starting one kind stops the other).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/proxy_config.h"
#include "core/result.h"
#include "router/router.h"

namespace ads::cli {

struct StartedProxy {
  std::string kind;  // "haproxy" or "caddy"
  int pid = 0;
  std::shared_ptr<router::Router> router;
  std::string endpoint;  // its control socket or admin address, for the log
  std::string urls;      // how stable URLs look, for the log
};

// Starts the configured proxy unless it runs (an other kind running in the
// same directory is stopped first: it would hold the same ports).
Result<StartedProxy> start_configured_proxy(const ProxyConfig& p, const std::string& data_dir);

struct RunningProxy {
  std::string kind;
  int pid = 0;
  std::string log;
};
// The proxies running for `data_dir` (none, or one).
std::vector<RunningProxy> running_proxies(const std::string& data_dir);
// Stops them; what was stopped.
Result<std::vector<RunningProxy>> stop_proxies(const std::string& data_dir);

}  // namespace ads::cli
