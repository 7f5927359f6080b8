// Packs a lab tree into an in-memory .tar.gz (libarchive) for the agent.
#pragma once

#include <cstddef>
#include <string>

#include "core/result.h"

namespace ads {

// Regular files, directories and symlinks under `dir`, paths relative to it,
// skipping `.git`. Fails ("too_large") past `max_bytes` of input.
Result<std::string> tar_gz_directory(const std::string& dir, size_t max_bytes = 512u << 20);

}  // namespace ads
