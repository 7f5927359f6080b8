#include "core/names.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace ads {
namespace {
bool has_control(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

// Characters a POSIX shell gives a meaning to. Refs and sources never reach a
// shell here, but they do reach logs, URLs and people's terminals; no real
// branch, tag or repository URL needs them.
// The end of the longest well-formed UTF-8 run from `pos` (at most `chars`
// characters; 0: no limit).
size_t utf8_prefix(std::string_view s, size_t pos, size_t chars = 0) {
  size_t i = pos, count = 0;
  while (i < s.size() && (chars == 0 || count < chars)) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) break;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    bool ok = true;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (!ok) break;
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) break;  // overlong
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) break;
    i += len;
    ++count;
  }
  return i;
}

constexpr const char* kShellMeta = ";|&$`<>\"'";

Status refuse_shell_meta(const std::string& s, const std::string& field) {
  auto pos = s.find_first_of(kShellMeta);
  if (pos != std::string::npos)
    return Error::invalid(field, std::string("must not contain '") + s[pos] + "'");
  return Status::Ok();
}
}  // namespace

bool is_utf8(std::string_view s) { return utf8_prefix(s, 0) == s.size(); }

std::string printable(std::string_view s, size_t max) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  while (i < s.size() && i < max) {
    size_t n = utf8_prefix(s, i, 1) - i;  // the length of one valid character at i, 0 if none
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool control = n == 1 ? (c < 0x20 || c == 0x7f || c == '\\')
                          : n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;  // U+0080-U+009F
    if (n == 0 || control) {
      for (size_t k = 0; k < std::max<size_t>(n, 1); ++k) {
        unsigned char b = static_cast<unsigned char>(s[i + k]);
        out += "\\x";
        out += hex[b >> 4];
        out += hex[b & 15];
      }
      i += std::max<size_t>(n, 1);
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

Status validate_lab_name(const std::string& name, const std::string& field) {
  if (name.empty()) return Error::invalid(field, "must not be empty");
  if (name.size() > 63) return Error::invalid(field, "must be at most 63 characters");
  if (!std::isalnum(static_cast<unsigned char>(name[0])))
    return Error::invalid(field, "must start with a letter or digit");
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.'))
      return Error::invalid(field, "may contain only letters, digits, '.', '_' and '-'");
  }
  if (name.find("..") != std::string::npos) return Error::invalid(field, "must not contain '..'");
  return Status::Ok();
}

Status validate_git_ref(const std::string& ref, const std::string& field) {
  if (ref.empty()) return Error::invalid(field, "must not be empty");
  if (ref.size() > 255) return Error::invalid(field, "must be at most 255 characters");
  if (has_control(ref)) return Error::invalid(field, "must not contain control characters");
  if (!is_utf8(ref)) return Error::invalid(field, "must be valid UTF-8");
  if (ref[0] == '-') return Error::invalid(field, "must not start with '-'");
  if (ref.find("..") != std::string::npos) return Error::invalid(field, "must not contain '..'");
  if (ref.find("@{") != std::string::npos) return Error::invalid(field, "must not contain '@{'");
  for (char c : std::string(" ~^:?*[\\")) {
    if (ref.find(c) != std::string::npos)
      return Error::invalid(field, std::string("must not contain '") + c + "'");
  }
  return refuse_shell_meta(ref, field);
}

Status validate_source(const std::string& source, const std::string& field) {
  if (source.empty()) return Error::invalid(field, "must not be empty");
  if (source.size() > 2048) return Error::invalid(field, "must be at most 2048 characters");
  if (has_control(source)) return Error::invalid(field, "must not contain control characters");
  if (!is_utf8(source)) return Error::invalid(field, "must be valid UTF-8");
  if (source[0] == '-') return Error::invalid(field, "must not start with '-'");
  return refuse_shell_meta(source, field);
}

}  // namespace ads
