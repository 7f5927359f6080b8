// Router on HAProxy 2.6 (Debian 12's haproxy). HAProxy runs one static
// config (haproxy_process.h) that never changes and never reloads: its
// frontend looks the request up in one map (domain mode: the Host header,
// port stripped, lowercased; port mode: the port the client connected to)
// and sends it where the map's value says (`http-request set-dst` /
// `set-dst-port`; unknown: 404 from HAProxy). This router changes only that
// map, through HAProxy's runtime API (the admin stats socket, unix, in the
// proxy's 0700 directory): `set map` / `add map` / `del map` for one route,
// `prepare map` / `add map @V` / `commit map @V` for a sync, so each change
// is atomic for new requests and no connection is touched. After each
// change the map file is rewritten (atomic rename), so a restarted HAProxy
// serves the same routes before ADS syncs them again.
//
// A map entry is `<key> <name>/<address>:<port>`, key "<name>.<domain>" or
// the lab's port; HAProxy's map is the truth (routes() reads it back).
// Every value that goes into a command is checked first (HAProxy's CLI
// splits on ';' and spaces and treats '\' specially): names are DNS labels,
// upstreams IPv4 address:port (set-dst needs an address, not a host name).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "router/router.h"

namespace ads::router {

struct HaproxyOptions {
  std::string dir;                        // the proxy directory (socket, map files)
  std::string domain;                     // "" : a port of its own per lab
  int listen_port = 80;                   // the host-routing port (with a domain), for URLs
  std::string public_host = "localhost";  // host of URLs without a domain
  long timeout_ms = 10000;                // per runtime API command
};

// Where HAProxy's runtime API socket and its map file are in `dir`.
std::string haproxy_socket(const std::string& dir);
std::string haproxy_map_file(const std::string& dir, bool with_domain);
// Whether `dir` may be written into HAProxy's config and commands as is
// (an absolute path of letters, digits and / . _ - +).
Status check_haproxy_dir(const std::string& dir);

class HaproxyRouter : public Router {
 public:
  explicit HaproxyRouter(HaproxyOptions opts);

  Status put(const Route& route) override;
  Status remove(const std::string& name) override;
  Status sync(const std::vector<Route>& list) override;
  std::string url(const Route& route) const override;

  // The routes HAProxy has now (its map).
  Result<std::vector<Route>> routes();
  // Whether the runtime API answers.
  Status ping();
  // A route ADS may hand to HAProxy; errors name the field.
  Status check(const Route& route) const;

  // One runtime API command (a line without ';', '\' or control
  // characters), its answer. "unavailable" when HAProxy does not listen.
  static Result<std::string> command(const std::string& socket, const std::string& line, long timeout_ms);
  // The map entries (key, value) in `show map` output.
  static std::vector<std::pair<std::string, std::string>> parse_show_map(const std::string& text);

 private:
  using Routes = std::map<std::string, Route>;  // by name
  Result<Routes> current();
  Result<std::string> run(const std::string& line);
  // Runs a command whose answer is empty when it worked.
  Status run_ok(const std::string& line);
  Status write_map_file(const Routes& routes);
  std::string key(const Route& r) const;
  static std::string value(const Route& r) { return r.name + "/" + r.upstream; }

  HaproxyOptions opts_;
  std::string socket_, map_;
  std::mutex mu_;
};

}  // namespace ads::router
