// Zero-downtime bench of the reverse proxy: a real Caddy (as `ads serve`
// starts it) in host-routing mode on loopback, two upstreams on loopback,
// N keep-alive clients sending requests to one stable host while the route
// switches between the upstreams. Prints the requests, the failures, the
// request rate and the slowest switch (the admin call, from the request to
// Caddy's answer). Usage: ads_switch_bench [total] [threads] [switches]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "http/server.h"
#include "router/caddy.h"
#include "router/caddy_process.h"
#include "support/process.h"
#include "support/switch_load.h"

namespace {
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

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
  if (argc > 1) o.total = std::strtoull(argv[1], nullptr, 10);
  if (argc > 2) o.threads = std::atoi(argv[2]);
  if (argc > 3) o.switches = std::atoi(argv[3]);
  ads::test::TempDir dir;
  ads::router::ProxyProcessOptions po;
  po.dir = dir.str() + "/proxy";
  po.admin = "unix:" + po.dir + "/admin.sock";
  auto pid = ads::router::start_proxy(po);
  if (!pid) {
    std::fprintf(stderr, "caddy: %s\n", pid.error().message.c_str());
    return 1;
  }
  auto a = upstream("a"), b = upstream("b");
  if (!a || !b) return 1;
  int port = free_port();
  ads::router::CaddyOptions co;
  co.admin = po.admin;
  co.domain = "labs.test";
  co.listen_host = "127.0.0.1";
  co.listen_port = port;
  ads::router::CaddyRouter r(co);
  auto addr = [](const ads::http::Server& s) { return "127.0.0.1:" + std::to_string(s.port()); };
  if (!r.put({"bench", addr(*a), 0})) return 1;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  o.host = "bench.labs.test";
  auto res = ads::test::run_switch_load(o, [&](int i) { return r.put({"bench", addr(i % 2 ? *a : *b), 0}).ok(); });
  std::printf("proxy switch: %llu requests by %d keep-alive clients, %d switches (%d failed), %llu failed requests, "
              "%.2f s, %.0f requests/s, slowest switch %.1f ms\n",
              static_cast<unsigned long long>(res.requests), o.threads, res.switches_done, res.switches_failed,
              static_cast<unsigned long long>(res.failures), res.seconds, res.requests / res.seconds, res.max_switch_ms);
  for (auto& e : res.first_errors) std::printf("  error: %s\n", e.c_str());
  (void)ads::router::stop_proxy(po.dir);
  return res.failures == 0 && res.switches_failed == 0 ? 0 : 2;
}
