#include "core/names.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "core/text.h"

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
constexpr const char* kShellMeta = ";|&$`<>\"'";

Status refuse_shell_meta(const std::string& s, const std::string& field) {
  auto pos = s.find_first_of(kShellMeta);
  if (pos != std::string::npos) return Error::invalid(field, std::string("must not contain '") + s[pos] + "'");
  return Status::Ok();
}
}  // namespace

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

Status validate_dns_label(const std::string& name, const std::string& field) {
  if (name.empty()) return Error::invalid(field, "must not be empty");
  if (name.size() > 63) return Error::invalid(field, "must be at most 63 characters (a DNS label)");
  for (unsigned char c : name) {
    if (c >= 'A' && c <= 'Z') return Error::invalid(field, "must be lower case (a DNS label)");
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return Error::invalid(field, "may contain only a-z, 0-9 and '-' (a DNS label)");
  }
  if (name.front() == '-' || name.back() == '-')
    return Error::invalid(field, "must start and end with a letter or digit (a DNS label)");
  return Status::Ok();
}

Status validate_git_ref(const std::string& ref, const std::string& field) {
  if (ref.empty()) return Error::invalid(field, "must not be empty");
  if (ref.size() > 255) return Error::invalid(field, "must be at most 255 characters");
  if (has_control(ref)) return Error::invalid(field, "must not contain control characters");
  if (!is_valid_utf8(ref)) return Error::invalid(field, "must be valid UTF-8");
  if (ref[0] == '-') return Error::invalid(field, "must not start with '-'");
  if (ref.find("..") != std::string::npos) return Error::invalid(field, "must not contain '..'");
  if (ref.find("@{") != std::string::npos) return Error::invalid(field, "must not contain '@{'");
  for (char c : std::string(" ~^:?*[\\")) {
    if (ref.find(c) != std::string::npos) return Error::invalid(field, std::string("must not contain '") + c + "'");
  }
  return refuse_shell_meta(ref, field);
}

Status validate_source(const std::string& source, const std::string& field) {
  if (source.empty()) return Error::invalid(field, "must not be empty");
  if (source.size() > 2048) return Error::invalid(field, "must be at most 2048 characters");
  if (has_control(source)) return Error::invalid(field, "must not contain control characters");
  if (!is_valid_utf8(source)) return Error::invalid(field, "must be valid UTF-8");
  if (source[0] == '-') return Error::invalid(field, "must not start with '-'");
  return refuse_shell_meta(source, field);
}

}  // namespace ads
