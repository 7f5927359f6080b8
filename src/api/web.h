// The operators' web UI: static files embedded in the binary (web_assets.h),
// served by `ads serve` at
//   GET /            index.html (never cached)
//   GET /ui/{file}   the other files (app.js, style.css, ...)
//   GET /api/v1/login  the sign-in methods, without a token, for the sign-in
//                      page: {"methods":["password"(,"oidc")],"oidc_login"?}
// Names are looked up in the embedded table only; nothing is read from disk,
// so no request path can reach another file. Every answer carries a
// Content-Security-Policy without inline script or style, nosniff, no framing.
#pragma once

#include <string>

#include "http/server.h"

namespace ads {

// Content type for a file name by its extension ("application/octet-stream" if unknown).
std::string web_content_type(const std::string& name);

struct WebOptions {
  bool oidc = false;  // OpenID Connect sign-in is configured (register_oidc)
};

void register_web(http::Server& server, const WebOptions& opts = {});

}  // namespace ads
