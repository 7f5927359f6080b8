// Packs a lab tree into an in-memory .tar.gz (libarchive) for the agent, and
// checks that an archive (a backup from an agent) is a whole, readable .tar.gz.
#pragma once

#include <cstddef>
#include <string>

#include "core/result.h"

namespace ads {

// Regular files, directories and symlinks under `dir`, paths relative to it,
// skipping `.git`. Fails ("too_large") past `max_bytes` of input.
Result<std::string> tar_gz_directory(const std::string& dir, size_t max_bytes = 512u << 20);

// Reads the whole archive as gzip (zlib: every member's CRC-32 and length
// checked, nothing after the last one) around a tar (libarchive: every
// header and every byte of data): Ok, or "invalid" saying what is wrong (not
// gzip at all, e.g. text before the data; damaged; cut off; no tar inside).
// The file variant: "not_found" when it cannot be opened.
Status verify_tar_gz(const std::string& data);
Status verify_tar_gz_file(const std::string& path);

}  // namespace ads
