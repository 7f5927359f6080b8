// The Caddy process ADS runs beside `ads serve` (`ads service start|stop|
// status`, tests): started in the background from a fixed argv, its files in
// one directory (caddy.json: the bootstrap config with the admin endpoint
// only; caddy.pid; caddy.log; Caddy's own data and autosave under it).
// Caddy is started with --resume, so a restarted proxy serves the routes it
// had (its autosave) before ADS syncs them again.
#pragma once

#include <string>

#include "core/result.h"

namespace ads::router {

struct ProxyProcessOptions {
  std::string dir;                // created 0700 if missing
  std::string admin;              // see CaddyOptions::admin
  std::string binary = "caddy";   // looked up in PATH
  long start_timeout_ms = 10000;  // for the admin API to answer
};

// Starts Caddy unless the pid file names a live one; waits until its admin
// API answers. Returns its pid.
Result<int> start_proxy(const ProxyProcessOptions& o);
// Stops the Caddy of `dir` (SIGTERM, after 10 s SIGKILL). Ok when none runs.
Status stop_proxy(const std::string& dir);
// The pid of the Caddy of `dir`, 0 when none runs.
int proxy_pid(const std::string& dir);

}  // namespace ads::router
