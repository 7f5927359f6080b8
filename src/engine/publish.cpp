// Stable URLs: a lab's route in the reverse proxy (src/router/router.h).
// A deploy publishes before it reaches running (a proxy that refuses the
// route fails the deploy at "verifying", like a failed HTTP check); a start
// publishes again (the machine's address may have changed; a lab deployed
// before ADS had a proxy gets its stable URL there); a failure that
// removes the machine and a destroy unpublish; start() syncs every route
// from the store, so a restarted proxy serves the same URLs.
#include <spdlog/spdlog.h>

#include <map>

#include "engine/engine.h"
#include "engine/internal.h"
#include "router/router.h"

namespace ads {
using namespace engine_detail;

namespace {

std::string host_port(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Deployments whose route the proxy should have: live and published.
bool holds_route(const Deployment& d) {
  return !d.stable_url.empty() && !d.address.empty() && d.state != State::kFailed && d.state != State::kDestroyed &&
         d.state != State::kDestroying;
}

}  // namespace

Status Engine::publish(Deployment& d, const LabSpec& spec) {
  if (!opts_.router) return Status::Ok();
  router::Route route{d.name, host_port(d.address, spec.http_port), 0};
  if (opts_.proxy_ports.first > 0) {
    auto port = store_.allocate_port(d.id, opts_.proxy_ports.first, opts_.proxy_ports.second);
    if (!port) return failed("no port for the lab's stable URL: " + port.error().message);
    d.public_port = *port;
    route.port = *port;
  }
  auto st = with_retry(d, "routing the stable URL", [&] { return opts_.router->put(route); });
  if (!st) return failed("the reverse proxy did not take the lab's route: " + st.error().message);
  d.stable_url = opts_.router->url(route);
  st = store_.update(d);
  if (!st) return st.error();
  log(d, "ads", "stable URL " + d.stable_url + " -> " + route.upstream);
  return Status::Ok();
}

void Engine::unpublish(Deployment& d, bool release_port) {
  if (opts_.router && !d.stable_url.empty()) {
    // Records from before names were unique may share a name: the route
    // then belongs to the other live one, which keeps it.
    bool shared_name = false;
    ListQuery q;
    q.name = d.name;
    q.limit = 1000;
    if (auto same = store_.list(q)) {
      for (auto& o : *same)
        if (o.id != d.id && holds_route(o)) shared_name = true;
    }
    if (!shared_name) {
      auto st = with_retry(d, "removing the route", [&] { return opts_.router->remove(d.name); });
      if (st) log(d, "ads", "route of " + d.stable_url + " removed");
      else log(d, "ads", "could not remove the route of " + d.stable_url + ": " + st.error().message);
    }
  }
  d.stable_url.clear();
  if (release_port) d.public_port = 0;
}

void Engine::sync_routes() {
  if (!opts_.router) return;
  std::map<std::string, router::Route> routes;  // by name; the newest record wins a shared name
  std::string after;
  while (true) {
    ListQuery q;
    q.after_id = after;
    q.limit = 500;
    auto page = store_.list(q);
    if (!page) {
      spdlog::error("routes: cannot read deployments: {}", page.error().message);
      return;
    }
    for (auto& d : *page) {
      if (!holds_route(d)) continue;
      auto spec = stored_spec(d);
      if (!spec) continue;
      router::Route route{d.name, host_port(d.address, spec->http_port), 0};
      if (opts_.proxy_ports.first > 0) {
        // a port per lab now (the config may have had a domain before)
        auto port = store_.allocate_port(d.id, opts_.proxy_ports.first, opts_.proxy_ports.second);
        if (!port) {
          spdlog::error("routes: no port for {} ({}): {}", d.id, d.name, port.error().message);
          continue;
        }
        d.public_port = route.port = *port;
      }
      std::string url = opts_.router->url(route);
      if (url != d.stable_url) {  // the proxy's settings changed since it was published
        d.stable_url = url;
        if (auto st = store_.update(d); !st)
          spdlog::error("routes: cannot record the stable URL of {}: {}", d.id, st.error().message);
      }
      routes[d.name] = route;
    }
    if (page->size() < q.limit) break;
    after = page->back().id;
  }
  std::vector<router::Route> list;
  list.reserve(routes.size());
  for (auto& [n, r] : routes) list.push_back(r);
  auto st = opts_.router->sync(list);
  if (st) spdlog::info("routes: {} stable URL(s) given to the reverse proxy", list.size());
  else spdlog::error("routes: the reverse proxy did not take the routes: {}", st.error().message);
}

}  // namespace ads
