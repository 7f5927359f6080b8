// The web UI's static route: the embedded files, their content types and
// security headers, and that no request path reaches anything else.
#include "api/web.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "api/web_assets.h"
#include "http/client.h"
#include "support/build_paths.h"

namespace {
namespace fs = std::filesystem;

class WebTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server = std::make_unique<ads::http::Server>(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
    ads::register_web(*server);
    ASSERT_TRUE(server->start().ok());
  }
  ads::http::ClientResponse get(const std::string& path, const std::string& method = "GET") {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok());
    return res ? *res : ads::http::ClientResponse{};
  }
  // Sends `target` byte for byte (libcurl would normalise "/../"); returns the raw answer.
  std::string raw(const std::string& target) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }
  std::unique_ptr<ads::http::Server> server;
};

void expect_security_headers(const ads::http::ClientResponse& r) {
  std::string csp = r.headers.count("content-security-policy") ? r.headers.at("content-security-policy") : "";
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << "no unsafe-inline/eval: " << csp;
  EXPECT_EQ(r.headers.count("x-content-type-options") ? r.headers.at("x-content-type-options") : "", "nosniff");
  EXPECT_EQ(r.headers.count("x-frame-options") ? r.headers.at("x-frame-options") : "", "DENY");
}

TEST_F(WebTest, IndexIsHtmlNeverCachedWithSecurityHeaders) {
  auto r = get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(r.headers["cache-control"], "no-store");
  expect_security_headers(r);
  EXPECT_NE(r.body.find("<script type=\"module\" src=\"/ui/app.js\"></script>"), std::string::npos);
  EXPECT_EQ(get("/ui/index.html").headers["cache-control"], "no-store");
}

TEST_F(WebTest, EveryFileIsServedByteForByteWithItsContentType) {
  fs::path dir = fs::path(ADS_SOURCE_DIR) / "src/api/web";
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    ++files;
    std::string name = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    std::string want((std::istreambuf_iterator<char>(in)), {});
    auto r = get("/ui/" + name);
    EXPECT_EQ(r.status, 200) << name;
    EXPECT_EQ(r.body, want) << name << " differs from the embedded copy";
    EXPECT_EQ(r.headers["content-type"], ads::web_content_type(name)) << name;
    EXPECT_NE(r.headers["content-type"], "application/octet-stream") << name << " has no known type";
    if (name != "index.html") {
      EXPECT_EQ(r.headers["cache-control"], "no-cache") << name;
    }
    expect_security_headers(r);
  }
  // every file in src/api/web is embedded, and beside them the API's docs/openapi.json
  EXPECT_EQ(files + 1, ads::web::assets().size()) << "every file in src/api/web is embedded";
  EXPECT_GE(files, 4u);
}

TEST_F(WebTest, ContentTypes) {
  EXPECT_EQ(ads::web_content_type("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ads::web_content_type("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ads::web_content_type("a.svg"), "image/svg+xml");
  EXPECT_EQ(ads::web_content_type("a.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ads::web_content_type("Makefile"), "application/octet-stream");
}

// The CSP forbids inline script and style; the HTML must not need them.
TEST_F(WebTest, HtmlHasNoInlineScriptStyleOrHandlers) {
  std::string html = get("/").body;
  std::regex script("<script([^>]*)>", std::regex::icase);
  size_t scripts = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), script); it != std::sregex_iterator(); ++it) {
    ++scripts;
    EXPECT_NE((*it)[1].str().find("src="), std::string::npos) << "inline script: " << (*it)[0];
  }
  EXPECT_EQ(scripts, 1u);
  EXPECT_FALSE(std::regex_search(html, std::regex("<style", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(html, std::regex("\\son[a-z]+=", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(html, std::regex("style=", std::regex::icase)));
}

// The sign-in page asks which methods there are, before it has a token.
TEST_F(WebTest, SignInMethodsSayWhetherSsoIsConfigured) {
  auto r = get("/api/v1/login");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["cache-control"], "no-store");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_EQ(j["methods"], nlohmann::json({"password"})) << r.body;
  EXPECT_FALSE(j.contains("oidc_login")) << r.body;

  ads::http::Server sso(ads::http::ServerOptions{"127.0.0.1", 0, 4096, 8, 5});
  ads::register_web(sso, ads::WebOptions{.oidc = true});
  ASSERT_TRUE(sso.start().ok());
  ads::http::ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(sso.port()) + "/api/v1/login";
  auto res = ads::http::request(req);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->status, 200);
  j = nlohmann::json::parse(res->body, nullptr, false);
  EXPECT_EQ(j["methods"], nlohmann::json({"password", "oidc"})) << res->body;
  EXPECT_EQ(j["oidc_login"], "/api/v1/oidc/login");
  sso.stop();
}

TEST_F(WebTest, UnknownFileIsAJson404) {
  auto r = get("/ui/nope.js");
  EXPECT_EQ(r.status, 404);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_EQ(get("/", "POST").status, 405);
  EXPECT_EQ(get("/ui/app.js", "DELETE").status, 405);
}

TEST_F(WebTest, NoPathReachesAnotherFile) {
  const std::vector<std::string> attempts = {"/ui/../../../../etc/passwd",
                                             "/ui/..%2f..%2f..%2f..%2fetc%2fpasswd",
                                             "/ui/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                             "/ui/%2fetc%2fpasswd",
                                             "/ui//etc/passwd",
                                             "/../../../etc/passwd",
                                             "/ui/..%5c..%5cetc%5cpasswd",
                                             "/ui/web.cpp",
                                             "/ui/..%2fweb.cpp",
                                             "/ui/..%2fapi.cpp",
                                             "/ui/app.js%00.html",
                                             "/ui/./app.js/..",
                                             "/ui/.",
                                             "/ui/.."};
  for (auto& t : attempts) {
    std::string answer = raw(t);
    EXPECT_EQ(answer.rfind("HTTP/1.1 404", 0), 0u) << t << " -> " << answer.substr(0, 80);
    EXPECT_EQ(answer.find("root:"), std::string::npos) << t;
    EXPECT_EQ(answer.find("#include"), std::string::npos) << t;
  }
  // the same request with a normal path does answer (the raw client works)
  std::string app = raw("/ui/app.js");
  EXPECT_EQ(app.rfind("HTTP/1.1 200", 0), 0u);
  // the router ignores a trailing slash: the same file, nothing else
  std::string slash = raw("/ui/app.js/");
  EXPECT_EQ(slash.substr(slash.find("\r\n\r\n")), app.substr(app.find("\r\n\r\n")));
}

}  // namespace
