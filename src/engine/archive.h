// Packs a lab tree into an in-memory .tar.gz (libarchive) for the agent, and
// checks that an archive (a backup from an agent) is a whole, readable .tar.gz.
#pragma once

#include <cstddef>
#include <string>

#include "core/result.h"

namespace ads {

// Regular files, directories and symbolic links under `dir`, paths relative
// to it, skipping `.git`. A link is packed as a link under its own name when
// it stays inside the lab (core/lab_tree.h); a link that leads out of it
// (absolute, or climbing above `dir` at any hop) fails the whole pack
// ("invalid", field "source") with a message naming it. Files are opened
// without following links and their size is checked before they are read:
// past `max_bytes` of file content the pack fails ("too_large") having read
// at most `max_bytes`. Names in messages are printable() (core/names.h).
Result<std::string> tar_gz_directory(const std::string& dir, size_t max_bytes = 512u << 20);

// Reads the whole archive as gzip (zlib: every member's CRC-32 and length
// checked, nothing after the last one) around a tar (libarchive: every
// header and every byte of data): Ok, or "invalid" saying what is wrong (not
// gzip at all, e.g. text before the data; damaged; cut off; no tar inside).
// The file variant: "not_found" when it cannot be opened.
Status verify_tar_gz(const std::string& data);
Status verify_tar_gz_file(const std::string& path);

}  // namespace ads
