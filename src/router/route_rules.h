// What every router (Caddy, HAProxy) asks of a route and how it spells a
// stable URL: the name a DNS label; without a domain a port 1-65535 of its
// own; the URL http://<name>.<domain>[:listen_port]/ or
// http://<public_host>:<port>/.
#pragma once

#include <string>

#include "router/router.h"

namespace ads::router {

// host:port, IPv6 hosts in brackets.
std::string join_host_port(const std::string& host, int port);
// The route's name and (without a domain) its port; errors name the field.
Status check_name_and_port(const Route& route, bool with_domain);
std::string stable_url(const Route& route, const std::string& domain, int listen_port, const std::string& public_host);

}  // namespace ads::router
