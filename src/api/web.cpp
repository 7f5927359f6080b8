#include "api/web.h"

#include <nlohmann/json.hpp>

#include "api/web_assets.h"

namespace ads {
using http::Request;
using http::Response;

namespace {
const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

Response serve(const std::string& name, bool cache) {
  for (const auto& a : web::assets()) {
    if (a.name != name) continue;
    Response r;
    r.status = 200;
    r.content_type = web_content_type(name);
    r.body = std::string(a.data);
    r.headers = {{"Content-Security-Policy", kCsp},
                 {"X-Content-Type-Options", "nosniff"},
                 {"X-Frame-Options", "DENY"},
                 {"Referrer-Policy", "no-referrer"},
                 {"Cache-Control", cache ? "no-cache" : "no-store"}};
    return r;
  }
  Response r = Response::error(404, "not_found", "no such file in the web UI: " + name.substr(0, 64));
  r.headers = {{"X-Content-Type-Options", "nosniff"}};
  return r;
}
}  // namespace

std::string web_content_type(const std::string& name) {
  auto dot = name.rfind('.');
  std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "json") return "application/json";
  return "application/octet-stream";
}

void register_web(http::Server& server, const WebOptions& opts) {
  // what the sign-in page offers; says only whether single sign-on is on
  server.route("GET", "/api/v1/login", [oidc = opts.oidc](Request&) {
    nlohmann::json j = {{"methods", oidc ? nlohmann::json{"password", "oidc"} : nlohmann::json{"password"}}};
    if (oidc) j["oidc_login"] = "/api/v1/oidc/login";
    Response r = Response::json(200, j);
    r.headers.push_back({"Cache-Control", "no-store"});
    return r;
  });
  // the REST API's contract (docs/openapi.json, embedded): no secret in it, so no token needed
  server.route("GET", "/api/v1/openapi.json", [](Request&) { return serve("openapi.json", true); });
  server.route("GET", "/", [](Request&) { return serve("index.html", false); });
  // assets revalidate on every load (no-cache): they have no content hash in their names
  server.route("GET", "/ui/{file}", [](Request& req) {
    std::string f = req.param("file");
    if (f == "index.html") return serve(f, false);
    return serve(f, true);
  });
}

}  // namespace ads
