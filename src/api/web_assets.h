// The web UI's files (src/api/web/), embedded into the binary at build time
// by cmake/embed_files.cmake, so `ads serve` finds them from any directory.
#pragma once

#include <string_view>
#include <vector>

namespace ads::web {

struct Asset {
  std::string_view name;  // file name, e.g. "app.js" (no directories)
  std::string_view data;
};

const std::vector<Asset>& assets();

}  // namespace ads::web
