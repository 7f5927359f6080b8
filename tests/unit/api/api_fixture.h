// The API test fixture: a real SQLite store, a real engine whose workers are
// not started (so nothing is provisioned), the routes on a real HTTP server.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/auth.h"
#include "http/client.h"
#include "support/process.h"

namespace ads::test {
using nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store = std::move(st.value());
    engine = std::make_unique<ads::Engine>(*store, providers(), engine_options());
    server = std::make_unique<ads::http::Server>(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
    auth = std::make_unique<ads::Auth>(*store);
    auto boot = auth->bootstrap();
    ASSERT_TRUE(boot.ok() && boot->has_value());
    token = **boot;
    ads::register_api(*server, *store, *engine, *auth, limits());
    add_routes();
    ASSERT_TRUE(server->start().ok());
  }
  virtual void add_routes() {}
  // The engine's providers: LXD with its default settings (never reached
  // unless a test starts the workers).
  virtual std::map<std::string, std::unique_ptr<ads::Provider>> providers() {
    std::map<std::string, std::unique_ptr<ads::Provider>> out;
    out["lxd"] = std::move(ads::make_provider("lxd", json::object()).value());
    return out;
  }
  // The engine's workers are not started unless a test starts them.
  virtual ads::EngineOptions engine_options() { return {}; }
  // Generous: these tests send many bad tokens from one address.
  virtual ads::ApiLimits limits() {
    ads::ApiLimits l;
    l.request_burst = 1e6;
    l.auth_failure_burst = 1e6;
    l.active_jobs_per_user = 1000;
    return l;
  }

  struct Reply {
    long status;
    json body;
    std::map<std::string, std::string> headers;
  };
  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& content_type = "application/json") {
    return call_as(token, method, path, body, content_type);
  }
  Reply call_as(const std::string& tok, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& content_type = "application/json") {
    return call_on(server->port(), tok, method, path, body, content_type);
  }
  // A call to the server on `port` (another server of the test's own).
  Reply call_on(uint16_t port, const std::string& tok, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& content_type = "application/json") {
    ads::http::ClientRequest r;
    if (!tok.empty()) r.headers.push_back({"Authorization", "Bearer " + tok});
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(port) + path;
    r.body = body;
    if (!content_type.empty()) r.headers.push_back({"Content-Type", content_type});
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok()) << method << " " << path << ": " << (res.ok() ? "" : res.error().message);
    if (!res) return {0, json(), {}};
    return {res->status, json::parse(res->body, nullptr, false), res->headers};
  }
  void expect_error(const Reply& r, long status, const std::string& field = "") {
    EXPECT_EQ(r.status, status) << r.body.dump();
    ASSERT_TRUE(r.body.is_object()) << "error bodies are JSON";
    ASSERT_TRUE(r.body.contains("error")) << r.body.dump();
    EXPECT_FALSE(r.body["error"].value("message", "").empty());
    if (!field.empty()) {
      EXPECT_EQ(r.body["error"].value("field", ""), field) << r.body.dump();
    }
  }
  size_t count() {
    auto l = store->list({});
    return l.ok() ? l->size() : 999;
  }

  ads::test::TempDir tmp;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::Engine> engine;
  std::unique_ptr<ads::http::Server> server;
  std::unique_ptr<ads::Auth> auth;
  std::string token;  // the first-start admin token
};

}  // namespace ads::test
