// JSON written straight into a string, for answers too hot to build as a
// nlohmann::json tree first (GET /api/v1/deployments: a tree of a page of
// 100 deployments is ~4,000 allocations, built, printed and freed for each
// request; docs/bench.md). The text is what nlohmann::json::dump() prints for
// the same values, strings escaped the same way; invalid UTF-8 (on which a
// plain dump() throws) is first replaced with U+FFFD as valid_utf8 does. Members are written in the order given;
// give them in key order to match a dump() byte for byte. No I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ads {

// Appends `s` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

// One JSON object being written to `out`: members, then close().
class JsonObjectText {
 public:
  explicit JsonObjectText(std::string& out) : out_(out) { out_ += '{'; }
  JsonObjectText& str(std::string_view key, std::string_view value);
  JsonObjectText& boolean(std::string_view key, bool value);
  JsonObjectText& integer(std::string_view key, int64_t value);
  JsonObjectText& null(std::string_view key);
  // A member whose value is already JSON text (an object written elsewhere).
  JsonObjectText& raw(std::string_view key, std::string_view json);
  // Starts a member whose value the caller writes next, to the same string.
  std::string& member(std::string_view key);
  void close() { out_ += '}'; }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace ads
