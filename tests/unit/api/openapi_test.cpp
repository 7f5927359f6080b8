// The REST API's contract (docs/openapi.json, served at /api/v1/openapi.json)
// and the routes `ads serve` registers agree both ways: every route is
// described, every described path and method is a route, and the generic
// life-cycle route (/deployments/{id}/{op}) accepts exactly the operations
// the document lists. The responses themselves are checked against the
// document's schemas by the e2e test (tests/e2e/api-schema.mjs, ajv).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "api/guard.h"
#include "api/metrics.h"
#include "api/oidc.h"
#include "api/web.h"
#include "support/build_paths.h"
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
  // (a path with a route of its own, such as exec, is not one of the generic route's)
  const auto routes = server->routes();
  auto own_route = [&](const std::string& path) {
    return std::find(routes.begin(), routes.end(), "POST " + path) != routes.end();
  };
  for (auto& [path, ops] : doc["paths"].items())
    if (path.rfind(prefix, 0) == 0 && path.find('/', prefix.size()) == std::string::npos && ops.contains("post") &&
        !own_route(path))
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

namespace {
// The API paths a client's source names: C++ concatenations
// ("/api/v1/deployments/" + id + "/logs?after=") and JavaScript literals and
// templates (`/api/v1/deployments/${id}/jobs`), each with {x} for what is
// computed. A path whose end is computed (".../" + op) ends in {x}.
std::vector<std::string> api_paths_in(const std::string& text, bool js) {
  std::vector<std::string> out;
  for (size_t at = text.find("/api/v1/"); at != std::string::npos; at = text.find("/api/v1/", at + 1)) {
    char quote = at > 0 ? text[at - 1] : 0;
    if (quote != '"' && quote != '\'' && quote != '`') continue;
    std::string pat;
    size_t i = at;
    auto literal = [&](char q) {
      for (; i < text.size() && text[i] != q; ++i) {
        if (q == '`' && text.compare(i, 2, "${") == 0) {
          int depth = 0;
          for (; i < text.size(); ++i) {
            if (text[i] == '{') ++depth;
            if (text[i] == '}' && --depth == 0) break;
          }
          pat += "{x}";
          continue;
        }
        pat += text[i];
      }
      ++i;  // the closing quote
    };
    literal(quote);
    if (!js) {
      // + expr + "literal" ...
      for (;;) {
        size_t j = i;
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        if (j >= text.size() || text[j] != '+') break;
        ++j;
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        if (j < text.size() && text[j] == '"') {
          i = j + 1;
          literal('"');
          continue;
        }
        int depth = 0;  // an expression, to the next + (or the end of the argument) at its own level
        for (; j < text.size(); ++j) {
          char c = text[j];
          if (c == '(' || c == '[') ++depth;
          if ((c == ')' || c == ']') && depth-- == 0) break;
          if (depth == 0 && (c == '+' || c == ',' || c == ';')) break;
        }
        pat += "{x}";
        i = j;
      }
    }
    out.push_back(pat);
  }
  return out;
}
}  // namespace

// What the CLI and the web UI ask for is in the document: every path they
// name is a described one, and every query parameter they send is described
// on it. (The e2e test checks the web UI's answers against it at run time.)
TEST_F(OpenApiTest, TheCliAndTheWebUiUseOnlyDescribedPathsAndQueryParameters) {
  auto doc = document();
  ASSERT_FALSE(doc.is_discarded());
  std::vector<std::pair<std::string, bool>> files;
  for (const char* dir : {"/src/cli", "/src/api/web"})
    for (auto& e : std::filesystem::directory_iterator(std::string(ADS_SOURCE_DIR) + dir)) {
      auto ext = e.path().extension().string();
      if (ext == ".cpp" || ext == ".h" || ext == ".js") files.push_back({e.path().string(), ext == ".js"});
    }
  size_t seen = 0;
  for (auto& [file, js] : files) {
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    for (const auto& pat : api_paths_in(text, js)) {
      ++seen;
      std::string path = pat.substr(0, pat.find('?'));
      std::string query = pat.find('?') == std::string::npos ? "" : pat.substr(pat.find('?') + 1);
      if (path.size() > 1 && path.back() == '/') path += "{x}";  // "/api/v1/users/" + name
      auto segs = segments(path);
      bool found = false;
      std::set<std::string> described_query;
      for (auto& [p, ops] : doc["paths"].items()) {
        auto d = segments(p);
        if (d.size() != segs.size()) continue;
        bool match = true;
        for (size_t i = 0; i < d.size() && match; ++i)
          match = segs[i] == "{x}" || is_param(d[i]) || segs[i] == d[i] || segs[i].find("{x}") != std::string::npos;
        if (!match) continue;
        found = true;
        for (auto& [m, op] : ops.items())
          for (auto& prm : op.value("parameters", json::array()))
            if (prm.value("in", "") == "query") described_query.insert(prm.value("name", ""));
      }
      EXPECT_TRUE(found) << file << " names " << pat << ", which the document does not describe";
      for (size_t i = 0; i < query.size();) {
        size_t amp = query.find('&', i);
        if (amp == std::string::npos) amp = query.size();
        std::string name = query.substr(i, query.find('=', i) < amp ? query.find('=', i) - i : amp - i);
        if (!name.empty() && name != "{x}") {
          EXPECT_TRUE(described_query.count(name)) << file << " sends ?" << name << " on " << path << ", not described";
        }
        i = amp + 1;
      }
    }
  }
  EXPECT_GE(seen, 30u) << "the scan found too few API paths: is it still reading the clients?";
}
