// Test support: option structs for the Caddy router and its process, with
// the fields a test sets (tests/unit/router, tests/unit/engine).
#pragma once

#include <string>

#include "router/caddy.h"
#include "router/caddy_process.h"

namespace ads::test {

inline ads::router::ProxyProcessOptions proxy_opts(const std::string& dir, const std::string& admin) {
  ads::router::ProxyProcessOptions o;
  o.dir = dir;
  o.admin = admin;
  return o;
}

inline ads::router::CaddyOptions caddy_opts(const std::string& admin, const std::string& domain,
                                            const std::string& listen_host, int listen_port,
                                            const std::string& public_host) {
  ads::router::CaddyOptions o;
  o.admin = admin;
  o.domain = domain;
  o.listen_host = listen_host;
  o.listen_port = listen_port;
  o.public_host = public_host;
  return o;
}

}  // namespace ads::test
