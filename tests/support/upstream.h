// Test support for the proxy tests: an upstream on loopback that answers
// GET / with a fixed body (a lab's machine, in small), a GET through the
// proxy on a loopback port (with a Host header or not), and issue 17's
// zero-downtime check.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "http/client.h"
#include "http/server.h"
#include "router/router.h"
#include "support/switch_load.h"

namespace ads::test {

struct Upstream {
  std::unique_ptr<ads::http::Server> server;
  explicit Upstream(const std::string& body) {
    ads::http::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    server = std::make_unique<ads::http::Server>(so);
    server->route("GET", "/", [body](ads::http::Request&) {
      ads::http::Response r;
      r.content_type = "text/plain";
      r.body = body;
      return r;
    });
    EXPECT_TRUE(server->start().ok());
  }
  ~Upstream() { server->stop(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
};

struct Got {
  long status = 0;  // 0: no answer
  std::string body;
  std::string error;
};

inline Got get_port(int port, const std::string& host = "") {
  ads::http::ClientRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  if (!host.empty()) r.headers.emplace_back("Host", host);
  r.timeout_ms = 10000;
  auto res = ads::http::request(r);
  if (!res) return {0, "", res.error().code + ": " + res.error().message};
  return {res->status, res->body, ""};
}

// 2,000 requests by 4 keep-alive clients to http://127.0.0.1:<port>/ with
// Host `host` while `r` switches the route of `name` (a domain router) 20
// times between `a` and `b` (which answer "a" and "b"): not one request may
// fail.
inline void expect_switches_fail_no_request(ads::router::Router& r, int port, const std::string& name,
                                            const std::string& host, const Upstream& a, const Upstream& b) {
  ASSERT_TRUE(r.put(ads::router::Route{name, a.address(), 0}).ok());
  SwitchLoadOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  o.host = host;
  auto res = run_switch_load(o, [&](int i) {
    return r.put(ads::router::Route{name, (i % 2 == 0 ? b : a).address(), 0}).ok();
  });
  EXPECT_EQ(res.requests, 2000u);
  EXPECT_EQ(res.failures, 0u) << (res.first_errors.empty() ? "" : res.first_errors[0]);
  EXPECT_EQ(res.switches_done, 20);
  EXPECT_EQ(res.switches_failed, 0);
  // both upstreams answered: the switches happened under the load
  EXPECT_GT(res.bodies["a"], 0u);
  EXPECT_GT(res.bodies["b"], 0u);
  EXPECT_EQ(res.bodies["a"] + res.bodies["b"], 2000u);
}

}  // namespace ads::test
