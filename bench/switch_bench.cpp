// Zero-downtime bench of the reverse proxy: a real HAProxy (the default) or
// Caddy, as `ads serve` starts it, in host-routing mode on loopback, two
// upstreams on loopback, N keep-alive clients sending requests to one stable
// host while the route switches between the upstreams. Prints the requests,
// the failures, the request rate and the slowest switch (the router's put,
// from the call to the proxy's answer).
// Usage: ads_switch_bench [haproxy|caddy] [total] [threads] [switches]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "http/server.h"
#include "router/caddy.h"
#include "router/caddy_process.h"
#include "router/haproxy.h"
#include "router/haproxy_process.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/switch_load.h"

namespace {
std::unique_ptr<ads::http::Server> upstream(const std::string& body) {
  ads::http::ServerOptions so;
  auto s = std::make_unique<ads::http::Server>(so);
  s->route("GET", "/", [body](ads::http::Request&) {
    ads::http::Response r;
    r.content_type = "text/plain";
    r.body = body;
    return r;
  });
  if (!s->start()) return nullptr;
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  ads::test::SwitchLoadOptions o;
  std::string kind = "haproxy";
  int arg = 1;
  if (argc > 1 && (std::strcmp(argv[1], "haproxy") == 0 || std::strcmp(argv[1], "caddy") == 0)) kind = argv[arg++];
  if (argc > arg) o.total = std::strtoull(argv[arg], nullptr, 10);
  if (argc > arg + 1) o.threads = std::atoi(argv[arg + 1]);
  if (argc > arg + 2) o.switches = std::atoi(argv[arg + 2]);
  ads::test::TempDir dir;
  std::string pdir = dir.str() + "/proxy";
  int port = ads::test::free_loopback_port();
  std::unique_ptr<ads::router::Router> r;
  if (kind == "haproxy") {
    ads::router::HaproxyProcessOptions po;
    po.dir = pdir;
    po.domain = "labs.test";
    po.listen_host = "127.0.0.1";
    po.listen_port = port;
    auto pid = ads::router::start_haproxy(po);
    if (!pid) {
      std::fprintf(stderr, "haproxy: %s\n", pid.error().message.c_str());
      return 1;
    }
    ads::router::HaproxyOptions ho;
    ho.dir = pdir;
    ho.domain = "labs.test";
    ho.listen_port = port;
    r = std::make_unique<ads::router::HaproxyRouter>(ho);
  } else {
    ads::router::ProxyProcessOptions po;
    po.dir = pdir;
    po.admin = "unix:" + po.dir + "/admin.sock";
    auto pid = ads::router::start_proxy(po);
    if (!pid) {
      std::fprintf(stderr, "caddy: %s\n", pid.error().message.c_str());
      return 1;
    }
    ads::router::CaddyOptions co;
    co.admin = po.admin;
    co.domain = "labs.test";
    co.listen_host = "127.0.0.1";
    co.listen_port = port;
    r = std::make_unique<ads::router::CaddyRouter>(co);
  }
  auto stop = [&] { (void)(kind == "haproxy" ? ads::router::stop_haproxy(pdir) : ads::router::stop_proxy(pdir)); };
  auto a = upstream("a"), b = upstream("b");
  if (!a || !b) return stop(), 1;
  auto addr = [](const ads::http::Server& s) { return "127.0.0.1:" + std::to_string(s.port()); };
  if (!r->put({"bench", addr(*a), 0})) return stop(), 1;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  o.host = "bench.labs.test";
  auto res = ads::test::run_switch_load(o, [&](int i) { return r->put({"bench", addr(i % 2 ? *a : *b), 0}).ok(); });
  std::printf(
      "proxy switch (%s): %llu requests by %d keep-alive clients, %d switches (%d failed), %llu failed "
      "requests, %.2f s, %.0f requests/s, slowest switch %.1f ms\n",
      kind.c_str(), static_cast<unsigned long long>(res.requests), o.threads, res.switches_done, res.switches_failed,
      static_cast<unsigned long long>(res.failures), res.seconds, res.requests / res.seconds, res.max_switch_ms);
  for (auto& e : res.first_errors) std::printf("  error: %s\n", e.c_str());
  stop();
  return res.failures == 0 && res.switches_failed == 0 ? 0 : 2;
}
