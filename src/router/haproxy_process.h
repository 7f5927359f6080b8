// The HAProxy process ADS runs beside `ads serve` (the default proxy;
// `ads service start|stop|status`, tests): started in the background from a
// fixed argv (`haproxy -f haproxy.cfg -db`, in a session of its own), its
// files in one 0700 directory: haproxy.cfg (static, written at each start,
// no per-lab content), haproxy.sock (the runtime API, mode 0600, level
// admin), hosts.map or ports.map (the routes; HaproxyRouter keeps them),
// haproxy.pid, haproxy.log. A restarted HAProxy reads the map file, so it
// serves the routes it had before ADS syncs them again.
#pragma once

#include <string>
#include <utility>

#include "core/result.h"

namespace ads::router {

struct HaproxyProcessOptions {
  std::string dir;                        // created 0700 if missing; see check_haproxy_dir
  std::string binary = "haproxy";         // looked up in PATH
  std::string domain;                     // "" : port mode (a port of its own per lab)
  std::string listen_host;                // bind address; "" : every IPv4 interface
  int listen_port = 80;                   // the host-routing port (with a domain)
  std::pair<int, int> ports{8100, 8999};  // bound all at once without a domain
  long start_timeout_ms = 10000;          // for the runtime API to answer
};

// The static config for `o` (pure).
std::string haproxy_config(const HaproxyProcessOptions& o);
// Starts HAProxy unless the pid file names a live one started with the same
// config (one started with other settings is stopped first); waits until
// its runtime API answers. Returns its pid.
Result<int> start_haproxy(const HaproxyProcessOptions& o);
// Stops the HAProxy of `dir` (SIGTERM, after 10 s SIGKILL). Ok when none runs.
Status stop_haproxy(const std::string& dir);
// The pid of the HAProxy of `dir`, 0 when none runs.
int haproxy_pid(const std::string& dir);

}  // namespace ads::router
