// Bad input on every route that takes a JSON body: malformed JSON, a body
// that is not an object, wrong or missing content types, oversized bodies
// (with a length and chunked); each a 4xx with a JSON error, nothing changed.
#include <gtest/gtest.h>

#include "unit/api/api_fixture.h"

namespace {
using ads::test::ApiTest;
using nlohmann::json;

class BadInputTest : public ApiTest {
 protected:
  struct JsonRoute {
    std::string method, path, good_body;
  };
  std::vector<JsonRoute> json_routes(const std::string& id) {
    return {{"POST", "/api/v1/deployments", R"({"source":"/srv/lab"})"},
            {"POST", "/api/v1/deployments/" + id + "/restore", R"({"backup":"01jzzzzzzzzzzzzzzzzzzzzzzz"})"},
            {"POST", "/api/v1/deployments/" + id + "/exec", R"({"command":["true"]})"},
            {"POST", "/api/v1/users", R"({"name":"zed","role":"viewer"})"},
            {"PATCH", "/api/v1/users/admin", R"({"role":"admin"})"},
            {"POST", "/api/v1/tokens", R"({"name":"t"})"},
            {"POST", "/api/v1/login", R"({"name":"admin","password":"wrong-password"})"}};
  }
  // Sends raw bytes with headers of our choosing.
  Reply raw(const std::string& method, const std::string& path, const std::string& body,
            std::vector<std::pair<std::string, std::string>> headers) {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    r.body = body;
    r.headers = std::move(headers);
    r.headers.push_back({"Authorization", "Bearer " + token});
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
    if (!res) return {0, json(), {}};
    return {res->status, json::parse(res->body, nullptr, false), res->headers};
  }
  // A request whose only credential is `authorization`, verbatim.
  Reply raw_auth(const std::string& authorization, const std::string& method, const std::string& path) {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    r.headers = {{"Authorization", authorization}};
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
    if (!res) return {0, json(), {}};
    return {res->status, json::parse(res->body, nullptr, false), res->headers};
  }
};

TEST_F(BadInputTest, EveryJsonRouteRefusesBadBodiesAndChangesNothing) {
  auto created = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})");
  ASSERT_EQ(created.status, 202) << created.body.dump();
  std::string id = created.body.value("id", "");
  size_t before = count();
  for (auto& r : json_routes(id)) {
    SCOPED_TRACE(r.method + " " + r.path);
    expect_error(call(r.method, r.path, "{not json"), 400);
    expect_error(call(r.method, r.path, R"({"name":"x",)"), 400);
    expect_error(call(r.method, r.path, "[1,2]"), 400);
    expect_error(call(r.method, r.path, "\"a string\""), 400);
    expect_error(call(r.method, r.path, std::string("{\"a\":\"\xff\xfe\"}")), 400);  // not UTF-8
    expect_error(call(r.method, r.path, r.good_body, "text/plain"), 415);
    expect_error(call(r.method, r.path, r.good_body, "application/x-www-form-urlencoded"), 415);
    expect_error(call(r.method, r.path, r.good_body, "application/jsonx"), 415);
    expect_error(call(r.method, r.path, r.good_body, ""), 415);  // no Content-Type at all
    // bigger than the server's limit (4096 in this fixture), as a JSON string
    std::string big = "{\"name\":\"" + std::string(6000, 'a') + "\"}";
    expect_error(call(r.method, r.path, big), 413);
    auto chunked = raw(r.method, r.path, big, {{"Content-Type", "application/json"}, {"Transfer-Encoding", "chunked"}});
    expect_error(chunked, 413);
  }
  // a parameter'd content type is still JSON
  auto ok =
      call("POST", "/api/v1/deployments", R"({"source":"/srv/lab","name":"lab-2"})", "application/json; charset=utf-8");
  EXPECT_EQ(ok.status, 202) << ok.body.dump();
  EXPECT_EQ(count(), before + 1);  // only that one
  auto users = call("GET", "/api/v1/users");
  EXPECT_EQ(users.body.dump().find("zed"), std::string::npos);
}

TEST_F(BadInputTest, ExecRefusesEveryBadCommandNamingTheField) {
  auto created = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})");
  ASSERT_EQ(created.status, 202) << created.body.dump();
  std::string path = "/api/v1/deployments/" + created.body.value("id", "") + "/exec";
  for (auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({})", "command"},
           {R"({"command":"ls -l"})", "command"},
           {R"({"command":[]})", "command"},
           {R"({"command":[1]})", "command"},
           {R"({"command":[""]})", "command"},
           {R"({"command":["a\u0000b"]})", "command"},
           {R"({"command":["ls"],"timeout_s":0})", "timeout_s"},
           {R"({"command":["ls"],"timeout_s":601})", "timeout_s"},
           {R"({"command":["ls"],"timeout_s":"5"})", "timeout_s"},
           {R"({"command":["ls"],"shell":true})", "shell"},
       }) {
    SCOPED_TRACE(body);
    expect_error(call("POST", path, body), 400, field);
  }
  json many = {{"command", json::array()}};
  for (int i = 0; i < 257; ++i) many["command"].push_back("x");
  expect_error(call("POST", path, many.dump()), 400, "command");
  // a good command on a lab that is not running: 409, nothing run
  expect_error(call("POST", path, R"({"command":["true"]})"), 409);
}

TEST_F(BadInputTest, MalformedRequestsAndHeadersGetJsonErrors) {
  // a Content-Length that promises more than the limit, before any body byte is read
  auto huge = raw("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})",
                  {{"Content-Type", "application/json"}, {"Content-Length", "100000000"}});
  expect_error(huge, 413);
  // control bytes in a header: not HTTP (400), before any route runs
  expect_error(call_as("ads_\x01\x02", "GET", "/api/v1/whoami"), 400);
  expect_error(call_as(std::string(5000, 'a'), "GET", "/api/v1/whoami"), 401);
  expect_error(raw_auth("Basic YWRtaW46YWRtaW4=", "GET", "/api/v1/whoami"), 401);
  expect_error(call("GET", "/api/v1/deployments?limit=abc"), 400);
  expect_error(call("GET", "/api/v1/deployments?limit=-5"), 400);
}

}  // namespace
