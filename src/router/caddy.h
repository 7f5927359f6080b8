// Router on Caddy 2.6 (Debian 12's caddy): routes are written through
// Caddy's admin API as one JSON config (POST /load), which Caddy applies as
// a graceful reload: its listeners are kept open across the change and the
// requests under way finish on the old config, so a switch drops nothing.
//
// With a domain, every lab is a route of one server ("ads") on
// opts.listen_host:opts.listen_port matched by host <name>.<domain>; without
// one, every lab is a server of its own on listen_host:<route.port>. The
// routes are kept in Caddy's config only (ids "ads-lab-<name>"): each change
// reads the config, changes the routes and loads it back, under a lock, so
// one ADS server's changes never undo one another.
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "router/router.h"

namespace ads::router {

struct CaddyOptions {
  // Caddy's admin endpoint: "unix:/path/to/admin.sock" or "127.0.0.1:2019".
  // A unix socket in a 0700 directory keeps other local users out (the
  // admin API has no authentication).
  std::string admin;
  std::string domain;                     // "" : a port of its own per lab
  std::string listen_host;                // bind address; "" : every interface
  int listen_port = 80;                   // the host-routing server's port (with a domain)
  std::string public_host = "localhost";  // host of URLs without a domain
  long timeout_ms = 10000;                // per admin call
};

class CaddyRouter : public Router {
 public:
  explicit CaddyRouter(CaddyOptions opts);

  Status put(const Route& route) override;
  Status remove(const std::string& name) override;
  Status sync(const std::vector<Route>& list) override;
  std::string url(const Route& route) const override;

  // The routes Caddy has now (from its config).
  Result<std::vector<Route>> routes();
  // Whether the admin API answers.
  Status ping();

  // The admin section ADS gives Caddy for `admin` ("unix:/p" or "host:port"):
  // the listen address in Caddy's form and the one origin it accepts.
  static nlohmann::json admin_config(const std::string& admin);
  // The whole config for these routes, with `admin` as its admin section.
  // Pure; routes with a bad name or upstream are refused before.
  static nlohmann::json config(const CaddyOptions& opts, const nlohmann::json& admin,
                               const std::map<std::string, Route>& routes);
  // The routes in a config written by config() (either mode).
  static std::map<std::string, Route> parse_routes(const nlohmann::json& config);
  // A route ADS may hand to Caddy: name a DNS label, upstream host:port,
  // port in 1..65535 without a domain. Errors name the field.
  Status check(const Route& route) const;

 private:
  // GET /config/ : the current config (null when Caddy has none).
  Result<nlohmann::json> current();
  // POST /load.
  Status load(const nlohmann::json& config);
  // Reads the routes, applies `change`, loads the result.
  Status change(const std::function<void(std::map<std::string, Route>&)>& edit);
  Result<std::string> call(const std::string& method, const std::string& path, const std::string& body);

  CaddyOptions opts_;
  std::string origin_;       // the Host header the admin API accepts
  std::string socket_path_;  // unix socket, or "" for TCP
  std::mutex mu_;
};

}  // namespace ads::router
