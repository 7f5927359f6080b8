// The REST API's input handling, against a real SQLite store and a real
// engine whose workers are not started (so nothing is provisioned).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "http/client.h"
#include "support/process.h"

using nlohmann::json;

namespace {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store = std::move(st.value());
    std::map<std::string, std::unique_ptr<ads::Provider>> providers;
    providers["lxd"] = std::move(ads::make_provider("lxd", json::object()).value());
    engine = std::make_unique<ads::Engine>(*store, std::move(providers), ads::EngineOptions{});
    server = std::make_unique<ads::http::Server>(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
    ads::register_api(*server, *store, *engine);
    ASSERT_TRUE(server->start().ok());
  }

  struct Reply {
    long status;
    json body;
  };
  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& content_type = "application/json") {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    r.body = body;
    if (!content_type.empty()) r.headers.push_back({"Content-Type", content_type});
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    if (!res) return {0, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
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
};

TEST_F(ApiTest, PostCreatesAcceptedDeploymentWithGeneratedSortableIds) {
  auto a = call("POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/cse02.git","ref":"v1.2"})");
  auto b = call("POST", "/api/v1/deployments", R"({"source":"https://example.invalid/labs/cse02.git","name":"cse02"})");
  ASSERT_EQ(a.status, 202) << a.body.dump();
  ASSERT_EQ(b.status, 202);
  EXPECT_EQ(a.body["state"], "accepted");
  EXPECT_EQ(a.body["name"], "cse02");  // derived from the URL
  EXPECT_EQ(b.body["name"], "cse02");  // names may repeat; ids never do
  std::string ida = a.body["id"], idb = b.body["id"];
  EXPECT_TRUE(ads::is_valid_id(ida));
  EXPECT_LT(ida, idb);
  EXPECT_FALSE(a.body.contains("secret"));
  auto got = call("GET", "/api/v1/deployments/" + ida);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body["ref"], "v1.2");
  auto list = call("GET", "/api/v1/deployments");
  ASSERT_EQ(list.body["deployments"].size(), 2u);
  EXPECT_EQ(list.body["deployments"][0]["id"], ida);
  auto logs = call("GET", "/api/v1/deployments/" + ida + "/logs");
  ASSERT_EQ(logs.status, 200);
  ASSERT_GE(logs.body["lines"].size(), 1u);
  EXPECT_NE(logs.body["lines"][0]["text"].get<std::string>().find("accepted"), std::string::npos);
}

TEST_F(ApiTest, ListPagesAndFilters) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"n)" + std::to_string(i % 2) + "\"}").status, 202);
  auto p1 = call("GET", "/api/v1/deployments?limit=2");
  ASSERT_EQ(p1.body["deployments"].size(), 2u);
  std::string next = p1.body["next"];
  auto p2 = call("GET", "/api/v1/deployments?limit=2&after=" + next);
  ASSERT_EQ(p2.body["deployments"].size(), 2u);
  EXPECT_GT(p2.body["deployments"][0]["id"].get<std::string>(), next);
  EXPECT_EQ(call("GET", "/api/v1/deployments?name=n1").body["deployments"].size(), 2u);
  EXPECT_EQ(call("GET", "/api/v1/deployments?state=accepted").body["deployments"].size(), 5u);
  EXPECT_EQ(call("GET", "/api/v1/deployments?state=running").body["deployments"].size(), 0u);
  expect_error(call("GET", "/api/v1/deployments?state=bogus"), 400, "state");
  expect_error(call("GET", "/api/v1/deployments?limit=0"), 400, "limit");
  expect_error(call("GET", "/api/v1/deployments?limit=abc"), 400, "limit");
}

TEST_F(ApiTest, BadInputGetsFourHundredsWithJsonAndLosesNothing) {
  ASSERT_EQ(call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})").status, 202);
  expect_error(call("POST", "/api/v1/deployments", "{not json"), 400);
  expect_error(call("POST", "/api/v1/deployments", "[1,2]"), 400);
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x"})", "text/plain"), 415);
  expect_error(call("POST", "/api/v1/deployments", R"({"ref":"v1"})"), 400, "source");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":42})"), 400, "source");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","sauce":"y"})"), 400, "sauce");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","name":"cse02; rm -rf /"})"), 400, "name");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","name":"../../etc/passwd"})"), 400, "name");
  expect_error(call("POST", "/api/v1/deployments", R"J({"source":"/x","name":"$(reboot)"})J"), 400, "name");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","ref":"--upload-pack=evil"})"), 400, "ref");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","ref":"a..b"})"), 400, "ref");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"-oProxyCommand=x"})"), 400, "source");
  expect_error(call("POST", "/api/v1/deployments", R"({"source":"/x","provider":"vmware"})"), 400, "provider");
  expect_error(call("POST", "/api/v1/deployments", std::string(8192, 'x')), 413);
  expect_error(call("GET", "/api/v1/deployments/01jzzzzzzzzzzzzzzzzzzzzzzz"), 404);
  expect_error(call("GET", "/api/v1/deployments/..%2F..%2Fetc"), 404);
  expect_error(call("GET", "/api/v1/deployments/nope/logs"), 404);
  expect_error(call("GET", "/api/v1/nowhere"), 404);
  expect_error(call("PUT", "/api/v1/deployments"), 405);
  // the one good deployment is still there, alone
  EXPECT_EQ(count(), 1u);
}

TEST_F(ApiTest, DestroyOfADeploymentStillInProgressIsAConflict) {
  auto a = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})");
  std::string id = a.body["id"];
  expect_error(call("DELETE", "/api/v1/deployments/" + id), 409);
  EXPECT_EQ(call("GET", "/api/v1/deployments/" + id).body["state"], "accepted");
}

}  // namespace
