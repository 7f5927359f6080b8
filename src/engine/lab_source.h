// Reading a fetched lab's files on the ADS host without ever leaving the
// lab: every component of the path is opened with O_NOFOLLOW beneath the
// lab's folder (a symbolic link anywhere on the way is refused, never
// followed), the size is checked with fstat before reading, and at most the
// limit is read.
#pragma once

#include <cstddef>
#include <string>

#include "core/labspec.h"
#include "core/result.h"

namespace ads {

constexpr size_t kMaxSpecBytes = 1u << 20;

// The lab's spec file: its path in the lab and its text (kept in the store so
// that later jobs read the same spec).
struct SpecFile {
  std::string path, text;
  LabSpec spec;
};

// The text of `rel` ('/'-separated, no "." or ".." parts) under `dir`.
// Errors: "not_found" when a part does not exist; "invalid" (field `rel`)
// when a part is a symbolic link or the file is not a regular file;
// "too_large" past `max_bytes` (checked before reading; at most
// max_bytes + 1 bytes are read).
Result<std::string> read_lab_file(const std::string& dir, const std::string& rel, size_t max_bytes);

// The lab's spec: ads-lab.json (v2), else scripts/labspec.json (v1), read
// with read_lab_file and parsed. Messages say where a spec is wrong, never
// quote what it holds beyond field names.
Result<SpecFile> read_spec(const std::string& dir);

}  // namespace ads
