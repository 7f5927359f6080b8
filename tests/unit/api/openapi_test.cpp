// The REST API's contract (docs/openapi.json, served at /api/v1/openapi.json)
// and the routes `ads serve` registers agree both ways: every route is
// described, every described path and method is a route, and the generic
// life-cycle route (/deployments/{id}/{op}) accepts exactly the operations
// the document lists. The responses themselves are checked against the
// document's schemas by the e2e test (tests/e2e/api-schema.mjs, ajv).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "api/guard.h"
#include "api/metrics.h"
#include "api/oidc.h"
#include "api/web.h"
#include "unit/api/api_fixture.h"

namespace {
using ads::test::ApiTest;
using nlohmann::json;

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}
bool is_param(const std::string& s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }

// Whether the server's `pattern` serves the document's `path`: a parameter of
// the pattern takes any segment; a parameter of the document only a parameter.
bool serves(const std::string& pattern, const std::string& path) {
  auto p = segments(pattern), d = segments(path);
  if (p.size() != d.size()) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (!is_param(p[i]) && p[i] != d[i]) return false;
  return true;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class OpenApiTest : public ApiTest {
 protected:
  // every route `ads serve` registers (src/cli/main.cpp), OpenID Connect included
  void add_routes() override {
    ads::register_metrics(*server, *store, *engine, std::make_shared<ads::RequestGuard>(*store, *auth, limits()), true);
    auto s = ads::parse_oidc_settings({{"issuer", "http://127.0.0.1:9/"},
                                       {"client_id", "ads-test"},
                                       {"client_secret", "s3cret-of-the-client"},
                                       {"redirect_uri", "http://127.0.0.1/api/v1/oidc/callback"},
                                       {"allow", {{"*@example.org", "viewer"}}}});
    ASSERT_TRUE(s.ok()) << s.error().message;
    oidc = std::make_unique<ads::Oidc>(*s, *auth);
    ads::register_oidc(*server, *store, *oidc, limits());
    ads::register_web(*server, ads::WebOptions{.oidc = true});
  }
  json document() {
    std::ifstream in(std::string(ADS_SOURCE_DIR) + "/docs/openapi.json");
    return json::parse(in, nullptr, false);
  }
  std::unique_ptr<ads::Oidc> oidc;
};

TEST_F(OpenApiTest, TheServedDocumentIsTheOneInDocs) {
  ads::http::ClientRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/api/v1/openapi.json";  // no token needed
  auto res = ads::http::request(r);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 200);
  auto served = json::parse(res->body, nullptr, false);
  ASSERT_FALSE(served.is_discarded()) << "not JSON";
  auto doc = document();
  ASSERT_FALSE(doc.is_discarded()) << "docs/openapi.json is not JSON";
  EXPECT_EQ(served, doc);
  EXPECT_EQ(doc.value("openapi", ""), "3.1.0");
}

TEST_F(OpenApiTest, EveryRouteIsDescribedAndEveryDescribedRouteExists) {
  auto doc = document();
  ASSERT_FALSE(doc.is_discarded()) << "docs/openapi.json is not JSON";
  std::vector<std::pair<std::string, std::string>> described;  // method, path
  for (auto& [path, ops] : doc["paths"].items())
    for (auto& [method, op] : ops.items()) {
      described.push_back({upper(method), path});
      EXPECT_TRUE(op.contains("responses") && !op["responses"].empty()) << method << " " << path << " has no responses";
    }
  auto routes = server->routes();
  ASSERT_GT(routes.size(), 30u);
  for (const auto& route : routes) {
    auto sp = route.find(' ');
    std::string method = route.substr(0, sp), pattern = route.substr(sp + 1);
    bool found = false;
    for (auto& [m, p] : described) found = found || (m == method && serves(pattern, p));
    EXPECT_TRUE(found) << route << " is a route the document does not describe";
  }
  for (auto& [m, p] : described) {
    bool found = false;
    for (const auto& route : routes) {
      auto sp = route.find(' ');
      found = found || (route.substr(0, sp) == m && serves(route.substr(sp + 1), p));
    }
    EXPECT_TRUE(found) << m << " " << p << " is described but is no route";
  }
}

// The generic route's operations are what the document lists, no more, no less.
TEST_F(OpenApiTest, TheLifeCycleOperationsAreExactlyTheDescribedOnes) {
  auto doc = document();
  ASSERT_FALSE(doc.is_discarded());
  std::set<std::string> listed;
  const std::string prefix = "/api/v1/deployments/{id}/";
  for (auto& [path, ops] : doc["paths"].items())
    if (path.rfind(prefix, 0) == 0 && path.find('/', prefix.size()) == std::string::npos && ops.contains("post"))
      listed.insert(path.substr(prefix.size()));
  ASSERT_FALSE(listed.empty());
  auto created = call("POST", "/api/v1/deployments", R"({"source":"/srv/lab"})");
  ASSERT_EQ(created.status, 202) << created.body.dump();
  std::string id = created.body.value("id", "");
  // an unknown operation's 404 names the ones there are
  auto unknown = call("POST", "/api/v1/deployments/" + id + "/no-such-op");
  ASSERT_EQ(unknown.status, 404);
  std::string msg = unknown.body["error"].value("message", "");
  auto open = msg.find('('), close = msg.find(')');
  ASSERT_NE(open, std::string::npos) << msg;
  std::set<std::string> accepted;
  std::string list = msg.substr(open + 1, close - open - 1);
  for (size_t i = 0; i < list.size();) {
    size_t j = list.find(", ", i);
    if (j == std::string::npos) j = list.size();
    accepted.insert(list.substr(i, j - i));
    i = j + 2;
  }
  EXPECT_EQ(listed, accepted);
  // and each listed one is taken (no 404 "no operation")
  for (const auto& op : listed) {
    auto r = call("POST", "/api/v1/deployments/" + id + "/" + op);
    EXPECT_NE(r.status, 404) << op << ": " << r.body.dump();
  }
}

}  // namespace
