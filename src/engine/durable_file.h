// Files the engine writes (backup archives) reach the disk whole or not at
// all: written under a temporary name, flushed, synced and checked, then
// renamed into place; and read back from the disk for their checksum.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace ads {

// The suffix of a file still being written (`path` + kPartialSuffix). A file
// with it is never a finished one; one left by a crash may be removed.
inline constexpr std::string_view kPartialSuffix = ".partial";

// Writes `data` to `path`: a new file `path`.partial (mode 0600, never
// through a link; a stale one is replaced), every write checked, fsync and
// close checked, renamed over `path`, then the directory synced so that the
// rename survives a crash. On any failure nothing is left (the temporary
// file is removed, `path` is untouched) and the error ("failed") names the
// file and the system's reason, e.g. "No space left on device".
Status write_file_durably(const std::string& path, std::string_view data);

// The SHA-256 (lower-case hex) of the file's bytes as read back from the
// file system, with its size; "not_found"/"failed" when it cannot be read.
struct FileDigest {
  std::string sha256;
  int64_t size = 0;
};
Result<FileDigest> digest_file(const std::string& path);

}  // namespace ads
