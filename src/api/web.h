// The operators' web UI: static files embedded in the binary (web_assets.h),
// served by `ads serve` at
//   GET /            index.html (never cached)
//   GET /ui/{file}   the other files (app.js, style.css, ...)
// Names are looked up in the embedded table only; nothing is read from disk,
// so no request path can reach another file. Every answer carries a
// Content-Security-Policy without inline script or style, nosniff, no framing.
#pragma once

#include <string>

#include "http/server.h"

namespace ads {

// Content type for a file name by its extension ("application/octet-stream" if unknown).
std::string web_content_type(const std::string& name);

void register_web(http::Server& server);

}  // namespace ads
