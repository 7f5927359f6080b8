// The stable address of each lab. A reverse proxy on the ADS host sends a
// lab's stable URL (http://<name>.<domain>/, or with no domain configured a
// port of its own on the host) to the machine that serves the lab now. A
// deploy adds the route when the lab is running, a release or a rollback
// replaces it (the switch), a destroy removes it. The proxy's routes are
// rebuilt from the store when ADS starts, so a restarted proxy or server
// serves the same URLs.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ads::router {

struct Route {
  std::string name;      // the lab's name, a DNS label; unique among live labs
  std::string upstream;  // "host:port" of the machine serving the lab now
  int port = 0;          // with no domain: the host port allotted to the lab; 0 with a domain
};

class Router {
 public:
  virtual ~Router() = default;
  // Adds `route`, or replaces the route of the same name, atomically:
  // requests that arrive after it returns go to the new upstream; requests
  // under way finish where they are. No connection is dropped.
  virtual Status put(const Route& route) = 0;
  // Removes the route of `name`; ok when there is none.
  virtual Status remove(const std::string& name) = 0;
  // Replaces every route at once (at start, from the store).
  virtual Status sync(const std::vector<Route>& routes) = 0;
  // The stable URL `route` is served at.
  virtual std::string url(const Route& route) const = 0;
};

}  // namespace ads::router
