#include "router/caddy.h"

#include <algorithm>
#include <cctype>
#include <functional>

#include "http/client.h"
#include "router/route_rules.h"

namespace ads::router {
namespace {

using nlohmann::json;

constexpr const char* kIdPrefix = "ads-lab-";
constexpr const char* kHostServer = "ads";

std::string route_id(const std::string& name) { return kIdPrefix + name; }

// Characters of a host:port ADS hands Caddy as an upstream: an IPv4 or
// IPv6 address (in brackets) or a host name, then a port.
Status check_upstream(const std::string& upstream) {
  if (upstream.empty() || upstream.size() > 300) return Error::invalid("upstream", "must be host:port");
  for (unsigned char c : upstream)
    if (!(std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
      return Error::invalid("upstream", "must be host:port");
  auto colon = upstream.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == upstream.size())
    return Error::invalid("upstream", "must be host:port");
  std::string port = upstream.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    return Error::invalid("upstream", "must end in a port 1-65535");
  return Status::Ok();
}

json proxy_to(const std::string& upstream) {
  return json::array({{{"handler", "reverse_proxy"}, {"upstreams", json::array({{{"dial", upstream}}})}}});
}

// What a request for no known lab gets (host routing): 404 and a word why.
json not_found_route() {
  return {{"handle", json::array({{{"handler", "static_response"},
                                   {"status_code", 404},
                                   {"headers", {{"Content-Type", json::array({"text/plain; charset=utf-8"})}}},
                                   {"body", "no lab is served at this address\n"}}})}};
}

}  // namespace

CaddyRouter::CaddyRouter(CaddyOptions opts) : opts_(std::move(opts)) {
  auto admin = admin_config(opts_.admin);
  origin_ = admin["origins"][0].get<std::string>();
  if (opts_.admin.rfind("unix:", 0) == 0) socket_path_ = opts_.admin.substr(5);
}

json CaddyRouter::admin_config(const std::string& admin) {
  if (admin.rfind("unix:", 0) == 0) {
    // Caddy 2.6 takes "unix//path"; over a socket the request's Host must
    // be one of the origins, so ADS names one.
    return {{"listen", "unix/" + admin.substr(5)}, {"origins", json::array({"ads-proxy"})}};
  }
  return {{"listen", admin}, {"origins", json::array({admin})}};
}

Status CaddyRouter::check(const Route& route) const {
  auto st = check_name_and_port(route, !opts_.domain.empty());
  if (!st && st.error().field == "name") return st;
  auto up = check_upstream(route.upstream);
  if (!up) return up;
  return st;
}

json CaddyRouter::config(const CaddyOptions& opts, const json& admin, const std::map<std::string, Route>& routes) {
  json servers = json::object();
  if (!opts.domain.empty()) {
    json list = json::array();
    for (auto& [name, r] : routes) {
      list.push_back({{"@id", route_id(name)},
                      {"match", json::array({{{"host", json::array({name + "." + opts.domain})}}})},
                      {"handle", proxy_to(r.upstream)},
                      {"terminal", true}});
    }
    list.push_back(not_found_route());
    servers[kHostServer] = {{"listen", json::array({join_host_port(opts.listen_host, opts.listen_port)})},
                            {"routes", list},
                            // plain HTTP on the configured port; no certificates are fetched
                            {"automatic_https", {{"disable", true}}}};
  } else {
    for (auto& [name, r] : routes) {
      servers[route_id(name)] = {
          {"listen", json::array({join_host_port(opts.listen_host, r.port)})},
          {"routes", json::array({{{"@id", route_id(name)}, {"handle", proxy_to(r.upstream)}, {"terminal", true}}})},
          {"automatic_https", {{"disable", true}}}};
    }
  }
  return {{"admin", admin}, {"apps", {{"http", {{"servers", servers}}}}}};
}

std::map<std::string, Route> CaddyRouter::parse_routes(const json& config) {
  std::map<std::string, Route> out;
  if (!config.is_object()) return out;
  auto servers = config.value("/apps/http/servers"_json_pointer, json::object());
  if (!servers.is_object()) return out;
  std::string prefix = kIdPrefix;
  for (auto& [sname, server] : servers.items()) {
    if (!server.is_object() || !server.contains("routes") || !server["routes"].is_array()) continue;
    for (auto& r : server["routes"]) {
      if (!r.is_object() || !r.contains("@id") || !r["@id"].is_string()) continue;
      std::string id = r["@id"].get<std::string>();
      if (id.rfind(prefix, 0) != 0) continue;
      Route route;
      route.name = id.substr(prefix.size());
      auto dial = r.value("/handle/0/upstreams/0/dial"_json_pointer, json());
      if (!dial.is_string()) continue;
      route.upstream = dial.get<std::string>();
      if (sname != kHostServer && server.contains("listen") && server["listen"].is_array() &&
          !server["listen"].empty() && server["listen"][0].is_string()) {
        std::string listen = server["listen"][0].get<std::string>();
        auto colon = listen.rfind(':');
        if (colon != std::string::npos) route.port = std::atoi(listen.c_str() + colon + 1);
      }
      out[route.name] = route;
    }
  }
  return out;
}

Result<std::string> CaddyRouter::call(const std::string& method, const std::string& path, const std::string& body) {
  http::ClientRequest req;
  req.method = method;
  req.unix_socket = socket_path_;
  req.url = "http://" + (socket_path_.empty() ? opts_.admin : std::string("ads-proxy")) + path;
  req.headers.emplace_back("Host", origin_);
  if (!body.empty() || method == "POST") req.headers.emplace_back("Content-Type", "application/json");
  req.body = body;
  req.connect_timeout_ms = std::min(opts_.timeout_ms, 5000L);
  req.timeout_ms = opts_.timeout_ms;
  req.max_body_bytes = 16u << 20;
  auto res = http::request(req);
  if (!res) return Error::make(res.error().code, "the proxy's admin API (" + opts_.admin + "): " + res.error().message);
  if (res->status < 200 || res->status > 299) {
    std::string why = res->body;
    try {
      auto j = json::parse(res->body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) why = j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
    if (why.size() > 500) why.resize(500);
    return Error::make(
        "failed", "the proxy refused " + method + " " + path + " (HTTP " + std::to_string(res->status) + "): " + why);
  }
  return res->body;
}

Result<json> CaddyRouter::current() {
  auto body = call("GET", "/config/", "");
  if (!body) return body.error();
  try {
    return json::parse(*body);
  } catch (const std::exception& e) {
    return Error::make("failed", std::string("the proxy's config is not JSON: ") + e.what());
  }
}

Status CaddyRouter::load(const json& config) {
  auto r = call("POST", "/load", config.dump());
  if (!r) return r.error();
  return Status::Ok();
}

Status CaddyRouter::change(const std::function<void(std::map<std::string, Route>&)>& edit) {
  std::lock_guard<std::mutex> lk(mu_);
  auto cur = current();
  if (!cur) return cur.error();
  auto routes = parse_routes(*cur);
  auto before = routes;
  edit(routes);
  if (before.size() == routes.size() &&
      std::equal(before.begin(), before.end(), routes.begin(),
                 [](const auto& a, const auto& b) {
                   return a.first == b.first && a.second.upstream == b.second.upstream &&
                          a.second.port == b.second.port;
                 }) &&
      cur->is_object() && cur->contains("apps"))
    return Status::Ok();  // nothing changes: no reload
  return load(config(opts_, admin_config(opts_.admin), routes));
}

Status CaddyRouter::put(const Route& route) {
  auto st = check(route);
  if (!st) return st;
  return change([&](std::map<std::string, Route>& routes) {
    Route r = route;
    if (!opts_.domain.empty()) r.port = 0;
    // without a domain a port serves one lab: a stale route on it goes
    for (auto it = routes.begin(); it != routes.end();) {
      if (it->first != r.name && r.port != 0 && it->second.port == r.port) it = routes.erase(it);
      else ++it;
    }
    routes[r.name] = r;
  });
}

Status CaddyRouter::remove(const std::string& name) {
  return change([&](std::map<std::string, Route>& routes) { routes.erase(name); });
}

Status CaddyRouter::sync(const std::vector<Route>& list) {
  std::map<std::string, Route> wanted;
  for (auto r : list) {
    auto st = check(r);
    if (!st) return Error::invalid(st.error().field, "route \"" + r.name + "\": " + st.error().message);
    if (!opts_.domain.empty()) r.port = 0;
    wanted[r.name] = r;
  }
  return change([&](std::map<std::string, Route>& routes) { routes = wanted; });
}

std::string CaddyRouter::url(const Route& route) const {
  return stable_url(route, opts_.domain, opts_.listen_port, opts_.public_host);
}

Result<std::vector<Route>> CaddyRouter::routes() {
  std::lock_guard<std::mutex> lk(mu_);
  auto cur = current();
  if (!cur) return cur.error();
  std::vector<Route> out;
  for (auto& [n, r] : parse_routes(*cur)) out.push_back(r);
  return out;
}

Status CaddyRouter::ping() {
  auto r = call("GET", "/config/", "");
  if (!r) return r.error();
  return Status::Ok();
}

}  // namespace ads::router
