// The "proxy" settings of `ads serve` (docs/operators/proxy.md): the reverse
// proxy that serves each lab's stable URL, HAProxy (the default) or Caddy.
//   "proxy": {"enabled": true, "kind": "haproxy", "domain": "labs.example.org",
//             "listen": ":80", "ports": "8100-8999", "public_host": "ads.example.org",
//             "binary": "haproxy"}
// "admin" (the admin endpoint) is Caddy's only: HAProxy's runtime API is
// always DATA_DIR/proxy/haproxy.sock.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "core/result.h"
#include "router/caddy.h"
#include "router/caddy_process.h"
#include "router/haproxy.h"
#include "router/haproxy_process.h"

namespace ads::cli {

// Off unless asked for: a "proxy" object in the config (unless its
// "enabled" is false) or --proxy on; `ads service start` (and so quickstart)
// asks for it.
struct ProxyConfig {
  bool enabled = false;
  std::string domain;       // "" : a host port per lab (ports)
  std::string listen_host;  // "" : every interface
  int listen_port = 80;     // host routing (with a domain)
  std::pair<int, int> ports{8100, 8999};
  std::string public_host;       // "" : this machine's host name
  std::string kind = "haproxy";  // "haproxy" or "caddy"
  std::string admin;             // caddy: "" : unix:DATA_DIR/proxy/admin.sock
  std::string binary;            // "" : the kind's program, "haproxy" or "caddy"
};

// The "proxy" object over `out` (and on); errors name "proxy.<key>".
// `true`/`false` turns it on/off with the defaults.
Status parse_proxy_config(const nlohmann::json& v, ProxyConfig& out);
// "on"/"off" from the command line.
Status parse_proxy_flag(const std::string& v, ProxyConfig& out);
// The proxy's directory (pid, log, Caddy's files) under the data directory.
std::string proxy_dir(const std::string& data_dir);
// The settings of the router and of the Caddy process, defaults filled in.
router::CaddyOptions caddy_options(const ProxyConfig& p, const std::string& data_dir);
router::ProxyProcessOptions proxy_process_options(const ProxyConfig& p, const std::string& data_dir);
router::HaproxyOptions haproxy_options(const ProxyConfig& p, const std::string& data_dir);
router::HaproxyProcessOptions haproxy_process_options(const ProxyConfig& p, const std::string& data_dir);

}  // namespace ads::cli
