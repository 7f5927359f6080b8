#include "core/names.h"

#include <cctype>

namespace ads {
namespace {
bool has_control(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
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

Status validate_git_ref(const std::string& ref, const std::string& field) {
  if (ref.empty()) return Error::invalid(field, "must not be empty");
  if (ref.size() > 255) return Error::invalid(field, "must be at most 255 characters");
  if (has_control(ref)) return Error::invalid(field, "must not contain control characters");
  if (ref[0] == '-') return Error::invalid(field, "must not start with '-'");
  if (ref.find("..") != std::string::npos) return Error::invalid(field, "must not contain '..'");
  for (char c : std::string(" ~^:?*[\\")) {
    if (ref.find(c) != std::string::npos)
      return Error::invalid(field, std::string("must not contain '") + c + "'");
  }
  return Status::Ok();
}

Status validate_source(const std::string& source, const std::string& field) {
  if (source.empty()) return Error::invalid(field, "must not be empty");
  if (source.size() > 2048) return Error::invalid(field, "must be at most 2048 characters");
  if (has_control(source)) return Error::invalid(field, "must not contain control characters");
  if (source[0] == '-') return Error::invalid(field, "must not start with '-'");
  return Status::Ok();
}

}  // namespace ads
