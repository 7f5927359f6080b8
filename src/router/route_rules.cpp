#include "router/route_rules.h"

#include "core/names.h"

namespace ads::router {

std::string join_host_port(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Status check_name_and_port(const Route& route, bool with_domain) {
  auto st = validate_dns_label(route.name, "name");
  if (!st) return st;
  if (!with_domain && (route.port < 1 || route.port > 65535))
    return Error::invalid("port", "a lab needs a port of its own when no domain is configured");
  return Status::Ok();
}

std::string stable_url(const Route& route, const std::string& domain, int listen_port, const std::string& public_host) {
  if (!domain.empty()) {
    std::string host = route.name + "." + domain;
    return "http://" + (listen_port == 80 ? host : join_host_port(host, listen_port)) + "/";
  }
  return "http://" + join_host_port(public_host, route.port) + "/";
}

}  // namespace ads::router
